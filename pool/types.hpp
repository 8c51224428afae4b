// The allocator's shared structures.
//
// Glossary
//   chunk     4 MiB of address space, aligned; the chunk map says per chunk
//             whether it starts one of our segments (k_chunk_segment), holds
//             the start of huge blocks (a count), or is not ours (0).
//   segment   a 4 MiB, 4 MiB-aligned mapping: unit 0 holds this header,
//             units 1..63 are handed out as pages.
//   page      a span of 1..63 units inside a segment. A small page holds
//             blocks of one size class and belongs to one heap; a large page
//             is one block of 32 KiB..2 MiB and belongs to nobody.
//   huge      a block above 2 MiB, mapped on its own and registered in a hash.
//   heap      a thread's allocation state: per class, a queue of pages whose
//             first page is the one it allocates from. Heaps are never
//             freed: a thread that exits leaves its heap idle with the pages
//             it still has, and a new thread or a page-hungry one takes it.
//   xfree     a page's remote-free list: blocks freed by other threads,
//             pushed with a CAS, taken by the owner in one exchange. Bit 0
//             of the word is k_page_full: the owner moved the page out of
//             its queues and asks the next remote freer to hand it back.
//             Bit 1 is k_page_abandoned: the page belongs to an idle heap,
//             and a freer takes the heap's lock and frees as its owner
//             would, so that the page goes back once its last block does.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <atomic>

#include "platform.hpp"
#include "size_class.hpp"
#include "stats.hpp"

namespace ringpool::pool {

constexpr size_t k_chunk_shift = 22;
constexpr size_t k_chunk = size_t{1} << k_chunk_shift;  // 4 MiB
constexpr size_t k_segment = k_chunk;
constexpr unsigned k_units = k_segment / k_unit;        // 64
constexpr size_t k_large_max = 2 * 1024 * 1024;         // above: huge
constexpr unsigned k_address_bits = 47;                 // x86-64 user space
constexpr uint8_t k_chunk_segment = 0xff;

// A free block. `canary` is cookie ^ address while the block is free and 0
// once it is handed out, so a second free of the same block is caught with
// one compare (blocks are at least 16 bytes). It must depend on the
// block's address: programs copy uninitialised bytes (realloc, struct
// padding), and a per-page value such as the descriptor's address, copied
// from a stale free block into another block of the same page, read as a
// double free.
struct Block {
  Block* next;
  uintptr_t canary;
};

enum PageKind : uint8_t { k_kind_free = 0, k_kind_small = 1, k_kind_large = 2 };

struct Heap;

// One per unit of a segment; only the first unit of a span is used
// (segment->unit_page maps every unit of a span to it).
// Invariant (small pages), with n = used & ~k_used_full:
//   n == blocks handed out + |xfree| + head, and
//   n - head + |free| + |local_free| == capacity
// where head is 1 while the page is first in its class queue: that pin keeps
// the page a thread allocates from out of the "empty" slow path when one
// block is allocated and freed in a loop.
// Bit 31 of used (k_used_full) is set while the page is in the full list,
// so one signed test on the free fast path catches both "empty" and "full".
// Two cache lines. Line 0 is everything a malloc or free of this page
// reads or writes; line 1 is what other threads write (the remote-free
// list) and what only slow paths touch, so a remote free's CAS never takes
// the line the owner allocates from (ANCHORS: remote frees stay off the
// owner's hot lines). A remote free still reads line 0 to route the block.
struct alignas(64) Page {
  // ---- line 0
  Block* free;        // owner: blocks to allocate from
  Block* local_free;  // owner: blocks it freed since `free` was installed
  uint32_t used;      // owner: see above
  uint8_t head;       // owner: first in its class queue (pinned: counts in used)
  uint8_t kind;       // PageKind
  uint8_t span;       // units in the span
  uint8_t cls;
  std::atomic<Heap*> heap;  // owner (small pages); moved only by a merge
  // Is p the start of a block carved so far? With n = (uint32)(p - start32)
  // and d = block_size, n % d == 0  <=>  n * div_magic < div_magic (mod
  // 2^64), where div_magic = floor(2^64 / d) + 1 (Lemire et al., 2019). For n = k*d
  // the product is k * e with e = d * div_magic mod 2^64 (0 < e <= d), so
  // one compare with carved_below = capacity * e also says k < capacity:
  // the page's tail and the blocks extend() has not carved are refused.
  uint32_t start32;   // low 32 bits of the page's first byte
  uint32_t block_size;
  uint64_t div_magic;
  uint64_t carved_below;  // owner writes (extend), any thread reads
  uint16_t capacity;  // owner: blocks carved so far
  uint16_t reserved;  // blocks the span can hold
  uint8_t in_reclaimed;  // under heap->lock: linked in heap->reclaimed

  // ---- line 1
  alignas(64) std::atomic<uintptr_t> xfree;  // other threads: remote frees | k_page_full
  Page* next;         // owner: class queue or full list
  Page* prev;         // owner
  Page* reclaim_next;  // under heap->lock
  size_t large_size;  // large pages: bytes usable
  uint64_t* hbits;    // RINGPOOL_HARDEN: one bit per block, set while allocated
};
static_assert(sizeof(Page) == 128, "a page descriptor is two cache lines");
// floor(2^64 / d) + 1, so that e = d * div_magic mod 2^64 is not 0 when d is
// a power of two (there ceil(2^64 / d), the usual constant, gives e = 0).
constexpr uint64_t div_magic_for(uint32_t d) { return UINT64_MAX / d + 1 + ((d & (d - 1)) == 0); }
static_assert(offsetof(Page, in_reclaimed) < 64, "line 0 holds the fast path's fields");

constexpr uintptr_t k_page_full = 1;
constexpr uintptr_t k_page_abandoned = 2;
constexpr uintptr_t k_page_flags = k_page_full | k_page_abandoned;
constexpr uint32_t k_used_full = 0x80000000u;
inline bool page_in_full(const Page* pg) { return (pg->used & k_used_full) != 0; }
inline uint32_t page_used(const Page* pg) { return (pg->used & ~k_used_full) - pg->head; }

struct Segment {
  Page* unit_page[k_units];  // unit -> its span's descriptor (the free path)
  Page pages[k_units];  // pages[0] is unused: unit 0 holds this header
  uint64_t free_mask;   // units not in any page
  uint64_t dirty_mask;  // free units that may still be resident
  uint64_t dirty_since_ms;  // when dirty_mask last went from 0 to non-0
  Segment* next;        // the segment list, under g_lock
  Segment* prev;
  uint32_t used_units;
};
static_assert(sizeof(Segment) <= k_unit, "segment header fits unit 0");

struct Heap {
  constexpr Heap(Page* empty, HeapCounters* counters)
      : pages{}, counters(counters), last{}, full(nullptr), lock(), reclaimed(nullptr), reclaim_pending(0),
        state(0), orphan_pages(0), next_all(nullptr), next_idle(nullptr) {
    for (unsigned c = 0; c < k_num_classes; c++) pages[c] = empty;
  }
  // The fast path reads pages[c] only: the first page of class c's queue, or
  // the static empty page (whose free list is always empty).
  Page* pages[k_num_classes];
  HeapCounters* counters;  // this heap's slot in the shared stats region
  Page* last[k_num_classes];
  Page* full;  // doubly linked through next/prev
  platform::Mutex lock;  // guards reclaimed, in_reclaimed, page->heap moves
  Page* reclaimed;       // pages that left the full state by a remote free
  std::atomic<uint8_t> reclaim_pending;
  uint8_t state;         // HeapState, under g_lock
  uint8_t orphan_pages;  // under lock: a fork child's pages, lists not yet rebuilt
  Heap* next_all;        // every heap ever made, under g_lock
  Heap* next_idle;       // idle or free list, under g_lock
  // Set when the stats region had no slot left: counters is then private
  // memory, and what it counted up to flushed_ms is in the region's last
  // slot (heap_flush_stats).
  HeapCounters* flushed = nullptr;
  uint64_t flushed_ms = 0;
};

enum HeapState : uint8_t {
  k_heap_active = 0,  // owned by a live thread
  k_heap_idle = 1,    // its thread exited; it may still hold pages
  k_heap_orphan = 2,  // a fork child's copy of another thread's heap (while fork_child runs)
  k_heap_shared = 3,  // no thread's: allocated from under a lock (heap.cpp)
};

// A segment from an interior pointer (only valid if the chunk map says so).
inline Segment* segment_of(const void* p) {
  return reinterpret_cast<Segment*>(reinterpret_cast<uintptr_t>(p) & ~(uintptr_t)(k_segment - 1));
}
inline unsigned unit_of(const Segment* s, const void* p) {
  return (unsigned)((reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(s)) >> k_unit_shift);
}
inline Page* page_of(const void* p) {
  Segment* s = segment_of(p);
  return s->unit_page[unit_of(s, p)];
}
inline char* page_start(Segment* s, const Page* pg) {
  return reinterpret_cast<char*>(s) + (size_t)(pg - s->pages) * k_unit;
}

}  // namespace ringpool::pool
