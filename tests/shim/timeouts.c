/* SO_RCVTIMEO and SO_SNDTIMEO, which io_uring ignores: a routed call must
 * end as the plain one does. recv, read and accept fail with EAGAIN after
 * SO_RCVTIMEO; send on a full buffer with EAGAIN after SO_SNDTIMEO; connect
 * with EINPROGRESS; MSG_WAITALL returns the bytes it got. An accepted
 * socket inherits its listener's timeouts; a timeout set to zero again
 * means wait forever; a timeout on a dup applies to the original. Elapsed
 * times are printed in coarse buckets only. */
#include "shim_test.h"

static const char* bucket(double secs, double expect) {
  if (secs < expect * 0.7) return "early";
  if (secs > expect + 1.0) return "late";
  return "on time";
}

static void set_timeo(int fd, int opt, int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  CHECK(setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv) == 0);
}

#define TIMED(label, expect, call)                                                 \
  do {                                                                             \
    double t0_ = now_s();                                                          \
    errno = 0;                                                                     \
    long r_ = (long)(call);                                                        \
    int e_ = errno;                                                                \
    printf("%s: %ld %s, %s\n", label, r_, r_ < 0 ? errname(e_) : "", bucket(now_s() - t0_, expect)); \
    fflush(stdout);                                                                \
  } while (0)

static void* send_later(void* arg) {
  sleep_ms(300);
  send(*(int*)arg, "later", 5, 0);
  return NULL;
}

int main(void) {
  require_uring();
  watchdog(60);
  char buf[64];
  int a, b;
  tcp_pair(&a, &b);

  set_timeo(b, SO_RCVTIMEO, 200);
  TIMED("recv SO_RCVTIMEO 200ms", 0.2, recv(b, buf, sizeof buf, 0));
  TIMED("read SO_RCVTIMEO 200ms", 0.2, read(b, buf, sizeof buf));
  send(a, "abc", 3, 0);
  TIMED("recv MSG_WAITALL 10 with 3 there", 0.2, recv(b, buf, 10, MSG_WAITALL));
  TIMED("recvfrom SO_RCVTIMEO", 0.2, recvfrom(b, buf, sizeof buf, 0, NULL, NULL));

  /* Data before the timeout: returned, not EAGAIN. */
  set_timeo(b, SO_RCVTIMEO, 2000);
  pthread_t t;
  pthread_create(&t, NULL, send_later, &a);
  TIMED("recv with data at 300ms of 2s", 0.3, recv(b, buf, sizeof buf, 0));
  pthread_join(t, NULL);

  /* Back to no timeout: waits until data comes. */
  set_timeo(b, SO_RCVTIMEO, 0);
  pthread_create(&t, NULL, send_later, &a);
  TIMED("recv after SO_RCVTIMEO 0", 0.3, recv(b, buf, sizeof buf, 0));
  pthread_join(t, NULL);

  /* A timeout set through a dup holds for the original descriptor. */
  int d = dup(b);
  set_timeo(d, SO_RCVTIMEO, 200);
  TIMED("recv original after SO_RCVTIMEO on dup", 0.2, recv(b, buf, sizeof buf, 0));
  close(d);
  set_timeo(b, SO_RCVTIMEO, 0);

  /* SO_SNDTIMEO on a full send buffer. */
  set_timeo(a, SO_SNDTIMEO, 200);
  fill_send_buffer(a);
  TIMED("send SO_SNDTIMEO 200ms, full", 0.2, send(a, buf, 1, 0));
  TIMED("write SO_SNDTIMEO 200ms, full", 0.2, write(a, buf, 1));
  struct iovec v = {buf, 1};
  TIMED("writev SO_SNDTIMEO 200ms, full", 0.2, writev(a, &v, 1));
  close(a);
  close(b);

  /* A big send with a timeout: as much as fits, then the count. */
  tcp_pair(&a, &b);
  set_timeo(a, SO_SNDTIMEO, 300);
  static char big[8 << 20];
  errno = 0;
  double t0 = now_s();
  ssize_t n = send(a, big, sizeof big, 0);
  printf("send 8 MiB SO_SNDTIMEO 300ms: %s, %s\n", n > 0 && n < (ssize_t)sizeof big ? "partial count" : errname(errno),
         bucket(now_s() - t0, 0.3));
  close(a);
  close(b);

  /* accept with SO_RCVTIMEO, and inheritance by the accepted socket. */
  uint16_t port;
  int l = tcp_listener(4, &port);
  set_timeo(l, SO_RCVTIMEO, 200);
  TIMED("accept SO_RCVTIMEO 200ms", 0.2, accept(l, NULL, NULL));
  int c = tcp_connect(port);
  int s = accept(l, NULL, NULL);
  CHECK(s >= 0);
  TIMED("recv on accepted socket (inherited 200ms)", 0.2, recv(s, buf, sizeof buf, 0));
  close(s);
  close(c);
  close(l);

  /* connect with SO_SNDTIMEO to a full backlog: EINPROGRESS. */
  l = tcp_listener(0, &port);
  int first = tcp_connect(port);
  sleep_ms(50);
  c = socket(AF_INET, SOCK_STREAM, 0);
  set_timeo(c, SO_SNDTIMEO, 300);
  struct sockaddr_in to = loopback(port);
  TIMED("connect SO_SNDTIMEO 300ms, full backlog", 0.3, connect(c, (struct sockaddr*)&to, sizeof to));
  TIMED("connect again, still pending", 0.3, connect(c, (struct sockaddr*)&to, sizeof to));
  close(c);
  close(first);
  close(l);

  /* UDP recvfrom with a timeout. */
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in ua = loopback(0);
  bind(u, (struct sockaddr*)&ua, sizeof ua);
  set_timeo(u, SO_RCVTIMEO, 200);
  struct sockaddr_in from;
  socklen_t flen = sizeof from;
  TIMED("udp recvfrom SO_RCVTIMEO 200ms", 0.2, recvfrom(u, buf, sizeof buf, 0, (struct sockaddr*)&from, &flen));
  close(u);
  printf("done\n");
  return 0;
}
