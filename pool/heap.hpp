// What heap.cpp (the slow paths behind alloc and free), idle.cpp (heaps of
// threads that start and exit, idle heaps, fork) and sampling.cpp (sampled
// blocks, shared heaps) share: the heap lists, the owner's queue operations,
// and the files' entry points into each other. Not for the rest of pool/.
// Who may touch what: heap.cpp's header.
#pragma once
#include <pthread.h>

#include "errors.hpp"
#include "pool.hpp"
#include "segment.hpp"

namespace ringpool::pool {

extern Page g_empty_page;  // free == nullptr forever: every pop from it fails
extern HeapCounters g_empty_counters;  // never counted into: the empty heap never allocates

// Under g_lock.
extern Heap* g_all_heaps;
extern Heap* g_idle_heaps;  // threads exited, pages still held
extern Heap* g_free_heaps;  // no pages: ready for a new thread
extern std::atomic<size_t> g_idle_count;

extern __thread bool t_in_init __attribute__((tls_model("initial-exec")));
extern __thread bool t_exited __attribute__((tls_model("initial-exec")));  // its heap went back at exit
// In slow mode the thread's heap lives here and t_heap stays the empty
// heap, so that both fast paths always fall through to the slow paths.
extern __thread Heap* t_slow_heap __attribute__((tls_model("initial-exec")));

inline Heap* current_heap() { return RINGPOOL_UNLIKELY(g_slow_mode) ? t_slow_heap : t_heap; }
inline void set_current_heap(Heap* h) {
  if (g_slow_mode) t_slow_heap = h; else t_heap = h;
}
extern pthread_key_t g_key;
extern bool g_key_ok;

// A heap no thread owns, allocated from under its own lock. Every free of
// its blocks takes the remote path; now and then an allocation gives back
// the pages those frees emptied.
struct SharedHeap {
  Heap heap{&g_empty_page, &g_empty_counters};
  platform::Mutex lock;  // its owner; taken before its heap's lock and g_lock
  unsigned since_collect = 0;  // under lock
};

extern SharedHeap g_sample;  // the profiler's sampled blocks
// A thread whose heap was handed back at exit and that allocates again (in
// a later thread-specific-data destructor) allocates here: a heap it took
// now might be set up after the last round of destructors and never be
// handed back.
extern SharedHeap g_late;

// ---- queues (owner only) ---------------------------------------------------
// How many pages from the front of a queue are weighed when its head runs
// out (heap.cpp: choose_head). Four pack as tightly as eight did
// (thread_rounds, larson peaks) at half the descriptors touched.
constexpr unsigned k_head_candidates = 4;
// The first page of a queue is pinned (head = 1, counted in used).

inline void pin(Page* pg) {
  pg->head = 1;
  pg->used++;
}

inline void unpin(Page* pg) {
  pg->head = 0;
  pg->used--;
}

inline void queue_push_front(Heap* h, unsigned c, Page* pg) {
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

inline void queue_push_back(Heap* h, unsigned c, Page* pg) {
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
inline void queue_remove(Heap* h, unsigned c, Page* pg) {
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

// Move the linked run first..last, which the head precedes, to the back.
inline void queue_run_to_back(Heap* h, unsigned c, Page* first, Page* last) {
  if (last->next == nullptr) return;
  first->prev->next = last->next;
  last->next->prev = first->prev;
  first->prev = h->last[c];
  h->last[c]->next = first;
  last->next = nullptr;
  h->last[c] = last;
}

inline void full_push(Heap* h, Page* pg) {
  pg->prev = nullptr;
  pg->next = h->full;
  if (h->full) h->full->prev = pg;
  h->full = pg;
  // Asleep until an eighth of its blocks (one at least) is freed locally.
  // Every block is handed out (mark_full) and a page has 4 or more, so
  // asleep > 0: it says "in the full list" by itself.
  uint32_t n = pg->used, wake = pg->reserved / 8 > 1 ? pg->reserved / 8 : 1;
  RINGPOOL_DEBUG_ASSERT(wake >= 1 && n > wake);
  pg->asleep = (uint16_t)(n - wake);
  pg->used = wake;
}

inline void full_remove(Heap* h, Page* pg) {
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
inline bool take_remote_list(Page* pg, Block* list) {
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
inline bool collect_remote(Page* pg) {
  if (pg->xfree.load(std::memory_order_relaxed) == 0) return false;
  uintptr_t x = pg->xfree.exchange(0, std::memory_order_acquire);
  return take_remote_list(pg, reinterpret_cast<Block*>(x));
}

// ---- heap.cpp ----------------------------------------------------------------

Page* take_reclaimed_locked(Heap* h);
void drain_reclaimed(Heap* h);
// The head of class c's queue has no free block: find or make one with room.
void* alloc_small_slow(Heap* h, unsigned c, size_t n);

// ---- sampling.cpp ------------------------------------------------------------
// A block of class c from a heap no thread owns, under its lock.
void* shared_alloc(SharedHeap& sh, unsigned c);
// pg->free is not empty: charge the blocks the fast path will take from it.
// A block of the sample heap when the caller's allocation is sampled.
void* charge_free_list(Page* pg, unsigned c, size_t n);

// ---- idle.cpp ----------------------------------------------------------------

size_t page_bytes(const Page* pg);
// The gauge of bytes in idle heaps' pages (a wrapping add moves it down).
void count_idle_bytes(size_t bytes, bool add);
Page* free_abandoned_locked(Heap* h, Page* pg, Block* b);
bool take_counters(Heap* h);
// A heap that counts privately adds its counts to the region from its slow
// paths, at most once a millisecond (or now: its thread exits, or a reader
// in the process asks), so readers lag it by a millisecond at most while
// it allocates.
void flush_stats_now(Heap* h, bool now);
inline void flush_stats(Heap* h, bool now) {
  if (RINGPOOL_LIKELY(h->flushed == nullptr)) return;
  flush_stats_now(h, now);
}
void heap_collect(Heap* h);
// Push the remote frees h holds (heap.cpp: the remote-free cache).
void remote_flush(Heap* h);
void heap_abandon(Heap* h);
bool heap_adopt(Heap* h);
void on_thread_exit(void* arg);
// The calling thread's heap, made now if it has none. A thread that only
// frees gets an empty one (take_idle false): an idle heap's pages would
// wait in it for allocations that never come, where a thread that
// allocates would have adopted them.
Heap* thread_init(bool take_idle = true);
void fork_prepare();
void fork_parent();
void fork_child();

}  // namespace ringpool::pool
