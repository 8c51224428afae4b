// The shim's view of the program's signal handlers (see signals.hpp).
#include "signals.hpp"

#include <errno.h>

#include "../pool/platform.hpp"
#include "real.hpp"
#include "sys.hpp"
#include "thread_state.hpp"

namespace ringpool::shim::signals {

__thread uint32_t t_interrupts;
platform::Mutex g_lock;

namespace {

using Handler = void (*)(int, siginfo_t*, void*);

// Indexed by signal number. `fn` is read by the trampoline, in signal
// context; both fields are written under g_lock with signals blocked.
struct Adopted {
  Handler fn;
  int flags;     // the program's sa_flags
  bool current;  // the kernel's action is this adoption (or, after an
                 // SA_RESETHAND delivery, SIG_DFL with its flags)
};
Adopted g_adopted[NSIG];
// Signals siginterrupt() made interrupting: signal() then installs their
// handlers without SA_RESTART (glibc's _sigintr, which we cannot see).
uint64_t g_interrupting;

uint64_t bit(int sig) { return 1ull << (sig - 1); }

// The kernel calls this for every adopted signal. Whatever the program's
// handler expects, it gets (sig, info, context), as the kernel passes them
// to any handler on the architectures Linux has.
void trampoline(int sig, siginfo_t* info, void* context) {
  __atomic_store_n(&t_interrupts, t_interrupts + 1, __ATOMIC_RELAXED);
  if (Handler fn = __atomic_load_n(&g_adopted[sig].fn, __ATOMIC_ACQUIRE)) fn(sig, info, context);
}

bool wants_adoption(const struct sigaction* act) {
  return act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN && !(act->sa_flags & SA_RESTART);
}

// Table and kernel change together: no other thread's sigaction between,
// and no handler of this thread (which may call sigaction) either.
class Critical {
 public:
  Critical() {
    sigset_t all;
    sigfillset(&all);
    sys::sigprocmask(SIG_SETMASK, &all, &saved_);
    g_lock.lock();
  }
  ~Critical() {
    g_lock.unlock();
    sys::sigprocmask(SIG_SETMASK, &saved_, nullptr);
  }
  Critical(const Critical&) = delete;
  Critical& operator=(const Critical&) = delete;

 private:
  sigset_t saved_;
};

}  // namespace

int on_sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  if (sig < 1 || sig >= NSIG) return g_real.sigaction(sig, act, old);  // EINVAL
  // A vfork child has its own handlers but our memory: keep out of the
  // table (it makes no routed calls).
  if (!same_process()) return g_real.sigaction(sig, act, old);
  Critical critical;
  Adopted prev = g_adopted[sig];
  struct sigaction mine;
  bool adopt = act != nullptr && wants_adoption(act);
  if (adopt) {
    mine = *act;
    mine.sa_sigaction = trampoline;
    mine.sa_flags |= SA_SIGINFO;
    __atomic_store_n(&g_adopted[sig].fn, act->sa_sigaction, __ATOMIC_RELEASE);
    g_adopted[sig].flags = act->sa_flags;
  }
  int r = g_real.sigaction(sig, adopt ? &mine : act, old);
  int saved_errno = errno;
  if (r != 0) {
    __atomic_store_n(&g_adopted[sig].fn, prev.fn, __ATOMIC_RELEASE);
    g_adopted[sig].flags = prev.flags;
  } else {
    if (act != nullptr) g_adopted[sig].current = adopt;
    // Report the program's action: its handler, and its flags without the
    // SA_SIGINFO we added (which the kernel keeps after SA_RESETHAND).
    if (old != nullptr && prev.current) {
      bool ours = old->sa_sigaction == trampoline;
      if (ours) old->sa_sigaction = prev.fn;
      bool reset = old->sa_handler == SIG_DFL && (old->sa_flags & SA_RESETHAND);
      if ((ours || reset) && !(prev.flags & SA_SIGINFO)) old->sa_flags &= ~SA_SIGINFO;
    }
  }
  errno = saved_errno;
  return r;
}

namespace {

// signal() and sysv_signal(): handler, an empty mask (plus the signal itself
// when `mask_self`), flags; the old handler, or SIG_ERR.
sighandler_t install(int sig, sighandler_t handler, bool mask_self, int flags) {
  if (handler == SIG_ERR || sig < 1 || sig >= NSIG) {
    errno = EINVAL;
    return SIG_ERR;
  }
  struct sigaction act = {}, old;
  act.sa_handler = handler;
  sigemptyset(&act.sa_mask);
  if (mask_self) sigaddset(&act.sa_mask, sig);
  act.sa_flags = flags;
  if (on_sigaction(sig, &act, &old) < 0) return SIG_ERR;
  return old.sa_handler;
}

}  // namespace

// glibc's signal(): BSD semantics, SA_RESTART unless siginterrupt() said not.
sighandler_t on_signal(int sig, sighandler_t handler) {
  bool interrupting = sig >= 1 && sig < NSIG && (__atomic_load_n(&g_interrupting, __ATOMIC_RELAXED) & bit(sig));
  return install(sig, handler, true, interrupting ? 0 : SA_RESTART);
}

// System V semantics: one-shot, not masked during the handler, interrupting.
sighandler_t on_sysv_signal(int sig, sighandler_t handler) {
  return install(sig, handler, false, SA_RESETHAND | SA_NODEFER | SA_INTERRUPT);
}

sighandler_t on_sigset(int sig, sighandler_t disp) {
  sigset_t set, old_mask;
  sigemptyset(&set);
  if (sigaddset(&set, sig) < 0) return SIG_ERR;  // EINVAL
  struct sigaction old;
  if (disp == SIG_HOLD) {
    if (sigprocmask(SIG_BLOCK, &set, &old_mask) < 0) return SIG_ERR;
    if (sigismember(&old_mask, sig)) return SIG_HOLD;
    if (on_sigaction(sig, nullptr, &old) < 0) return SIG_ERR;
    return old.sa_handler;
  }
  struct sigaction act = {};
  act.sa_handler = disp;
  sigemptyset(&act.sa_mask);
  if (on_sigaction(sig, &act, &old) < 0) return SIG_ERR;
  if (sigprocmask(SIG_UNBLOCK, &set, &old_mask) < 0) return SIG_ERR;
  return sigismember(&old_mask, sig) ? SIG_HOLD : old.sa_handler;
}

int on_siginterrupt(int sig, int interrupt) {
  struct sigaction act;
  if (on_sigaction(sig, nullptr, &act) < 0) return -1;
  if (interrupt) {
    __atomic_fetch_or(&g_interrupting, bit(sig), __ATOMIC_RELAXED);
    act.sa_flags &= ~SA_RESTART;
  } else {
    __atomic_fetch_and(&g_interrupting, ~bit(sig), __ATOMIC_RELAXED);
    act.sa_flags |= SA_RESTART;
  }
  return on_sigaction(sig, &act, nullptr) < 0 ? -1 : 0;
}

void init() {
  for (int sig = 1; sig < NSIG; sig++) {
    struct sigaction cur;
    if (g_real.sigaction(sig, nullptr, &cur) == 0 && wants_adoption(&cur)) on_sigaction(sig, &cur, nullptr);
  }
}

}  // namespace ringpool::shim::signals
