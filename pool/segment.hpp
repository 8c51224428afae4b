// Segments, pages, large and huge blocks: the allocator's global back end.
// Everything here runs under one global lock (g_lock); the per-thread front
// end (heap.cpp) comes here only on slow paths.
//
// Glossary
//   dirty     free memory that may still be resident. Purging decommits it.
//   delay     dirty memory older than RINGPOOL_PURGE_DELAY is purged on
//             the next slow-path visit, down to `retain`.
//   retain    the dirty bytes a purge leaves: max(RINGPOOL_RETAIN,
//             in-use / 8).
//   drop      dirty memory beyond max(128 MiB, in-use / 2) is purged at
//             once, whatever its age.
//   purger    a detached thread started when more than 2 x RINGPOOL_RETAIN
//             is dirty: it purges on the delay for a program that no longer
//             calls malloc, and exits when little is left.
#pragma once
#include <stddef.h>

#include "stats.hpp"
#include "types.hpp"

namespace ringpool::pool {

extern platform::Mutex g_lock;

// A fresh small page of class `cls` for heap `h`, or nullptr (ENOMEM).
Page* segment_page_alloc(Heap* h, unsigned cls);
// Return a small page whose blocks are all free.
void segment_page_free(Page* pg);
// The same for a list of them (linked through next), under one lock.
void segment_pages_free(Page* list);

// Before a fork: back up to `budget` dense halves of segments (2 MiB, none
// of their units purged or never touched) with huge pages, so that fork
// copies one page-table entry for each instead of 512, and a child's exit
// drops as few. Each half is tried once until a purge splits it again.
// Returns how many the kernel backed.
unsigned segments_collapse_dense(unsigned budget);

// Large blocks: 32 KiB < size <= k_large_max, alignment <= 2 MiB.
void* large_alloc(size_t size, size_t align, bool zero);
void large_free(Page* pg);
// Grow or shrink a large block in place; true on success.
bool large_resize(Page* pg, size_t new_size);

// Huge blocks: mapped on their own.
void* huge_alloc(size_t size, size_t align, bool zero);
// Returns false when p is not a huge block of ours.
bool huge_free(void* p);
// Usable size of a huge block, or 0 when p is not one of ours.
size_t huge_usable(const void* p);
// For a p that is no block of ours (not in a segment, not a huge block's
// start): whether it still points into memory of ours, and which. Takes
// g_lock and may scan the huge table: only for pointers about to be
// called foreign.
enum OursKind : uint8_t {
  k_not_ours,
  k_ours_freed_huge,   // a freed huge block whose mapping is kept for reuse
  k_ours_huge_inside,  // inside a live huge block, not its start
  k_ours_metadata,     // the allocator's own metadata (heaps, tables)
};
OursKind ours_not_block(const void* p);
// Resize: returns the (maybe moved) block, or nullptr when it cannot (the
// block is unchanged then).
void* huge_realloc(void* p, size_t new_size);

// Purge what has been dirty longer than the delay (cheap when nothing is).
void purge_tick();
// Purge everything free now (malloc_trim). Returns true if memory was freed.
bool purge_all();

// Fork child: no purge thread exists here any more.
void purge_fork_child();
// Set while this thread holds a lock that its own malloc may need (a
// shared heap's, heap.cpp): starting the purge thread (pthread_create
// allocates) is then left to the next release of g_lock.
extern __thread bool t_defer_purger __attribute__((tls_model("initial-exec")));

// Internal metadata (heaps): zeroed, never freed.
void* meta_alloc(size_t size);

// The back end's totals as last published to the stats region (g_lock).
BackendStats backend_totals();

// Calls f(seg, ctx) for each segment, under g_lock.
void for_each_segment(void (*f)(Segment*, void*), void* ctx);

}  // namespace ringpool::pool
