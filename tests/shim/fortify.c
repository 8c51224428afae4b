/* Built with _FORTIFY_SOURCE=2 (see uring_shim/shim.mk): read, recv and
 * recvfrom into buffers of known size compile to __read_chk, __recv_chk and
 * __recvfrom_chk, which the shim routes like the plain names. A read larger
 * than its buffer still aborts (__chk_fail), in a child. */
#include "shim_test.h"

#include <sys/wait.h>

#if !defined(_FORTIFY_SOURCE) || _FORTIFY_SOURCE < 1
#error "build with -D_FORTIFY_SOURCE=2"
#endif

int main(void) {
  require_uring();
  watchdog(30);
  int a, b;
  tcp_pair(&a, &b);
  char buf[16];
  /* A length the compiler cannot see makes it call the _chk variant. */
  volatile size_t len = sizeof buf;
  send(a, "read-chk", 8, 0);
  REPORT("__read_chk", read(b, buf, len));
  send(a, "recv-chk", 8, 0);
  REPORT("__recv_chk", recv(b, buf, len, 0));
  send(a, "recvfrom-chk", 12, 0);
  struct sockaddr_in from;
  socklen_t flen = sizeof from;
  REPORT("__recvfrom_chk", recvfrom(b, buf, len, 0, (struct sockaddr*)&from, &flen));

  /* Lying about the size: the check fires before any I/O. */
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    volatile size_t n = 64;
    ssize_t r = read(b, buf, n); /* n > sizeof buf */
    (void)r;
    _exit(0);
  }
  int st;
  waitpid(pid, &st, 0);
  printf("oversized read: %s\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT ? "aborted" : "NOT ABORTED");
  close(a);
  close(b);
  printf("done\n");
  return 0;
}
