// Thread heaps: the slow paths behind alloc/free, full pages, remote frees,
// hardened allocation (idle.cpp: thread start and exit, idle heaps, fork;
// sampling.cpp: which blocks the profiler samples, the shared heaps).
//
// Who touches what (see types.hpp):
//   owner thread   page->free, local_free, used, head, queues, full list
//   freeing thread heap->remote: its chains of other threads' blocks,
//                  pushed onto their pages' xfree
//   any thread     page->xfree by CAS; a freer that finds k_page_full set
//                  takes heap->lock, clears it and links the page into
//                  heap->reclaimed (so the owner sees the page has room again)
//   heap->lock     an idle heap's queues and pages (k_page_abandoned): the
//                  freer of a block is its owner for that moment
//   g_lock         heap lists (all, idle, free), the back end
// A page's owner changes only under the old heap's lock (heap_claim), so a
// remote freer re-checks page_heap after taking that lock. Lock order:
// g_lock, then a heap's lock; nothing takes g_lock under a heap's lock.
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <new>

#include "heap.hpp"

namespace ringpool::pool {

using platform::LockGuard;

Page g_empty_page;
HeapCounters g_empty_counters;
constinit Heap g_empty_heap{&g_empty_page, &g_empty_counters};
bool g_harden;
bool g_slow_mode;
uintptr_t g_list_key;
ProfileHooks g_profile_hooks;
bool g_sampling;
uintptr_t g_cookie = 0x9e3779b97f4a7c15u;  // replaced by a random one at init
std::atomic<int> g_init_state;
__thread Heap* t_heap __attribute__((tls_model("initial-exec"))) = &g_empty_heap;
__thread Heap* t_slow_heap __attribute__((tls_model("initial-exec"))) = &g_empty_heap;

Heap* g_all_heaps;
Heap* g_idle_heaps;
Heap* g_free_heaps;
std::atomic<size_t> g_idle_count;
__thread bool t_in_init __attribute__((tls_model("initial-exec")));
__thread bool t_exited __attribute__((tls_model("initial-exec")));
pthread_key_t g_key;
bool g_key_ok;
SharedHeap g_sample;
SharedHeap g_late;

namespace {

// ---- carving (owner only) ----------------------------------------------------

// Carve the next blocks of a page: those whose links lie in the OS page
// where carving stands (at least one), so that memory is touched only as
// it is used, never an OS page ahead. Every free block carries its canary,
// these too: a fork child tells free blocks from live ones by it alone.
void extend(Page* pg) {
  uint32_t size = pg->block_size;
  char* start = page_start(segment_of(pg), pg) + (size_t)pg->capacity * size;
  uintptr_t a = reinterpret_cast<uintptr_t>(start);
  uintptr_t os_page_end = (a | (platform::k_os_page - 1)) + 1;
  uint32_t n = (uint32_t)((os_page_end - a - sizeof(Block)) / size) + 1;
  if (n > (uint32_t)(pg->reserved - pg->capacity)) n = pg->reserved - pg->capacity;
  Block* first = reinterpret_cast<Block*>(start);
  Block* b = first;
  for (uint32_t i = 1; i < n; i++) {
    Block* next = reinterpret_cast<Block*>(reinterpret_cast<char*>(b) + size);
    b->next = list_enc(next);
    b->canary = g_cookie ^ reinterpret_cast<uintptr_t>(b);
    b = next;
  }
  b->next = list_enc(pg->free);
  b->canary = g_cookie ^ reinterpret_cast<uintptr_t>(b);
  pg->free = first;
  pg->capacity = (uint16_t)(pg->capacity + n);
  RINGPOOL_DEBUG_ASSERT(pg->capacity <= pg->reserved);
  pg->own_carved_below = pg->capacity * (pg->block_size * pg->div_magic);
  __atomic_store_n(&pg->carved_below, pg->own_carved_below, __ATOMIC_RELAXED);
}

bool refill(Page* pg) {
  if (pg->free) return true;
  if (pg->local_free) {
    pg->free = pg->local_free;
    pg->local_free = nullptr;
    return true;
  }
  if (collect_remote(pg)) return true;
  if (pg->capacity < pg->reserved) {
    extend(pg);
    return true;
  }
  return false;
}


// ---- full pages and their return -------------------------------------------

// Debug checks: the page invariant of types.hpp, with the lists walked
// (bounded by the capacity) and the remote list left out (other threads
// push to it).
[[maybe_unused]] bool page_list_lengths_ok(const Page* pg) {
  uint32_t n = 0;
  for (const Block* lists[2] = {pg->free, pg->local_free}; const Block* l : lists) {
    for (const Block* b = l; b; b = list_enc(b->next))
      if (++n > pg->capacity) return false;
  }
  return page_used(pg) + n == pg->capacity;
}

}  // namespace

// Take the reclaimed list under the lock (the caller holds it).
Page* take_reclaimed_locked(Heap* h) {
  Page* list = h->reclaimed;
  h->reclaimed = nullptr;
  h->reclaim_pending.store(0, std::memory_order_relaxed);
  for (Page* p = list; p; p = p->reclaim_next) p->in_reclaimed = 0;
  return list;
}

namespace {

// Pages in the list got a remote free while full: back into their queue.
// reclaim_next stays valid: only the owner can make a page full again.
void requeue_reclaimed(Heap* h, Page* list) {
  while (list) {
    Page* next = list->reclaim_next;
    if (page_in_full(list)) {
      full_remove(h, list);
      queue_push_back(h, list->cls, list);
      stat_inc(stats_global().pages_reclaimed);
    }
    list = next;
  }
}

}  // namespace

void drain_reclaimed(Heap* h) {
  Page* list;
  {
    LockGuard g(h->lock);
    list = take_reclaimed_locked(h);
  }
  requeue_reclaimed(h, list);
}

namespace {

// The first page of class c has nothing left: move it to the full list,
// where a remote free brings it back. False if remote frees arrived first.
bool mark_full(Heap* h, Page* pg) {
  RINGPOOL_DEBUG_ASSERT(pg->free == nullptr && pg->local_free == nullptr && page_list_lengths_ok(pg));
  Page* list;
  bool ok;
  {
    LockGuard g(h->lock);
    list = take_reclaimed_locked(h);  // a page is never both full and listed
    uintptr_t expected = 0;
    ok = pg->xfree.compare_exchange_strong(expected, k_page_full, std::memory_order_acq_rel,
                                           std::memory_order_relaxed);
  }
  requeue_reclaimed(h, list);
  if (!ok) return false;
  queue_remove(h, pg->cls, pg);
  full_push(h, pg);
  return true;
}

// A local free hit a full page: it has room again.
void unfull(Heap* h, Page* pg) {
  {
    LockGuard g(h->lock);
    uintptr_t x = pg->xfree.load(std::memory_order_relaxed);
    while ((x & k_page_full) &&
           !pg->xfree.compare_exchange_weak(x, x & ~k_page_full, std::memory_order_acq_rel,
                                            std::memory_order_relaxed)) {
    }
  }
  full_remove(h, pg);
  queue_push_back(h, pg->cls, pg);
}

// pg is in a class queue with no block handed out: give it back.
void release_page(Heap* h, Page* pg) {
  RINGPOOL_DEBUG_ASSERT(page_used(pg) == 0 && !page_in_full(pg) && page_list_lengths_ok(pg));
  if (pg->in_reclaimed) drain_reclaimed(h);
  queue_remove(h, pg->cls, pg);
  segment_page_free(pg);
}

// ---- remote frees -----------------------------------------------------------

// A free into another thread's page counts in the freeing thread's own
// slot, a plain add: a shared atomic counter here was a contended line at
// 16 threads. A thread that has no heap yet (it has only freed) takes one;
// one whose heap went back at exit counts into the shared array.
// Returns the freeing thread's heap, or nullptr where there is none.
inline __attribute__((always_inline)) Heap* count_remote_free(unsigned cls) {
  Heap* h = current_heap();
  if (RINGPOOL_UNLIKELY(h == &g_empty_heap)) {
    if (t_exited || (h = thread_init(false)) == nullptr) {
      stat_inc(stats_region()->remote_frees[cls]);
      return nullptr;
    }
  }
  h->counters->frees[cls]++;
  flush_stats(h, false);
  return h;
}

// xfree carries a flag: the page is full (its owner wants it back) or
// abandoned (its freer acts as owner). Returns a page to give back.
__attribute__((noinline)) Page* free_remote_locked(Page* pg, Block* b) {
  for (;;) {
    Heap* h = page_heap(pg, std::memory_order_acquire);
    LockGuard g(h->lock);
    if (page_heap(pg) != h) continue;  // claimed by another heap
    b->canary = g_cookie ^ reinterpret_cast<uintptr_t>(b);
    uintptr_t x = pg->xfree.load(std::memory_order_relaxed);
    if (x & k_page_abandoned) {
      if (h->orphan_pages) return nullptr;  // the canary alone marks it free
      return free_abandoned_locked(h, pg, b);
    }
    for (;;) {
      bool was_full = (x & k_page_full) != 0;
      b->next = list_enc(reinterpret_cast<Block*>(x & ~k_page_full));
      if (pg->xfree.compare_exchange_weak(x, reinterpret_cast<uintptr_t>(b), std::memory_order_release,
                                          std::memory_order_relaxed)) {
        if (was_full) {
          pg->in_reclaimed = 1;
          pg->reclaim_next = h->reclaimed;
          h->reclaimed = pg;
          h->reclaim_pending.store(1, std::memory_order_release);
        }
        return nullptr;
      }
    }
  }
}

// Stores the block's free canary itself: on an abandoned page only under
// the heap's lock, since a fork child rebuilds an orphan's free lists from
// the canaries under that lock, and a canary stored before the rebuild by a
// free that is pushed after it would put the block on two lists.
void free_remote(Page* pg, Block* b) {
  uintptr_t x = pg->xfree.load(std::memory_order_relaxed);
  if (RINGPOOL_LIKELY(!(x & k_page_abandoned))) {
    b->canary = g_cookie ^ reinterpret_cast<uintptr_t>(b);
    do {
      if (RINGPOOL_UNLIKELY(x & k_page_flags)) break;
      b->next = list_enc(reinterpret_cast<Block*>(x));
      if (pg->xfree.compare_exchange_weak(x, reinterpret_cast<uintptr_t>(b), std::memory_order_release,
                                          std::memory_order_relaxed))
        return;
    } while (true);
  }
  if (Page* empty = free_remote_locked(pg, b)) segment_page_free(empty);
}

// ---- the remote-free cache ---------------------------------------------------
//
// A free into another thread's page costs a CAS on the page's xfree, and
// the CAS waits for the stores to the block before it (the line is
// usually the allocating thread's): where one thread frees what another
// allocates, that wait was most of the free. So the freer chains blocks
// per page in a few slots of its own heap, with plain stores, and pushes a
// chain with one CAS when it holds k_remote_chain_bytes, when another page
// needs its slot, on its allocation slow path, at malloc_trim and at exit.
// What a thread holds is bounded by k_remote_slots chains; a lone free
// waits for the next remote free that needs its slot.
//
// Chains never start on an abandoned page: a fork child rebuilds an
// orphan's lists from the canaries, and a block cached with its canary set
// before such a rebuild and pushed after it would be on two lists.
// fork_child pushes every heap's chains before it marks the orphans.

constexpr uint32_t k_remote_chain_bytes = 16 * 1024;

inline unsigned remote_slot(const Page* pg) {
  uintptr_t a = reinterpret_cast<uintptr_t>(pg);  // descriptors are 3 lines apart
  return (unsigned)((a >> 6) ^ (a >> k_chunk_shift)) % k_remote_slots;
}

// Push a chain onto its page. The slot is cleared first: a fork child
// pushing the copy of a chain whose thread stopped mid-push loses those
// blocks rather than pushing them twice.
void remote_push(Heap* h, unsigned slot) {
  RemoteChain* ch = &h->remote[slot];
  h->remote_live &= (uint8_t)~(1u << slot);
  Page* pg = ch->page;
  Block* head = ch->head;
  Block* tail = ch->tail;
  uint32_t n = ch->n;
  *ch = RemoteChain{};
  uintptr_t x = pg->xfree.load(std::memory_order_relaxed);
  while (!(x & k_page_flags)) {
    tail->next = list_enc(reinterpret_cast<Block*>(x));
    if (pg->xfree.compare_exchange_weak(x, reinterpret_cast<uintptr_t>(head), std::memory_order_release,
                                        std::memory_order_relaxed))
      return;
  }
  // Full or abandoned: one block at a time, the way that handles both.
  for (Block* b = head; n-- > 0;) {
    Block* next = list_enc(b->next);
    free_remote(pg, b);
    b = next;
  }
}

void free_remote_cached(Heap* h, Page* pg, Block* b) {
  unsigned slot = remote_slot(pg);
  RemoteChain* ch = &h->remote[slot];
  if (ch->page != pg) {
    if (ch->page) remote_push(h, slot);
    if (pg->xfree.load(std::memory_order_relaxed) & k_page_abandoned) return free_remote(pg, b);
    *ch = RemoteChain{pg, nullptr, b, 0};
    h->remote_live |= (uint8_t)(1u << slot);
  }
  b->canary = g_cookie ^ reinterpret_cast<uintptr_t>(b);
  b->next = list_enc(ch->head);
  ch->head = b;
  ch->n++;
  if (ch->n * pg->block_size >= k_remote_chain_bytes) remote_push(h, slot);
}

}  // namespace

void remote_flush(Heap* h) {
  for (unsigned m = h->remote_live; m != 0; m &= m - 1) remote_push(h, (unsigned)__builtin_ctz(m));
}

namespace {

// ---- RINGPOOL_HARDEN ---------------------------------------------------------

uint32_t block_index(const Page* pg, const Block* b) {
  return (uint32_t)(((uint32_t)reinterpret_cast<uintptr_t>(b) - pg->start32) / pg->block_size);
}

// A block leaves a free list: it must still carry its free canary (else the
// program wrote to it after freeing it) and must not be marked allocated.
void harden_on_alloc(Page* pg, Block* b) {
  if (!block_start(pg, b) || b->canary != (g_cookie ^ reinterpret_cast<uintptr_t>(b)))
    report_bad_pointer("heap corruption: a free block was overwritten (use after free?)", b);
  uint32_t i = block_index(pg, b);
  uint64_t old = __atomic_fetch_or(&pg->hbits[i / 64], uint64_t{1} << (i % 64), __ATOMIC_RELAXED);
  if (old & (uint64_t{1} << (i % 64))) report_bad_pointer("heap corruption: a free list holds a live block", b);
}

// A small free in slow mode: with RINGPOOL_HARDEN every double free is
// caught by the bitmap, whatever the block holds; then as the fast path.
void slow_mode_free(Page* pg, Block* b) {
  uintptr_t canary = g_cookie ^ reinterpret_cast<uintptr_t>(b);
  if (g_harden) {
    uint32_t i = block_index(pg, b);
    uint64_t bit = uint64_t{1} << (i % 64);
    uint64_t old = __atomic_fetch_and(&pg->hbits[i / 64], ~bit, __ATOMIC_RELAXED);
    if (!(old & bit)) report_double_free(b);
  } else if (b->canary == canary) {
    report_double_free(b);
  }
  Heap* h = t_slow_heap;
  if (page_heap(pg) == h) {
    b->canary = canary;
    b->next = list_enc(pg->local_free);
    pg->local_free = b;
    h->counters->frees[pg->cls]++;
    if (used_dec_reaches_zero(&pg->used)) free_local_slow(pg);
    return;
  }
  count_remote_free(pg->cls);
  free_remote(pg, b);
}

// The head of class c's queue ran out. Of the next few pages the fullest
// with a fair share of room becomes the head: blocks are packed into few
// pages, so that the sparse ones drain and go back to their segment (taking
// pages in turn left every page of a long-running heap about as sparse as
// its live data made the average). Pages found empty go back now, unless
// no other has room; the others looked at move to the back, so that every
// page of the queue is looked at, and its remote frees counted, in turn.
Page* choose_head(Heap* h, unsigned c) {
  Page* cand[k_head_candidates];
  unsigned n = 0;
  for (Page* pg = h->pages[c]; pg != &g_empty_page && pg && n < k_head_candidates; pg = pg->next) cand[n++] = pg;
  if (n <= 1) return h->pages[c];
  // Score: roomy (an eighth of the page free or more) first, then used;
  // an empty page only when no page in use has room.
  Page* best = nullptr;
  uint64_t best_score = 0;
  for (unsigned i = 0; i < n; i++) {
    Page* pg = cand[i];
    collect_remote(pg);
    uint32_t used = page_used(pg);
    uint32_t room = pg->reserved - used;
    if (room == 0) continue;
    uint64_t score = used == 0 ? 1 : (uint64_t)(room * 8 >= pg->reserved) << 32 | (uint64_t)used << 1;
    if (best == nullptr || score > best_score) {
      best = pg;
      best_score = score;
    }
  }
  if (best == nullptr) return h->pages[c];  // all full: the caller marks them
  if (h->pages[c] != best) {
    queue_remove(h, c, best);
    queue_push_front(h, c, best);
  }
  // The others now follow best in their order: release the empty ones and
  // move the rest to the back in one splice.
  Page* run_first = nullptr;
  Page* run_last = nullptr;
  for (unsigned i = 0; i < n; i++) {
    Page* pg = cand[i];
    if (pg == best) continue;
    if (page_used(pg) == 0) {
      release_page(h, pg);
      continue;
    }
    if (run_first == nullptr) run_first = pg;
    run_last = pg;
  }
  if (run_first) queue_run_to_back(h, c, run_first, run_last);
  return best;
}

}  // namespace

void* alloc_small_slow(Heap* h, unsigned c, size_t n) {
  flush_stats(h, false);
  remote_flush(h);
  if (h->reclaim_pending.load(std::memory_order_relaxed)) drain_reclaimed(h);
  bool adopted = false;
  for (;;) {
    Page* pg = h->pages[c];
    while (pg != &g_empty_page) {
      if (refill(pg)) {
        if (RINGPOOL_UNLIKELY(g_sampling) && h->state != k_heap_shared) {
          if (void* p = charge_free_list(pg, c, n)) return p;
        }
        Block* b = pg->free;
        pg->free = list_enc(b->next);
        if (RINGPOOL_UNLIKELY(g_harden)) harden_on_alloc(pg, b);
        pg->used++;
        b->canary = 0;
#ifndef RINGPOOL_NO_STATS
        h->counters->allocs[c]++;
        h->counters->requested += k_classes.size[c];  // n is not known here
#endif
        return b;
      }
      if (mark_full(h, pg)) pg = choose_head(h, c);
    }
    purge_tick();
    // Before mapping more, take the pages of a thread that exited.
    if (!adopted && g_idle_count.load(std::memory_order_relaxed) != 0 && h->state != k_heap_shared && heap_adopt(h)) {
      adopted = true;
      continue;
    }
    pg = segment_page_alloc(h, c);
    if (pg == nullptr) return nullptr;
    queue_push_front(h, c, pg);
  }
}


// ---- entry points ---------------------------------------------------------

void init() {
  int expected = 0;
  if (!g_init_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) return;
  t_in_init = true;
  options_init();
  stats_init();
  g_cookie = platform::random_word() | 1;
  // Both before any heap exists: init runs ahead of heap_acquire.
  if (options().harden) {
    g_list_key = platform::random_word() | 1;
    g_harden = true;
    verbose_msg("hardened mode: encoded free lists, exact double-free checks, guard pages");
  }
  g_slow_mode = g_harden;
  g_key_ok = pthread_key_create(&g_key, on_thread_exit) == 0;
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  t_in_init = false;
  g_init_state.store(2, std::memory_order_release);
}

void* alloc_slow(size_t n, bool zero) {
  if (n <= k_small_max) {
    Heap* h = current_heap();
    if (RINGPOOL_UNLIKELY(h == &g_empty_heap)) {
      if (RINGPOOL_UNLIKELY(t_exited)) {
        void* p = shared_alloc(g_late, class_of(n));
        if (p == nullptr) {
          errno = ENOMEM;
          return nullptr;
        }
        if (zero) memset(p, 0, n);
        return p;
      }
      h = thread_init();
      if (h == nullptr) {
        errno = ENOMEM;
        return nullptr;
      }
    }
    void* p = alloc_small_slow(h, class_of(n), n);
    if (p == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
    if (zero) memset(p, 0, n);
    return p;
  }
  ensure_init();
  void* p;
  if (n <= k_large_max) {
    p = large_alloc(n, 0, zero);
  } else {
    p = huge_alloc(n, 0, zero);
  }
  if (p == nullptr) errno = ENOMEM;
  else if (RINGPOOL_UNLIKELY(g_sampling)) sample_large(p, n);
  return p;
}

// The page became empty (not being the head page, which the pin keeps),
// or it is in the full list and has room again.
void free_local_slow(Page* pg) {
  Heap* h = current_heap();
  flush_stats(h, false);
  if (page_in_full(pg)) unfull(h, pg);
  if (page_used(pg) == 0 && !pg->head) release_page(h, pg);
}

void free_other(Page* pg, void* p, uintptr_t owner) {
  switch (pg->kind) {
    case k_kind_small: {
      if (!block_start(pg, p)) report_not_a_block(true, pg, p);
      Block* b = static_cast<Block*>(p);
      if (RINGPOOL_UNLIKELY(owner == reinterpret_cast<uintptr_t>(&g_sample.heap))) g_profile_hooks.on_free(p);
      if (RINGPOOL_UNLIKELY(g_slow_mode)) return slow_mode_free(pg, b);
      uintptr_t canary = g_cookie ^ reinterpret_cast<uintptr_t>(p);
      if (b->canary == canary) report_double_free(p);
      if (Heap* h = count_remote_free(pg->cls)) return free_remote_cached(h, pg, b);
      free_remote(pg, b);
      return;
    }
    case k_kind_large:
      if (p != page_start(segment_of(pg), pg)) report_not_a_block(true, pg, p);
      if (RINGPOOL_UNLIKELY(g_sampling)) g_profile_hooks.on_free(p);
      large_free(pg);
      return;
    default:
      report_not_a_block(true, pg, p);
  }
}

// A block carved but never handed out carries the free canary too.
void report_double_free(void* p) {
  report_bad_pointer("free(): double free detected (the block is free: freed before, or never handed out)", p);
}

void report_not_block_start(void* p) { report_not_a_block(true, page_of(p), p); }

void report_not_a_block(bool in_free, const Page* pg, const void* p) {
  const char* why = unit_of(segment_of(p), p) < k_header_units ? "into the allocator's metadata"
                    : pg->kind == k_kind_free       ? "its page is free: a double free?"
                    : pg->kind == k_kind_large || !past_carved(pg, p)
                        ? "inside a block, not its start"
                        : "never allocated: past the blocks of its page";
  report_invalid_pointer(in_free, why, p);
}

void thread_done() {
  Heap* h = current_heap();
  if (h == &g_empty_heap) return;
  if (g_key_ok) pthread_setspecific(g_key, nullptr);
  heap_abandon(h);
}

void thread_collect() {
  Heap* h = current_heap();
  if (h != &g_empty_heap) heap_collect(h);
}

void thread_flush_stats() {
  Heap* h = current_heap();
  if (h != &g_empty_heap) flush_stats(h, true);
}

HeapCounters* thread_counters() {
  Heap* h = current_heap();
  return h != &g_empty_heap ? h->counters : nullptr;
}

}  // namespace ringpool::pool
