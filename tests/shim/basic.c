/* Every routed call on every socket kind, compared plain vs routed:
 * read/write, readv/writev, recv/send (MSG_PEEK, MSG_WAITALL, MSG_TRUNC),
 * recvfrom/sendto with addresses, recvmsg/sendmsg (with SCM_RIGHTS),
 * accept/accept4, connect, partial reads, EOF, large transfers, and
 * unix stream, datagram and seqpacket pairs (write on seqpacket ends a
 * record). */
#include "shim_test.h"

#include <stddef.h>
#include <sys/uio.h>

static char big_out[1 << 20];
static char big_in[1 << 20];

struct sender {
  int fd;
  size_t len;
  ssize_t result;
};

static void* send_big(void* arg) {
  struct sender* s = (struct sender*)arg;
  /* One blocking send of 1 MiB: returns when everything is sent. */
  s->result = send(s->fd, big_out, s->len, 0);
  return NULL;
}

struct vsender_arg {
  int fd;
  struct iovec* v;
  int n;
  ssize_t result;
};

static void* writev_main(void* arg) {
  struct vsender_arg* s = (struct vsender_arg*)arg;
  s->result = writev(s->fd, s->v, s->n);
  return NULL;
}

static void tcp_cases(void) {
  int a, b;
  tcp_pair(&a, &b);
  char buf[256];

  REPORT("write", write(a, "hello", 5));
  memset(buf, 0, sizeof buf);
  REPORT("read", read(b, buf, sizeof buf));
  printf("read data: %s\n", buf);

  REPORT("send", send(a, "0123456789", 10, 0));
  REPORT("recv partial", recv(b, buf, 4, 0));
  REPORT("recv peek", recv(b, buf, 3, MSG_PEEK));
  printf("peek data: %.3s\n", buf);
  REPORT("recv rest", recv(b, buf, sizeof buf, 0));
  printf("rest data: %.6s\n", buf);

  REPORT("read zero", read(b, buf, 0));
  REPORT("write zero", write(a, buf, 0));

  struct iovec out[3] = {{"ab", 2}, {"cde", 3}, {"fghij", 5}};
  REPORT("writev", writev(a, out, 3));
  char x1[4], x2[6];
  struct iovec in[2] = {{x1, 4}, {x2, 6}};
  REPORT("readv", readv(b, in, 2));
  printf("readv data: %.4s|%.6s\n", x1, x2);

  /* MSG_WAITALL gathers two sends. */
  pthread_t t;
  REPORT("send first", send(a, "first", 5, 0));
  REPORT("send second", send(a, "second", 6, 0));
  REPORT("recv waitall", recv(b, buf, 11, MSG_WAITALL));
  printf("waitall data: %.11s\n", buf);

  /* sendmsg/recvmsg with an iovec each. */
  struct iovec mv[2] = {{"msg-", 4}, {"body", 4}};
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_iov = mv;
  m.msg_iovlen = 2;
  REPORT("sendmsg", sendmsg(a, &m, 0));
  char r1[8];
  struct iovec rv = {r1, sizeof r1};
  struct msghdr rm;
  memset(&rm, 0, sizeof rm);
  rm.msg_iov = &rv;
  rm.msg_iovlen = 1;
  REPORT("recvmsg", recvmsg(b, &rm, 0));
  printf("recvmsg data: %.8s flags %d\n", r1, rm.msg_flags);

  /* recvfrom on a connected TCP socket: no address, addrlen set to 0. */
  struct sockaddr_storage from;
  socklen_t flen = sizeof from;
  send(a, "xyz", 3, 0);
  REPORT("recvfrom tcp", recvfrom(b, buf, sizeof buf, 0, (struct sockaddr*)&from, &flen));
  printf("recvfrom tcp addrlen: %u\n", (unsigned)flen);

  /* 1 MiB each way through blocking calls, checksummed. */
  fill_pattern(big_out, sizeof big_out, 7);
  struct sender s = {a, sizeof big_out, 0};
  pthread_create(&t, NULL, send_big, &s);
  size_t got = 0;
  while (got < sizeof big_in) {
    ssize_t n = recv(b, big_in + got, sizeof big_in - got, 0);
    if (n <= 0) break;
    got += (size_t)n;
  }
  pthread_join(t, NULL);
  printf("big send: %zd\n", s.result);
  printf("big recv: %zu match %d\n", got, memcmp(big_in, big_out, sizeof big_in) == 0);

  /* 1 MiB with one MSG_WAITALL recv. */
  pthread_create(&t, NULL, send_big, &s);
  memset(big_in, 0, sizeof big_in);
  REPORT("big recv waitall", recv(b, big_in, sizeof big_in, MSG_WAITALL));
  pthread_join(t, NULL);
  printf("big send: %zd\n", s.result);
  printf("big waitall match %d\n", memcmp(big_in, big_out, sizeof big_in) == 0);

  /* Big vectors, partly sent at a time: 3 pieces, and 100 (more than the
   * shim copies when it continues a partial send). */
  for (int pieces = 3; pieces <= 100; pieces += 97) {
    struct iovec v[100];
    size_t each = sizeof big_out / (size_t)pieces;
    for (int i = 0; i < pieces; i++) {
      v[i].iov_base = big_out + (size_t)i * each;
      v[i].iov_len = each;
    }
    size_t want = each * (size_t)pieces;
    struct vsender_arg vs = {a, v, pieces, 0};
    pthread_t vt;
    memset(big_in, 0, sizeof big_in);
    pthread_create(&vt, NULL, writev_main, &vs);
    size_t got2 = 0;
    while (got2 < want) {
      ssize_t n = recv(b, big_in + got2, want - got2, 0);
      if (n <= 0) break;
      got2 += (size_t)n;
    }
    pthread_join(vt, NULL);
    printf("writev %d pieces: %zd sent, %zu received, match %d\n", pieces, vs.result, got2,
           memcmp(big_in, big_out, want) == 0);
  }

  /* EOF after the peer shuts down its side, then after close. */
  shutdown(a, SHUT_WR);
  REPORT("recv after shutdown", recv(b, buf, sizeof buf, 0));
  REPORT("read after shutdown", read(b, buf, sizeof buf));
  close(a);
  close(b);
}

static void accept_connect_cases(void) {
  uint16_t port;
  int l = tcp_listener(8, &port);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in to = loopback(port);
  REPORT("connect", connect(c, (struct sockaddr*)&to, sizeof to));
  struct sockaddr_in from;
  socklen_t flen = sizeof from;
  int s = accept(l, (struct sockaddr*)&from, &flen);
  report("accept", s >= 0 ? 0 : -1, errno);
  printf("accept addrlen %u family %d loopback %d\n", (unsigned)flen, from.sin_family,
         from.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
  int c2 = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(connect(c2, (struct sockaddr*)&to, sizeof to) == 0);
  int s2 = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  report("accept4", s2 >= 0 ? 0 : -1, errno);
  printf("accept4 flags: nonblock %d cloexec %d\n", (fcntl(s2, F_GETFL) & O_NONBLOCK) != 0,
         (fcntl(s2, F_GETFD) & FD_CLOEXEC) != 0);
  char buf[8];
  /* The accepted non-blocking socket is not routed: EAGAIN at once. */
  REPORT("recv on accept4 nonblock", recv(s2, buf, sizeof buf, 0));
  REPORT("accept4 bad flags", accept4(l, NULL, NULL, 0x4000));
  close(c);
  close(c2);
  close(s);
  close(s2);
  close(l);
}

static void udp_cases(void) {
  int u1 = socket(AF_INET, SOCK_DGRAM, 0);
  int u2 = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a1 = loopback(0), a2 = loopback(0);
  CHECK(bind(u1, (struct sockaddr*)&a1, sizeof a1) == 0);
  CHECK(bind(u2, (struct sockaddr*)&a2, sizeof a2) == 0);
  socklen_t len = sizeof a1;
  getsockname(u1, (struct sockaddr*)&a1, &len);
  getsockname(u2, (struct sockaddr*)&a2, &len);
  REPORT("sendto", sendto(u1, "datagram-one", 12, 0, (struct sockaddr*)&a2, sizeof a2));
  char buf[64];
  struct sockaddr_in from;
  socklen_t flen = sizeof from;
  REPORT("recvfrom", recvfrom(u2, buf, sizeof buf, 0, (struct sockaddr*)&from, &flen));
  printf("recvfrom from port matches %d addrlen %u\n", from.sin_port == a1.sin_port, (unsigned)flen);
  /* Truncation: MSG_TRUNC returns the real length. */
  sendto(u1, "datagram-two", 12, 0, (struct sockaddr*)&a2, sizeof a2);
  REPORT("recv trunc", recv(u2, buf, 4, MSG_TRUNC));
  sendto(u1, "datagram-three", 14, 0, (struct sockaddr*)&a2, sizeof a2);
  REPORT("recv short", recv(u2, buf, 5, 0));
  /* Connected UDP with read/write. */
  CHECK(connect(u1, (struct sockaddr*)&a2, sizeof a2) == 0);
  REPORT("udp write", write(u1, "w", 1));
  REPORT("udp read", read(u2, buf, sizeof buf));
  /* A zero-length datagram: recv returns 0 for it. */
  REPORT("udp send empty", send(u1, "", 0, 0));
  REPORT("udp recv empty", recv(u2, buf, sizeof buf, 0));
  /* recvmsg with a small address buffer: the full length comes back. */
  sendto(u1, "q", 1, 0, (struct sockaddr*)&a2, sizeof a2);
  char tiny[4];
  struct iovec v = {buf, sizeof buf};
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_name = tiny;
  m.msg_namelen = sizeof tiny;
  m.msg_iov = &v;
  m.msg_iovlen = 1;
  REPORT("recvmsg small name", recvmsg(u2, &m, 0));
  printf("recvmsg namelen %u\n", (unsigned)m.msg_namelen);
  close(u1);
  close(u2);
}

static void unix_cases(void) {
  int sv[2];
  char buf[64];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  REPORT("unix stream write", write(sv[0], "abc", 3));
  REPORT("unix stream read", read(sv[1], buf, sizeof buf));
  close(sv[0]);
  REPORT("unix stream eof", read(sv[1], buf, sizeof buf));
  close(sv[1]);

  CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
  REPORT("unix dgram send", send(sv[0], "12345678", 8, 0));
  REPORT("unix dgram recv short", recv(sv[1], buf, 3, 0));
  REPORT("unix dgram send2", send(sv[0], "zz", 2, 0));
  REPORT("unix dgram recv", recv(sv[1], buf, sizeof buf, 0));
  close(sv[0]);
  close(sv[1]);

  CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
  REPORT("seqpacket write", write(sv[0], "record-1", 8));
  struct iovec w[2] = {{"rec", 3}, {"ord-2", 5}};
  REPORT("seqpacket writev", writev(sv[0], w, 2));
  struct iovec v = {buf, 4};
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_iov = &v;
  m.msg_iovlen = 1;
  REPORT("seqpacket recvmsg short", recvmsg(sv[1], &m, 0));
  printf("seqpacket truncated %d eor %d\n", (m.msg_flags & MSG_TRUNC) != 0, (m.msg_flags & MSG_EOR) != 0);
  REPORT("seqpacket read", read(sv[1], buf, sizeof buf));
  close(sv[0]);
  close(sv[1]);

  /* SCM_RIGHTS: pass a pipe's read end; the received descriptor works. */
  int p[2];
  CHECK(pipe(p) == 0);
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  union {
    char c[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct iovec one = {"F", 1};
  memset(&m, 0, sizeof m);
  m.msg_iov = &one;
  m.msg_iovlen = 1;
  m.msg_control = ctl.c;
  m.msg_controllen = sizeof ctl.c;
  struct cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &p[0], sizeof(int));
  REPORT("sendmsg rights", sendmsg(sv[0], &m, 0));
  char got;
  struct iovec gv = {&got, 1};
  memset(&ctl, 0, sizeof ctl);
  memset(&m, 0, sizeof m);
  m.msg_iov = &gv;
  m.msg_iovlen = 1;
  m.msg_control = ctl.c;
  m.msg_controllen = sizeof ctl.c;
  REPORT("recvmsg rights", recvmsg(sv[1], &m, MSG_CMSG_CLOEXEC));
  int passed = -1;
  c = CMSG_FIRSTHDR(&m);
  if (c && c->cmsg_type == SCM_RIGHTS) memcpy(&passed, CMSG_DATA(c), sizeof(int));
  CHECK(write(p[1], "via-pipe", 8) == 8);
  REPORT("read passed fd", read(passed, buf, sizeof buf));
  printf("passed fd cloexec %d\n", (fcntl(passed, F_GETFD) & FD_CLOEXEC) != 0);
  close(passed);
  close(p[0]);
  close(p[1]);
  close(sv[0]);
  close(sv[1]);
}

static void unix_listener_case(void) {
  int l = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "ringpool-shim-%d", (int)getpid()); /* abstract */
  socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a.sun_path + 1));
  CHECK(bind(l, (struct sockaddr*)&a, len) == 0);
  CHECK(listen(l, 4) == 0);
  int c = socket(AF_UNIX, SOCK_STREAM, 0);
  REPORT("unix connect", connect(c, (struct sockaddr*)&a, len));
  int s = accept(l, NULL, NULL);
  report("unix accept", s >= 0 ? 0 : -1, errno);
  REPORT("unix send", send(c, "over-unix", 9, 0));
  char buf[16];
  REPORT("unix recv", recv(s, buf, sizeof buf, 0));
  close(c);
  close(s);
  close(l);
}

static void ipv6_case(void) {
  int l = socket(AF_INET6, SOCK_STREAM, 0);
  if (l < 0) return;
  struct sockaddr_in6 a;
  memset(&a, 0, sizeof a);
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  if (bind(l, (struct sockaddr*)&a, sizeof a) != 0) {
    printf("ipv6: no ::1\n");
    close(l);
    return;
  }
  listen(l, 2);
  socklen_t len = sizeof a;
  getsockname(l, (struct sockaddr*)&a, &len);
  int c = socket(AF_INET6, SOCK_STREAM, 0);
  REPORT("ipv6 connect", connect(c, (struct sockaddr*)&a, sizeof a));
  int s = accept(l, NULL, NULL);
  REPORT("ipv6 send", send(c, "six", 3, 0));
  char buf[8];
  REPORT("ipv6 recv", recv(s, buf, sizeof buf, 0));
  close(c);
  close(s);
  close(l);
}

int main(void) {
  require_uring();
  watchdog(60);
  tcp_cases();
  accept_connect_cases();
  udp_cases();
  unix_cases();
  unix_listener_case();
  ipv6_case();
  printf("done\n");
  return 0;
}
