// Statistics counted at slow events (never on the fast path).
//
// One field list (RINGPOOL_GLOBAL_COUNTERS) drives the struct, the merge and
// the printing, so they cannot drift apart. Counters are relaxed atomics:
// each is exact, a snapshot of several is taken under g_lock where it must
// be consistent.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace ringpool::pool {

#define RINGPOOL_GLOBAL_COUNTERS(X)                                      \
  X(segments_mapped, "segments mapped since start")                    \
  X(foreign_frees, "frees of pointers ringpool did not allocate")      \
  X(foreign_reallocs, "reallocs of pointers ringpool did not allocate") \
  X(threads_started, "thread heaps taken by new threads")              \
  X(threads_exited, "thread heaps handed back at thread exit")         \
  X(heaps_adopted, "idle heaps merged into a running thread")          \
  X(pages_reclaimed, "full pages handed back by a remote free")        \
  X(huge_allocs, "blocks above 2 MiB mapped")                          \
  X(large_allocs, "blocks of 32 KiB..2 MiB allocated")

struct GlobalStats {
#define RINGPOOL_FIELD(name, help) uint64_t name;
  RINGPOOL_GLOBAL_COUNTERS(RINGPOOL_FIELD)
#undef RINGPOOL_FIELD
};

GlobalStats& stats_global();

inline void stat_inc(uint64_t& c, uint64_t by = 1) {
  __atomic_fetch_add(&c, by, __ATOMIC_RELAXED);
}

}  // namespace ringpool::pool
