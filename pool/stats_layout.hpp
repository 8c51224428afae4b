// The stats channel's layout: what the process writes and `ringpool stat PID`
// reads from outside, and the snapshot and formatting code both sides run.
// The one header both sides include; the process side's API is stats.hpp.
//
// Glossary
//   region    the file PID.stats in the channel directory (channel.hpp),
//             mapped shared: a header of global counters, then one
//             HeapCounters slot per heap. It holds counts only, never a
//             pointer. Mode 0600 in a 0700 directory: only the process's
//             user (or root) may read it.
//   slot      a heap's counters; written by its owner thread only, with plain
//             increments on the fast path (one add each for malloc and free).
//   snapshot  what a reader computes: frees are read before allocations, so
//             live = allocs - frees is never negative.
//   named counter  a per-thread counter of a layer above this one,
//             registered at start-up (stats.hpp: counters_register).
//             The header carries its name, help and summary text, so that a
//             reader prints it knowing nothing of it; each slot carries its
//             count, and so does the header, for threads without a heap.
//
// One field list (RINGPOOL_GLOBAL_COUNTERS: name, counter or gauge, help)
// drives the struct, the snapshot and every output format (text, JSON,
// tools/metrics.cpp), so they cannot drift apart; the named counters are
// one more table, which the same outputs walk in one loop each.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "size_class.hpp"

namespace ringpool::pool {

#define RINGPOOL_GLOBAL_COUNTERS(X)                                                \
  X(segments_mapped, counter, "segments mapped since start")                     \
  X(foreign_frees, counter, "frees of pointers ringpool did not allocate")       \
  X(foreign_reallocs, counter, "reallocs of pointers ringpool did not allocate") \
  X(threads_started, counter, "thread heaps taken by new threads")               \
  X(threads_exited, counter, "thread heaps handed back at thread exit")          \
  X(heaps_adopted, counter, "idle heaps merged into a running thread")           \
  X(pages_reclaimed, counter, "full pages handed back by a remote free")         \
  X(idle_heap_bytes, gauge, "bytes in pages held by the heaps of exited threads")

struct GlobalStats {
#define RINGPOOL_FIELD(name, kind, help) uint64_t name;
  RINGPOOL_GLOBAL_COUNTERS(RINGPOOL_FIELD)
#undef RINGPOOL_FIELD
};

// Rows of the per-class table: the small classes, then large, then huge.
constexpr unsigned k_row_large = k_num_classes;
constexpr unsigned k_row_huge = k_num_classes + 1;
constexpr unsigned k_rows = k_num_classes + 2;

// Named counters: at most this many, over all layers; ids are 0, 1, ... in
// the order of registration, and a layer's are consecutive.
constexpr unsigned k_named_counters = 16;

enum class CounterKind : uint32_t { counter, gauge };

// A named counter as the region describes it. Written once, before
// SharedStats::named_used counts it; every string NUL-terminated. A reader
// checks them all (snapshot_from): they come from another process.
struct CounterName {
  char name[32];   // [a-z][a-z0-9_]*, unique: the JSON key, metric ringpool_<name>
  char group[16];  // the text summary gives each group one line, headed "<group>:"
  char label[48];  // what follows the count on that line: "<count> <label>, ..."
  char help[96];   // one line for the metrics' HELP
  uint32_t kind;   // CounterKind
  uint32_t reserved;
};
static_assert(sizeof(CounterName) == 200, "the region's layout changes only with k_stats_layout");

// A cache line or more of its own: each slot is written by one thread on
// every malloc and free, and a slot that shared a line with its neighbour
// (or with the back end's totals before the first) made two threads'
// fast paths contend for it.
struct alignas(64) HeapCounters {
  uint64_t allocs[k_num_classes];
  uint64_t frees[k_num_classes];  // frees made by this thread, into any page
  uint64_t requested;  // bytes the program asked for in small requests, since start
  uint64_t named[k_named_counters];  // by id; see counter_add (stats.hpp)
};

// The back end's totals, copied in under g_lock; seq is odd while they change.
struct BackendStats {
  uint64_t seq;
  uint64_t segments, mapped, page_bytes, dirty, purged, meta_bytes;
  uint64_t large_count, large_bytes, huge_count, huge_bytes;
  uint64_t pages[k_num_classes];  // small pages held per class
  uint64_t large_allocs, large_frees, huge_allocs, huge_frees;
};

constexpr char k_stats_magic[8] = {'R', 'I', 'N', 'G', 'P', 'O', 'O', 'L'};
constexpr uint32_t k_stats_layout = 6;

struct SharedStats {
  char magic[8];
  uint32_t layout;
  uint32_t header_size;    // sizeof(SharedStats)
  uint32_t num_classes;
  uint32_t slots;          // HeapCounters slots after the header
  uint32_t slots_used;     // atomic: slots handed to heaps so far
  int32_t pid;
  uint64_t start_ms;       // CLOCK_MONOTONIC at start
  uint32_t class_size[k_num_classes];
  GlobalStats global;      // relaxed atomic increments
  uint64_t remote_frees[k_num_classes];  // atomic: frees by threads without a heap
  BackendStats backend;
  uint32_t named_used;     // atomic: names[0, named_used) are written (release)
  uint32_t reserved;
  // Named counter k = named_global[k] + the sum of heaps[i].named[k] over
  // the slots: threads without a heap count here, atomically.
  uint64_t named_global[k_named_counters];
  CounterName names[k_named_counters];
  HeapCounters heaps[1];   // `slots` of them, each on its own cache lines
};
static_assert(sizeof(HeapCounters) % 64 == 0 && offsetof(SharedStats, heaps) % 64 == 0,
              "no two heaps' slots, and no slot and the header, share a cache line");

inline size_t shared_stats_bytes(uint32_t slots) {
  return sizeof(SharedStats) + (size_t)(slots - 1) * sizeof(HeapCounters);
}

// ---- both sides (stats_view.cpp: no system calls, no allocation) ------------

struct ClassRow {
  uint64_t size;  // block size (0 for large/huge rows)
  uint64_t allocs, frees, live_blocks, live_bytes, page_bytes;
};

// A named counter in a snapshot. snapshot_from checks the strings: a name
// that is not valid is cleared (name.name[0] == 0: no output shows it), the
// others keep printable ASCII only, without quotes or backslashes.
struct NamedCount {
  CounterName name;
  uint64_t value;
};

struct Snapshot {
  int32_t pid;
  uint64_t uptime_ms;
  ClassRow rows[k_rows];
  uint64_t live_bytes, live_blocks;
  uint64_t page_bytes;      // small and large pages
  uint64_t cached_bytes;    // free space inside small pages (thread caches)
  uint64_t mapped, resident, dirty, released, meta_bytes;
  uint64_t threads_active, threads_exited;
  // Since start, small requests: bytes asked for vs bytes of the blocks
  // that served them (the difference is the size classes' rounding).
  uint64_t requested_bytes, block_bytes;
  GlobalStats global;
  uint32_t named_used;  // named[0, named_used): the named counters, by id
  NamedCount named[k_named_counters];
};

// Compute a snapshot from a region (ours, or mapped from another process).
// Returns false if the region is not a valid ringpool stats region.
bool snapshot_from(const SharedStats* s, size_t mapped_size, uint64_t now_ms, Snapshot* out);

// The totals of named counters [first, first + n) over the header and the
// first `slots` slots, into out: the one merge, for snapshot_from and for
// the process's own reads (counters_read). first + n <= k_named_counters.
void sum_named(const SharedStats* s, uint32_t slots, unsigned first, unsigned n, uint64_t* out);

// Makes a counter's description from a region safe to print, as NamedCount
// says; false when that changed anything.
bool clean_counter_name(CounterName* c);

// Bytes as people read them, "512 B", "12.3 MiB" (binary units), into b;
// returns b. Every output of the library and the tools uses it.
const char* format_bytes(uint64_t v, char* b, size_t n);

// Format into buf (always NUL-terminated); returns the length it needed.
size_t format_text(const Snapshot& s, bool classes, char* buf, size_t size);
size_t format_json(const Snapshot& s, char* buf, size_t size);

}  // namespace ringpool::pool
