/* Non-blocking sockets and MSG_DONTWAIT are never routed (io_uring would
 * wait where the plain call returns EAGAIN), and the descriptor table stays
 * true through socket(SOCK_NONBLOCK), fcntl(F_SETFL), ioctl(FIONBIO), dup,
 * dup2, dup3, F_DUPFD, close and number reuse. Each EAGAIN below would be a
 * hang (caught by the watchdog) if the shim routed the call. Descriptor
 * numbers are printed: the shim must not take any the program can see. */
#include "shim_test.h"

#include <sys/ioctl.h>

static void expect_eagain(const char* what, int fd) {
  char buf[8];
  errno = 0;
  ssize_t r = recv(fd, buf, sizeof buf, 0);
  report(what, r, errno);
}

int main(void) {
  require_uring();
  watchdog(60);
  int a, b;
  char buf[16];
  tcp_pair(&a, &b);
  printf("pair fds %d %d\n", a, b);

  /* A routed call first, so the thread's ring exists from here on. */
  send(a, "x", 1, 0);
  REPORT("blocking recv", recv(b, buf, sizeof buf, 0));

  REPORT("recv MSG_DONTWAIT", recv(b, buf, sizeof buf, MSG_DONTWAIT));
  REPORT("recvfrom MSG_DONTWAIT", recvfrom(b, buf, sizeof buf, MSG_DONTWAIT, NULL, NULL));

  fcntl(b, F_SETFL, fcntl(b, F_GETFL) | O_NONBLOCK);
  expect_eagain("recv after F_SETFL O_NONBLOCK", b);
  REPORT("read after F_SETFL O_NONBLOCK", read(b, buf, sizeof buf));
  fcntl(b, F_SETFL, fcntl(b, F_GETFL) & ~O_NONBLOCK);
  send(a, "y", 1, 0);
  REPORT("recv blocking again", recv(b, buf, sizeof buf, 0));

  int on = 1;
  ioctl(b, FIONBIO, &on);
  expect_eagain("recv after FIONBIO 1", b);
  on = 0;
  ioctl(b, FIONBIO, &on);
  send(a, "z", 1, 0);
  REPORT("recv after FIONBIO 0", recv(b, buf, sizeof buf, 0));

  /* O_NONBLOCK belongs to the open file description: set through a dup,
   * it holds for the original too. */
  int d = dup(b);
  printf("dup fd %d\n", d);
  fcntl(d, F_SETFL, fcntl(d, F_GETFL) | O_NONBLOCK);
  expect_eagain("original after O_NONBLOCK on dup", b);
  fcntl(d, F_SETFL, fcntl(d, F_GETFL) & ~O_NONBLOCK);
  send(a, "w", 1, 0);
  REPORT("dup blocking again", recv(d, buf, sizeof buf, 0));
  close(d);

  int d2 = fcntl(b, F_DUPFD_CLOEXEC, 20);
  printf("F_DUPFD_CLOEXEC fd %d\n", d2);
  on = 1;
  ioctl(d2, FIONBIO, &on);
  expect_eagain("original after FIONBIO on F_DUPFD", b);
  on = 0;
  ioctl(d2, FIONBIO, &on);
  close(d2);

  int d3 = dup3(b, 30, O_CLOEXEC);
  printf("dup3 fd %d\n", d3);
  fcntl(b, F_SETFL, fcntl(b, F_GETFL) | O_NONBLOCK);
  expect_eagain("dup3 copy after O_NONBLOCK on original", d3);
  fcntl(b, F_SETFL, fcntl(b, F_GETFL) & ~O_NONBLOCK);
  close(d3);

  /* socket(SOCK_NONBLOCK) and accept4(SOCK_NONBLOCK). */
  uint16_t port;
  int l = tcp_listener(4, &port);
  int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in to = loopback(port);
  errno = 0;
  int rc = connect(nb, (struct sockaddr*)&to, sizeof to);
  printf("nonblocking connect: %s\n", rc == 0 ? "OK" : errname(errno));
  int acc = accept4(l, NULL, NULL, SOCK_NONBLOCK);
  CHECK(acc >= 0);
  expect_eagain("accept4 SOCK_NONBLOCK socket", acc);
  int nl = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in any = loopback(0);
  bind(nl, (struct sockaddr*)&any, sizeof any);
  listen(nl, 1);
  REPORT("accept on non-blocking listener", accept(nl, NULL, NULL));
  close(nl);

  /* dup2 a pipe over a socket number, and a socket over a pipe's. */
  int p[2];
  CHECK(pipe(p) == 0);
  CHECK(dup2(p[0], nb) == nb);
  CHECK(write(p[1], "pipe", 4) == 4);
  REPORT("read pipe dup2'd over a socket", read(nb, buf, sizeof buf));
  REPORT("recv on that pipe", recv(nb, buf, sizeof buf, 0));
  close(nb);
  int blocking_copy = dup(acc);
  CHECK(dup2(a, p[0]) == p[0]); /* p[0] now names the blocking client socket */
  send(b, "sock", 4, 0);
  REPORT("recv socket dup2'd over a pipe", recv(p[0], buf, sizeof buf, 0));
  close(p[0]);
  close(p[1]);
  close(blocking_copy);

  /* Close a socket and get its number back as a pipe: not a socket now. */
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int num = s;
  close(s);
  CHECK(pipe(p) == 0);
  printf("reused number %d\n", p[0] == num);
  CHECK(write(p[1], "reuse", 5) == 5);
  REPORT("read reused number", read(p[0], buf, sizeof buf));
  close(p[0]);
  close(p[1]);

  /* Non-blocking UDP, and a negative SO_RCVTIMEO (zero timeout in the
   * kernel: non-blocking in effect). */
  int u = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in ua = loopback(0);
  bind(u, (struct sockaddr*)&ua, sizeof ua);
  expect_eagain("udp SOCK_NONBLOCK", u);
  close(u);
  u = socket(AF_INET, SOCK_DGRAM, 0);
  bind(u, (struct sockaddr*)&ua, sizeof ua);
  struct timeval neg = {-1, 0};
  setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &neg, sizeof neg);
  expect_eagain("udp negative SO_RCVTIMEO", u);
  close(u);

  /* What the program sees of its own descriptors. */
  int next = socket(AF_INET, SOCK_STREAM, 0);
  printf("next socket fd %d\n", next);
  close(next);
  close(acc);
  close(l);
  close(a);
  close(b);
  printf("done\n");
  return 0;
}
