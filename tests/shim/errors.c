/* Errors as the plain calls report them: ECONNREFUSED, ECONNRESET, EPIPE
 * with SIGPIPE (handled, ignored, or suppressed by MSG_NOSIGNAL; raised by
 * write() too), ENOTCONN, EBADF, ENOTSOCK, EINVAL, MSG_OOB. And errno is
 * left alone by calls that succeed. */
#include "shim_test.h"

static volatile sig_atomic_t g_sigpipe;
static void on_sigpipe(int sig) {
  (void)sig;
  g_sigpipe++;
}

/* A connection whose peer closed with a reset. */
static void reset_pair(int* a, int* b) {
  tcp_pair(a, b);
  struct linger lg = {1, 0};
  setsockopt(*b, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(*b);
  sleep_ms(50);
}

static void sigpipe_case(const char* label, int mode) {
  int a, b;
  tcp_pair(&a, &b);
  close(b); /* a FIN, and an RST for the first send after it */
  sleep_ms(50);
  g_sigpipe = 0;
  char buf[64] = {0};
  long r = 0;
  int e = 0;
  /* Send until the connection reports the failure. */
  for (int i = 0; i < 10; i++) {
    errno = 0;
    switch (mode) {
      case 0: r = send(a, buf, sizeof buf, 0); break;
      case 1: r = send(a, buf, sizeof buf, MSG_NOSIGNAL); break;
      case 2: r = write(a, buf, sizeof buf); break;
      case 3: {
        struct iovec v = {buf, sizeof buf};
        r = writev(a, &v, 1);
        break;
      }
      case 4: {
        struct iovec v = {buf, sizeof buf};
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = &v;
        m.msg_iovlen = 1;
        r = sendmsg(a, &m, 0);
        break;
      }
    }
    e = errno;
    if (r < 0) break;
    sleep_ms(20);
  }
  printf("%s: %ld %s, SIGPIPE %d\n", label, r, r < 0 ? errname(e) : "", (int)g_sigpipe);
  fflush(stdout);
  close(a);
}

int main(void) {
  require_uring();
  watchdog(60);
  char buf[64];

  /* A routed call first: the ring exists. */
  int a, b;
  tcp_pair(&a, &b);
  send(a, "x", 1, 0);
  recv(b, buf, 1, 0);
  close(a);
  close(b);

  /* ECONNREFUSED: nothing listens on the port. */
  uint16_t port;
  int l = tcp_listener(1, &port);
  close(l);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in to = loopback(port);
  REPORT("connect to a closed port", connect(c, (struct sockaddr*)&to, sizeof to));
  REPORT("connect again", connect(c, (struct sockaddr*)&to, sizeof to));
  close(c);

  /* ECONNRESET. */
  reset_pair(&a, &b);
  REPORT("recv after reset", recv(a, buf, sizeof buf, 0));
  REPORT("recv after that", recv(a, buf, sizeof buf, 0));
  close(a);
  reset_pair(&a, &b);
  REPORT("read after reset", read(a, buf, sizeof buf));
  close(a);
  reset_pair(&a, &b);
  REPORT("send after reset", send(a, buf, sizeof buf, MSG_NOSIGNAL));
  close(a);

  /* EPIPE and SIGPIPE. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigpipe;
  sigaction(SIGPIPE, &sa, NULL);
  sigpipe_case("send to a closed peer", 0);
  sigpipe_case("send MSG_NOSIGNAL", 1);
  sigpipe_case("write to a closed peer", 2);
  sigpipe_case("writev to a closed peer", 3);
  sigpipe_case("sendmsg to a closed peer", 4);
  signal(SIGPIPE, SIG_IGN);
  sigpipe_case("send, SIGPIPE ignored", 0);
  signal(SIGPIPE, SIG_DFL);
  /* Unix stream: EPIPE at once. */
  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  close(sv[1]);
  sigaction(SIGPIPE, &sa, NULL);
  g_sigpipe = 0;
  errno = 0;
  long r = send(sv[0], "x", 1, 0);
  printf("unix send to closed peer: %ld %s, SIGPIPE %d\n", r, errname(errno), (int)g_sigpipe);
  close(sv[0]);

  /* ENOTCONN, EBADF, ENOTSOCK, EINVAL, EOPNOTSUPP. */
  c = socket(AF_INET, SOCK_STREAM, 0);
  REPORT("recv on an unconnected socket", recv(c, buf, sizeof buf, 0));
  REPORT("send on an unconnected socket", send(c, "x", 1, MSG_NOSIGNAL));
  REPORT("accept on a socket not listening", accept(c, NULL, NULL));
  close(c);
  REPORT("read on a closed descriptor", read(c, buf, sizeof buf));
  REPORT("recv on a closed descriptor", recv(c, buf, sizeof buf, 0));
  int p[2];
  pipe(p);
  REPORT("recv on a pipe", recv(p[0], buf, sizeof buf, MSG_DONTWAIT));
  REPORT("send on a pipe", send(p[1], "x", 1, 0));
  close(p[0]);
  close(p[1]);
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  REPORT("accept on a datagram socket", accept(u, NULL, NULL));
  struct sockaddr_in nowhere = loopback(9);
  connect(u, (struct sockaddr*)&nowhere, sizeof nowhere);
  send(u, "x", 1, 0); /* the ICMP port unreachable comes back as an error */
  sleep_ms(50);
  REPORT("udp recv after port unreachable", recv(u, buf, sizeof buf, 0));
  close(u);

  /* MSG_OOB never waits: EINVAL without urgent data, and urgent data read. */
  tcp_pair(&a, &b);
  REPORT("recv MSG_OOB, none", recv(b, buf, sizeof buf, MSG_OOB));
  REPORT("send MSG_OOB", send(a, "u", 1, MSG_OOB));
  sleep_ms(50);
  REPORT("recv MSG_OOB", recv(b, buf, 1, MSG_OOB));

  /* errno is untouched by calls that succeed. */
  send(a, "ok", 2, 0);
  errno = 12345;
  long n = recv(b, buf, sizeof buf, 0);
  printf("errno after a successful recv: %s (%ld)\n", errno == 12345 ? "unchanged" : "CHANGED", n);
  errno = 12345;
  n = send(a, "ok", 2, 0);
  printf("errno after a successful send: %s (%ld)\n", errno == 12345 ? "unchanged" : "CHANGED", n);
  errno = 12345;
  n = read(p[0] = open("/dev/null", O_RDONLY), buf, 1);
  printf("errno after reading a file: %s (%ld)\n", errno == 12345 ? "unchanged" : "CHANGED", n);
  close(p[0]);
  close(a);
  close(b);
  printf("done\n");
  return 0;
}
