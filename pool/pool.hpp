// pool/: the allocator. This umbrella header is what preload/ and the tests
// include: the inline fast paths, and the slow paths behind them.
//
// Fast path of alloc: one TLS load, a class lookup, pop from the page the
// heap allocates from. A thread that never allocated has the static empty
// heap, whose pages are all the static empty page: its pop fails and the
// slow path sets the thread up, so there is no "initialised?" branch.
//
// Fast path of free: the chunk map says "one of our segments" (one byte
// load, which also rejects foreign pointers), masking finds the segment and
// its unit table the page; the block must be a block start (one multiply)
// and not carry the free canary (a double free); then a page of this
// thread's heap takes it on its local free list.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "options.hpp"
#include "size_class.hpp"
#include "stats.hpp"
#include "types.hpp"

#define RINGPOOL_LIKELY(x) __builtin_expect(!!(x), 1)
#define RINGPOOL_UNLIKELY(x) __builtin_expect(!!(x), 0)

// Everything declared here is internal to the library: hidden visibility
// lets the compiler address globals directly rather than through the GOT.
#pragma GCC visibility push(hidden)

namespace ringpool::pool {

extern uint8_t g_chunk_map[size_t{1} << (k_address_bits - k_chunk_shift)];
extern Heap g_empty_heap;
extern uintptr_t g_cookie;  // per-process secret (init), never 0
// RINGPOOL_HARDEN=1: every operation takes the slow path, where free lists
// are encoded with g_list_key and a per-page bitmap catches every double
// free. Otherwise g_list_key is 0 and encoding is the identity.
extern bool g_harden;
extern uintptr_t g_list_key;
// Set at init when hardening is asked for: each thread's heap lives outside
// t_heap, so every malloc and free takes a slow path, where the checks run.
// Off: the fast paths pay nothing.
extern bool g_slow_mode;

// The heap profiler's view of allocation (set by preload/ when profiling).
// The pool picks the sampled blocks and keeps its fast paths: a page hands
// the fast path only the blocks that end before the thread's next sample
// point, so the block that holds the point is allocated on a slow path, from
// a heap no thread owns, whose frees take the remote path, which reports them.
struct ProfileHooks {
  int64_t (*next_gap)();                    // bytes to the next sample point, >= 0
  void (*on_sample)(void* p, size_t size);  // p (size bytes asked) holds a sample point
  void (*on_free)(void* p);                 // p may have been sampled
  void (*on_slow)();                        // a malloc slow path: answer requests
};
extern ProfileHooks g_profile_hooks;
extern bool g_sampling;  // the hooks are set
void set_profile_hooks(const ProfileHooks& hooks);
// A large or huge block was allocated (on a slow path): sample it if the
// thread's next sample point falls in it.
void sample_large(void* p, size_t n);
// The bytes of a thread's allocation stream that a block of n bytes spans
// for sampling: its class size if small (what a page hands out), else n.
inline size_t sample_span(size_t n) { return n <= k_small_max ? k_classes.size[class_of(n)] : n; }
inline Block* list_enc(Block* p) { return reinterpret_cast<Block*>(reinterpret_cast<uintptr_t>(p) ^ g_list_key); }
extern __thread Heap* t_heap __attribute__((tls_model("initial-exec")));

// Where pointers that are not ours go (set by preload/; default: leaked
// for free, 0 for the usable size).
struct ForeignHooks {
  void (*free)(void*);
  size_t (*usable_size)(void*);
};
void set_foreign_hooks(const ForeignHooks& hooks);

// ---- slow paths (heap.cpp, pool.cpp) -----------------------------------
void* alloc_slow(size_t n, bool zero);
void free_local_slow(Page* pg);
void free_other(Page* pg, void* p, uintptr_t owner);  // owner: the unit entry's heap
void free_not_segment(void* p);
// These never return; they are not declared [[noreturn]] so that the fast
// path can jump to them without aligning its stack first.
void report_double_free(void* p);
void report_not_block_start(void* p);
// p lies in segment page pg and is no block of it (inside one, past the
// carved ones, in a free page or the segment's header): stop, saying which.
[[noreturn]] void report_not_a_block(bool in_free, const Page* pg, const void* p);
// --*used, and whether the result is <= 0 as an int32_t.
inline bool used_dec_reaches_zero(uint32_t* used) {
#if defined(__x86_64__)
  asm goto("subl $1, %0\n\tjle %l[le]" : "+m"(*used) : : "cc" : le);
  return false;
le:
  return true;
#else
  return (int32_t)--*used <= 0;
#endif
}
// Is p the start of a block the page has carved (see Page::carved_below)?
// Any thread may ask of the routing line; the owner's fast path reads its
// copies on line 0 plainly, which lets the compiler compare with memory.
inline uint64_t block_product(uint32_t start32, uint64_t div_magic, const void* p) {
  return (uint64_t)((uint32_t)reinterpret_cast<uintptr_t>(p) - start32) * div_magic;
}
inline bool block_start(const Page* pg, const void* p) {
  return block_product(pg->start32, pg->div_magic, p) < __atomic_load_n(&pg->carved_below, __ATOMIC_RELAXED);
}
inline bool block_start_owner(const Page* pg, const void* p) {
  return block_product(pg->own_start32, pg->own_div_magic, p) < pg->own_carved_below;
}
// For a p that block_start refuses: is it a block-aligned address past the
// blocks carved (never allocated) rather than an address inside a block?
inline bool past_carved(const Page* pg, const void* p) {
  return block_product(pg->start32, pg->div_magic, p) < pg->div_magic;
}

// ---- the malloc family, glibc's semantics --------------------------------
void* calloc(size_t n, size_t size);
void* realloc(void* p, size_t n);
void* reallocarray(void* p, size_t n, size_t size);
void* aligned_alloc(size_t align, size_t n);   // any power of two; EINVAL/ENOMEM
int posix_memalign(void** out, size_t align, size_t n);
void* memalign(size_t align, size_t n);         // glibc's lenient memalign
void* valloc(size_t n);
void* pvalloc(size_t n);
size_t usable_size(const void* p);
// True when p is a block start of ours (used by preload for foreign checks).
bool owns(const void* p);
// Return all free memory to the OS; true if something was released.
bool trim();
// Global initialisation: options, thread-exit key, fork handlers. Called
// from the first slow path and from the library constructor; idempotent.
void init();
inline void ensure_init();
// Flush the calling thread's heap as if it exited (tests, fork child).
void thread_done();
// Give back what the calling thread's heap does not need (malloc_trim).
void thread_collect();
extern std::atomic<int> g_init_state;  // 0 not started, 1 running, 2 done

struct UsageTotals {
  size_t live_bytes;    // bytes in blocks handed out (block sizes)
  size_t live_blocks;
  size_t page_bytes;    // bytes in small and large pages
  size_t free_in_pages; // free bytes inside small pages
  size_t mapped;
  size_t dirty;
  size_t purged;
  size_t heaps_active, heaps_idle;
};
UsageTotals usage();

inline void ensure_init() {
  if (RINGPOOL_UNLIKELY(g_init_state.load(std::memory_order_acquire) != 2)) init();
}

// ---- fast paths -----------------------------------------------------------

inline void* alloc(size_t n) {
  unsigned c;
  if (RINGPOOL_LIKELY(n <= 1024)) c = k_classes.small_index[(n + 15) >> 4];
  else if (n <= k_small_max) c = class_of_large(n);
  else return alloc_slow(n, false);
  Heap* h = t_heap;
  Page* pg = h->pages[c];
  Block* b = pg->free;
  if (RINGPOOL_LIKELY(b != nullptr)) {
    pg->free = b->next;
    pg->used++;
    b->canary = 0;
#ifndef RINGPOOL_NO_STATS
    h->counters->allocs[c]++;
    h->counters->requested += n;
#endif
    return b;
  }
  return alloc_slow(n, false);
}

inline void free(void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  uintptr_t chunk = a >> k_chunk_shift;  // one shift serves the bound and the index
  if (RINGPOOL_LIKELY(chunk < sizeof g_chunk_map && g_chunk_map[chunk] == k_chunk_segment)) {
    // The unit's entry as two words of the segment's first bytes, indexed
    // so that both loads take the segment as base and the index scaled.
    const uintptr_t* words = reinterpret_cast<const uintptr_t*>(segment_of(p)->units);
    size_t i = (a >> (k_unit_shift - 1)) & (2 * k_units - 2);  // 2 * unit
    uintptr_t owner = __atomic_load_n(&words[i], __ATOMIC_RELAXED);
    Page* pg = reinterpret_cast<Page*>(words[i + 1]);
    Heap* h = t_heap;
    if (RINGPOOL_LIKELY(owner == reinterpret_cast<uintptr_t>(h))) {
      Block* b = static_cast<Block*>(p);
      if (RINGPOOL_UNLIKELY(!block_start_owner(pg, p))) return report_not_block_start(p);
      uintptr_t canary = g_cookie ^ a;
      if (RINGPOOL_UNLIKELY(b->canary == canary)) return report_double_free(p);
      b->canary = canary;
      b->next = pg->local_free;
      pg->local_free = b;
#ifndef RINGPOOL_NO_STATS
      h->counters->frees[pg->own_cls]++;
#endif
      // Zero: empty (not the head page), or a full page woken (types.hpp).
      // (One subtraction in memory that sets the flags the branch reads;
      // the compiler made it a load, a subtraction, a store and a test.)
      if (RINGPOOL_LIKELY(!used_dec_reaches_zero(&pg->used))) return;
      free_local_slow(pg);
      return;
    }
    free_other(pg, p, owner);
    return;
  }
  free_not_segment(p);
}

}  // namespace ringpool::pool

#pragma GCC visibility pop
