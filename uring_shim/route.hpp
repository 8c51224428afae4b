// A routed call: one request through this thread's ring, waited for the way
// the plain call waits. Submitting and waiting is one io_uring_enter, so a
// routed call enters the kernel as often as the plain one.
//
// Glossary
//   request  the call's SQE(s): the operation itself, plus either a linked
//            timeout (the socket has SO_RCVTIMEO/SO_SNDTIMEO) or, in pair
//            mode, a POLL_ADD in front of a non-blocking operation.
//   pair     POLL_ADD linked to the operation with MSG_DONTWAIT (or
//            IORING_ACCEPT_DONTWAIT). Used where several waiters may share a
//            socket (accept, datagram sockets, descriptors seen contended):
//            io_uring re-arms its internal poll on every wake-up another
//            waiter won and after 128 hands the request to an io-wq worker
//            thread. A POLL_ADD never goes to io-wq: a lost race comes back
//            as EAGAIN and the pair is submitted again.
//   settle   cancel what is in flight and reap every CQE still owed, so the
//            kernel no longer holds the caller's buffer (or ours).
//
// How a wait ends, as for the plain call:
//   completion   its result.
//   timeout      the linked timeout cancels the request: -EAGAIN (connect:
//                -EINPROGRESS), or the bytes moved before it.
//   signal       as for the plain call. The wait is io_uring_enter, which
//                ends with EINTR on every signal; without a socket timeout
//                the call ends only if a handler without SA_RESTART ran
//                since it began (signals.hpp counts them) and otherwise
//                waits again, as the kernel restarts the plain call after an
//                SA_RESTART handler or a stop. With a socket timeout the
//                plain call never restarts, and neither does this. On
//                EINTR: cancel, settle, and if the data won the race,
//                return the data.
//   cancellation the wait is a cancellation point, as the plain call; the
//                cleanup handler settles before the thread unwinds.
#pragma once
#include <limits.h>
#include <stdint.h>

namespace ringpool::shim {
struct ThreadState;
}

namespace ringpool::shim::route {

struct Request {
  uint8_t opcode;
  int fd;
  uint64_t addr;
  uint64_t addr2;     // sqe->off: accept's addrlen pointer, send's destination
  uint32_t len;
  uint32_t op_flags;  // msg_flags or accept_flags
  uint16_t addr_len;  // send's destination length
};

enum class OnTimeout : uint8_t { eagain, einprogress };

struct Plan {
  Request rq;
  uint64_t timeout_us = 0;  // SO_RCVTIMEO/SO_SNDTIMEO, 0 = none
  OnTimeout on_timeout = OnTimeout::eagain;
  bool pair = false;        // ignored with a timeout (io_uring_enter waits see every completion)
  uint32_t poll_mask = 0;   // pair mode: POLLIN or POLLOUT
  // Any signal ends the wait with EINTR, even after an SA_RESTART handler
  // or a stop: what a blocking stream call does once it has moved some
  // bytes (it then returns the count). Waits in io_uring_enter.
  bool interruptible = false;
};

// The call could not be handed to the kernel: nothing happened, make the
// plain call (io_uring unavailable or refused: a fallback).
constexpr long k_not_routed = LONG_MIN;
// Nothing happened, make the plain call; counted as passed, not as a
// fallback: a signal handler made this call inside a routed call of its
// thread (whose ring is busy), or the plain call behaves in a way the
// routed one cannot (see on_connect).
constexpr long k_pass = LONG_MIN + 1;

// Runs the plan and returns the call's result, >= 0 or -errno.
long run(const Plan& plan);

// Thread exit: settle a call a signal handler jumped out of.
void settle(ThreadState& ts);

}  // namespace ringpool::shim::route
