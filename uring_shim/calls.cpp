// Route or pass, per call (see calls.hpp).
//
// What is routed: blocking sockets (fd_table says so) with flags whose
// meaning io_uring reproduces. Everything else goes to libc unchanged, which
// is always exact; so every rule below only ever narrows routing:
//   - zero-length read/write: read() returns 0 at once where recv() on a
//     datagram socket would wait.
//   - MSG_DONTWAIT, MSG_OOB (never waits in the kernel, would wait in
//     io_uring), MSG_ERRQUEUE, MSG_PEEK|MSG_WAITALL (io_uring's partial
//     retry would peek the same bytes twice), recvmsg with MSG_WAITALL
//     (io_uring does not retry with control data), unknown flags.
//   - readv on non-stream sockets (a zero-length vector returns at once in
//     the plain call), connect on anything but TCP over IPv4/IPv6.
// Semantics kept by hand:
//   - io_uring sends with MSG_NOSIGNAL always: EPIPE raises SIGPIPE here
//     unless the caller passed MSG_NOSIGNAL.
//   - a blocking stream send returns when all is sent: without a timeout
//     the shim loops over partial sends, one request each (a request that
//     re-arms its poll 128 times is handed to an io-wq worker thread);
//     with a timeout io_uring's own MSG_WAITALL retry does it.
//   - recv MSG_WAITALL on a stream socket: the same.
//   - write/writev on SOCK_SEQPACKET carry MSG_EOR, as sock_write_iter.
//   - connect on a socket already connecting: io_uring says EALREADY at
//     once, the plain call waits for the outcome: the plain call it is.
// Every routed call is bracketed (call_begin/call_end) so that the table
// notices a descriptor two calls wait on at once; its later calls then use
// pair mode (route.hpp).
#include "calls.hpp"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>

#include "counters.hpp"
#include "fd_table.hpp"
#include "real.hpp"
#include "route.hpp"
#include "thread_state.hpp"

namespace ringpool::shim {

namespace {

using route::k_pass;
using route::k_not_routed;
using route::Plan;

constexpr size_t k_max_rw = 0x7ffff000;  // MAX_RW_COUNT: the most one call moves
constexpr int k_iov_max = 1024;          // UIO_MAXIOV
constexpr int k_recv_flags = MSG_PEEK | MSG_WAITALL | MSG_TRUNC | MSG_CMSG_CLOEXEC;
constexpr int k_send_flags = MSG_NOSIGNAL | MSG_MORE | MSG_EOR | MSG_CONFIRM | MSG_DONTROUTE | MSG_WAITALL;

// errno as the plain call leaves it: set on failure only.
long finish(long r) {
  if (r < 0) {
    errno = (int)-r;
    return -1;
  }
  return r;
}

bool recv_flags_ok(int flags) {
  if (flags & ~k_recv_flags) return false;
  return (flags & (MSG_PEEK | MSG_WAITALL)) != (MSG_PEEK | MSG_WAITALL);
}

bool send_flags_ok(int flags) { return (flags & ~k_send_flags) == 0; }

// Several waiters may share datagram sockets, and descriptors seen
// contended; see route.hpp ("pair").
bool pair_mode(const SockInfo& s) { return s.type == SOCK_DGRAM || s.contended; }

// Every routed call, bracketed so that the table notices contention.
long run_call(const Plan& p) {
  fd_table::call_begin(p.rq.fd);
  long r = route::run(p);
  fd_table::call_end(p.rq.fd);
  return r;
}

void raise_sigpipe() { sys::tgkill(sys::getpid(), sys::gettid(), SIGPIPE); }

// A receive waits for POLLIN under SO_RCVTIMEO, a send for POLLOUT under
// SO_SNDTIMEO.
Plan plan_io(int fd, uint8_t op, const void* addr, size_t len, int flags, const SockInfo& s, bool send) {
  Plan p;
  p.rq = {op, fd, (uint64_t)(uintptr_t)addr, 0, (uint32_t)len, (uint32_t)flags, 0};
  p.timeout_us = send ? s.snd_timeout_us : s.rcv_timeout_us;
  p.pair = pair_mode(s);
  p.poll_mask = send ? POLLOUT : POLLIN;
  return p;
}
Plan plan_recv(int fd, uint8_t op, void* addr, size_t len, int flags, const SockInfo& s) {
  return plan_io(fd, op, addr, len, flags, s, false);
}
Plan plan_send(int fd, uint8_t op, const void* addr, size_t len, int flags, const SockInfo& s) {
  return plan_io(fd, op, addr, len, flags, s, true);
}

// recv into a single buffer. MSG_WAITALL on a stream socket without a
// timeout: one request per chunk (see the file comment).
long recv_routed(int fd, void* buf, size_t n, int flags, const SockInfo& s) {
  if (n > k_max_rw) n = k_max_rw;
  Plan p = plan_recv(fd, abi::k_op_recv, buf, n, flags, s);
  if (!(flags & MSG_WAITALL) || s.type != SOCK_STREAM || p.timeout_us) return run_call(p);
  p.rq.op_flags &= ~(uint32_t)MSG_WAITALL;
  size_t got = 0;
  for (;;) {
    p.rq.addr = (uint64_t)(uintptr_t)((char*)buf + got);
    p.rq.len = (uint32_t)(n - got);
    p.interruptible = got > 0;  // with bytes in hand any signal ends the call
    long r = run_call(p);
    if (r == k_not_routed || r == k_pass) {
      if (got == 0) return r;
      int saved = errno;  // the rest by the plain call; its failure is not ours to report
      ssize_t rest = g_real.recv(fd, (char*)buf + got, n - got, flags);
      errno = saved;
      return (long)got + (rest > 0 ? rest : 0);
    }
    if (r <= 0) return got ? (long)got : r;  // EOF, error, EINTR: bytes first, as tcp_recvmsg
    got += (size_t)r;
    if (got >= n) return (long)got;
  }
}

// send from a single buffer; dest only for sendto on datagram sockets.
long send_routed(int fd, const void* buf, size_t n, int flags, const SockInfo& s, const struct sockaddr* dest,
                 socklen_t dest_len) {
  if (n > k_max_rw) n = k_max_rw;
  Plan p = plan_send(fd, abi::k_op_send, buf, n, flags & ~MSG_WAITALL, s);
  p.rq.addr2 = (uint64_t)(uintptr_t)dest;
  p.rq.addr_len = (uint16_t)dest_len;
  if (s.type != SOCK_STREAM) return run_call(p);
  if (p.timeout_us) {
    p.rq.op_flags |= MSG_WAITALL;
    return run_call(p);
  }
  size_t sent = 0;
  for (;;) {
    p.rq.addr = (uint64_t)(uintptr_t)((const char*)buf + sent);
    p.rq.len = (uint32_t)(n - sent);
    p.interruptible = sent > 0;
    long r = run_call(p);
    if (r == k_not_routed || r == k_pass) {
      if (sent == 0) return r;
      int saved = errno;
      ssize_t rest = g_real.send(fd, (const char*)buf + sent, n - sent, flags | MSG_NOSIGNAL);
      errno = saved;
      return (long)sent + (rest > 0 ? rest : 0);
    }
    if (r <= 0) return sent ? (long)sent : r;
    sent += (size_t)r;
    if (sent >= n) return (long)sent;
  }
}

size_t iov_bytes(const struct iovec* iov, size_t cnt) {
  size_t total = 0;
  for (size_t i = 0; i < cnt; i++) total += iov[i].iov_len;
  return total;
}

// The vector of msg past its first `sent` bytes: element i, from byte skip.
void iov_seek(const struct msghdr* msg, size_t sent, size_t* i, size_t* skip) {
  *i = 0;
  *skip = sent;
  while (*i < msg->msg_iovlen && *skip >= msg->msg_iov[*i].iov_len) *skip -= msg->msg_iov[(*i)++].iov_len;
}

// What is left of msg after `sent` bytes, by libc's blocking send; returns
// the new total. Its failure is not reported: bytes were moved already.
long finish_plain(int fd, const struct msghdr* msg, size_t sent, int flags) {
  int saved = errno;
  size_t i, skip;
  iov_seek(msg, sent, &i, &skip);
  for (; i < msg->msg_iovlen; i++, skip = 0) {
    size_t len = msg->msg_iov[i].iov_len - skip;
    ssize_t x = g_real.send(fd, (const char*)msg->msg_iov[i].iov_base + skip, len, flags | MSG_NOSIGNAL);
    if (x <= 0) break;
    sent += (size_t)x;
    if ((size_t)x < len) break;
  }
  errno = saved;
  return (long)sent;
}

// sendmsg on a stream socket without a timeout: after a partial send the
// rest goes out without the control data (sent with the first bytes), in
// further requests. The kernel has read msg and its vector by then, so they
// are readable; a vector too long to copy here is finished by libc.
long sendmsg_stream(int fd, const struct msghdr* msg, int flags, const SockInfo& s) {
  Plan p = plan_send(fd, abi::k_op_sendmsg, msg, 1, flags & ~MSG_WAITALL, s);
  long r = run_call(p);
  if (r <= 0 || r == k_not_routed || r == k_pass) return r;
  size_t total = iov_bytes(msg->msg_iov, msg->msg_iovlen);
  if (total > k_max_rw) total = k_max_rw;
  size_t sent = (size_t)r;
  constexpr size_t k_copy = 64;
  struct iovec rest[k_copy];
  while (sent < total) {
    size_t i, skip;
    iov_seek(msg, sent, &i, &skip);
    size_t n = msg->msg_iovlen - i;
    if (n > k_copy) return finish_plain(fd, msg, sent, flags);
    for (size_t k = 0; k < n; k++) rest[k] = msg->msg_iov[i + k];
    rest[0].iov_base = (char*)rest[0].iov_base + skip;
    rest[0].iov_len -= skip;
    struct msghdr m = {};
    m.msg_iov = rest;
    m.msg_iovlen = n;
    Plan q = plan_send(fd, abi::k_op_sendmsg, &m, 1, flags & ~MSG_WAITALL, s);
    q.interruptible = true;  // with bytes sent, any signal ends the call
    long more = run_call(q);
    if (more == k_not_routed || more == k_pass) return finish_plain(fd, msg, sent, flags);
    if (more <= 0) break;  // EINTR, an error: the count so far
    sent += (size_t)more;
  }
  return (long)sent;
}

// Counts and converts a routed result; k_not_routed and k_pass make the
// plain call.
#define RINGPOOL_SHIM_FINISH(r, plain_call)         \
  do {                                              \
    if ((r) == k_not_routed || (r) == k_pass) {     \
      count((r) == k_pass ? k_passed : k_fallback); \
      return plain_call;                            \
    }                                               \
    count(k_routed);                                \
    return (decltype(plain_call))finish(r);         \
  } while (0)

#define RINGPOOL_SHIM_PASS(plain_call) \
  do {                                 \
    count(k_passed);                   \
    return plain_call;                 \
  } while (0)

long with_sigpipe(long r, int flags) {
  if (r == -EPIPE && !(flags & MSG_NOSIGNAL)) raise_sigpipe();
  return r;
}

}  // namespace

ssize_t on_read(int fd, void* buf, size_t n) {
  if (n == 0) RINGPOOL_SHIM_PASS(g_real.read(fd, buf, n));
  SockInfo s = fd_table::lookup(fd);
  if (!s.routable) RINGPOOL_SHIM_PASS(g_real.read(fd, buf, n));
  long r = recv_routed(fd, buf, n, 0, s);
  RINGPOOL_SHIM_FINISH(r, g_real.read(fd, buf, n));
}

ssize_t on_write(int fd, const void* buf, size_t n) {
  if (n == 0) RINGPOOL_SHIM_PASS(g_real.write(fd, buf, n));
  SockInfo s = fd_table::lookup(fd);
  if (!s.routable) RINGPOOL_SHIM_PASS(g_real.write(fd, buf, n));
  int flags = s.type == SOCK_SEQPACKET ? MSG_EOR : 0;
  long r = with_sigpipe(send_routed(fd, buf, n, flags, s, nullptr, 0), 0);
  RINGPOOL_SHIM_FINISH(r, g_real.write(fd, buf, n));
}

ssize_t on_readv(int fd, const struct iovec* iov, int cnt) {
  if (cnt <= 0 || cnt > k_iov_max) RINGPOOL_SHIM_PASS(g_real.readv(fd, iov, cnt));
  SockInfo s = fd_table::lookup(fd);
  if (!s.routable || s.type != SOCK_STREAM) RINGPOOL_SHIM_PASS(g_real.readv(fd, iov, cnt));
  struct msghdr m = {};
  m.msg_iov = const_cast<struct iovec*>(iov);
  m.msg_iovlen = (size_t)cnt;
  long r = run_call(plan_recv(fd, abi::k_op_recvmsg, &m, 1, 0, s));
  RINGPOOL_SHIM_FINISH(r, g_real.readv(fd, iov, cnt));
}

ssize_t on_writev(int fd, const struct iovec* iov, int cnt) {
  if (cnt <= 0 || cnt > k_iov_max) RINGPOOL_SHIM_PASS(g_real.writev(fd, iov, cnt));
  SockInfo s = fd_table::lookup(fd);
  if (!s.routable) RINGPOOL_SHIM_PASS(g_real.writev(fd, iov, cnt));
  struct msghdr m = {};
  m.msg_iov = const_cast<struct iovec*>(iov);
  m.msg_iovlen = (size_t)cnt;
  int flags = s.type == SOCK_SEQPACKET ? MSG_EOR : 0;
  long r;
  if (s.type == SOCK_STREAM && s.snd_timeout_us == 0) {
    r = sendmsg_stream(fd, &m, flags, s);
  } else {
    r = run_call(plan_send(fd, abi::k_op_sendmsg, &m, 1, flags | (s.type == SOCK_STREAM ? MSG_WAITALL : 0), s));
  }
  r = with_sigpipe(r, 0);
  RINGPOOL_SHIM_FINISH(r, g_real.writev(fd, iov, cnt));
}

ssize_t on_recv(int fd, void* buf, size_t n, int flags) {
  if (!recv_flags_ok(flags)) RINGPOOL_SHIM_PASS(g_real.recv(fd, buf, n, flags));
  SockInfo s = fd_table::lookup(fd);
  if (!s.routable) RINGPOOL_SHIM_PASS(g_real.recv(fd, buf, n, flags));
  long r = recv_routed(fd, buf, n, flags, s);
  RINGPOOL_SHIM_FINISH(r, g_real.recv(fd, buf, n, flags));
}

ssize_t on_recvfrom(int fd, void* buf, size_t n, int flags, struct sockaddr* addr, socklen_t* alen) {
  if (addr == nullptr) return on_recv(fd, buf, n, flags);
  if (alen == nullptr || !recv_flags_ok(flags)) RINGPOOL_SHIM_PASS(g_real.recvfrom(fd, buf, n, flags, addr, alen));
  SockInfo s = fd_table::lookup(fd);
  if (!s.routable || ((flags & MSG_WAITALL) && s.type == SOCK_STREAM))
    RINGPOOL_SHIM_PASS(g_real.recvfrom(fd, buf, n, flags, addr, alen));
  if (n > k_max_rw) n = k_max_rw;
  struct iovec v = {buf, n};
  struct msghdr m = {};
  m.msg_name = addr;
  m.msg_namelen = *alen;  // the caller's buffer size (recvfrom reads it too)
  m.msg_iov = &v;
  m.msg_iovlen = 1;
  long r = run_call(plan_recv(fd, abi::k_op_recvmsg, &m, 1, flags, s));
  if (r >= 0 && r != k_not_routed) *alen = m.msg_namelen;
  RINGPOOL_SHIM_FINISH(r, g_real.recvfrom(fd, buf, n, flags, addr, alen));
}

ssize_t on_recvmsg(int fd, struct msghdr* msg, int flags) {
  SockInfo s = {};
  if (recv_flags_ok(flags) && !(flags & MSG_WAITALL)) s = fd_table::lookup(fd);
  if (!s.routable) {
    count(k_passed);
    ssize_t r = g_real.recvmsg(fd, msg, flags);
    if (r >= 0) fd_table::on_received_fds(msg);
    return r;
  }
  long r = run_call(plan_recv(fd, abi::k_op_recvmsg, msg, 1, flags, s));
  if (r == k_not_routed || r == k_pass) {
    count(r == k_pass ? k_passed : k_fallback);
    ssize_t x = g_real.recvmsg(fd, msg, flags);
    if (x >= 0) fd_table::on_received_fds(msg);
    return x;
  }
  count(k_routed);
  if (r >= 0) fd_table::on_received_fds(msg);
  return finish(r);
}

ssize_t on_send(int fd, const void* buf, size_t n, int flags) {
  if (!send_flags_ok(flags)) RINGPOOL_SHIM_PASS(g_real.send(fd, buf, n, flags));
  SockInfo s = fd_table::lookup(fd);
  if (!s.routable) RINGPOOL_SHIM_PASS(g_real.send(fd, buf, n, flags));
  long r = with_sigpipe(send_routed(fd, buf, n, flags, s, nullptr, 0), flags);
  RINGPOOL_SHIM_FINISH(r, g_real.send(fd, buf, n, flags));
}

ssize_t on_sendto(int fd, const void* buf, size_t n, int flags, const struct sockaddr* addr, socklen_t alen) {
  if (addr == nullptr) return on_send(fd, buf, n, flags);
  if (!send_flags_ok(flags) || alen > 0xffff) RINGPOOL_SHIM_PASS(g_real.sendto(fd, buf, n, flags, addr, alen));
  SockInfo s = fd_table::lookup(fd);
  if (!s.routable) RINGPOOL_SHIM_PASS(g_real.sendto(fd, buf, n, flags, addr, alen));
  long r = with_sigpipe(send_routed(fd, buf, n, flags, s, addr, alen), flags);
  RINGPOOL_SHIM_FINISH(r, g_real.sendto(fd, buf, n, flags, addr, alen));
}

ssize_t on_sendmsg(int fd, const struct msghdr* msg, int flags) {
  if (!send_flags_ok(flags)) RINGPOOL_SHIM_PASS(g_real.sendmsg(fd, msg, flags));
  SockInfo s = fd_table::lookup(fd);
  if (!s.routable) RINGPOOL_SHIM_PASS(g_real.sendmsg(fd, msg, flags));
  long r;
  if (s.type == SOCK_STREAM && s.snd_timeout_us == 0) {
    r = sendmsg_stream(fd, msg, flags, s);
  } else {
    int extra = s.type == SOCK_STREAM ? MSG_WAITALL : 0;
    r = run_call(plan_send(fd, abi::k_op_sendmsg, msg, 1, (flags & ~MSG_WAITALL) | extra, s));
  }
  r = with_sigpipe(r, flags);
  RINGPOOL_SHIM_FINISH(r, g_real.sendmsg(fd, msg, flags));
}

int on_accept4(int fd, struct sockaddr* addr, socklen_t* alen, int flags, bool is_accept4) {
  auto plain = [&]() { return is_accept4 ? g_real.accept4(fd, addr, alen, flags) : g_real.accept(fd, addr, alen); };
  SockInfo s = {};
  if ((flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == 0) s = fd_table::lookup(fd);
  long r = k_not_routed;
  bool tried = s.routable && s.type != SOCK_DGRAM;
  if (tried) {
    Plan p;
    p.rq = {abi::k_op_accept, fd, (uint64_t)(uintptr_t)addr, (uint64_t)(uintptr_t)alen, 0, (uint32_t)flags, 0};
    p.timeout_us = s.rcv_timeout_us;
    p.pair = true;  // listeners are often shared by threads and processes
    p.poll_mask = POLLIN;
    r = run_call(p);
  }
  int result;
  if (r == k_not_routed || r == k_pass) {
    count(tried && r == k_not_routed ? k_fallback : k_passed);
    result = plain();
  } else {
    count(k_routed);
    result = (int)finish(r);
  }
  if (result >= 0) fd_table::on_accept(fd, result, flags);
  return result;
}

int on_connect(int fd, const struct sockaddr* addr, socklen_t alen) {
  SockInfo s = fd_table::lookup(fd);
  bool tcp = s.routable && s.type == SOCK_STREAM && (s.family == AF_INET || s.family == AF_INET6);
  if (!tcp) RINGPOOL_SHIM_PASS(g_real.connect(fd, addr, alen));
  Plan p;
  p.rq = {abi::k_op_connect, fd, (uint64_t)(uintptr_t)addr, (uint64_t)alen, 0, 0, 0};
  p.timeout_us = s.snd_timeout_us;
  p.on_timeout = route::OnTimeout::einprogress;
  long r = run_call(p);
  // A blocking connect on a socket already connecting waits for the
  // outcome; io_uring answers EALREADY at once. The plain call waits.
  if (r == -EALREADY) r = k_pass;
  RINGPOOL_SHIM_FINISH(r, g_real.connect(fd, addr, alen));
}

int on_socket(int domain, int type, int protocol) {
  int fd = g_real.socket(domain, type, protocol);
  if (fd >= 0) fd_table::on_socket(fd, domain, type);
  return fd;
}

int on_socketpair(int domain, int type, int protocol, int* sv) {
  int r = g_real.socketpair(domain, type, protocol, sv);
  if (r == 0) {
    fd_table::on_socket(sv[0], domain, type);
    fd_table::on_socket(sv[1], domain, type);
  }
  return r;
}

int on_close(int fd) {
  int r = g_real.close(fd);
  fd_table::on_close(fd);  // closed even when close() fails with EINTR
  return r;
}

int on_close_range(unsigned first, unsigned last, int flags) {
  int r = g_real.close_range(first, last, flags);
  if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC)) fd_table::on_close_from(first, last);
  return r;
}

void on_closefrom(int lowfd) {
  g_real.closefrom(lowfd);
  if (lowfd >= 0) fd_table::on_close_from((unsigned)lowfd, ~0u);
}

int on_dup(int fd) {
  int r = g_real.dup(fd);
  if (r >= 0) fd_table::on_dup(fd, r);
  return r;
}

int on_dup2(int fd, int fd2) {
  int r = g_real.dup2(fd, fd2);
  if (r >= 0) fd_table::on_dup(fd, r);
  return r;
}

int on_dup3(int fd, int fd2, int flags) {
  int r = g_real.dup3(fd, fd2, flags);
  if (r >= 0) fd_table::on_dup(fd, r);
  return r;
}

int on_fcntl(int (*real)(int, int, ...), int fd, int cmd, void* arg) {
  int r = real(fd, cmd, arg);
  if (r < 0) return r;
  if (cmd == F_SETFL) {
    fd_table::on_nonblock(fd, ((long)arg & O_NONBLOCK) != 0);
  } else if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
    fd_table::on_dup(fd, r);
  }
  return r;
}

int on_ioctl(int fd, unsigned long request, void* arg) {
  int r = g_real.ioctl(fd, request, arg);
  // The ioctl read *arg already, so it is readable.
  if (r == 0 && request == FIONBIO) fd_table::on_nonblock(fd, *static_cast<const int*>(arg) != 0);
  return r;
}

int on_setsockopt(int fd, int level, int name, const void* val, socklen_t len) {
  int r = g_real.setsockopt(fd, level, name, val, len);
  if (r == 0 && level == SOL_SOCKET) {
    switch (name) {
#ifdef SO_RCVTIMEO_OLD
      case SO_RCVTIMEO_OLD:
      case SO_SNDTIMEO_OLD:
      case SO_RCVTIMEO_NEW:
      case SO_SNDTIMEO_NEW:
#else
      case SO_RCVTIMEO:
      case SO_SNDTIMEO:
#endif
        fd_table::on_timeout(fd, name, val, len);
        break;
      default:
        break;
    }
  }
  return r;
}

}  // namespace ringpool::shim
