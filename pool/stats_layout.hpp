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
//
// One field list (RINGPOOL_GLOBAL_COUNTERS: name, counter or gauge, help)
// drives the struct, the snapshot and every output format (text, JSON,
// tools/metrics.cpp), so they cannot drift apart.
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
  X(idle_heap_bytes, gauge, "bytes in pages held by the heaps of exited threads") \
  X(socket_routed, counter, "socket calls routed through io_uring")              \
  X(socket_passed, counter, "socket calls passed straight to libc")              \
  X(socket_fallback, counter, "socket calls that fell back after io_uring failed")

struct GlobalStats {
#define RINGPOOL_FIELD(name, kind, help) uint64_t name;
  RINGPOOL_GLOBAL_COUNTERS(RINGPOOL_FIELD)
#undef RINGPOOL_FIELD
};

// Rows of the per-class table: the small classes, then large, then huge.
constexpr unsigned k_row_large = k_num_classes;
constexpr unsigned k_row_huge = k_num_classes + 1;
constexpr unsigned k_rows = k_num_classes + 2;

// The io_uring shim's socket calls, counted in the calling thread's slot
// (global only for a thread that has no heap yet).
enum SocketCount : unsigned { k_socket_routed, k_socket_passed, k_socket_fallback, k_socket_counts };

// A cache line or more of its own: each slot is written by one thread on
// every malloc and free, and a slot that shared a line with its neighbour
// (or with the back end's totals before the first) made two threads'
// fast paths contend for it.
struct alignas(64) HeapCounters {
  uint64_t allocs[k_num_classes];
  uint64_t frees[k_num_classes];  // frees made by this thread, into any page
  uint64_t requested;  // bytes the program asked for in small requests, since start
  uint64_t sockets[k_socket_counts];
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
constexpr uint32_t k_stats_layout = 5;

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
};

// Compute a snapshot from a region (ours, or mapped from another process).
// Returns false if the region is not a valid ringpool stats region.
bool snapshot_from(const SharedStats* s, size_t mapped_size, uint64_t now_ms, Snapshot* out);

// Bytes as people read them, "512 B", "12.3 MiB" (binary units), into b;
// returns b. Every output of the library and the tools uses it.
const char* format_bytes(uint64_t v, char* b, size_t n);

// Format into buf (always NUL-terminated); returns the length it needed.
size_t format_text(const Snapshot& s, bool classes, char* buf, size_t size);
size_t format_json(const Snapshot& s, char* buf, size_t size);

}  // namespace ringpool::pool
