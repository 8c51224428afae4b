// Unit tests of pool/, linked directly (no preloading): this process's own
// malloc stays glibc's, and pool:: is a second allocator beside it.
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "../../pool/pool.hpp"
#include "../../pool/heap.hpp"
#include "../../pool/segment.hpp"

namespace pool = ringpool::pool;
using pool::k_classes;
using pool::k_num_classes;

namespace {

bool aligned(const void* p, size_t a) { return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0; }

pool::Page* page_of(void* p) { return pool::page_of(p); }

// Runs f in a child process; returns the signal that ended it (0 if none).
template <class F>
int child_signal(F f, std::string* err_out = nullptr) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    signal(SIGABRT, SIG_DFL);  // Catch2 installs its own handlers
    f();
    _exit(0);
  }
  close(fds[1]);
  std::string err;
  char buf[256];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) err.append(buf, (size_t)n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (err_out) *err_out = err;
  return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

}  // namespace

TEST_CASE("every size up to 32 KiB maps to the smallest class that holds it", "[pool][size_class]") {
  for (size_t n = 0; n <= pool::k_small_max; n++) {
    unsigned c = pool::class_of(n);
    REQUIRE(c < k_num_classes);
    REQUIRE(k_classes.size[c] >= n);
    if (c > 0 && n > 0) REQUIRE(k_classes.size[c - 1] < n);
  }
}

TEST_CASE("classes above 128 bytes waste at most 12.5% of a block", "[pool][size_class]") {
  for (size_t n = 129; n <= pool::k_small_max; n++) {
    size_t size = k_classes.size[pool::class_of(n)];
    REQUIRE((size - n) * 8 <= size);
  }
}

TEST_CASE("small blocks are 16-byte aligned, distinct and writable", "[pool][page]") {
  std::vector<void*> v;
  std::set<void*> seen;
  for (size_t n : {0, 1, 8, 16, 17, 100, 129, 1000, 1025, 5000, 32768}) {
    for (int i = 0; i < 200; i++) {
      void* p = pool::alloc(n);
      REQUIRE(p != nullptr);
      REQUIRE(aligned(p, 16));
      REQUIRE(seen.insert(p).second);
      REQUIRE(pool::usable_size(p) >= n);
      memset(p, 0xab, n);
      v.push_back(p);
    }
  }
  for (void* p : v) pool::free(p);
}

TEST_CASE("a freed block comes back once its page's free list runs dry", "[pool][page]") {
  void* a = pool::alloc(48);
  pool::free(a);
  // Local frees go to local_free, which replaces free when free is empty.
  std::vector<void*> v;
  bool reused = false;
  for (size_t i = 0; i <= k_classes.blocks[pool::class_of(48)] && !reused; i++) {
    void* q = pool::alloc(48);
    v.push_back(q);
    reused = q == a;
  }
  CHECK(reused);
  for (void* q : v) pool::free(q);
}

TEST_CASE("carving a page touches no OS page beyond the one it stands in", "[pool][page]") {
  // Regression: carving took 4 KiB of blocks from wherever it stood, so the
  // links of the last ones were written into the next OS page.
  for (size_t size : {48, 80, 208, 1152, 2304}) {
    std::vector<void*> v;
    std::map<pool::Page*, uint32_t> capacity;
    unsigned carves = 0;
    for (int i = 0; i < 600; i++) {
      void* p = pool::alloc(size);
      v.push_back(p);
      pool::Page* pg = pool::page_of(p);
      uint32_t before = capacity.count(pg) ? capacity[pg] : 0;
      capacity[pg] = pg->capacity;
      char* start = pool::page_start(pool::segment_of(pg), pg);
      if (pg->capacity == before || p != start + (size_t)before * pg->block_size) continue;
      // This allocation carved, from p on: every new link is in p's OS page.
      carves++;
      uintptr_t last_link_end =
          reinterpret_cast<uintptr_t>(start) + (uintptr_t)(pg->capacity - 1) * pg->block_size + sizeof(pool::Block);
      CHECK((last_link_end - 1) >> 12 == reinterpret_cast<uintptr_t>(p) >> 12);
    }
    CHECK(carves > 0);
    for (void* p : v) pool::free(p);
  }
}

TEST_CASE("a new page is taken from memory still resident before clean memory", "[pool][page]") {
  // Regression: the first free units were taken, clean or not, while the
  // resident ones waited to be purged. Class 3328 is used by no other test.
  std::thread([] {
    const size_t size = 3328;
    std::vector<void*> a, b, c;
    while (a.empty() || pool::page_of(a.back()) == pool::page_of(a.front())) a.push_back(pool::alloc(size));
    b.push_back(a.back());
    a.pop_back();
    while (pool::page_of(b.back()) == pool::page_of(b.front())) b.push_back(pool::alloc(size));
    c.push_back(b.back());
    b.pop_back();
    pool::Page* pa = pool::page_of(a.front());
    pool::Page* pb = pool::page_of(b.front());
    pool::Page* pc = pool::page_of(c.front());
    for (void* p : a) pool::free(p);  // pa goes back ...
    pool::trim();                     // ... and is purged: clean
    for (void* p : b) pool::free(p);  // pb goes back, resident
    void* p;
    while (pool::page_of(p = pool::alloc(size)) == pc) c.push_back(p);
    CHECK(pool::page_of(p) == pb);
    CHECK(pool::page_of(p) != pa);
    pool::free(p);
    for (void* q : c) pool::free(q);
  }).join();
}

TEST_CASE("a page whose blocks are all freed goes back to its segment", "[pool][page]") {
  // Fill several pages of one class, then free everything: only the page
  // the heap allocates from stays; the others are released.
  unsigned c = pool::class_of(1024);
  size_t per_page = k_classes.blocks[c];
  std::vector<void*> v;
  for (size_t i = 0; i < per_page * 4; i++) v.push_back(pool::alloc(1024));
  pool::UsageTotals before = pool::usage();
  for (void* p : v) pool::free(p);
  pool::UsageTotals after = pool::usage();
  CHECK(after.page_bytes + 3 * k_classes.span[c] * pool::k_unit <= before.page_bytes);
}

TEST_CASE("a heap allocates from its fullest page and lets the sparse ones drain", "[pool][page]") {
  // Regression: pages were taken in turn, so every page of a long-lived heap
  // stayed about as sparse as the average and none ever emptied.
  std::thread([] {
    unsigned c = pool::class_of(1536);
    uint32_t per_page = k_classes.blocks[c];
    std::vector<void*> v;
    // Fill pages until the page being allocated from is full.
    for (;;) {
      void* p = pool::alloc(1536);
      v.push_back(p);
      if (v.size() > per_page * 8 && pool::page_used(pool::page_of(p)) == per_page) break;
    }
    pool::Page* head = pool::page_of(v.back());
    // Whole pages of ours, in the order they filled: all but one of the
    // pages weighed when the head runs out kept sparse (one block each),
    // then one kept dense (half its blocks), freed in that order;
    // everything else but the head's blocks goes.
    std::vector<pool::Page*> order;
    std::vector<std::vector<void*>> blocks_of;
    for (void* p : v) {
      pool::Page* pg = pool::page_of(p);
      if (pg == head) continue;
      if (order.empty() || order.back() != pg) {
        order.push_back(pg);
        blocks_of.emplace_back();
      }
      blocks_of.back().push_back(p);
    }
    std::vector<void*> keep;
    pool::Page* dense = nullptr;
    unsigned sparse = 0;
    for (size_t i = 0; i < order.size(); i++) {
      std::vector<void*>& b = blocks_of[i];
      if (b.size() != per_page || dense) {
        for (void* p : b) pool::free(p);
      } else if (sparse < pool::k_head_candidates - 1) {
        for (size_t k = 1; k < b.size(); k++) pool::free(b[k]);
        keep.push_back(b[0]);
        sparse++;
      } else {
        for (size_t k = per_page / 2; k < b.size(); k++) pool::free(b[k]);
        keep.insert(keep.end(), b.begin(), b.begin() + per_page / 2);
        dense = order[i];
      }
    }
    REQUIRE(dense != nullptr);
    std::vector<void*> fresh;
    unsigned in_dense = 0;
    for (uint32_t i = 0; i < per_page - per_page / 2; i++) {
      void* p = pool::alloc(1536);
      fresh.push_back(p);
      in_dense += pool::page_of(p) == dense;
    }
    CHECK(in_dense == per_page - per_page / 2);
    for (void* p : fresh) pool::free(p);
    for (void* p : keep) pool::free(p);
    for (void* p : v)
      if (pool::page_of(p) == head) pool::free(p);
  }).join();
}

TEST_CASE("a block freed by another thread returns to its owner's page", "[pool][remote]") {
  void* p = pool::alloc(64);
  pool::Page* pg = page_of(p);
  uint32_t used_before = pool::page_used(pg);
  std::thread([p] { pool::free(p); }).join();
  // The remote free sits on the page's xfree list until the owner collects.
  CHECK((pg->xfree.load() & ~pool::k_page_full) == reinterpret_cast<uintptr_t>(p));
  CHECK(pool::page_used(pg) == used_before);
  // Exhaust the page: the owner then collects its remote frees and reuses p.
  std::vector<void*> v;
  bool reused = false;
  for (size_t i = 0; i < 2 * k_classes.blocks[pool::class_of(64)] && !reused; i++) {
    void* q = pool::alloc(64);
    v.push_back(q);
    reused = q == p;
  }
  CHECK(reused);
  for (void* q : v) pool::free(q);
}

TEST_CASE("a live thread's remote frees reach the owner's page when it trims or holds enough", "[pool][remote]") {
  void* p = pool::alloc(64);
  pool::Page* pg = page_of(p);
  std::thread([p, pg] {
    pool::free(p);
    // Held in the freeing thread's chain for the page, not yet pushed.
    CHECK(pg->xfree.load() == 0);
    pool::thread_collect();  // what malloc_trim does in this thread
    CHECK((pg->xfree.load() & ~pool::k_page_full) == reinterpret_cast<uintptr_t>(p));
  }).join();
  // A chain is pushed by itself once it holds 16 KiB.
  std::vector<void*> v;
  pool::Page* big = nullptr;
  for (int i = 0; i < 64; i++) {
    void* q = pool::alloc(1024);
    if (big == nullptr) big = page_of(q);
    if (page_of(q) == big) v.push_back(q);
  }
  REQUIRE(v.size() >= 16);
  std::thread([&v, big] {
    for (int i = 0; i < 15; i++) pool::free(v[i]);
    CHECK((big->xfree.load() & ~pool::k_page_flags) == 0);
    pool::free(v[15]);
    CHECK((big->xfree.load() & ~pool::k_page_flags) != 0);
  }).join();
  for (size_t i = 16; i < v.size(); i++) pool::free(v[i]);
}

TEST_CASE("a thread that only frees other threads' blocks counts them in a slot of its own", "[pool][remote][stats]") {
  constexpr int n = 1000;
  std::vector<void*> blocks;
  for (int i = 0; i < n; i++) blocks.push_back(pool::alloc(48));
  unsigned c = pool::class_of(48);
  uint64_t shared_before = __atomic_load_n(&pool::stats_region()->remote_frees[c], __ATOMIC_RELAXED);
  uint64_t counted = 0;
  bool had_none = false;
  std::thread([&] {
    had_none = pool::thread_counters() == nullptr;
    for (void* p : blocks) pool::free(p);
    const pool::HeapCounters* mine = pool::thread_counters();
    if (mine != nullptr) counted = mine->frees[c];
  }).join();
  CHECK(had_none);
  CHECK(counted == (uint64_t)n);
  CHECK(__atomic_load_n(&pool::stats_region()->remote_frees[c], __ATOMIC_RELAXED) == shared_before);
}

TEST_CASE("a full page gets back into its queue when another thread frees into it", "[pool][remote]") {
  unsigned c = pool::class_of(4096);
  size_t per_page = k_classes.blocks[c];
  std::vector<void*> first_page;
  void* p0 = pool::alloc(4096);
  pool::Page* pg = page_of(p0);
  first_page.push_back(p0);
  // Fill pg and spill into the next page, so pg moves to the full list.
  std::vector<void*> rest;
  while (rest.size() < per_page * 2) {
    void* q = pool::alloc(4096);
    (page_of(q) == pg ? first_page : rest).push_back(q);
  }
  REQUIRE(pool::page_in_full(pg));
  void* victim = first_page.back();
  first_page.pop_back();
  std::thread([victim] { pool::free(victim); }).join();
  // The remote free handed the page back; the owner reclaims it on a slow path.
  CHECK(pg->in_reclaimed == 1);
  bool reused = false;
  for (size_t i = 0; i < per_page * 3 && !reused; i++) {
    void* q = pool::alloc(4096);
    rest.push_back(q);
    reused = q == victim;
  }
  CHECK(reused);
  CHECK_FALSE(pool::page_in_full(pg));
  for (void* q : first_page) pool::free(q);
  for (void* q : rest) pool::free(q);
}

TEST_CASE("blocks handed between threads in both directions stay intact", "[pool][remote]") {
  constexpr int k_rounds = 20000;
  std::atomic<void*> slot{nullptr};
  std::atomic<bool> done{false};
  std::thread consumer([&] {
    int got = 0;
    while (got < k_rounds) {
      void* p = slot.exchange(nullptr);
      if (!p) continue;
      size_t n = pool::usable_size(p);
      unsigned char* b = static_cast<unsigned char*>(p);
      for (size_t i = 0; i < 16 && i < n; i++) REQUIRE(b[i] == (unsigned char)(n + i));
      pool::free(p);
      got++;
    }
    done = true;
  });
  for (int i = 0; i < k_rounds; i++) {
    size_t n = 16 + (size_t)(i * 37) % 3000;
    unsigned char* p = static_cast<unsigned char*>(pool::alloc(n));
    size_t u = pool::usable_size(p);
    for (size_t k = 0; k < 16 && k < u; k++) p[k] = (unsigned char)(u + k);
    void* expected = nullptr;
    while (!slot.compare_exchange_weak(expected, p)) expected = nullptr;
  }
  consumer.join();
  CHECK(done);
}

TEST_CASE("a thread that exits leaves its live pages to the next thread", "[pool][thread]") {
  std::vector<void*> kept;
  std::thread([&] {
    for (int i = 0; i < 1000; i++) kept.push_back(pool::alloc(200));
  }).join();
  size_t idle = 0;
  (void)pool::usage();
  pool::UsageTotals u = pool::usage();
  idle = u.heaps_idle;
  CHECK(idle >= 1);
  // The next thread takes the idle heap (with its pages) instead of a new one.
  pool::Page* page_of_kept = page_of(kept[0]);
  pool::Heap* owner_before = pool::page_heap(page_of_kept);
  pool::Heap* new_thread_heap = nullptr;
  std::thread([&] {
    void* p = pool::alloc(200);
    new_thread_heap = pool::t_heap;
    pool::free(p);
  }).join();
  CHECK(new_thread_heap == owner_before);
  for (void* p : kept) pool::free(p);
}

TEST_CASE("a page emptied by other threads' frees after its owner exited goes back", "[pool][thread]") {
  // Regression: such pages stayed in the idle heap's queues, neither reused
  // nor purged, so threads that exit while others free their blocks grew
  // the heap without bound.
  std::vector<void*> kept;
  std::thread([&] {
    for (int i = 0; i < 3000; i++) kept.push_back(pool::alloc(300));
  }).join();
  std::set<pool::Page*> pages;
  for (void* p : kept) pages.insert(page_of(p));
  REQUIRE(pages.size() >= 3);
  CHECK(pool::stats_global().idle_heap_bytes >= pages.size() * pool::k_unit);
  for (void* p : kept) pool::free(p);
  for (pool::Page* pg : pages) CHECK(pg->kind == pool::k_kind_free);
  CHECK(pool::stats_global().idle_heap_bytes == 0);
}

// Every unit of a span routes to its page and names the page's owner, and
// the owner's copies of the geometry (line 0) agree with the routing line.
static void check_routing(pool::Page* pg, pool::Heap* owner) {
  char* start = pool::page_start(pool::segment_of(pg), pg);
  for (unsigned u = 0; u < pg->span; u++) {
    pool::UnitEntry& e = pool::unit_entry(start + (size_t)u * pool::k_unit);
    CHECK(e.page == pg);
    CHECK(e.heap.load() == owner);
  }
  CHECK(pg->own_cls == pg->cls);
  CHECK(pg->own_start32 == pg->start32);
  CHECK(pg->own_div_magic == pg->div_magic);
  CHECK(pg->own_carved_below == pg->carved_below);
}

TEST_CASE("every unit of a page names its owner, through carving, a move to another heap and release", "[pool][thread]") {
  size_t size = pool::k_small_max;
  unsigned cls = pool::class_of_large(size);
  REQUIRE(pool::k_classes.span[cls] > 1);
  std::vector<void*> kept;
  pool::Page* pg = nullptr;
  std::thread([&] {
    kept.push_back(pool::alloc(size));
    pg = page_of(kept[0]);
    check_routing(pg, pool::t_heap);
    while (kept.size() < pool::k_classes.blocks[cls]) kept.push_back(pool::alloc(size));
    for (void* p : kept) REQUIRE(page_of(p) == pg);
    CHECK(pg->capacity == pg->reserved);
    check_routing(pg, pool::t_heap);
  }).join();
  std::thread([&] {
    void* p = pool::alloc(16);  // takes the idle heap and its pages
    check_routing(pg, pool::t_heap);
    for (void* q : kept) pool::free(q);
    pool::free(p);
  }).join();
  CHECK(pg->kind == pool::k_kind_free);
  for (unsigned u = 0; u < pool::k_classes.span[cls]; u++) {
    pool::UnitEntry& e = pool::segment_of(pg)->units[(pg - pool::segment_of(pg)->pages) + u];
    CHECK(e.page == pg + u);
    CHECK(e.heap.load() == nullptr);
  }
}

TEST_CASE("the next thread takes an idle heap's pages and frees into them locally", "[pool][thread]") {
  std::vector<void*> kept;
  std::thread([&] {
    for (int i = 0; i < 500; i++) kept.push_back(pool::alloc(48));
  }).join();
  pool::Page* pg = page_of(kept[0]);
  std::thread([&] {
    void* p = pool::alloc(48);  // takes the idle heap
    CHECK(pool::page_heap(pg) == pool::t_heap);
    CHECK(pg->xfree.load() == 0);  // no longer marked abandoned
    for (void* q : kept) pool::free(q);  // local frees now
    pool::free(p);
  }).join();
  CHECK(pool::stats_global().idle_heap_bytes == 0);
}

namespace {
pthread_key_t g_late_key;
std::vector<void*>* g_late_blocks;
void late_destructor(void* v) {
  // Allocates in every round of thread-specific-data destructors, the last
  // included, and asks for another round each time.
  g_late_blocks->push_back(pool::alloc(64));
  pthread_setspecific(g_late_key, v);
}
}  // namespace

TEST_CASE("a malloc in the last round of key destructors leaves no heap behind", "[pool][thread]") {
  // Regression: such a malloc set up a heap whose destructor never ran: it
  // stayed "active" for good, with its pages.
  std::vector<void*> blocks;
  g_late_blocks = &blocks;
  pool::free(pool::alloc(64));  // the pool's key first: its destructor runs first in each round
  REQUIRE(pthread_key_create(&g_late_key, late_destructor) == 0);
  (void)pool::usage();
  size_t active_before = pool::usage().heaps_active;
  for (int i = 0; i < 4; i++) {
    std::thread([] {
      pool::free(pool::alloc(64));
      pthread_setspecific(g_late_key, &g_late_key);
    }).join();
  }
  CHECK(pool::usage().heaps_active == active_before);
  CHECK(blocks.size() >= 4 * 2);
  for (void* p : blocks) {
    memset(p, 0x5a, 64);
    pool::free(p);
  }
  pthread_key_delete(g_late_key);
}

TEST_CASE("a fork child reuses the free space of threads that did not survive the fork", "[pool][thread][fork]") {
  // Regression: the heaps of the other threads were never allocated from
  // again in the child, so whatever they had free stayed unused for good.
  std::vector<void*> blocks;
  std::atomic<int> phase{0};
  std::thread other([&] {
    for (int i = 0; i < 4000; i++) {
      void* p = pool::alloc(200);
      memset(p, i & 0xff, 200);
      blocks.push_back(p);
    }
    phase = 1;
    while (phase.load() != 2) usleep(1000);
    for (void* p : blocks) pool::free(p);
  });
  while (phase.load() != 1) usleep(1000);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child: free every other block of the vanished thread, then let a
    // new thread allocate the same class: it must get the freed space back
    // first, and the survivors must stay intact.
    std::set<void*> freed;
    for (size_t i = 0; i < blocks.size(); i++) {
      if (i % 2 == 0 || i >= 3000) {
        pool::free(blocks[i]);
        freed.insert(blocks[i]);
      }
    }
    int bad = 0;
    std::thread([&] {
      for (size_t i = 0; i < freed.size(); i++) {
        void* p = pool::alloc(200);
        if (i < 1000 && !freed.count(p)) bad |= 1;  // not the freed space
        freed.erase(p);
        memset(p, 0xee, 200);
      }
    }).join();
    for (size_t i = 1; i < 3000; i += 2) {
      const unsigned char* c = static_cast<const unsigned char*>(blocks[i]);
      for (int k = 0; k < 200; k++)
        if (c[k] != (i & 0xff)) bad |= 2;
    }
    _exit(bad);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  phase = 2;
  other.join();
}

TEST_CASE("many short-lived threads reuse a bounded number of heaps", "[pool][thread]") {
  for (int round = 0; round < 50; round++) {
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; t++) {
      ts.emplace_back([] {
        std::vector<void*> v;
        for (int i = 0; i < 100; i++) v.push_back(pool::alloc(16 + i * 8));
        for (void* p : v) pool::free(p);
      });
    }
    for (auto& t : ts) t.join();
  }
  pool::UsageTotals u = pool::usage();
  CHECK(u.heaps_active + u.heaps_idle < 40);
}

TEST_CASE("free memory goes back to the OS after a peak", "[pool][purge]") {
  std::vector<void*> v;
  for (int i = 0; i < 400000; i++) {
    void* p = pool::alloc(256);
    memset(p, 1, 256);
    v.push_back(p);
  }
  size_t peak = ringpool::platform::resident_bytes();
  for (void* p : v) pool::free(p);
  pool::BackendStats t = pool::backend_totals();
  // A drop beyond 128 MiB would be purged at once; this one waits out the
  // purge delay, and the purge thread returns it although this thread
  // never calls malloc again.
  CHECK(t.dirty <= (size_t{128} << 20));
  // The delay is 100 ms; give a loaded machine up to 5 s to run the thread.
  for (int i = 0; i < 50 && pool::backend_totals().dirty > pool::options().retain_bytes; i++) usleep(100 * 1000);
  CHECK(pool::backend_totals().dirty <= pool::options().retain_bytes);
  size_t after = ringpool::platform::resident_bytes();
  CHECK(after + (size_t{60} << 20) < peak);
  pool::trim();
  CHECK(pool::backend_totals().dirty == 0);
}

TEST_CASE("large blocks grow in place and keep their contents", "[pool][large]") {
  char* p = static_cast<char*>(pool::alloc(100 * 1024));
  REQUIRE(p != nullptr);
  REQUIRE(aligned(p, pool::k_unit));
  for (int i = 0; i < 100 * 1024; i++) p[i] = (char)i;
  char* q = static_cast<char*>(pool::realloc(p, 300 * 1024));
  REQUIRE(q != nullptr);
  for (int i = 0; i < 100 * 1024; i++) REQUIRE(q[i] == (char)i);
  CHECK(pool::usable_size(q) >= 300 * 1024);
  pool::free(q);
}

TEST_CASE("huge blocks are mapped alone and realloc moves them with their contents", "[pool][huge]") {
  size_t n = 10 << 20;
  char* p = static_cast<char*>(pool::alloc(n));
  REQUIRE(p != nullptr);
  for (size_t i = 0; i < n; i += 4096) p[i] = (char)(i >> 12);
  char* q = static_cast<char*>(pool::realloc(p, 3 * n));
  REQUIRE(q != nullptr);
  for (size_t i = 0; i < n; i += 4096) REQUIRE(q[i] == (char)(i >> 12));
  CHECK(pool::usable_size(q) >= 3 * n);
  CHECK(pool::owns(q));
  pool::free(q);
  CHECK_FALSE(pool::owns(q));
}

TEST_CASE("a huge block freed and allocated again reuses the mapping", "[pool][huge]") {
  pool::trim();  // earlier tests may have left mappings in the cache
  void* a = pool::alloc(8 << 20);
  pool::free(a);
  void* b = pool::alloc(8 << 20);
  CHECK(a == b);
  pool::free(b);
}

// The value of smaps field `field` (e.g. "THPeligible") for the mapping
// that holds p, or -1.
static long smaps_field(const void* p, const char* field) {
  FILE* f = fopen("/proc/self/smaps", "r");
  if (f == nullptr) return -1;
  char line[512];
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  bool in = false;
  long kb = -1;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
      in = a >= lo && a < hi;
      continue;
    }
    size_t len = strlen(field);
    if (in && strncmp(line, field, len) == 0 && line[len] == ':') {
      kb = atol(line + len + 1);
      break;
    }
  }
  fclose(f);
  return kb;
}

TEST_CASE("a fresh huge block starts on a 2 MiB boundary and may have transparent huge pages", "[pool][huge]") {
  pool::trim();  // nothing cached: the next huge block is a fresh mapping
  size_t n = 12 << 20;
  char* p = static_cast<char*>(pool::alloc(n));
  REQUIRE(p != nullptr);
  CHECK(aligned(p, 2 << 20));
  for (size_t i = 0; i < n; i += 4096) p[i] = 1;
  char mode[128] = "";
  if (FILE* f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r")) {
    if (!fgets(mode, sizeof mode, f)) mode[0] = 0;
    fclose(f);
  }
  if (strstr(mode, "[always]") || strstr(mode, "[madvise]")) {
    // Eligible: with "madvise" only after MADV_HUGEPAGE. (Whether the kernel
    // had free 2 MiB pages just now, AnonHugePages, is not ours to test.)
    CHECK(smaps_field(p, "THPeligible") == 1);
  } else {
    WARN("transparent huge pages are off here (" << mode << "): only the alignment is checked");
  }
  pool::free(p);
}

TEST_CASE("before a fork, densely used halves of segments get huge pages and keep their blocks", "[pool][fork]") {
  // 12 MiB of 64-byte blocks: whole segments, every unit in use.
  std::vector<uint64_t*> blocks;
  for (size_t i = 0; i < (size_t{12} << 20) / 64; i++) {
    auto* b = static_cast<uint64_t*>(pool::alloc(64));
    b[2] = i;
    blocks.push_back(b);
  }
  pool::Segment* s = pool::segment_of(blocks[blocks.size() / 2]);
  REQUIRE(pool::segment_of(blocks[blocks.size() / 2 - 20000]) == s);  // a segment filled by this test
  // Other tests' segments may come first in the list: until s was tried.
  unsigned done = 0;
  for (int i = 0; i < 64 && s->collapsed != 3; i++) done += pool::segments_collapse_dense(16);
  CHECK(s->collapsed == 3);  // both halves were dense
  if (done > 0) {
    CHECK(smaps_field(s, "AnonHugePages") >= 2048);
  } else {
    WARN("the kernel backed no half with a huge page (THP off, no MADV_COLLAPSE, or none free)");
  }
  for (size_t i = 0; i < blocks.size(); i++) REQUIRE(blocks[i][2] == i);
  pid_t pid = fork();  // the child writes into the shared huge pages: copy on write
  if (pid == 0) {
    bool ok = true;
    for (size_t i = 0; i < blocks.size(); i += 2) {
      ok &= blocks[i][2] == i;
      pool::free(blocks[i]);
    }
    for (size_t i = 0; i < 1000; i++) {
      auto* b = static_cast<uint64_t*>(pool::alloc(64));
      b[2] = i;
      ok &= b[2] == i;
    }
    for (size_t i = 1; i < blocks.size(); i += 2) ok &= blocks[i][2] == i;
    _exit(ok ? 0 : 1);
  }
  REQUIRE(pid > 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  for (size_t i = 0; i < blocks.size(); i++) REQUIRE(blocks[i][2] == i);
  for (uint64_t* b : blocks) pool::free(b);
}

TEST_CASE("every power-of-two alignment up to 8 MiB is honoured", "[pool][align]") {
  for (size_t a = 16; a <= (size_t{8} << 20); a *= 2) {
    for (size_t n : {size_t{1}, a / 2, a, a + 1, size_t{100000}}) {
      void* p = pool::aligned_alloc(a, n);
      REQUIRE(p != nullptr);
      REQUIRE(aligned(p, a));
      REQUIRE(pool::usable_size(p) >= n);
      memset(p, 0x5a, n);
      pool::free(p);
    }
  }
}

TEST_CASE("calloc returns zeroed memory, also when reusing freed blocks", "[pool][api]") {
  for (size_t n : {size_t{24}, size_t{3000}, size_t{200000}, size_t{5} << 20}) {
    void* dirty = pool::alloc(n);
    memset(dirty, 0xff, n);
    pool::free(dirty);
    unsigned char* p = static_cast<unsigned char*>(pool::calloc(1, n));
    REQUIRE(p != nullptr);
    for (size_t i = 0; i < n; i++) REQUIRE(p[i] == 0);
    pool::free(p);
  }
}

TEST_CASE("overflowing and impossible sizes fail with ENOMEM", "[pool][api]") {
  errno = 0;
  CHECK(pool::calloc(SIZE_MAX / 2, 3) == nullptr);
  CHECK(errno == ENOMEM);
  errno = 0;
  CHECK(pool::alloc(SIZE_MAX) == nullptr);
  CHECK(errno == ENOMEM);
  errno = 0;
  CHECK(pool::reallocarray(nullptr, SIZE_MAX / 4, 8) == nullptr);
  CHECK(errno == ENOMEM);
  void* p = nullptr;
  CHECK(pool::posix_memalign(&p, 24, 10) == EINVAL);
  CHECK(pool::posix_memalign(&p, 0, 10) == EINVAL);
}

TEST_CASE("realloc keeps contents across classes and to zero frees", "[pool][api]") {
  char* p = static_cast<char*>(pool::alloc(10));
  memcpy(p, "0123456789", 10);
  for (size_t n : {20, 200, 5000, 70000, 3000000, 50}) {
    p = static_cast<char*>(pool::realloc(p, n));
    REQUIRE(p != nullptr);
    REQUIRE(memcmp(p, "0123456789", 10) == 0);
  }
  CHECK(pool::realloc(p, 0) == nullptr);
}

TEST_CASE("threads beyond the stats region's slots lose no counts", "[pool][stats]") {
  // The heaps past the region's slots shared its last slot with plain
  // increments: counts were lost when two of them ran at once. Every
  // thread is alive at once here, so each has a heap of its own.
  std::string err;
  int sig = child_signal([] {
    pool::init();  // the region moves to its file at init
    pool::SharedStats* s = pool::stats_region();
    const unsigned threads = s->slots + 100;
    const unsigned c = pool::class_of(720), n = 1000;
    auto sum = [&] {
      uint64_t allocs = 0, frees = 0;
      uint32_t used = __atomic_load_n(&s->slots_used, __ATOMIC_RELAXED);
      for (uint32_t i = 0; i < used && i < s->slots; i++) allocs += s->heaps[i].allocs[c], frees += s->heaps[i].frees[c];
      return std::make_pair(allocs, frees);
    };
    auto before = sum();
    static pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, nullptr, threads);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    std::vector<pthread_t> tids(threads);
    for (unsigned i = 0; i < threads; i++) {
      auto body = [](void*) -> void* {
        void* keep = pool::alloc(16);  // this thread's heap, before the barrier
        pthread_barrier_wait(&barrier);
        for (unsigned j = 0; j < 1000; j++) pool::free(pool::alloc(720));
        pool::free(keep);
        return nullptr;
      };
      if (pthread_create(&tids[i], &attr, body, nullptr) != 0) abort();
    }
    for (pthread_t t : tids) pthread_join(t, nullptr);
    auto after = sum();
    uint64_t want = (uint64_t)threads * n;
    if (after.first - before.first != want || after.second - before.second != want) {
      fprintf(stderr, "allocs +%llu, frees +%llu, want +%llu\n", (unsigned long long)(after.first - before.first),
              (unsigned long long)(after.second - before.second), (unsigned long long)want);
      abort();
    }
  }, &err);
  INFO(err);
  CHECK(sig == 0);
}

TEST_CASE("a pointer from another allocator goes to the foreign hook", "[pool][foreign]") {
  static void* seen = nullptr;
  pool::set_foreign_hooks(pool::ForeignHooks{[](void* p) { seen = p; ::free(p); },
                                             [](void* p) { return ::malloc_usable_size(p); }});
  void* g = ::malloc(100);
  CHECK_FALSE(pool::owns(g));
  CHECK(pool::usable_size(g) >= 100);
  uint64_t before = pool::stats_global().foreign_frees;
  pool::free(g);
  CHECK(seen == g);
  CHECK(pool::stats_global().foreign_frees == before + 1);
  pool::set_foreign_hooks(pool::ForeignHooks{nullptr, nullptr});
}

TEST_CASE("freeing an address inside a block aborts with a message", "[pool][bad]") {
  std::string err;
  int sig = child_signal([] {
    char* p = static_cast<char*>(pool::alloc(100));
    std::thread([p] { pool::free(p + 16); }).join();
  }, &err);
  CHECK(sig == SIGABRT);
  CHECK(err.find("invalid pointer") != std::string::npos);
}

TEST_CASE("block_start accepts exactly the starts of the blocks carved so far", "[pool][page]") {
  // One multiply and one compare stand for n % d == 0 && n / d < capacity:
  // checked for every class, every offset of its span (and one block past
  // it), at several carving stages, the power-of-two sizes included.
  for (unsigned c = 0; c < k_num_classes; c++) {
    uint32_t d = k_classes.size[c];
    uint32_t bytes = k_classes.span[c] * (uint32_t)pool::k_unit;
    pool::Page pg{};
    pg.block_size = d;
    pg.start32 = 0x40000000u;
    pg.div_magic = pool::div_magic_for(d);
    uint64_t e = d * pg.div_magic;
    for (uint32_t cap : {0u, 1u, 2u, (uint32_t)k_classes.blocks[c] / 2, (uint32_t)k_classes.blocks[c]}) {
      pg.carved_below = cap * e;
      uint32_t bad = 0;
      for (uint32_t n = 0; n < bytes + d; n++) {
        char* p = reinterpret_cast<char*>(uintptr_t{0x7f0000000000} + pg.start32 + n);
        bool want = n % d == 0 && n / d < cap;
        if (pool::block_start(&pg, p) != want || (!want && pool::past_carved(&pg, p) != (n % d == 0))) bad++;
      }
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("freeing a block start that was never carved aborts with a message", "[pool][bad]") {
  // Block-aligned addresses past the blocks carved so far (the rest of the
  // page, and its tail beyond the last whole block) were taken for blocks:
  // the free counted a block never handed out, and extend() would later
  // hand it out as well. Locally and from another thread.
  for (int where = 0; where < 4; where++) {
    std::string err;
    int sig = child_signal([where] {
      char* p = static_cast<char*>(pool::alloc(3000));  // 3072-byte blocks: a tail after the last
      pool::Page* pg = page_of(p);
      char* start = p - (size_t)(((uint32_t)reinterpret_cast<uintptr_t>(p) - pg->start32) / pg->block_size) * pg->block_size;
      uint32_t index = where < 2 ? pg->capacity : pg->reserved;  // first never carved, or the tail
      char* q = start + (size_t)index * pg->block_size;
      if (where % 2 == 0) pool::free(q);
      else std::thread([q] { pool::free(q); }).join();
    }, &err);
    CHECK(sig == SIGABRT);
    CHECK(err.find("never allocated") != std::string::npos);
  }
}

TEST_CASE("every kind of bad pointer stops the program with its kind and the address", "[pool][bad]") {
  // Pointers into memory of ours that no block starts at were taken for
  // foreign ones and handed to libc, which crashed or freed them.
  struct Case {
    const char* name;
    void (*run)();
    const char* message;
  };
  static const Case cases[] = {
      {"inside a huge block", [] { pool::free(static_cast<char*>(pool::alloc(5 << 20)) + 4096); },
       "free(): invalid pointer (inside a huge block"},
      {"realloc inside a huge block",
       [] { (void)!pool::realloc(static_cast<char*>(pool::alloc(5 << 20)) + 64, 10); }, "inside a huge block"},
      {"a huge block freed twice after its mapping went back",
       [] {
         void* p = pool::alloc(5 << 20);
         pool::free(p);
         pool::trim();  // the cached mapping is unmapped
         pool::free(p);
       },
       "double free detected (a huge block)"},
      {"a segment's header", [] { pool::free(reinterpret_cast<char*>(pool::segment_of(pool::alloc(64))) + 64); },
       "into the allocator's metadata"},
      {"a segment's header, its last unit",
       [] {
         char* seg = reinterpret_cast<char*>(pool::segment_of(pool::alloc(64)));
         pool::free(seg + pool::k_header_units * pool::k_unit - 64);
       },
       "into the allocator's metadata"},
      {"the allocator's metadata", [] { pool::free(pool::meta_alloc(64)); }, "into the allocator's metadata"},
      {"usable size of metadata", [] { (void)!pool::usable_size(pool::meta_alloc(64)); }, "into the allocator's metadata"},
      {"the stats region", [] { pool::free(reinterpret_cast<char*>(pool::stats_region()) + 64); },
       "into the allocator's statistics"},
      {"a free unit of a segment",
       [] {
         pool::Segment* seg = pool::segment_of(pool::alloc(64));
         unsigned u = seg->free_units.next(0, true);
         if (u == pool::k_units) abort();  // all units in use: nothing to test (still SIGABRT)
         pool::free(reinterpret_cast<char*>(seg) + u * pool::k_unit);
       },
       "its page is free"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    std::string err;
    int sig = child_signal(c.run, &err);
    CHECK(sig == SIGABRT);
    CHECK(err.find(c.message) != std::string::npos);
    CHECK(err.find(": 0x") != std::string::npos);
  }
}

TEST_CASE("freeing a carved block never handed out is reported as a free block", "[pool][bad]") {
  std::string err;
  int sig = child_signal([] {
    // Allocate until a fresh page serves: its first block is handed out,
    // the next one carved with it (one OS page at a time) but never.
    for (int i = 0; i < 100000; i++) {
      char* p = static_cast<char*>(pool::alloc(3000));
      pool::Page* pg = page_of(p);
      if (pg->capacity == 2 && pool::page_used(pg) == 1 && p == pool::page_start(pool::segment_of(p), pg)) {
        pool::free(p + pg->block_size);
        break;
      }
    }
  }, &err);
  CHECK(sig == SIGABRT);
  CHECK(err.find("never handed out") != std::string::npos);
  CHECK(err.find(": 0x") != std::string::npos);
}

TEST_CASE("freeing a large block twice aborts with a message", "[pool][bad]") {
  std::string err;
  int sig = child_signal([] {
    void* p = pool::alloc(100000);
    pool::free(p);
    pool::free(p);
  }, &err);
  CHECK(sig == SIGABRT);
  CHECK(err.find("double free") != std::string::npos);
}

TEST_CASE("freeing or reallocating a freed huge block aborts with a message", "[pool][bad]") {
  // Regression: the second free took the freed block for a foreign pointer
  // and handed it to libc's free, which crashed without a word.
  std::string err;
  int sig = child_signal([] {
    void* p = pool::alloc(5 << 20);
    pool::free(p);
    pool::free(p);
  }, &err);
  CHECK(sig == SIGABRT);
  CHECK(err.find("double free") != std::string::npos);
  CHECK(err.find("huge") != std::string::npos);
  sig = child_signal([] {
    void* p = pool::alloc(5 << 20);
    pool::free(p);
    if (pool::realloc(p, 100) != nullptr) _exit(0);
  }, &err);
  CHECK(sig == SIGABRT);
  CHECK(err.find("freed huge block") != std::string::npos);
}

TEST_CASE("freeing a small block twice aborts with glibc's message", "[pool][bad]") {
  std::string err;
  int sig = child_signal([] {
    void* keep = pool::alloc(32);
    void* p = pool::alloc(32);
    pool::free(p);
    pool::free(p);
    pool::free(keep);
  }, &err);
  CHECK(sig == SIGABRT);
  CHECK(err.find("free(): double free detected") != std::string::npos);
}

TEST_CASE("a block freed twice from another thread is caught too", "[pool][bad]") {
  std::string err;
  int sig = child_signal([] {
    void* p = pool::alloc(200);
    std::thread([p] {
      pool::free(p);
      pool::free(p);
    }).join();
  }, &err);
  CHECK(sig == SIGABRT);
  CHECK(err.find("double free") != std::string::npos);
}

TEST_CASE("a cycle in a page's remote frees is reported, not walked forever", "[pool][bad]") {
  // Two frees of one block by other threads at the same moment can both
  // pass the canary check; here the program clears the canary in between,
  // which has the same effect. The owner then found the block linked to
  // itself and collected it forever.
  std::string err;
  int sig = child_signal([] {
    alarm(10);  // a hang ends as SIGALRM, a failure of this test
    void* p = pool::alloc(64);
    std::thread([p] { pool::free(p); }).join();
    static_cast<pool::Block*>(p)->canary = 0;
    std::thread([p] { pool::free(p); }).join();
    for (int i = 0; i < 100000; i++) pool::alloc(64);
  }, &err);
  CHECK(sig == SIGABRT);
  CHECK(err.find("corrupted list") != std::string::npos);
}

TEST_CASE("realloc of a freed block aborts instead of copying garbage", "[pool][bad]") {
  std::string err;
  int sig = child_signal([] {
    void* keep = pool::alloc(64);
    void* p = pool::alloc(64);
    pool::free(p);
    void* q = pool::realloc(p, 1000);
    (void)q;
    pool::free(keep);
  }, &err);
  CHECK(sig == SIGABRT);
  CHECK(err.find("freed block") != std::string::npos);
}

TEST_CASE("a block that held a freed canary is handed out clean", "[pool][bad]") {
  // Allocation clears the canary, so freeing a block the program never
  // wrote to is not mistaken for a double free.
  for (int i = 0; i < 10000; i++) {
    void* p = pool::alloc(16);
    pool::free(p);
  }
  SUCCEED();
}

// ---- sampling for the heap profiler -------------------------------------------

namespace {

// Hooks with a fixed gap: the sample points fall every kGap bytes of blocks
// (the charged bytes restart at the end of each sampled block).
constexpr int64_t kGap = 1000;
std::set<void*>* g_sampled;
long g_samples, g_sampled_frees, g_other_frees;

int64_t fixed_gap() { return kGap; }
void count_sample(void* p, size_t) {
  g_samples++;
  g_sampled->insert(p);
}
void count_free(void* p) {
  if (g_sampled->erase(p)) g_sampled_frees++;
  else g_other_frees++;
}
void no_poll() {}

// In a child process: the hooks, once set, stay set.
std::string sampling_run() {
  std::string out;
  child_signal(
      [] {
        g_sampled = new std::set<void*>;
        pool::set_profile_hooks(pool::ProfileHooks{fixed_gap, count_sample, count_free, no_poll});
        // Lists handed to the fast path before the hooks were set are not
        // charged: allocate up to the first sample, so that the count
        // starts at a point.
        std::vector<void*> live;
        while (g_samples == 0) live.push_back(pool::alloc(64));
        g_samples = 0;
        // 64-byte blocks, all kept: 15 fit in 1000 bytes, the 16th holds the point.
        for (int i = 0; i < 16000; i++) live.push_back(pool::alloc(64));
        pool::Heap* own = pool::page_heap(page_of(live[0]));
        long foreign = 0;
        for (void* p : *g_sampled) foreign += pool::page_heap(page_of(p)) != own;
        fprintf(stderr, "kept %ld %ld\n", g_samples, foreign);
        for (void* p : live) pool::free(p);
        fprintf(stderr, "freed %ld %ld\n", g_sampled_frees, g_other_frees);
        g_sampled_frees = 0;
        // One block allocated and freed in a loop: the lists refill from
        // local_free, and are cut the same way.
        g_samples = 0;
        for (int i = 0; i < 16000; i++) pool::free(pool::alloc(64));
        fprintf(stderr, "loop %ld %ld\n", g_samples, g_sampled_frees);
        // Large blocks span their size: each holds a point.
        g_samples = g_sampled_frees = 0;
        for (int i = 0; i < 10; i++) pool::free(pool::alloc(100000));
        fprintf(stderr, "large %ld %ld\n", g_samples, g_sampled_frees);
      },
      &out);
  return out;
}

}  // namespace

TEST_CASE("sampling keeps the fast path and samples exactly at the points", "[pool][profile]") {
  std::string out = sampling_run();
  INFO(out);
  CHECK(out.find("kept 1000 1001\n") != std::string::npos);  // 16000 / 16 (+ the first), all from the sample heap
  CHECK(out.find("freed 1001 0\n") != std::string::npos);    // each reported once, no other small block
  CHECK(out.find("loop 1000 1000\n") != std::string::npos);
  CHECK(out.find("large 10 10\n") != std::string::npos);
}
