// Per-thread state of the shim, and the process-wide switches.
//
// Glossary
//   thread state  one page per thread that made a shim call: its ring (made
//                 on its first routed call) and the book-keeping of the
//                 routed call in progress. (Its counts are in its heap's
//                 stats slot: counters.hpp.)
//   registry      the list of all thread states: a fork child drops every
//                 entry (the rings in it belong to the parent).
//   tag           user_data of a routed call's SQEs, unique per thread; the
//                 low two bits tell the call's own SQE from its linked
//                 timeout and its cancel request.
//
// Invariants (per thread state, touched only by its thread, except that
// the fork child frees all):
//   depth == 0  =>  ring.owed() == 0, unless a signal handler jumped out of
//                   a routed wait (then the next routed call settles it)
#pragma once
#include <stdint.h>

#include "ring.hpp"
#include "sys.hpp"
#include "uring_shim.hpp"

namespace ringpool::shim {

// RINGPOOL_URING=1; written once, by the constructor, before main.
extern bool g_on;
// This process's pid as the shim last saw it (constructor, fork child).
extern long g_pid;

// False in a vfork child or a child made by raw clone(): they share or copy
// our memory, but not our descriptors or rings, so they must not write the
// descriptor table or make rings. One getpid(): for slow paths only.
inline bool same_process() { return sys::getpid() == __atomic_load_n(&g_pid, __ATOMIC_RELAXED); }

struct ThreadState {
  enum RingState : uint8_t { k_ring_none, k_ring_ready, k_ring_failed };
  Ring ring;
  RingState ring_state = k_ring_none;
  uint8_t depth = 0;      // routed calls in progress: 0 or 1
  uint64_t seq = 0;       // last tag handed out, >> 2
  uint64_t tag = 0;       // tag of the call in progress
  uintptr_t frame = 0;    // its stack frame, to tell nesting from longjmp
  abi::KernelTimespec timeout = {};  // the linked timeout's argument
  ThreadState* prev = nullptr;
  ThreadState* next = nullptr;
};

// This thread's state, made on first use; nullptr if it cannot be made.
extern __thread ThreadState* t_state;
ThreadState* thread_state_slow();
inline ThreadState* thread_state() {
  ThreadState* ts = t_state;
  return __builtin_expect(ts != nullptr, 1) ? ts : thread_state_slow();
}

// The thread's ring, made on first use; nullptr when io_uring cannot be
// used by this thread (the call then falls back to libc).
Ring* thread_ring(ThreadState* ts);

// The constructor's part when RINGPOOL_URING=1: thread-exit key and fork
// handlers.
void thread_state_init();

}  // namespace ringpool::shim
