// uring_shim/: the optional io_uring socket shim.
//
// With RINGPOOL_URING=1 the blocking socket calls of the program (accept,
// connect, recv*, send*, and read/write/readv/writev on sockets, with their
// _chk variants) are carried out through a per-thread io_uring instead of
// plain system calls, with the plain calls' results, errno values, signal
// and timeout behaviour. Off by default: then every interposed call is one
// predictable branch and a jump to libc.
//
// Glossary
//   routed       a call carried out through io_uring.
//   passed       a call that went straight to libc because routing does not
//                apply to it (not a socket, non-blocking, MSG_DONTWAIT...).
//   fallback     a call routing would apply to, sent to libc because
//                io_uring is unavailable here (kernel.io_uring_disabled,
//                seccomp, an old kernel) or refused this request.
//   ring         one io_uring instance; each thread gets its own on its
//                first routed call.
//
// Layering: this folder sits beside preload/ and uses pool/ (platform,
// options); pool/ does not know it exists. The exported symbols live in
// interpose.cpp; everything else is internal.
#pragma once
#include <stdint.h>

namespace ringpool::shim {

// One list (name, the text summary's label, help) drives the registration
// with the allocator's statistics (counters.cpp: named counters
// socket_<name>, which `ringpool stat` prints), the counting, the struct
// and the exit line.
#define RINGPOOL_SHIM_COUNTERS(X)                                                                              \
  X(routed, "routed through io_uring", "socket calls carried out through io_uring")                            \
  X(passed, "passed through", "socket calls sent to libc: not a blocking socket, or flags not routed")         \
  X(fallback, "fell back", "socket calls sent to libc because io_uring was unavailable or refused")            \
  X(waits, "waited", "routed calls that had to wait for their completion")                                     \
  X(interrupted, "interrupted", "routed waits ended by a signal (request cancelled, reaped)")                  \
  X(raced, "returned data despite a signal", "interrupted waits where the data won the race and was returned") \
  X(timeouts, "timed out", "routed calls ended by SO_RCVTIMEO/SO_SNDTIMEO")                                    \
  X(rings, "rings made", "per-thread io_uring rings created")

struct Counters {
#define RINGPOOL_SHIM_FIELD(name, label, help) uint64_t name;
  RINGPOOL_SHIM_COUNTERS(RINGPOOL_SHIM_FIELD)
#undef RINGPOOL_SHIM_FIELD
};

// Totals over all threads, live and exited, of this process since it
// started or forked (all zero when the shim is off). A snapshot: live
// threads keep counting.
Counters counters();

// RINGPOOL_URING=1 was given (the interposed calls take the shim's path).
bool enabled();

// Why calls pass through although RINGPOOL_URING=1, or nullptr while
// io_uring is usable (or not yet tried).
const char* unavailable_reason();

// "ringpool: uring[PID]: routed=... passed=..." on stderr, with write(2).
void print_counters();

}  // namespace ringpool::shim
