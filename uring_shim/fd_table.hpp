// The descriptor table: what the shim knows about each file descriptor, so
// that only blocking sockets are routed.
//
// Glossary
//   slot     what is known about one descriptor number: unknown, other or
//            socket; for a socket its type, family, O_NONBLOCK and the
//            SO_RCVTIMEO/SO_SNDTIMEO it carries.
//   unknown  nothing cached: the next look-up asks the kernel (getsockopt,
//            fcntl). Always a safe state; every event the shim cannot follow
//            (close, dup over, descriptors received by SCM_RIGHTS) resets a
//            slot to it.
//   other    not routed: not a socket, or a socket of a kind the shim leaves
//            alone (raw, packet, netlink...), or one with a negative timeout.
//   shared   the descriptor was duplicated: its open file description, hence
//            O_NONBLOCK and the socket options, may be reached through other
//            numbers too, so a change through one forgets all shared slots.
//   contended  two routed calls of this process were seen in progress on
//            the descriptor at once: from then on its calls use pair mode
//            (route.hpp), which a crowd of waiters cannot push to io-wq.
//
// Invariant: a slot says socket only if, since the number was last closed,
// the shim saw the socket made (socket, socketpair, accept) or asked the
// kernel, and saw every F_SETFL, FIONBIO and timeout change made through
// the interposed calls since.
//
// Concurrency: fields are relaxed atomics. Races between threads on one
// descriptor are the program's own; any interleaving leaves a state the
// kernel reported at some instant, or unknown.
//
// Only the process that owns the table writes to it: a vfork child (which
// shares our memory but not our descriptors) never does.
#pragma once
#include <stdint.h>
#include <sys/socket.h>

namespace ringpool::shim {

struct SockInfo {
  bool routable;   // a blocking stream/datagram/seqpacket socket of AF_UNIX/INET/INET6
  bool contended;  // see above
  uint8_t type;    // SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
  uint8_t family;  // AF_UNIX, AF_INET, AF_INET6
  uint64_t rcv_timeout_us;  // SO_RCVTIMEO, 0 = none
  uint64_t snd_timeout_us;  // SO_SNDTIMEO, 0 = none
};

namespace fd_table {

// What fd is; asks the kernel when nothing is cached (and caches it).
SockInfo lookup(int fd);

// Events, each called after the real call succeeded.
void on_socket(int fd, int domain, int type_and_flags);
void on_accept(int listen_fd, int fd, int flags);
void on_close(int fd);
void on_close_from(unsigned first, unsigned last);
void on_dup(int old_fd, int new_fd);
void on_nonblock(int fd, bool nonblock);
void on_timeout(int fd, int optname, const void* optval, socklen_t optlen);
void on_received_fds(const struct msghdr* msg);

// Brackets a routed call on fd, to notice contention.
void call_begin(int fd);
void call_end(int fd);

}  // namespace fd_table
}  // namespace ringpool::shim
