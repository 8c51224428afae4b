// fuzz_pool: a libFuzzer target that turns its input into malloc-family
// calls on pool:: (linked directly) and checks every answer against a model.
//
// Glossary
//   op      one input byte picks the call; the bytes after it its arguments
//           (a slot, a size kind and value, an alignment). Input that runs
//           out reads as zeros, so every input is a valid program.
//   slot    one of k_slots places for a live block; allocating into a full
//           slot frees its block first.
//   model   per slot: the pointer, the size asked for, the alignment asked
//           for and an id; plus the live ranges [p, p + usable) by address.
//   pattern bytes derived from (id, offset), written into every block and
//           checked before realloc and free. Blocks above k_dense are
//           written sparsely (the first 4 KiB, then 64 bytes per 64 KiB and
//           the last 64 bytes): touching every page of multi-MiB blocks made
//           page faults most of the run time.
//   worker  a second thread; op k_on_worker makes the next op run there,
//           so blocks are freed and reallocated by threads that do not own
//           them. k_spawn runs ops on a short-lived thread, whose heap is
//           left idle for the main thread to adopt.
//
// Checks: results are 16-byte aligned and honour the alignment asked for;
// usable size >= request; no two live blocks overlap; calloc memory is
// zero; contents survive realloc (the common prefix) and the blocks' whole
// lifetime; failures are NULL with ENOMEM (posix_memalign: the error code,
// errno untouched); sensible sizes never fail. After every op, the pool's
// own state against the model (check_pool): each page's invariants (see
// Page in types.hpp), its free lists (bounded, block starts that carry the
// free canary), the blocks it has handed out equal to the model's live
// blocks inside it, a large page holding exactly one live block, and
// usage()'s live block count equal to the model's.
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "../../pool/pool.hpp"
#include "../../pool/heap.hpp"
#include "../../pool/segment.hpp"

namespace pool = ringpool::pool;

namespace {

constexpr unsigned k_slots = 64;
constexpr size_t k_budget = size_t{96} << 20;  // live bytes the model allows
constexpr size_t k_dense = 64 * 1024;
constexpr size_t k_max_sane = size_t{64} << 20;  // below this, NULL is a bug

[[noreturn]] __attribute__((format(printf, 1, 2))) void fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_pool: FAIL: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  abort();
}

struct Input {
  const uint8_t* p;
  size_t n;
  bool empty() const { return n == 0; }
  uint8_t u8() {
    if (n == 0) return 0;
    n--;
    return *p++;
  }
  uint32_t u16() { return u8() | (uint32_t)u8() << 8; }
  uint32_t u24() { return u16() | (uint32_t)u8() << 16; }
};

uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// The pattern: byte i of a block is byte i % 8 of word(id, i & ~7).
inline uint64_t pattern_word(uint64_t id, size_t off) { return mix64(id ^ (off >> 3) * 0x9E3779B97F4A7C15ULL); }
inline uint8_t pattern(uint64_t id, size_t off) { return (uint8_t)(pattern_word(id, off) >> ((off & 7) * 8)); }

// The harness's own loops are left out of coverage: libFuzzer should be
// guided by the allocator's branches, and the loops are most of the time.
#if defined(__clang__)
#define NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define NO_COVERAGE
#endif

// Calls f(begin, end) for the ranges of an n-byte block that carry a pattern.
template <class F>
NO_COVERAGE void for_ranges(size_t n, F f) {
  if (n <= k_dense) {
    if (n) f(size_t{0}, n);
    return;
  }
  f(size_t{0}, size_t{4096});
  for (size_t off = k_dense; off < n; off += k_dense) f(off, off + 64 < n ? off + 64 : n);
  f(n - 64, n);
}

NO_COVERAGE void fill(void* p, size_t n, uint64_t id) {
  uint8_t* b = static_cast<uint8_t*>(p);
  for_ranges(n, [&](size_t lo, size_t hi) NO_COVERAGE {
    size_t i = lo;
    for (; i < hi && (i & 7); i++) b[i] = pattern(id, i);
    for (; i + 8 <= hi; i += 8) {
      uint64_t w = pattern_word(id, i);
      memcpy(b + i, &w, 8);
    }
    for (; i < hi; i++) b[i] = pattern(id, i);
  });
}

// Checks the pattern of an n-byte block over its first `upto` bytes.
NO_COVERAGE void check(const void* p, size_t n, size_t upto, uint64_t id, const char* what) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  for_ranges(n, [&](size_t lo, size_t hi) NO_COVERAGE {
    if (hi > upto) hi = upto;
    size_t i = lo;
    for (; i + 8 <= hi && (i & 7) == 0; i += 8) {
      uint64_t w;
      memcpy(&w, b + i, 8);
      if (w != pattern_word(id, i)) break;
    }
    for (; i < hi; i++)
      if (b[i] != pattern(id, i))
        fail("%s: block %p (size %zu, id %llu) corrupt at offset %zu: %#x, want %#x", what, p, n,
             (unsigned long long)id, i, b[i], pattern(id, i));
  });
}

NO_COVERAGE void check_zero(const void* p, size_t n, const char* what) {
  static const uint8_t zeros[4096] = {};
  const uint8_t* b = static_cast<const uint8_t*>(p);
  for (size_t off = 0; off < n; off += sizeof zeros) {
    size_t len = n - off < sizeof zeros ? n - off : sizeof zeros;
    if (memcmp(b + off, zeros, len) != 0) fail("%s: block %p of %zu bytes is not zero near %zu", what, p, n, off);
  }
}

struct Slot {
  void* p;
  size_t size;   // asked for
  size_t align;  // asked for (0: none beyond malloc's)
  uint64_t id;
};

struct Model {
  Slot slots[k_slots];
  std::map<uintptr_t, uintptr_t> live;  // start -> end (start + usable)
  size_t live_bytes;
  uint64_t next_id = 1;
  uint64_t ops;
};

Model g_model;

void range_add(void* p, size_t usable, const char* what) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p), e = a + usable;
  auto next = g_model.live.lower_bound(a);
  if (next != g_model.live.end() && next->first < e)
    fail("%s: block [%#lx, %#lx) overlaps live block [%#lx, %#lx)", what, (unsigned long)a, (unsigned long)e,
         (unsigned long)next->first, (unsigned long)next->second);
  if (next != g_model.live.begin()) {
    auto prev = std::prev(next);
    if (prev->second > a)
      fail("%s: block [%#lx, %#lx) overlaps live block [%#lx, %#lx)", what, (unsigned long)a, (unsigned long)e,
           (unsigned long)prev->first, (unsigned long)prev->second);
  }
  g_model.live.emplace(a, e);
}

void range_remove(void* p) {
  if (g_model.live.erase(reinterpret_cast<uintptr_t>(p)) != 1) fail("model lost block %p", p);
}

// A fresh block of `size` bytes asked with `align` (0: plain): check it and
// enter it in the slot.
void adopt(Slot& s, void* p, size_t size, size_t align, bool zeroed, const char* what) {
  size_t need = align > 16 ? align : 16;
  if (reinterpret_cast<uintptr_t>(p) % need != 0) fail("%s(%zu, align %zu) = %p: misaligned", what, size, align, p);
  size_t usable = pool::usable_size(p);
  if (usable < size) fail("%s(%zu) = %p: usable size %zu too small", what, size, p, usable);
  if (!pool::owns(p)) fail("%s(%zu) = %p: not owned by the pool", what, size, p);
  range_add(p, usable, what);
  if (zeroed) check_zero(p, size, what);
  s = Slot{p, size, align, g_model.next_id++};
  fill(p, size, s.id);
  g_model.live_bytes += size;
}

void release(Slot& s, const char* what) {
  if (!s.p) return;
  check(s.p, s.size, s.size, s.id, what);
  range_remove(s.p);
  g_model.live_bytes -= s.size;
  pool::free(s.p);
  s = Slot{};
}

// Sizes from tiny to a few MiB, with the class edges and absurd values.
size_t read_size(Input& in) {
  static const size_t edges[] = {0,      1,      15,      16,      17,          128,         129,
                                 1024,   1025,   32767,   32768,   32769,       65536,       65537,
                                 196608, 2u << 20, (2u << 20) + 1, 4u << 20,  (4u << 20) + 1, 8u << 20};
  uint8_t kind = in.u8();
  switch (kind % 8) {
    case 0: return in.u8() % 65;
    case 1: return in.u16() % 1025;
    case 2: return in.u16() % (32768 + 1);
    case 3: return 32768 + in.u24() % ((2u << 20) - 32768 + 1);   // large
    case 4: return (2u << 20) + in.u24() % (6u << 20);            // huge
    case 5: return edges[in.u8() % (sizeof edges / sizeof edges[0])];
    case 6: {
      // Sizes no system can map, so they must fail (a merely large size
      // could succeed under overcommit). Rare: one in eight, else small.
      static const size_t absurd[] = {SIZE_MAX, SIZE_MAX - 15, (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX + 1};
      uint8_t b = in.u8();
      return b < 32 ? absurd[b % 4] : b;
    }
    default: return in.u8() % 129;
  }
}

// Powers of two up to 8 MiB.
size_t read_align(Input& in) { return size_t{1} << (in.u8() % 24); }

// Keeps the model's memory bounded: sizes that would pass the budget
// shrink to small ones (absurd sizes pass through: they must fail).
size_t budget(size_t size) {
  if (size > k_max_sane) return size;
  return g_model.live_bytes + size > k_budget ? size % 512 : size;
}

bool sane(size_t size) { return size <= k_max_sane; }

// A failed call: sane sizes must not fail; others fail with ENOMEM.
void expect_failure_ok(const char* what, size_t size, int err) {
  if (sane(size)) fail("%s(%zu) failed (errno %d) with %zu bytes live", what, size, err, g_model.live_bytes);
  if (err != ENOMEM) fail("%s(%zu) failed with errno %d, want ENOMEM", what, size, err);
}

// Absurd sizes that somehow succeed (overcommit) are freed untouched.
bool absurd_success(void* p, size_t size) {
  if (sane(size)) return false;
  if (pool::usable_size(p) < size) fail("a %zu-byte block has usable size %zu", size, pool::usable_size(p));
  pool::free(p);
  return true;
}

// ---- the pool against the model ---------------------------------------------

// Blocks of the model that start in [lo, hi).
size_t model_blocks_in(uintptr_t lo, uintptr_t hi) {
  size_t n = 0;
  for (auto it = g_model.live.lower_bound(lo); it != g_model.live.end() && it->first < hi; ++it) n++;
  return n;
}

// Length of one of pg's lists; each block must be a carved block start
// that carries the free canary, and the list at most `bound` long.
NO_COVERAGE uint32_t list_length(const pool::Page* pg, pool::Block* b, uint32_t bound, const char* which) {
  uint32_t n = 0;
  for (; b; b = pool::list_enc(b->next)) {
    if (++n > bound) fail("page %p: its %s list is longer than %u blocks (a cycle?)", (const void*)pg, which, bound);
    if (!pool::block_start(pg, b)) fail("page %p: its %s list holds %p, no carved block start", (const void*)pg, which, (void*)b);
    if (b->canary != (pool::g_cookie ^ reinterpret_cast<uintptr_t>(b)))
      fail("page %p: block %p on its %s list lacks the free canary", (const void*)pg, (void*)b, which);
  }
  return n;
}

struct PoolWalk {
  size_t remote;  // blocks on remote-free lists, not yet collected
};

NO_COVERAGE void check_segment(pool::Segment* s, void* ctx) {
  PoolWalk* w = static_cast<PoolWalk*>(ctx);
  for (unsigned u = pool::k_header_units; u < pool::k_units;) {
    pool::Page* pg = &s->pages[u];
    if (pg->kind == pool::k_kind_free) {
      u++;
      continue;
    }
    uintptr_t start = reinterpret_cast<uintptr_t>(pool::page_start(s, pg));
    uintptr_t end = start + (size_t)pg->span * pool::k_unit;
    if (pg->kind == pool::k_kind_large) {
      auto it = g_model.live.find(start);
      if (it == g_model.live.end() || model_blocks_in(start, end) != 1)
        fail("large page %p at %#lx holds no live block of the model, or more than one", (void*)pg, (unsigned long)start);
    } else {
      uint32_t n = pg->used + pg->asleep;
      uint32_t cap = pg->capacity;
      if (cap > pg->reserved) fail("page %p: %u blocks carved of %u", (void*)pg, cap, pg->reserved);
      if (pg->carved_below != cap * (pg->block_size * pg->div_magic)) fail("page %p: carved_below is stale", (void*)pg);
      uint32_t nfree = list_length(pg, pg->free, cap, "free");
      uint32_t nlocal = list_length(pg, pg->local_free, cap, "local free");
      uintptr_t x = pg->xfree.load(std::memory_order_relaxed);
      uint32_t nremote = list_length(pg, reinterpret_cast<pool::Block*>(x & ~pool::k_page_flags), cap, "remote free");
      // Blocks other threads freed and hold in their chains for this page.
      for (pool::Heap* h = pool::g_all_heaps; h; h = h->next_all) {
        for (const pool::RemoteChain& ch : h->remote) {
          if (ch.page != pg) continue;
          uint32_t held = list_length(pg, ch.head, cap, "held remote chain");
          if (held != ch.n) fail("page %p: a remote chain of %u blocks says %u", (void*)pg, held, ch.n);
          nremote += held;
        }
      }
      if (n < pg->head || n - pg->head + nfree + nlocal != cap)
        fail("page %p (class %u): used %u - head %u + free %u + local %u != capacity %u", (void*)pg, pg->cls, n, pg->head,
             nfree, nlocal, cap);
      size_t live = model_blocks_in(start, end);
      if (n - pg->head - nremote != live)
        fail("page %p (class %u): %u blocks handed out (used %u - head %u - remote %u), the model has %zu", (void*)pg,
             pg->cls, n - pg->head - nremote, n, pg->head, nremote, live);
      w->remote += nremote;
    }
    u += pg->span;
  }
}

NO_COVERAGE void check_pool() {
  PoolWalk w{};
  pool::for_each_segment(check_segment, &w);
  pool::UsageTotals u = pool::usage();
  if (u.live_blocks != g_model.live.size() + w.remote)
    fail("usage() counts %zu live blocks; the model %zu, plus %zu freed remotely and not yet collected", u.live_blocks,
         g_model.live.size(), w.remote);
}

enum Op {
  k_malloc,
  k_calloc,
  k_realloc,
  k_aligned_alloc,
  k_posix_memalign,
  k_free,
  k_usable,
  k_memalign_odd,
  k_on_worker,
  k_spawn,
  k_reallocarray,
  k_valloc,
  k_collect,
  k_ops
};

void run_op(Input& in);

// ---- the worker thread ----------------------------------------------------

struct Worker {
  std::mutex m;
  std::condition_variable cv;
  std::function<void()> job;
  bool has_job = false;

  Worker() { std::thread([this] { loop(); }).detach(); }
  void loop() {
    for (;;) {
      std::unique_lock<std::mutex> l(m);
      cv.wait(l, [this] { return has_job; });
      job();
      has_job = false;
      cv.notify_all();
    }
  }
  void run(std::function<void()> f) {
    std::unique_lock<std::mutex> l(m);
    job = std::move(f);
    has_job = true;
    cv.notify_all();
    cv.wait(l, [this] { return !has_job; });
  }
};

Worker& worker() {
  static Worker* w = new Worker;
  return *w;
}

// Set while the worker runs a job: the worker, or a thread it spawned,
// asking for the worker runs the op inline (it would wait on itself). Only
// one thread runs at a time, each handing over with a lock or a join.
bool g_worker_busy;
thread_local unsigned t_spawn_depth;

// Runs f on the worker (inline when the worker is the caller's own waiter).
void on_worker(const std::function<void()>& f) {
  if (g_worker_busy) return f();
  g_worker_busy = true;
  worker().run(f);
  g_worker_busy = false;
}

void run_op(Input& in) {
  g_model.ops++;
  uint8_t op = in.u8() % k_ops;
  Slot& s = g_model.slots[in.u8() % k_slots];
  switch (op) {
    case k_malloc: {
      release(s, "before malloc");
      size_t size = budget(read_size(in));
      errno = 0;
      void* p = pool::alloc(size);
      if (!p) return expect_failure_ok("malloc", size, errno);
      if (!absurd_success(p, size)) adopt(s, p, size, 0, false, "malloc");
      return;
    }
    case k_calloc: {
      release(s, "before calloc");
      size_t size = budget(read_size(in));
      size_t n = 1 + in.u8() % 4, each = size / n;
      bool overflow = in.u8() == 0xff;  // now and then, a product that overflows
      if (overflow) n = SIZE_MAX / 2 + 2, each = 2 + size % 8;
      errno = 0;
      void* p = pool::calloc(n, each);
      if (overflow) {
        if (p || errno != ENOMEM) fail("calloc(%zu, %zu) overflows: got %p, errno %d", n, each, p, errno);
        return;
      }
      if (!p) return expect_failure_ok("calloc", n * each, errno);
      if (!absurd_success(p, n * each)) adopt(s, p, n * each, 0, true, "calloc");
      return;
    }
    case k_realloc:
    case k_reallocarray: {
      size_t size = budget(read_size(in));
      if (s.p && sane(size) && g_model.live_bytes - s.size + size > k_budget) size %= 512;
      size_t n = 1, each = size;
      if (op == k_reallocarray && size % 3 == 0 && size) n = 3, each = size / 3;
      check(s.p, s.size, s.size, s.id, "before realloc");
      errno = 0;
      void* q = op == k_realloc ? pool::realloc(s.p, size) : pool::reallocarray(s.p, n, each);
      if (!q) {
        if (s.p && size == 0) {  // glibc: realloc(p, 0) frees p
          range_remove(s.p);
          g_model.live_bytes -= s.size;
          s = Slot{};
          return;
        }
        expect_failure_ok("realloc", size, errno);
        if (s.p) check(s.p, s.size, s.size, s.id, "after failed realloc");
        return;
      }
      if (!sane(size)) fail("realloc(%p, %zu) succeeded", s.p, size);
      if (!s.p) return adopt(s, q, size, 0, false, "realloc(NULL)");
      range_remove(s.p);
      size_t keep = s.size < size ? s.size : size;
      check(q, s.size, keep, s.id, "after realloc");
      if (reinterpret_cast<uintptr_t>(q) % 16) fail("realloc = %p: misaligned", q);
      size_t usable = pool::usable_size(q);
      if (usable < size) fail("realloc(%zu) = %p: usable size %zu too small", size, q, usable);
      range_add(q, usable, "realloc");
      g_model.live_bytes = g_model.live_bytes - s.size + size;
      s.p = q;
      s.size = size;
      s.align = 0;
      fill(q, size, s.id);
      return;
    }
    case k_aligned_alloc:
    case k_memalign_odd: {
      release(s, "before aligned_alloc");
      size_t align = read_align(in);
      size_t size = budget(read_size(in));
      if (op == k_memalign_odd && align > 2) align = align - 1 - in.u8() % (align / 2);  // not a power of two
      errno = 0;
      void* p = op == k_aligned_alloc ? pool::aligned_alloc(align, size) : pool::memalign(align, size);
      size_t want = align;
      if (want & (want - 1)) want = size_t{1} << (64 - __builtin_clzll(want));
      if (!p) return expect_failure_ok("aligned_alloc", size, errno);
      if (!absurd_success(p, size)) adopt(s, p, size, want, false, "aligned_alloc");
      return;
    }
    case k_posix_memalign: {
      release(s, "before posix_memalign");
      uint8_t how = in.u8();
      size_t align = read_align(in);
      if (how % 8 == 0) align = align * 3;              // not a power of two
      else if (how % 8 == 1) align = align % 8;         // 1, 2, 4 or 0: below sizeof(void*)
      size_t size = budget(read_size(in));
      void* p = reinterpret_cast<void*>(0x1234);
      errno = 12345;
      int rc = pool::posix_memalign(&p, align, size);
      bool valid = align >= sizeof(void*) && (align & (align - 1)) == 0;
      if (errno != 12345) fail("posix_memalign(%zu, %zu) changed errno to %d", align, size, errno);
      if (!valid) {
        if (rc != EINVAL || p != reinterpret_cast<void*>(0x1234))
          fail("posix_memalign(%zu, %zu): rc %d, want EINVAL and *out untouched", align, size, rc);
        return;
      }
      if (rc != 0) {
        if (p != reinterpret_cast<void*>(0x1234)) fail("posix_memalign failed but wrote *out");
        return expect_failure_ok("posix_memalign", size, rc);
      }
      if (!absurd_success(p, size)) adopt(s, p, size, align, false, "posix_memalign");
      return;
    }
    case k_valloc: {
      release(s, "before valloc");
      size_t size = budget(read_size(in));
      bool pv = in.u8() & 1;
      errno = 0;
      void* p = pv ? pool::pvalloc(size) : pool::valloc(size);
      if (!p) return expect_failure_ok(pv ? "pvalloc" : "valloc", size, errno);
      if (pv && sane(size) && pool::usable_size(p) < ((size + 4095) & ~size_t{4095}))
        fail("pvalloc(%zu): usable size %zu is not a whole number of pages", size, pool::usable_size(p));
      if (!absurd_success(p, size)) adopt(s, p, size, 4096, false, pv ? "pvalloc" : "valloc");
      return;
    }
    case k_free:
      release(s, "before free");
      return;
    case k_usable:
      if (s.p) {
        check(s.p, s.size, s.size, s.id, "while live");
        if (pool::usable_size(s.p) < s.size) fail("usable size of %p shrank below %zu", s.p, s.size);
        if (s.align && reinterpret_cast<uintptr_t>(s.p) % s.align) fail("block %p lost its alignment", s.p);
      }
      return;
    case k_on_worker: {
      // The next op runs on the worker: Input is handed over by reference
      // and the calling thread waits, so the model needs no lock.
      if (in.empty()) return;
      on_worker([&in] { run_op(in); });
      return;
    }
    case k_spawn: {
      unsigned n = 1 + in.u8() % 8;
      if (t_spawn_depth >= 2) return;  // nested spawns: a few threads at most
      unsigned depth = t_spawn_depth + 1;
      std::thread([&in, n, depth] {
        t_spawn_depth = depth;
        for (unsigned i = 0; i < n && !in.empty(); i++) run_op(in);
      }).join();  // its heap goes idle, with the blocks still in the model
      return;
    }
    case k_collect:
      if (in.u8() % 4 == 0) pool::trim();
      else pool::thread_collect();
      return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  // Bounded work per input: the input's length bounds it too.
  for (unsigned i = 0; i < 4096 && !in.empty(); i++) {
    run_op(in);
    check_pool();
  }
  // Everything goes back, half of it from the worker (remote frees).
  for (unsigned i = 0; i < k_slots; i++) {
    Slot& s = g_model.slots[i];
    if (!s.p) continue;
    if (i % 2) on_worker([&s] { release(s, "at the end, on the worker"); });
    else release(s, "at the end");
  }
  if (!g_model.live.empty() || g_model.live_bytes != 0) fail("model still holds %zu blocks", g_model.live.size());
  check_pool();
  return 0;
}
