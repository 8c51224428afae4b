// Which signals a routed wait must end on: the shim's view of the program's
// signal handlers.
//
// A blocking socket call that a signal interrupts is restarted by the kernel
// after a handler installed with SA_RESTART (or after a stop and continue)
// and fails with EINTR after a handler without it. A routed call waits in
// io_uring_enter, which fails with EINTR on every signal and so cannot tell
// the two apart. So the shim installs each handler the program sets up
// *without* SA_RESTART behind a trampoline that counts, per thread, the
// handlers it ran; a routed wait that io_uring_enter leaves with EINTR ends
// with EINTR only if that count moved, and waits again otherwise.
//
// Glossary
//   adopted  a signal whose handler lacks SA_RESTART: the kernel holds the
//            trampoline (with SA_SIGINFO added), this table the program's
//            handler and flags. sigaction() reports the program's own
//            handler and flags, so the program sees nothing of it.
//
// Every libc entry point that installs a handler is interposed: sigaction
// adopts directly; signal and its aliases, sysv_signal, sigset and
// siginterrupt run glibc's own code (which installs through an internal
// sigaction nobody can interpose, and keeps siginterrupt's set) and then
// bring the kernel's action in line. The handlers installed before the
// shim started are adopted at start-up. Handlers installed with a raw
// rt_sigaction system call are not seen: a routed wait then restarts after
// them where the plain call would fail with EINTR. Nothing here runs unless
// RINGPOOL_URING=1.
#pragma once
#include <signal.h>
#include <stdint.h>

#include "../pool/platform.hpp"

namespace ringpool::shim::signals {

// Serialises changes of the table and the kernel's handlers; the fork
// handlers hold it across fork.
extern platform::Mutex g_lock;

// Handlers without SA_RESTART this thread has run; only ever increases.
extern __thread uint32_t t_interrupts __attribute__((tls_model("initial-exec")));
inline uint32_t interrupts() { return __atomic_load_n(&t_interrupts, __ATOMIC_RELAXED); }

// At start-up with RINGPOOL_URING=1: adopt the handlers already installed.
void init();

// The interposed entry points, when RINGPOOL_URING=1; each behaves as
// glibc's function of the same name.
int on_sigaction(int sig, const struct sigaction* act, struct sigaction* old);
sighandler_t on_signal(int sig, sighandler_t handler);
sighandler_t on_sysv_signal(int sig, sighandler_t handler);
sighandler_t on_sigset(int sig, sighandler_t disp);
int on_siginterrupt(int sig, int interrupt);

}  // namespace ringpool::shim::signals
