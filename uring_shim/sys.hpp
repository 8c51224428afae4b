// Raw system calls for the shim. Each returns the kernel's answer, >= 0 or
// -errno, and never touches errno: a routed or passed-through call must
// leave errno exactly as the plain call would, and the shim makes system
// calls of its own (classification, io_uring) on the way.
//
// Nothing here is interposed, takes a lock or allocates, so these are safe
// in a fork child, in a signal handler and in a thread being cancelled.
// (Memory comes from ringpool::platform, the one place that maps memory.)
#pragma once
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace ringpool::shim::sys {

inline long call(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
#if defined(__x86_64__)
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
#else
  int saved = errno;
  long r = syscall(n, a, b, c, d, e, f);
  if (r == -1) r = -errno;
  errno = saved;
  return r;
#endif
}

inline long close(int fd) { return call(SYS_close, fd); }
inline long getpid() { return call(SYS_getpid); }
inline long gettid() { return call(SYS_gettid); }
inline long tgkill(long pid, long tid, int sig) { return call(SYS_tgkill, pid, tid, sig); }
inline long fcntl(int fd, int cmd, long arg = 0) { return call(SYS_fcntl, fd, cmd, arg); }
inline long getsockopt(int fd, int level, int name, void* val, socklen_t* len) {
  return call(SYS_getsockopt, fd, level, name, (long)val, (long)len);
}
inline long sigaltstack(const stack_t* ss, stack_t* old) { return call(SYS_sigaltstack, (long)ss, (long)old); }
inline long prctl(int option, long a = 0) { return call(SYS_prctl, option, a, 0, 0, 0); }
inline long openat(int dirfd, const char* path, int flags) { return call(SYS_openat, dirfd, (long)path, flags, 0); }
inline long read(int fd, void* buf, size_t n) { return call(SYS_read, fd, (long)buf, (long)n); }
inline long wait4(long pid, int* status, int options) { return call(SYS_wait4, pid, (long)status, options, 0); }
[[noreturn]] inline void exit_group(int code) {
  for (;;) call(SYS_exit_group, code);
}

// The calling thread's signal mask, as the kernel sees it (no libc filter).
inline long sigprocmask(int how, const sigset_t* set, sigset_t* old) {
  return call(SYS_rt_sigprocmask, how, (long)set, (long)old, 8);
}
// Blocks every signal; the mask before goes to *saved.
inline void block_signals(sigset_t* saved) {
  sigset_t all;
  sigfillset(&all);
  sys::sigprocmask(SIG_SETMASK, &all, saved);
}

// fork() without atfork handlers and without SIGCHLD to the parent (exit
// signal 0: the program's SIGCHLD handler and wait() never see the child;
// wait for it with __WCLONE). Returns 0 in the child.
inline long fork_quiet() { return call(SYS_clone, 0, 0, 0, 0, 0); }

}  // namespace ringpool::shim::sys
