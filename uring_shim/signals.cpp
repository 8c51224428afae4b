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
// context; the fields are written under g_lock with signals blocked.
struct Adopted {
  Handler fn;
  int flags;     // the program's sa_flags
  bool current;  // the kernel's action is this adoption (or, after an
                 // SA_RESETHAND delivery, SIG_DFL with its flags)
};
RINGPOOL_LARGE_BSS Adopted g_adopted[NSIG];

// The kernel calls this for every adopted signal. Whatever the program's
// handler expects, it gets (sig, info, context), as the kernel passes them
// to any handler on the architectures Linux has.
void trampoline(int sig, siginfo_t* info, void* context) {
  __atomic_store_n(&t_interrupts, t_interrupts + 1, __ATOMIC_RELAXED);
  if (Handler fn = __atomic_load_n(&g_adopted[sig].fn, __ATOMIC_ACQUIRE)) fn(sig, info, context);
}

bool valid(int sig) { return sig >= 1 && sig < NSIG; }

bool wants_adoption(const struct sigaction* act) {
  return act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN && !(act->sa_flags & SA_RESTART);
}

// The program's view of an action the kernel reported, `a` being the table
// entry of when it was set: its own handler, and its flags without the
// SA_SIGINFO we added (which the kernel keeps after SA_RESETHAND).
void translate(struct sigaction* act, const Adopted& a) {
  if (!a.current) return;
  bool ours = act->sa_sigaction == trampoline;
  if (ours) act->sa_sigaction = a.fn;
  bool reset = act->sa_handler == SIG_DFL && (act->sa_flags & SA_RESETHAND);
  if ((ours || reset) && !(a.flags & SA_SIGINFO)) act->sa_flags &= ~SA_SIGINFO;
}

sighandler_t translate(sighandler_t h, const Adopted& a) {
  struct sigaction act = {};  // its handler union converts for us
  act.sa_handler = h;
  if (a.current && act.sa_sigaction == trampoline) act.sa_sigaction = a.fn;
  return act.sa_handler;
}

// Table and kernel change together: no other thread's sigaction between,
// and no handler of this thread (which may call sigaction) either.
class Critical {
 public:
  Critical() {
    sys::block_signals(&saved_);
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

// sigaction() under Critical: adopts act if it lacks SA_RESTART.
int install_locked(int sig, const struct sigaction* act, struct sigaction* old) {
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
    if (old != nullptr) translate(old, prev);
  }
  errno = saved_errno;
  return r;
}

// After one of glibc's own installers (they go through its internal
// sigaction, which nobody can interpose): the kernel may now hold a handler
// without SA_RESTART that the trampoline must front, or the trampoline with
// SA_RESTART (siginterrupt(sig, 0)) that must step aside. Set it right.
void resync(int sig) {
  if (!valid(sig) || !same_process()) return;
  int saved_errno = errno;
  Critical critical;
  struct sigaction cur;
  if (g_real.sigaction(sig, nullptr, &cur) == 0) {
    Adopted& a = g_adopted[sig];
    bool ours = a.current && cur.sa_sigaction == trampoline;
    if (ours && (cur.sa_flags & SA_RESTART)) {
      translate(&cur, a);
      install_locked(sig, &cur, nullptr);
    } else if (!ours && wants_adoption(&cur)) {
      install_locked(sig, &cur, nullptr);
    } else if (!ours) {
      a.current = false;
    }
  }
  errno = saved_errno;
}

// signal(), sysv_signal(), sigset(): glibc's own, then resync; the old
// handler they return is the program's.
template <typename Call>
sighandler_t through_libc(int sig, Call call) {
  Adopted before = valid(sig) ? g_adopted[sig] : Adopted();
  sighandler_t r = call();
  resync(sig);
  return translate(r, before);
}

}  // namespace

int on_sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  if (!valid(sig)) return g_real.sigaction(sig, act, old);  // EINVAL
  if (!same_process()) {
    // A vfork child has its own handlers but our memory: read the table,
    // never write it.
    Adopted a = g_adopted[sig];
    int r = g_real.sigaction(sig, act, old);
    if (r == 0 && old != nullptr) translate(old, a);
    return r;
  }
  Critical critical;
  return install_locked(sig, act, old);
}

sighandler_t on_signal(int sig, sighandler_t handler) {
  return through_libc(sig, [&] { return g_real.signal(sig, handler); });
}

sighandler_t on_sysv_signal(int sig, sighandler_t handler) {
  return through_libc(sig, [&] { return g_real.sysv_signal(sig, handler); });
}

sighandler_t on_sigset(int sig, sighandler_t disp) {
  return through_libc(sig, [&] { return g_real.sigset(sig, disp); });
}

// glibc's own, so that signal() sees the flag in glibc's _sigintr set.
int on_siginterrupt(int sig, int interrupt) {
  int r = g_real.siginterrupt(sig, interrupt);
  resync(sig);
  return r;
}

void init() {
  // One query per signal; the full resync (four system calls) only where
  // there is something to adopt.
  for (int sig = 1; sig < NSIG; sig++) {
    struct sigaction cur;
    if (g_real.sigaction(sig, nullptr, &cur) == 0 && wants_adoption(&cur)) resync(sig);
  }
}

}  // namespace ringpool::shim::signals
