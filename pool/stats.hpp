// Statistics, the process side: the shared region's slots and counters
// (stats.cpp). The layout and the snapshot are in stats_layout.hpp, which
// readers in other processes include instead of this.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "stats_layout.hpp"

namespace ringpool::pool {

SharedStats* stats_region();
// True when p points into the stats region (or the boot region before it).
bool in_stats_region(const void* p);
GlobalStats& stats_global();
// A counters slot of its own for a new heap, or nullptr once the region's
// slots are taken. The last slot is no heap's: heaps beyond the region
// count privately and add what they counted since into it with atomic
// adds (stats_flush_private), so no count is lost and no line is shared
// by the fast paths of several threads.
HeapCounters* stats_slot_acquire();
// Add live - flushed into the region's last slot; flushed = live.
void stats_flush_private(const HeapCounters* live, HeapCounters* flushed);
// The calling thread's heap's slot, or nullptr if it has no heap yet (never
// makes one).
HeapCounters* thread_counters();
// The calling thread's heap, if it counts privately, adds its counts to
// the region now (heap.cpp).
void thread_flush_stats();
// Named counters (stats_layout.hpp). A layer registers its counters once,
// at start-up after init, all under one group: on success *first is the
// id of specs[0], the others follow. False, and nothing registered, when
// fewer than n of the k_named_counters are left, or a name is not
// [a-z][a-z0-9_]* or is taken (by another named counter or a global one),
// or a string does not fit its field in CounterName.
struct CounterSpec {
  const char* name;
  const char* label;
  const char* help;
  CounterKind kind;
};
bool counters_register(const char* group, const CounterSpec* specs, unsigned n, unsigned* first);
// Adds to a named counter: a plain add in the calling thread's slot, no
// shared cache line (an atomic add in the header for a thread that has no
// heap yet; never makes one). An id at or past k_named_counters is ignored,
// so a layer whose registration failed may count on. A gauge goes down
// by adding (uint64_t)-d.
void counter_add(unsigned id, uint64_t by = 1);
// The process's totals of ids [first, first + n), this thread's private
// counts flushed first.
void counters_read(unsigned first, unsigned n, uint64_t* out);
// Create the shared region (at init), and again in a fork child.
void stats_init();
void stats_fork_child();
// This process's snapshot, resident size included.
void snapshot_now(Snapshot* out);

inline void stat_inc(uint64_t& c, uint64_t by = 1) {
  __atomic_fetch_add(&c, by, __ATOMIC_RELAXED);
}

}  // namespace ringpool::pool
