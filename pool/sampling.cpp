// Heap profiling's side of the allocator: which blocks are sampled, and the
// heaps no thread owns (the sample heap, and the late heap of a thread past
// its exit) that serve them. See heap.cpp for who touches what.
#include "heap.hpp"

namespace ringpool::pool {

using platform::LockGuard;

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

namespace {

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

}  // namespace

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

}  // namespace ringpool::pool
