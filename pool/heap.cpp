// Thread heaps: the slow paths behind alloc/free, remote frees, thread start
// and exit, adoption of idle heaps, fork.
//
// Who touches what (see types.hpp):
//   owner thread   page->free, local_free, used, head, queues, full list
//   any thread     page->xfree by CAS; a freer that finds k_page_full set
//                  takes heap->lock, clears it and links the page into
//                  heap->reclaimed (so the owner sees the page has room again)
//   heap->lock     an idle heap's queues and pages (k_page_abandoned): the
//                  freer of a block is its owner for that moment
//   g_lock         heap lists (all, idle, free), the back end
// A page's owner changes only under the old heap's lock (heap_claim), so a
// remote freer re-checks page->heap after taking that lock. Lock order:
// g_lock, then a heap's lock; nothing takes g_lock under a heap's lock.
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <new>

#include "errors.hpp"
#include "pool.hpp"
#include "segment.hpp"

namespace ringpool::pool {

using platform::LockGuard;

namespace {
Page g_empty_page;  // free == nullptr forever: every pop from it fails
HeapCounters g_empty_counters;  // never counted into: the empty heap never allocates
}  // namespace

constinit Heap g_empty_heap{&g_empty_page, &g_empty_counters};
bool g_harden;
bool g_slow_mode;
uintptr_t g_list_key;
ProfileHooks g_profile_hooks;
bool g_sampling;
uintptr_t g_cookie = 0x9e3779b97f4a7c15u;  // replaced by a random one at init
std::atomic<int> g_init_state;
__thread Heap* t_heap __attribute__((tls_model("initial-exec"))) = &g_empty_heap;

namespace {

// Under g_lock.
Heap* g_all_heaps;
Heap* g_idle_heaps;   // threads exited, pages still held
Heap* g_free_heaps;   // no pages: ready for a new thread
std::atomic<size_t> g_idle_count;

__thread bool t_in_init __attribute__((tls_model("initial-exec")));
__thread bool t_exited __attribute__((tls_model("initial-exec")));  // its heap went back at exit
// In slow mode the thread's heap lives here and t_heap stays the empty
// heap, so that both fast paths always fall through to the slow paths.
__thread Heap* t_slow_heap __attribute__((tls_model("initial-exec"))) = &g_empty_heap;

Heap* current_heap() { return RINGPOOL_UNLIKELY(g_slow_mode) ? t_slow_heap : t_heap; }
void set_current_heap(Heap* h) {
  if (g_slow_mode) t_slow_heap = h; else t_heap = h;
}
pthread_key_t g_key;
bool g_key_ok;

// ---- queues (owner only) ---------------------------------------------------
// The first page of a queue is pinned (head = 1, counted in used).

void pin(Page* pg) {
  pg->head = 1;
  pg->used++;
}

void unpin(Page* pg) {
  pg->head = 0;
  pg->used--;
}

void queue_push_front(Heap* h, unsigned c, Page* pg) {
  Page* first = h->pages[c] == &g_empty_page ? nullptr : h->pages[c];
  pg->prev = nullptr;
  pg->next = first;
  if (first) {
    first->prev = pg;
    unpin(first);
  } else {
    h->last[c] = pg;
  }
  h->pages[c] = pg;
  pin(pg);
}

void queue_push_back(Heap* h, unsigned c, Page* pg) {
  Page* last = h->last[c];
  pg->next = nullptr;
  pg->prev = last;
  if (last) {
    last->next = pg;
  } else {
    h->pages[c] = pg;
    pin(pg);
  }
  h->last[c] = pg;
}

// The caller checks page_used() == 0 afterwards if it may release pg.
void queue_remove(Heap* h, unsigned c, Page* pg) {
  if (pg->prev) {
    pg->prev->next = pg->next;
  } else {
    h->pages[c] = pg->next ? pg->next : &g_empty_page;
    unpin(pg);
    if (pg->next) pin(pg->next);
  }
  if (pg->next) pg->next->prev = pg->prev; else h->last[c] = pg->prev;
  pg->next = pg->prev = nullptr;
}

void full_push(Heap* h, Page* pg) {
  pg->prev = nullptr;
  pg->next = h->full;
  if (h->full) h->full->prev = pg;
  h->full = pg;
  // Asleep until an eighth of its blocks (at least one) is freed locally.
  uint32_t n = pg->used, wake = pg->reserved / 8 ? pg->reserved / 8 : 1;
  pg->asleep = (uint16_t)(n > wake ? n - wake : 0);
  pg->used = n - pg->asleep;
  pg->in_full = 1;
}

void full_remove(Heap* h, Page* pg) {
  if (pg->prev) pg->prev->next = pg->next; else h->full = pg->next;
  if (pg->next) pg->next->prev = pg->prev;
  pg->next = pg->prev = nullptr;
  page_wake(pg);
}

// ---- page free lists (owner only) -----------------------------------------

// Put a list taken from pg->xfree on pg->free; false if it was empty. The
// list cannot be longer than the blocks handed out: a longer one is a cycle
// (one block freed twice at the same time, by two threads) or a list the
// program overwrote, and is reported rather than walked forever.
bool take_remote_list(Page* pg, Block* list) {
  if (list == nullptr) return false;
  uint32_t n = 1;
  uint32_t bound = page_used(pg);
  Block* tail = list;
  while (Block* next = list_enc(tail->next)) {
    tail = next;
    if (++n > bound) report_bad_pointer("free(): corrupted list of blocks freed by other threads (a double free?)", tail);
  }
  tail->next = list_enc(pg->free);
  pg->free = list;
  pg->used -= n;
  return true;
}

// Take the remote frees of a page that is not in the full state.
bool collect_remote(Page* pg) {
  if (pg->xfree.load(std::memory_order_relaxed) == 0) return false;
  uintptr_t x = pg->xfree.exchange(0, std::memory_order_acquire);
  return take_remote_list(pg, reinterpret_cast<Block*>(x));
}

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
  __atomic_store_n(&pg->carved_below, pg->capacity * (pg->block_size * pg->div_magic), __ATOMIC_RELAXED);
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

// Take the reclaimed list under the lock (the caller holds it).
Page* take_reclaimed_locked(Heap* h) {
  Page* list = h->reclaimed;
  h->reclaimed = nullptr;
  h->reclaim_pending.store(0, std::memory_order_relaxed);
  for (Page* p = list; p; p = p->reclaim_next) p->in_reclaimed = 0;
  return list;
}

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

void drain_reclaimed(Heap* h) {
  Page* list;
  {
    LockGuard g(h->lock);
    list = take_reclaimed_locked(h);
  }
  requeue_reclaimed(h, list);
}

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

// ---- idle heaps' pages --------------------------------------------------------

size_t page_bytes(const Page* pg) { return (size_t)pg->span * k_unit; }

// The gauge of bytes in idle heaps' pages (a wrapping add moves it down).
void count_idle_bytes(size_t bytes, bool add) {
  stat_inc(stats_global().idle_heap_bytes, add ? bytes : (uint64_t)0 - bytes);
}

// A block of an idle heap's page (k_page_abandoned), under h->lock: freed
// as its owner would. Returns the page when that emptied it, for the caller
// to give back once the lock is dropped (g_lock is never taken under it).
Page* free_abandoned_locked(Heap* h, Page* pg, Block* b) {
  b->next = list_enc(pg->local_free);
  pg->local_free = b;
  pg->used--;
  if (page_used(pg) != 0) return nullptr;
  queue_remove(h, pg->cls, pg);
  count_idle_bytes(page_bytes(pg), false);
  return pg;
}

// h's thread is gone: under h->lock, every page goes into its class queue,
// takes its remote frees and is marked k_page_abandoned, so that from now
// on the freer of its last block gives it back. The pages already empty are
// returned (linked through next). What is left holds live blocks only.
Page* abandon_pages_locked(Heap* h) {
  take_reclaimed_locked(h);  // every full page goes back to its queue here
  while (Page* pg = h->full) {
    full_remove(h, pg);
    queue_push_back(h, pg->cls, pg);
  }
  Page* empty = nullptr;
  size_t held = 0;
  for (unsigned c = 0; c < k_num_classes; c++) {
    for (Page* pg = h->pages[c] == &g_empty_page ? nullptr : h->pages[c]; pg;) {
      Page* next = pg->next;
      uintptr_t x = pg->xfree.exchange(k_page_abandoned, std::memory_order_acq_rel);
      take_remote_list(pg, reinterpret_cast<Block*>(x & ~k_page_flags));
      if (page_used(pg) == 0) {
        queue_remove(h, c, pg);
        pg->next = empty;
        empty = pg;
      } else {
        held += page_bytes(pg);
      }
      pg = next;
    }
  }
  count_idle_bytes(held, true);
  return empty;
}

// A fork child's copy of a heap whose thread did not survive the fork may
// have been in the middle of any list operation: its free lists are rebuilt
// from the canaries (every free block carries its own, a live one never
// does), its used counts from those. Under h->lock; returns the pages that
// turned out empty.
Page* rebuild_orphan_pages_locked(Heap* h) {
  Page* empty = nullptr;
  for (unsigned c = 0; c < k_num_classes; c++) {
    for (Page* pg = h->pages[c] == &g_empty_page ? nullptr : h->pages[c]; pg;) {
      Page* next = pg->next;
      char* start = page_start(segment_of(pg), pg);
      Block* list = nullptr;
      uint32_t n_free = 0;
      for (uint32_t i = pg->capacity; i-- > 0;) {
        Block* b = reinterpret_cast<Block*>(start + (size_t)i * pg->block_size);
        bool is_free = b->canary == (g_cookie ^ reinterpret_cast<uintptr_t>(b));
        if (is_free) {
          b->next = list_enc(list);
          list = b;
          n_free++;
        }
        if (g_harden) {
          uint64_t bit = uint64_t{1} << (i % 64);
          if (is_free) pg->hbits[i / 64] &= ~bit; else pg->hbits[i / 64] |= bit;
        }
      }
      pg->free = list;
      pg->local_free = nullptr;
      pg->used = pg->capacity - n_free + pg->head;
      if (page_used(pg) == 0) {
        queue_remove(h, c, pg);
        count_idle_bytes(page_bytes(pg), false);
        pg->next = empty;
        empty = pg;
      }
      pg = next;
    }
  }
  h->orphan_pages = 0;
  return empty;
}

// Under idle->lock: idle's pages move to h (which may be idle itself, taken
// by a new thread) and take remote frees the ordinary way again. While
// k_page_abandoned was set nothing was pushed onto xfree: it is empty.
// The mark goes first: a freer that reads the new owner takes h->lock, not
// idle's, and must not find the mark then, or it would free as owner into
// h's queues while h's thread runs them.
void claim_pages_locked(Heap* idle, Heap* h) {
  size_t held = 0;
  for (unsigned c = 0; c < k_num_classes; c++) {
    for (Page* pg = idle->pages[c] == &g_empty_page ? nullptr : idle->pages[c]; pg; pg = pg->next) {
      pg->xfree.store(0, std::memory_order_relaxed);
      pg->heap.store(h, std::memory_order_release);
      held += page_bytes(pg);
    }
  }
  count_idle_bytes(held, false);
}

// Take idle's pages for h: a fork orphan's lists are rebuilt first, and
// the pages that turn out empty go back once the lock is dropped.
void claim_pages(Heap* idle, Heap* h) {
  Page* empty = nullptr;
  {
    LockGuard g(idle->lock);
    if (idle->orphan_pages) empty = rebuild_orphan_pages_locked(idle);
    claim_pages_locked(idle, h);
  }
  if (empty) segment_pages_free(empty);
}

bool heap_has_pages(const Heap* h) {
  if (h->full) return true;
  for (unsigned c = 0; c < k_num_classes; c++) {
    if (h->pages[c] != &g_empty_page) return true;
  }
  return false;
}

// Under g_lock: a heap no thread owns waits on the idle list while it holds
// pages, else on the free list.
void park_heap_locked(Heap* h) {
  h->state = k_heap_idle;
  if (heap_has_pages(h)) {
    h->next_idle = g_idle_heaps;
    g_idle_heaps = h;
    g_idle_count.fetch_add(1, std::memory_order_relaxed);
  } else {
    h->next_idle = g_free_heaps;
    g_free_heaps = h;
  }
}

// ---- remote frees -----------------------------------------------------------

// xfree carries a flag: the page is full (its owner wants it back) or
// abandoned (its freer acts as owner). Returns a page to give back.
Page* free_remote_locked(Page* pg, Block* b) {
  for (;;) {
    Heap* h = pg->heap.load(std::memory_order_acquire);
    LockGuard g(h->lock);
    if (pg->heap.load(std::memory_order_relaxed) != h) continue;  // claimed by another heap
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

// ---- heaps ------------------------------------------------------------------

void heap_reset_lists(Heap* h) {
  for (unsigned c = 0; c < k_num_classes; c++) {
    h->pages[c] = &g_empty_page;
    h->last[c] = nullptr;
  }
  h->full = nullptr;
}

// A slot of the stats region for h, or private counters once the region
// has none left (see stats_slot_acquire). False when there is no memory.
bool take_counters(Heap* h) {
  h->counters = stats_slot_acquire();
  if (h->counters != nullptr) return true;
  // Metadata is fresh zeroed memory: both start at 0.
  HeapCounters* pair = static_cast<HeapCounters*>(meta_alloc(2 * sizeof(HeapCounters)));
  if (pair == nullptr) return false;
  h->counters = pair;
  h->flushed = pair + 1;
  return true;
}

// A heap that counts privately adds its counts to the region from its slow
// paths, at most once a millisecond (or now: its thread exits, or a reader
// in the process asks), so readers lag it by a millisecond at most while
// it allocates.
void flush_stats(Heap* h, bool now) {
  if (RINGPOOL_LIKELY(h->flushed == nullptr)) return;
  uint64_t ms = platform::now_ms();
  if (!now && ms == h->flushed_ms) return;
  h->flushed_ms = ms;
  stats_flush_private(h->counters, h->flushed);
}

Heap* heap_acquire() {
  Heap* h = nullptr;
  {
    LockGuard g(g_lock);
    if (g_idle_heaps) {
      h = g_idle_heaps;
      g_idle_heaps = h->next_idle;
      g_idle_count.fetch_sub(1, std::memory_order_relaxed);
    } else if (g_free_heaps) {
      h = g_free_heaps;
      g_free_heaps = h->next_idle;
    }
    if (h) h->state = k_heap_active;
  }
  if (h != nullptr) {
    claim_pages(h, h);
  } else {
    void* mem = meta_alloc(sizeof(Heap));
    if (mem == nullptr) return nullptr;
    h = new (mem) Heap(&g_empty_page, nullptr);
    if (!take_counters(h)) return nullptr;  // the memory stays metadata
    LockGuard g2(g_lock);
    h->next_all = g_all_heaps;
    g_all_heaps = h;
  }
  stat_inc(stats_global().threads_started);
  return h;
}

// Give back what a heap does not need: collected remote frees, empty pages.
// The empty pages go back under one lock: short-lived threads exit in
// bursts, and a lock per page made them queue on it.
void heap_collect(Heap* h) {
  drain_reclaimed(h);
  Page* empty = nullptr;
  for (unsigned c = 0; c < k_num_classes; c++) {
    for (Page* pg = h->pages[c] == &g_empty_page ? nullptr : h->pages[c]; pg;) {
      Page* next = pg->next;
      collect_remote(pg);
      if (page_used(pg) == 0) {
        queue_remove(h, c, pg);
        pg->next = empty;
        empty = pg;
      }
      pg = next;
    }
  }
  if (empty) segment_pages_free(empty);
}

// The thread of h is gone: its empty pages go back now, the rest as soon as
// other threads free their last blocks, or to whoever takes the heap next.
void heap_abandon(Heap* h) {
  flush_stats(h, true);
  if (current_heap() == h) set_current_heap(&g_empty_heap);
  Page* empty;
  {
    LockGuard g(h->lock);
    empty = abandon_pages_locked(h);
  }
  if (empty) segment_pages_free(empty);
  LockGuard g(g_lock);
  park_heap_locked(h);
  stat_inc(stats_global().threads_exited);
}

// Merge an idle heap's pages into h (a running thread short of pages).
bool heap_adopt(Heap* h) {
  Heap* idle;
  {
    LockGuard g(g_lock);
    idle = g_idle_heaps;
    if (idle == nullptr) return false;
    g_idle_heaps = idle->next_idle;
    g_idle_count.fetch_sub(1, std::memory_order_relaxed);
  }
  claim_pages(idle, h);  // an idle heap has no full pages
  for (unsigned c = 0; c < k_num_classes; c++) {
    Page* first = idle->pages[c] == &g_empty_page ? nullptr : idle->pages[c];
    if (first) unpin(first);  // queue_push_back pins what becomes a head
    for (Page* pg = first; pg;) {
      Page* next = pg->next;
      queue_push_back(h, c, pg);
      pg = next;
    }
  }
  heap_reset_lists(idle);
  {
    LockGuard g(g_lock);
    park_heap_locked(idle);  // no pages left: the free list
  }
  stat_inc(stats_global().heaps_adopted);
  return true;
}

void on_thread_exit(void* arg) {
  t_exited = true;
  heap_abandon(static_cast<Heap*>(arg));
}

Heap* thread_init() {
  if (g_init_state.load(std::memory_order_acquire) != 2) {
    init();
    // Another thread is initialising: wait, so that our heap gets its key.
    while (!t_in_init && g_init_state.load(std::memory_order_acquire) != 2) sched_yield();
  }
  Heap* h = current_heap();
  if (h != &g_empty_heap) return h;  // set up by a nested call during init
  h = heap_acquire();
  if (h == nullptr) return nullptr;
  set_current_heap(h);
  if (g_key_ok) pthread_setspecific(g_key, h);
  return h;
}

// A free into another thread's page counts in the freeing thread's own
// slot (a plain add: a shared atomic counter here was a contended line at
// 16 threads); a thread without a heap counts into the shared array.
void count_remote_free(unsigned cls) {
  Heap* h = current_heap();
  if (h == &g_empty_heap) return stat_inc(stats_region()->remote_frees[cls]);
  h->counters->frees[cls]++;
  flush_stats(h, false);
}

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
  if (pg->heap.load(std::memory_order_relaxed) == h) {
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

// ---- heap profiling: which blocks are sampled ---------------------------------
//
// The profiler's sample points form a Poisson process over the bytes each
// thread allocates: a small block spans its class size, a large or huge one
// the size asked for. t_sample_left holds the bytes before the thread's next
// point. The blocks a page hands the fast path are charged when handed out,
// and the list is cut after the last block that ends before the point, so
// the block that holds it is allocated here, on a slow path, from
// g_sample.heap. No thread owns that heap: the free of a sampled block takes
// free_other, which tells the profiler. Charging a list before its blocks
// are used only reorders the thread's byte stream; every byte is still a
// point with the same probability, so the estimates stay unbiased.

void* alloc_small_slow(Heap* h, unsigned c, size_t n);

// A heap no thread owns, allocated from under its own lock. Every free of
// its blocks takes the remote path; now and then an allocation gives back
// the pages those frees emptied.
struct SharedHeap {
  Heap heap{&g_empty_page, &g_empty_counters};
  platform::Mutex lock;  // its owner; taken before its heap's lock and g_lock
  unsigned since_collect = 0;  // under lock
};

// Nothing under a shared heap's lock may call malloc: this thread's malloc
// could come back here, and another thread's, holding a lock of libc's,
// would wait for us. The back end calls out only to start the purge thread.
void* shared_alloc(SharedHeap& sh, unsigned c) {
  LockGuard g(sh.lock);
  t_defer_purger = true;
  if (sh.heap.state != k_heap_shared) {
    if (sh.heap.counters == nullptr && !take_counters(&sh.heap)) {
      t_defer_purger = false;
      return nullptr;
    }
    LockGuard g2(g_lock);
    sh.heap.state = k_heap_shared;
    sh.heap.next_all = g_all_heaps;
    g_all_heaps = &sh.heap;
  }
  if (++sh.since_collect == 256) {
    sh.since_collect = 0;
    heap_collect(&sh.heap);
  }
  void* p = alloc_small_slow(&sh.heap, c, k_classes.size[c]);
  t_defer_purger = false;
  return p;
}

SharedHeap g_sample;  // the profiler's sampled blocks
// A thread whose heap was handed back at exit and that allocates again (in
// a later thread-specific-data destructor) allocates here: a heap it took
// now might be set up after the last round of destructors and never be
// handed back.
SharedHeap g_late;
__thread int64_t t_sample_left __attribute__((tls_model("initial-exec"))) = -1;  // -1: not drawn

// Blocks on pg->free. free and local_free hold capacity - page_used blocks
// between them (remote frees count as used until collected), so once the
// slow path has moved local_free over, no walk is needed.
uint32_t free_count(const Page* pg) {
  if (pg->local_free == nullptr) return pg->capacity - page_used(pg);
  uint32_t n = 0;  // a list nobody charged (an adopted heap's)
  for (Block* b = pg->free; b; b = list_enc(b->next)) n++;
  return n;
}

// Leave the first `keep` blocks on pg->free; the rest go to local_free.
void cut_free_list(Page* pg, uint32_t keep) {
  Block* rest;
  if (keep == 0) {
    rest = pg->free;
    pg->free = nullptr;
  } else {
    Block* last = pg->free;
    for (uint32_t i = 1; i < keep && last->next != list_enc(nullptr); i++) last = list_enc(last->next);
    rest = list_enc(last->next);
    last->next = list_enc(nullptr);
  }
  if (rest == nullptr) return;
  if (pg->local_free) {
    Block* tail = rest;
    while (Block* next = list_enc(tail->next)) tail = next;
    tail->next = list_enc(pg->local_free);
  }
  pg->local_free = rest;
}

void* sample_alloc(unsigned c) { return shared_alloc(g_sample, c); }

// Charges the next `span` bytes of the thread's stream: true when the next
// sample point falls inside them; the gap after it is drawn afresh from
// their end (the process is memoryless).
bool point_in(int64_t span) {
  int64_t left = t_sample_left >= 0 ? t_sample_left : g_profile_hooks.next_gap();
  if (left < span) {
    t_sample_left = g_profile_hooks.next_gap();
    return true;
  }
  t_sample_left = left - span;
  return false;
}

// pg->free is not empty: charge the blocks the fast path will take from it,
// the caller's first. If the thread's next point falls in the caller's
// block, the caller gets a block of the sample heap instead (returned).
void* charge_free_list(Page* pg, unsigned c, size_t n) {
  g_profile_hooks.on_slow();
  const int64_t size = k_classes.size[c];
  void* sampled = point_in(size) ? sample_alloc(c) : nullptr;
  uint32_t taken = sampled ? 0 : 1;  // the caller's block
  // In slow mode every allocation comes here and charges its own block.
  uint32_t keep = g_slow_mode ? 0 : free_count(pg) - taken;
  if (t_sample_left / size < keep) {
    keep = (uint32_t)(t_sample_left / size);
    cut_free_list(pg, taken + keep);
  }
  t_sample_left -= keep * size;
  if (sampled) g_profile_hooks.on_sample(sampled, n);
  return sampled;
}

// The head of class c's queue ran out. Of the next few pages the fullest
// with a fair share of room becomes the head: blocks are packed into few
// pages, so that the sparse ones drain and go back to their segment (taking
// pages in turn left every page of a long-running heap about as sparse as
// its live data made the average). Pages found empty go back now, unless
// no other has room; the others looked at move to the back, so that every
// page of the queue is looked at, and its remote frees counted, in turn.
Page* choose_head(Heap* h, unsigned c) {
  constexpr unsigned k_candidates = 8;
  Page* cand[k_candidates];
  unsigned n = 0;
  for (Page* pg = h->pages[c]; pg != &g_empty_page && pg && n < k_candidates; pg = pg->next) cand[n++] = pg;
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
  for (unsigned i = 0; i < n; i++) {
    Page* pg = cand[i];
    if (pg == best) continue;
    if (page_used(pg) == 0) {
      release_page(h, pg);
    } else {
      queue_remove(h, c, pg);
      queue_push_back(h, c, pg);
    }
  }
  if (h->pages[c] != best) {
    queue_remove(h, c, best);
    queue_push_front(h, c, best);
  }
  return best;
}

void* alloc_small_slow(Heap* h, unsigned c, size_t n) {
  flush_stats(h, false);
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

// ---- fork -------------------------------------------------------------------

void fork_prepare() {
  g_late.lock.lock();
  g_sample.lock.lock();
  g_lock.lock();
  for (Heap* h = g_all_heaps; h; h = h->next_all) h->lock.lock();
}

void fork_parent() {
  for (Heap* h = g_all_heaps; h; h = h->next_all) h->lock.unlock();
  g_lock.unlock();
  g_sample.lock.unlock();
  g_late.lock.unlock();
}

// A page of an orphan (segment walk in the fork child): into its heap's
// queue, marked abandoned so that frees only set canaries until the heap is
// taken and rebuilt.
void orphan_page(Segment* s, void*) {
  for (unsigned u = k_header_units; u < k_units;) {
    Page* pg = &s->pages[u];
    if (pg->kind == k_kind_free) {
      u++;
      continue;
    }
    // A page that a thread had taken from its segment but not yet set up
    // names no heap (its owner is the last field set): it stays lost.
    Heap* h = pg->heap.load(std::memory_order_relaxed);
    if (pg->kind == k_kind_small && h != nullptr && h->state == k_heap_orphan) {
      pg->xfree.store(k_page_abandoned, std::memory_order_relaxed);
      pg->in_reclaimed = 0;
      page_wake(pg);
      pg->head = 0;
      queue_push_back(h, pg->cls, pg);
      h->orphan_pages = 1;
      count_idle_bytes(page_bytes(pg), true);
    }
    u += pg->span;
  }
}

// The other threads are gone, maybe in the middle of any list operation:
// their heaps' lists are rebuilt from the pages themselves (the segments
// say which pages each heap has) and the heaps become idle, so that the
// child reuses their free space once one of its threads takes them.
void fork_child() {
  g_sample.lock.reset();
  g_late.lock.reset();
  g_lock.reset();
  purge_fork_child();
  stats_fork_child();
  for (Heap* h = g_all_heaps; h; h = h->next_all) {
    h->lock.reset();
    if (h != current_heap() && h->state == k_heap_active) {
      h->state = k_heap_orphan;
      heap_reset_lists(h);
      h->reclaimed = nullptr;
      h->reclaim_pending.store(0, std::memory_order_relaxed);
    }
  }
  for_each_segment(orphan_page, nullptr);
  for (Heap* h = g_all_heaps; h; h = h->next_all) {
    if (h->state == k_heap_orphan) park_heap_locked(h);
  }
}

}  // namespace

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

void set_profile_hooks(const ProfileHooks& hooks) {
  ensure_init();
  g_profile_hooks = hooks;
  __atomic_store_n(&g_sampling, true, __ATOMIC_RELEASE);
  // The lists this thread's fast path holds were never charged: hand them
  // back, so that its next allocation of each class is charged (at rate 1
  // every block must be sampled). Threads started before this keep theirs.
  Heap* h = current_heap();
  for (unsigned c = 0; c < k_num_classes && h != &g_empty_heap; c++) {
    Page* pg = h->pages[c];
    if (pg->free) cut_free_list(pg, 0);
  }
}

void sample_large(void* p, size_t n) {
  g_profile_hooks.on_slow();
  if (point_in((int64_t)n)) g_profile_hooks.on_sample(p, n);
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

void free_other(Page* pg, void* p) {
  switch (pg->kind) {
    case k_kind_small: {
      if (!block_start(pg, p)) report_not_a_block(true, pg, p);
      Block* b = static_cast<Block*>(p);
      if (RINGPOOL_UNLIKELY(pg->heap.load(std::memory_order_relaxed) == &g_sample.heap)) g_profile_hooks.on_free(p);
      if (RINGPOOL_UNLIKELY(g_slow_mode)) return slow_mode_free(pg, b);
      uintptr_t canary = g_cookie ^ reinterpret_cast<uintptr_t>(p);
      if (b->canary == canary) report_double_free(p);
      count_remote_free(pg->cls);
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

size_t heap_counts(size_t* idle) {
  LockGuard g(g_lock);
  size_t active = 0;
  *idle = 0;
  for (Heap* h = g_all_heaps; h; h = h->next_all) {
    if (h->state == k_heap_active) active++;
    else if (h->state == k_heap_idle && heap_has_pages(h)) (*idle)++;
  }
  return active;
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
