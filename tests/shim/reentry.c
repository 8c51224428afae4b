/* Handlers that leave or re-enter the shim, compared plain vs routed:
 *   a handler that siglongjmps out of a blocking recv (the request the
 *     shim had in flight must be settled: the data sent afterwards is read
 *     by the next recv on that socket, and other sockets work);
 *   a SIGCHLD handler that re-installs itself with signal() while the
 *     program forks child after child (the handler runs while fork holds
 *     the shim's locks: it must not wait for them). */
#include "shim_test.h"

#include <setjmp.h>
#include <sys/wait.h>

static sigjmp_buf g_jump;

static void on_alarm(int sig) {
  (void)sig;
  siglongjmp(g_jump, 1);
}

static void jump_case(void) {
  int a, b, c, d;
  tcp_pair(&a, &b);
  tcp_pair(&c, &d);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  char buf[64];
  if (sigsetjmp(g_jump, 1) == 0) {
    struct itimerval it = {{0, 0}, {0, 200000}};
    setitimer(ITIMER_REAL, &it, NULL);
    REPORT("recv the handler jumps out of", recv(b, buf, sizeof buf, 0));
  } else {
    printf("jumped out of recv\n");
  }
  signal(SIGALRM, SIG_DFL);
  send(a, "first", 5, 0);
  send(c, "second", 6, 0);
  ssize_t n = recv(d, buf, sizeof buf, 0);
  printf("other socket: %zd %.*s\n", n, (int)(n > 0 ? n : 0), buf);
  struct timeval tv = {2, 0};
  setsockopt(b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  n = recv(b, buf, sizeof buf, 0);
  printf("same socket: %zd %.*s\n", n, (int)(n > 0 ? n : 0), buf);
  close(a);
  close(b);
  close(c);
  close(d);
}

static volatile sig_atomic_t g_children;

static void on_child(int sig) {
  signal(SIGCHLD, on_child); /* the classic re-arming handler */
  (void)sig;
  g_children++;
}

static void fork_case(void) {
  /* A bigger process forks slower: more signals land inside a fork. */
  size_t size = 64u << 20;
  char* big = malloc(size);
  for (size_t i = 0; i < size; i += 4096) big[i] = 1;
  signal(SIGCHLD, on_child);
  int forks = 300, failed = 0;
  for (int i = 0; i < forks; i++) {
    pid_t p = fork();
    if (p == 0) _exit(0);
    if (p < 0) failed++;
  }
  while (wait(NULL) > 0 || errno == EINTR) {
  }
  signal(SIGCHLD, SIG_DFL);
  free(big);
  printf("forked %d children with a re-arming SIGCHLD handler, %d failed, handler ran: %s\n", forks, failed,
         g_children > 0 ? "yes" : "no");
}

int main(void) {
  require_uring();
  watchdog(60);
  jump_case();
  fork_case();
  printf("done\n");
  return 0;
}
