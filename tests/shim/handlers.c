/* Every way a program installs a signal handler, compared plain vs routed:
 * a recv that a signal interrupts is restarted or fails with EINTR exactly
 * as the handler's flags say, whichever libc function installed it:
 *   signal() (BSD: restarts), siginterrupt() both ways, sysv_signal() (one
 *   shot, interrupts), sigset() (interrupts), sigaction() with SA_SIGINFO
 *   (the handler gets the signal's own siginfo), SA_RESETHAND;
 * and the program reads back its own handler, flags and mask, never the
 * shim's; a vfork child that changes its own handlers leaves its parent's
 * alone. */
#include "shim_test.h"

#include <sys/wait.h>

static volatile sig_atomic_t g_plain_runs;
static volatile sig_atomic_t g_info_signo, g_info_code, g_info_value;

static void plain_handler(int sig) {
  (void)sig;
  g_plain_runs++;
}

static void info_handler(int sig, siginfo_t* info, void* context) {
  (void)sig;
  (void)context;
  g_info_signo = info->si_signo;
  g_info_code = info->si_code;
  g_info_value = info->si_value.sival_int;
}

static void info_handler_plain(int sig) { (void)sig; }

struct blocked {
  int fd;
  long result;
  int err;
};

static void* recv_main(void* arg) {
  struct blocked* b = (struct blocked*)arg;
  char buf[64];
  errno = 0;
  b->result = recv(b->fd, buf, sizeof buf, 0);
  b->err = errno;
  return NULL;
}

/* A thread blocks in recv; after 150 ms it gets SIGUSR1 (with a value when
 * `queued`), after another 150 ms data arrives. */
static void recv_case(const char* name, int queued) {
  int a, b;
  tcp_pair(&a, &b);
  struct blocked blk = {b, 0, 0};
  pthread_t t;
  pthread_create(&t, NULL, recv_main, &blk);
  sleep_ms(150);
  if (queued) {
    union sigval v = {.sival_int = 4242};
    pthread_sigqueue(t, SIGUSR1, v);
  } else {
    pthread_kill(t, SIGUSR1);
  }
  sleep_ms(150);
  send(a, "late", 4, 0);
  pthread_join(t, NULL);
  report(name, blk.result, blk.err);
  close(a);
  close(b);
}

/* What sigaction() reports for SIGUSR1. */
static void show(const char* when) {
  struct sigaction cur;
  sigaction(SIGUSR1, NULL, &cur);
  const char* who = cur.sa_handler == SIG_DFL ? "SIG_DFL"
                    : cur.sa_handler == SIG_IGN ? "SIG_IGN"
                    : cur.sa_handler == plain_handler ? "plain_handler"
                    : cur.sa_sigaction == info_handler ? "info_handler"
                                                       : "something else";
  int flags = cur.sa_flags & (SA_SIGINFO | SA_RESTART | SA_RESETHAND | SA_NODEFER | SA_ONSTACK);
  printf("  %s: %s flags=%#x usr2-masked=%d\n", when, who, flags, sigismember(&cur.sa_mask, SIGUSR2));
}

int main(void) {
  require_uring();
  watchdog(60);

  printf("signal() returned the old handler: %d\n", signal(SIGUSR1, plain_handler) == SIG_DFL);
  recv_case("signal()", 0);
  show("after signal()");

  siginterrupt(SIGUSR1, 1);
  show("after siginterrupt(1)");
  recv_case("siginterrupt(1)", 0);
  printf("signal() returned the old handler: %d\n", signal(SIGUSR1, plain_handler) == plain_handler);
  recv_case("signal() after siginterrupt(1)", 0);
  siginterrupt(SIGUSR1, 0);
  show("after siginterrupt(0)");
  recv_case("siginterrupt(0)", 0);

  sigset(SIGUSR1, plain_handler);
  show("after sigset()");
  recv_case("sigset()", 0);
  printf("sigset(SIG_HOLD) returned the handler: %d\n", sigset(SIGUSR1, SIG_HOLD) == plain_handler);
  sigset(SIGUSR1, plain_handler);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = info_handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR2);
  struct sigaction old;
  sigaction(SIGUSR1, &sa, &old);
  printf("sigaction() returned the old handler: %d\n", old.sa_handler == plain_handler);
  show("after sigaction(SA_SIGINFO)");
  recv_case("sigaction(SA_SIGINFO)", 1);
  printf("  siginfo: signo=%d code=%s value=%d\n", (int)g_info_signo,
         g_info_code == SI_QUEUE ? "SI_QUEUE" : "other", (int)g_info_value);

  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  show("after sigaction(SA_SIGINFO|SA_RESTART)");
  recv_case("sigaction(SA_SIGINFO|SA_RESTART)", 1);

  sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
  sigaction(SIGUSR1, &sa, NULL);
  recv_case("sigaction(SA_RESETHAND)", 1);
  show("after an SA_RESETHAND delivery");

  printf("sysv_signal() returned the old handler: %d\n", sysv_signal(SIGUSR1, plain_handler) == SIG_DFL);
  show("after sysv_signal()");
  recv_case("sysv_signal()", 0);
  show("after a sysv_signal() delivery");

  /* The vfork child shares our memory but has its own handlers. */
  sigset(SIGUSR1, plain_handler);
  pid_t child = vfork();
  if (child == 0) {
    signal(SIGUSR1, SIG_IGN);
    sigset(SIGUSR1, info_handler_plain);
    _exit(0);
  }
  waitpid(child, NULL, 0);
  show("after a vfork child changed its own");
  recv_case("sigset() after a vfork child", 0);

  printf("plain handler runs: %d\n", (int)g_plain_runs);
  printf("done\n");
  return 0;
}
