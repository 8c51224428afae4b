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
// Counts a socket call of the io_uring shim: a plain add in the thread's
// slot, no shared cache line.
void count_socket_call(SocketCount which);
// Create the shared region (at init), and again in a fork child.
void stats_init();
void stats_fork_child();
// This process's snapshot, resident size included.
void snapshot_now(Snapshot* out);

inline void stat_inc(uint64_t& c, uint64_t by = 1) {
  __atomic_fetch_add(&c, by, __ATOMIC_RELAXED);
}

}  // namespace ringpool::pool
