// The shim's counters (RINGPOOL_SHIM_COUNTERS, uring_shim.hpp), kept in
// the allocator's statistics as named counters (pool/stats.hpp), so that
// each call is counted once, in the calling thread's slot, and
// `ringpool stat` reads them from outside.
//
// Glossary
//   id        a counter's index in the list (Counter); its named counter's
//             id is g_first + that.
//   at fork   the totals a fork child inherited with the parent's region:
//             the exit line counts this process's own calls only.
#pragma once
#include "../pool/stats.hpp"
#include "uring_shim.hpp"

namespace ringpool::shim {

enum Counter : unsigned {
#define RINGPOOL_SHIM_ID(name, label, help) k_##name,
  RINGPOOL_SHIM_COUNTERS(RINGPOOL_SHIM_ID)
#undef RINGPOOL_SHIM_ID
  k_counters
};

// The named counter id of k_routed; pool::k_named_counters (an id that
// counts nothing) until counters_init registered them, or if it could not.
extern unsigned g_first;

// Registers the counters (the constructor, after pool::init, whether or
// not RINGPOOL_URING is set: every process shows the same metrics).
void counters_init();

// One more call of kind c by the calling thread: a plain add in its slot.
inline void count(Counter c) { pool::counter_add(g_first + c); }

// The fork child's part (thread_state.cpp): remember the inherited totals.
void counters_fork_child();

}  // namespace ringpool::shim
