// Heaps of threads that start and exit: a new thread takes an idle heap
// (one whose thread exited) or a fresh one; an exiting thread leaves its
// pages in its heap, marked abandoned, for the freers of their last blocks
// or the next thread; fork rebuilds the child's copies of other threads'
// heaps. Locks as in heap.cpp.
#include <sched.h>

#include <new>

#include "heap.hpp"

namespace ringpool::pool {

using platform::LockGuard;

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

namespace {

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
      page_set_heap(pg, h);
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

// ---- heaps ------------------------------------------------------------------

void heap_reset_lists(Heap* h) {
  for (unsigned c = 0; c < k_num_classes; c++) {
    h->pages[c] = &g_empty_page;
    h->last[c] = nullptr;
  }
  h->full = nullptr;
}

}  // namespace

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

void flush_stats_now(Heap* h, bool now) {
  uint64_t ms = platform::now_ms();
  if (!now && ms == h->flushed_ms) return;
  h->flushed_ms = ms;
  stats_flush_private(h->counters, h->flushed);
}

namespace {

// An idle heap (with its pages) when take_idle, else an empty one.
Heap* heap_acquire(bool take_idle) {
  Heap* h = nullptr;
  {
    LockGuard g(g_lock);
    if (take_idle && g_idle_heaps) {
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

}  // namespace

// Give back what a heap does not need: collected remote frees, empty pages.
// The empty pages go back under one lock: short-lived threads exit in
// bursts, and a lock per page made them queue on it.
void heap_collect(Heap* h) {
  remote_flush(h);
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
  remote_flush(h);
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

Heap* thread_init(bool take_idle) {
  if (g_init_state.load(std::memory_order_acquire) != 2) {
    init();
    // Another thread is initialising: wait, so that our heap gets its key.
    while (!t_in_init && g_init_state.load(std::memory_order_acquire) != 2) sched_yield();
  }
  Heap* h = current_heap();
  if (h != &g_empty_heap) return h;  // set up by a nested call during init
  h = heap_acquire(take_idle);
  if (h == nullptr) return nullptr;
  set_current_heap(h);
  if (g_key_ok) pthread_setspecific(g_key, h);
  return h;
}

// ---- fork -------------------------------------------------------------------

void fork_prepare() {
  segments_collapse_dense(8);
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

namespace {

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
    Heap* h = page_heap(pg);
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

}  // namespace

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
  for (Heap* h = g_all_heaps; h; h = h->next_all) h->lock.reset();
  for (Heap* h = g_all_heaps; h; h = h->next_all) remote_flush(h);  // before the orphans are marked
  for (Heap* h = g_all_heaps; h; h = h->next_all) {
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

}  // namespace ringpool::pool
