// The allocator's shared structures.
//
// Glossary
//   chunk     4 MiB of address space, aligned; the chunk map says per chunk
//             whether it starts one of our segments (k_chunk_segment), holds
//             the start of huge blocks (a count), or is not ours (0).
//   segment   a 4 MiB, 4 MiB-aligned mapping of 256 units: the first
//             k_header_units hold this header, the rest are handed out as
//             pages.
//   page      a span of 1..253 units inside a segment. A small page holds
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
constexpr unsigned k_units = k_segment / k_unit;        // 256
constexpr size_t k_large_max = 2 * 1024 * 1024;         // above: huge
constexpr size_t k_thp_size = 2 * 1024 * 1024;          // a transparent huge page (x86-64)
constexpr unsigned k_thp_units = k_thp_size / k_unit;   // 128: half a segment
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
// (segment->units maps every unit of a span to it).
// Invariant (small pages), with n = used + asleep:
//   n == blocks handed out + |xfree| + head, and
//   n - head + |free| + |local_free| == capacity
// where head is 1 while the page is first in its class queue: that pin keeps
// the page a thread allocates from out of the "empty" slow path when one
// block is allocated and freed in a loop.
// While the page is in the full list, `asleep` of its handed-out blocks are
// counted out of used, which then holds the local frees that wake it: the
// free fast path's one test for "used reached zero" catches both "empty"
// and "has room again", and a page returns to its queue with an eighth of
// its blocks free, not one (a page woken per free would make every
// allocation a slow one where frees scatter over many pages).
// Three cache lines, by who writes them. Line 0 is the owner's: what a
// malloc or a local free of this page reads and writes, with the owner's
// copies of the block geometry (cls, start32, div_magic, carved_below), so
// that a local free touches this line and the segment's unit table only.
// Line 1 routes a pointer for every other thread: the same geometry,
// written when the page is set up (and carved_below when extend() carves
// more), which a free by another thread shares read-only with the owner
// instead of taking the line the owner allocates from. Line 2 is what
// other threads write: the remote-free list (ANCHORS: remote frees stay
// off the owner's hot lines). The owner of a small page is in the unit
// table (page_heap), next to the page pointer a free reads first.
struct alignas(64) Page {
  // ---- line 0: the owner
  Block* free;        // owner: blocks to allocate from
  Block* local_free;  // owner: blocks it freed since `free` was installed
  uint32_t used;      // owner: see above
  uint8_t head;       // owner: first in its class queue (pinned: counts in used)
  uint8_t own_cls;    // the owner's copies of the routing line's fields
  uint16_t capacity;  // owner: blocks carved so far
  uint16_t reserved;  // blocks the span can hold
  uint16_t asleep;    // owner: blocks counted out of used; non-zero iff in the full list
  uint32_t own_start32;
  uint64_t own_div_magic;
  uint64_t own_carved_below;
  Page* next;         // owner: class queue or full list
  Page* prev;         // owner

  // ---- line 1: routing
  alignas(64) uint8_t kind;  // PageKind
  uint8_t span;       // units in the span
  uint8_t cls;
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
  size_t large_size;  // large pages: bytes usable
  uint64_t* hbits;    // RINGPOOL_HARDEN: one bit per block, set while allocated

  // ---- line 2: other threads
  alignas(64) std::atomic<uintptr_t> xfree;  // other threads: remote frees | k_page_full
  Page* reclaim_next;    // under heap->lock
  uint8_t in_reclaimed;  // under heap->lock: linked in heap->reclaimed
};
static_assert(sizeof(Page) == 192, "a page descriptor is three cache lines");
// floor(2^64 / d) + 1, so that e = d * div_magic mod 2^64 is not 0 when d is
// a power of two (there ceil(2^64 / d), the usual constant, gives e = 0).
constexpr uint64_t div_magic_for(uint32_t d) { return UINT64_MAX / d + 1 + ((d & (d - 1)) == 0); }
static_assert(offsetof(Page, prev) < 64 && offsetof(Page, hbits) < 128, "each field on its line");

constexpr uintptr_t k_page_full = 1;
constexpr uintptr_t k_page_abandoned = 2;
constexpr uintptr_t k_page_flags = k_page_full | k_page_abandoned;
inline bool page_in_full(const Page* pg) { return pg->asleep != 0; }
inline uint32_t page_used(const Page* pg) { return pg->used + pg->asleep - pg->head; }
// The page leaves the full state: used counts every handed-out block again.
inline void page_wake(Page* pg) {
  pg->used += pg->asleep;
  pg->asleep = 0;
}

// A set of a segment's units, one bit each.
struct UnitSet {
  static constexpr unsigned k_words = k_units / 64;
  uint64_t w[k_words];

  // The bits of word i that [first, first + n) covers.
  static uint64_t word_bits(unsigned i, unsigned first, unsigned n) {
    unsigned lo = i * 64, hi = lo + 64, end = first + n;
    if (end <= lo || first >= hi) return 0;
    unsigned a = first > lo ? first - lo : 0, b = end < hi ? end - lo : 64;
    return (b - a == 64 ? ~uint64_t{0} : ((uint64_t{1} << (b - a)) - 1)) << a;
  }
  void add(unsigned first, unsigned n) {
    for (unsigned i = 0; i < k_words; i++) w[i] |= word_bits(i, first, n);
  }
  void remove(unsigned first, unsigned n) {
    for (unsigned i = 0; i < k_words; i++) w[i] &= ~word_bits(i, first, n);
  }
  unsigned count_in(unsigned first, unsigned n) const {
    unsigned c = 0;
    for (unsigned i = 0; i < k_words; i++) c += (unsigned)__builtin_popcountll(w[i] & word_bits(i, first, n));
    return c;
  }
  unsigned count() const { return count_in(0, k_units); }
  bool any() const {
    uint64_t m = 0;
    for (unsigned i = 0; i < k_words; i++) m |= w[i];
    return m != 0;
  }
  UnitSet operator&(const UnitSet& o) const {
    UnitSet r;
    for (unsigned i = 0; i < k_words; i++) r.w[i] = w[i] & o.w[i];
    return r;
  }
  // The first unit >= from that is in the set (in = true) or not in it;
  // k_units if there is none.
  unsigned next(unsigned from, bool in) const {
    for (unsigned i = from / 64; i < k_words; i++) {
      uint64_t m = (in ? w[i] : ~w[i]) & word_bits(i, from, k_units - from);
      if (m) return i * 64 + (unsigned)__builtin_ctzll(m);
    }
    return k_units;
  }
  // The first unit of n consecutive members starting at a multiple of
  // align, or 0 if there is none (unit 0 is the header, never free).
  unsigned find_run(unsigned n, unsigned align) const {
    for (unsigned u = next(0, true); u < k_units;) {
      unsigned end = next(u, false);
      unsigned start = (u + align - 1) / align * align;
      if (start + n <= end) return start;
      u = end < k_units ? next(end, true) : k_units;
    }
    return 0;
  }
};

// What a free reads first: the descriptor of the pointer's span and, for a
// small page, its owner (nullptr for a large or free span). Every unit of
// a span holds the same entry; the owner moves only under the old owner's
// lock (page_set_heap), so a reader that took that lock sees one value.
struct UnitEntry {
  std::atomic<Heap*> heap;
  Page* page;
};

struct Segment {
  UnitEntry units[k_units];  // the free path's table
  Page pages[k_units];  // the header units' descriptors are unused
  UnitSet free_units;   // units not in any page
  UnitSet dirty_units;  // free units that may still be resident
  uint64_t dirty_since_ms;  // when dirty_units last became non-empty
  Segment* next;        // the segment list, under g_lock
  Segment* prev;
  uint32_t used_units;
  uint8_t collapsed;    // bit h: units [h * k_thp_units, +k_thp_units) were put on a huge page
};
constexpr unsigned k_header_units = (unsigned)((sizeof(Segment) + k_unit - 1) / k_unit);
static_assert(k_header_units == 4, "the header takes four units");
static_assert(k_units / k_thp_units <= 8, "Segment::collapsed has a bit per huge page");

// A chain of blocks one thread freed into another thread's page, not yet
// pushed (heap.cpp: the remote-free cache). The links are list_enc'd, as
// on a page's lists, so that a chain is spliced onto xfree as it is.
struct RemoteChain {
  Page* page;   // nullptr: the slot is unused
  Block* head;  // the last block freed (nullptr before the first)
  Block* tail;  // the first
  uint32_t n;
};
constexpr unsigned k_remote_slots = 8;  // a bit each in Heap::remote_live

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
  platform::Mutex lock;  // guards reclaimed, in_reclaimed, a move of its pages (page_set_heap)
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
  // Remote frees waiting to be pushed, one chain per page.
  RemoteChain remote[k_remote_slots] = {};
  uint8_t remote_live = 0;  // bit i set: remote[i] holds a chain
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
inline UnitEntry& unit_entry(const void* p) {
  Segment* s = segment_of(p);
  return s->units[unit_of(s, p)];
}
static_assert(sizeof(UnitEntry) == 2 * sizeof(uintptr_t) && offsetof(UnitEntry, heap) == 0 &&
                  offsetof(UnitEntry, page) == sizeof(uintptr_t),
              "the free path reads an entry as two words: the owner, then the page");
inline Page* page_of(const void* p) { return unit_entry(p).page; }
inline Heap* page_heap(const Page* pg, std::memory_order order = std::memory_order_relaxed) {
  Segment* s = segment_of(pg);
  return s->units[pg - s->pages].heap.load(order);
}
// The owner goes last when a page is set up: a reader that loads it with
// acquire sees the rest.
inline void page_set_heap(Page* pg, Heap* h) {
  Segment* s = segment_of(pg);
  unsigned first = (unsigned)(pg - s->pages);
  for (unsigned i = 0; i < pg->span; i++) s->units[first + i].heap.store(h, std::memory_order_release);
}
inline char* page_start(Segment* s, const Page* pg) {
  return reinterpret_cast<char*>(s) + (size_t)(pg - s->pages) * k_unit;
}

}  // namespace ringpool::pool
