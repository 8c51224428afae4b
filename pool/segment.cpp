// The global back end (see segment.hpp): segments, spans of units, large
// blocks, purging, metadata (huge.cpp: huge blocks).
#include <string.h>

#include "backend.hpp"
#include "errors.hpp"
#include "options.hpp"
#include "pool.hpp"

namespace ringpool::pool {

platform::Mutex g_lock;

RINGPOOL_LARGE_BSS alignas(4096) uint8_t g_chunk_map[size_t{1} << (k_address_bits - k_chunk_shift)];
__thread bool t_defer_purger __attribute__((tls_model("initial-exec")));
bool g_purger_wanted;
size_t g_in_use_bytes;
size_t g_dirty_bytes;
size_t g_purged_bytes;

namespace {

// All below: under g_lock.
Segment* g_segments;       // fuller (older) segments first
Segment* g_segments_last;
size_t g_segment_count;
size_t g_large_bytes, g_large_count;
uint64_t g_next_tick_ms;
uint64_t g_class_pages[k_num_classes];
uint64_t g_large_allocs, g_large_frees;

// ---- metadata -------------------------------------------------------------
// Metadata comes from chunks of at least 1 MiB, each starting with a
// MetaChunk that links it to the previous one (so that a pointer into
// metadata can be told from a foreign one).
struct MetaChunk {
  MetaChunk* next;
  size_t bytes;
};
MetaChunk* g_meta_chunks;
char* g_meta_cur;
size_t g_meta_left;
size_t g_meta_total;


// Free memory left resident by a purge: an eighth of the heap in use, at
// least RINGPOOL_RETAIN.
size_t retain_limit() {
  size_t r = g_in_use_bytes / 8;
  return r > options().retain_bytes ? r : options().retain_bytes;
}

// Dirty memory beyond this is purged at once, whatever its age: only a big
// drop (beyond half the heap in use, and 128 MiB). Below it, memory waits out the
// purge delay, so a program that frees and allocates again soon does not
// fault its pages back in.
size_t purge_now_limit() {
  size_t r = g_in_use_bytes / 2 > (size_t{128} << 20) ? g_in_use_bytes / 2 : (size_t{128} << 20);
  return r > retain_limit() ? r : retain_limit();
}

// The truly idle case: a program that freed a lot and then stops calling
// malloc never reaches a slow path again. Above this much dirty memory a
// thread is started that purges on the delay and exits once little is left
// (RINGPOOL_PURGE_THREAD=0 turns it off); smaller programs never get it.
size_t purger_trigger() { return 2 * options().retain_bytes; }
std::atomic<bool> g_purger_running;
bool g_purger_failed;

void chunk_map_set(const void* p, uint8_t v) {
  g_chunk_map[reinterpret_cast<uintptr_t>(p) >> k_chunk_shift] = v;
}

// ---- segments -------------------------------------------------------------

void segment_link_last(Segment* s) {
  s->next = nullptr;
  s->prev = g_segments_last;
  if (g_segments_last) g_segments_last->next = s; else g_segments = s;
  g_segments_last = s;
}

void segment_unlink(Segment* s) {
  if (s->prev) s->prev->next = s->next; else g_segments = s->next;
  if (s->next) s->next->prev = s->prev; else g_segments_last = s->prev;
}

Segment* segment_new() {
  void* mem = platform::map_aligned(k_segment, k_segment);
  if (mem == nullptr) return nullptr;
  if (reinterpret_cast<uintptr_t>(mem) >> k_address_bits) {  // cannot be mapped
    platform::unmap(mem, k_segment);
    return nullptr;
  }
  Segment* s = static_cast<Segment*>(mem);  // fresh mapping: all zero
  s->free_units.add(k_header_units, k_units - k_header_units);
  for (unsigned u = 0; u < k_units; u++) s->units[u].page = &s->pages[u];
  chunk_map_set(s, k_chunk_segment);
  segment_link_last(s);
  g_segment_count++;
  stat_inc(stats_global().segments_mapped);
  return s;
}

void segment_release(Segment* s) {
  g_dirty_bytes -= (size_t)s->dirty_units.count() * k_unit;
  segment_unlink(s);
  chunk_map_set(s, 0);
  g_segment_count--;
  g_purged_bytes += (size_t)s->dirty_units.count() * k_unit;
  platform::unmap(s, k_segment);
}

// Decommit the free dirty units of s. A segment with nothing in use is
// unmapped instead (returns true then: s is gone).
bool segment_purge(Segment* s) {
  if (s->used_units == 0) {
    segment_release(s);
    return true;
  }
  UnitSet d = s->dirty_units & s->free_units;
  for (unsigned first = d.next(0, true); first < k_units; first = d.next(first, true)) {
    unsigned n = d.next(first, false) - first;
    platform::decommit(reinterpret_cast<char*>(s) + (size_t)first * k_unit, (size_t)n * k_unit);
    for (unsigned h = first / k_thp_units; h <= (first + n - 1) / k_thp_units; h++) s->collapsed &= (uint8_t)~(1u << h);
    d.remove(first, n);
    s->dirty_units.remove(first, n);
    g_dirty_bytes -= (size_t)n * k_unit;
    g_purged_bytes += (size_t)n * k_unit;
  }
  return false;
}


// Purge oldest-first-ish until dirty <= target: the huge cache, then
// segments from the emptiest (newest) end.
void purge_to(size_t target) {
  while (g_dirty_bytes > target && huge_cache_drop_oldest()) {
  }
  for (Segment* s = g_segments_last; s != nullptr && g_dirty_bytes > target;) {
    Segment* prev = s->prev;
    if ((s->dirty_units & s->free_units).any()) segment_purge(s);
    s = prev;
  }
}

}  // namespace

unsigned segments_collapse_dense(unsigned budget) {
  if (!options().thp) return 0;
  unsigned done = 0;
  // Under the lock, though a collapse copies 2 MiB: no segment is released
  // or purged meanwhile (a purged unit would be made resident again, and a
  // released segment's address may be the program's by then).
  LockGuard g(g_lock);
  for (Segment* s = g_segments; s != nullptr && budget > 0; s = s->next) {
    for (unsigned h = 0; h < k_units / k_thp_units && budget > 0; h++) {
      if (s->collapsed & (1u << h)) continue;
      unsigned first = h * k_thp_units;
      // Three quarters in use and the rest dirty: the part is resident
      // already, so the huge page costs (almost) no memory.
      unsigned free = s->free_units.count_in(first, k_thp_units);
      if (free > k_thp_units / 4 || (s->free_units & s->dirty_units).count_in(first, k_thp_units) != free) continue;
      s->collapsed |= (uint8_t)(1u << h);
      budget--;
      done += platform::collapse_huge_pages(reinterpret_cast<char*>(s) + (size_t)first * k_unit, k_thp_size);
    }
  }
  return done;
}

void purge_check_locked(uint64_t now) {
  if (g_dirty_bytes > purge_now_limit()) purge_to(retain_limit());
  if (g_dirty_bytes > purger_trigger() && !g_purger_failed && options().purge_thread &&
      !g_purger_running.load(std::memory_order_relaxed))
    g_purger_wanted = true;
  if (g_dirty_bytes == 0 || now < g_next_tick_ms) return;
  uint64_t delay = options().purge_delay_ms;
  g_next_tick_ms = now + (delay / 4 ? delay / 4 : 1);
  huge_cache_expire(now, delay);
  for (Segment* s = g_segments; s != nullptr;) {
    Segment* next = s->next;
    if ((s->dirty_units & s->free_units).any() && now - s->dirty_since_ms >= delay) segment_purge(s);
    s = next;
  }
}

namespace {

// Take a span of n units aligned to align_units; sets up the descriptors.
// Returns the first page descriptor, or nullptr.
// Units still resident (dirty) are taken before clean ones: they cost no
// page faults and are memory the process holds already.
Page* span_alloc(unsigned n, unsigned align_units, PageKind kind, bool* zeroed) {
  Segment* s = nullptr;
  unsigned first = 0;
  for (int pass = 0; pass < 2 && s == nullptr; pass++) {
    for (s = g_segments; s != nullptr; s = s->next) {
      if (k_units - k_header_units - s->used_units < n) continue;
      UnitSet m = pass == 0 ? s->free_units & s->dirty_units : s->free_units;
      first = m.find_run(n, align_units);
      if (first) break;
    }
  }
  if (s == nullptr) {
    // The header units come first: a run that no segment can hold (2 MiB
    // aligned with a guard unit) must not map a segment that then stays empty.
    unsigned lowest = (k_header_units + align_units - 1) / align_units * align_units;
    if (lowest + n > k_units) return nullptr;
    s = segment_new();
    if (s == nullptr) return nullptr;
    first = s->free_units.find_run(n, align_units);
    if (first == 0) return nullptr;
  }
  // Units never touched or purged read as zero; a dirty one may not.
  unsigned dirty = s->dirty_units.count_in(first, n);
  *zeroed = dirty == 0;
  g_dirty_bytes -= (size_t)dirty * k_unit;
  s->dirty_units.remove(first, n);
  s->free_units.remove(first, n);
  s->used_units += n;
  RINGPOOL_DEBUG_ASSERT(s->free_units.count() == k_units - k_header_units - s->used_units);
  g_in_use_bytes += (size_t)n * k_unit;
  Page* pg = &s->pages[first];
  for (unsigned i = 0; i < n; i++) s->units[first + i].page = pg;  // heap: nullptr while free
  pg->span = (uint8_t)n;
  pg->head = 0;
  pg->kind = kind;
  return pg;
}

void span_free(Page* pg) {
  Segment* s = segment_of(pg);
  unsigned first = (unsigned)(pg - s->pages);
  unsigned n = pg->span;
  page_set_heap(pg, nullptr);
  for (unsigned i = 0; i < n; i++) {
    s->units[first + i].page = &pg[i];
    pg[i].kind = k_kind_free;
  }
  pg->head = 0;
  pg->xfree.store(0, std::memory_order_relaxed);
  pg->free = pg->local_free = nullptr;
  pg->used = 0;
  pg->span = 0;
  uint64_t now = platform::now_ms();
  if (!(s->dirty_units & s->free_units).any()) s->dirty_since_ms = now;
  s->free_units.add(first, n);
  s->dirty_units.add(first, n);
  s->used_units -= n;
  g_in_use_bytes -= (size_t)n * k_unit;
  g_dirty_bytes += (size_t)n * k_unit;
  purge_check_locked(now);
}


void purger_main() {
  for (;;) {
    uint64_t delay = options().purge_delay_ms;
    platform::sleep_ms(delay / 2 + 1);
    g_lock.lock();
    purge_check_locked(platform::now_ms());
    bool done = g_dirty_bytes <= options().retain_bytes;
    if (done) g_purger_running.store(false, std::memory_order_relaxed);
    publish_locked();
    g_lock.unlock();
    if (done) return;
  }
}

}  // namespace

void start_purger() {
  bool expected = false;
  if (!g_purger_running.compare_exchange_strong(expected, true)) return;
  g_purger_wanted = false;  // racy but harmless: running is the real guard
  if (platform::start_thread(purger_main) != 0) {
    g_purger_failed = true;  // seccomp, thread limits: fall back to slow paths
    g_purger_running.store(false);
    verbose_msg("could not start the purge thread; free memory is returned on later allocator calls");
  }
}


void publish_locked() {
  BackendStats& b = stats_region()->backend;
  __atomic_store_n(&b.seq, b.seq + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  b.segments = g_segment_count;
  b.mapped = g_segment_count * k_segment + g_huge_bytes + huge_cache_bytes();
  b.page_bytes = g_in_use_bytes - g_huge_bytes;
  b.dirty = g_dirty_bytes;
  b.purged = g_purged_bytes;
  b.meta_bytes = g_meta_total;
  b.large_count = g_large_count;
  b.large_bytes = g_large_bytes;
  b.huge_count = g_huge_count;
  b.huge_bytes = g_huge_bytes;
  memcpy(b.pages, g_class_pages, sizeof b.pages);
  b.large_allocs = g_large_allocs;
  b.large_frees = g_large_frees;
  b.huge_allocs = g_huge_allocs;
  b.huge_frees = g_huge_frees;
  __atomic_store_n(&b.seq, b.seq + 1, __ATOMIC_RELEASE);
}


// ---- public back end ------------------------------------------------------

void* meta_alloc(size_t size) {
  size = (size + 63) & ~size_t{63};
  LockGuard g(g_lock);
  if (size > g_meta_left) {
    size_t chunk = size > (1u << 20) ? platform::round_os_page(size) : (1u << 20);
    if (chunk - size < 64) chunk += platform::k_os_page;  // room for the header
    char* m = static_cast<char*>(platform::map(chunk));
    if (m == nullptr) return nullptr;
    MetaChunk* c = reinterpret_cast<MetaChunk*>(m);
    c->next = g_meta_chunks;
    c->bytes = chunk;
    g_meta_chunks = c;
    g_meta_cur = m + 64;
    g_meta_left = chunk - 64;
    g_meta_total += chunk;
  }
  void* p = g_meta_cur;
  g_meta_cur += size;
  g_meta_left -= size;
  return p;
}

Page* segment_page_alloc(Heap* h, unsigned cls) {
  bool zeroed;
  Page* pg;
  {
    LockGuard g(g_lock);
    pg = span_alloc(k_classes.span[cls], 1, k_kind_small, &zeroed);
    if (pg == nullptr) return nullptr;
    g_class_pages[cls]++;
  }
  pg->cls = pg->own_cls = (uint8_t)cls;
  pg->block_size = k_classes.size[cls];
  pg->start32 = pg->own_start32 = (uint32_t)reinterpret_cast<uintptr_t>(page_start(segment_of(pg), pg));
  pg->div_magic = pg->own_div_magic = div_magic_for(pg->block_size);
  pg->reserved = k_classes.blocks[cls];
  pg->capacity = 0;
  __atomic_store_n(&pg->carved_below, uint64_t{0}, __ATOMIC_RELAXED);
  pg->own_carved_below = 0;
  pg->used = 0;
  pg->free = pg->local_free = nullptr;
  pg->in_reclaimed = 0;
  pg->next = pg->prev = nullptr;
  pg->xfree.store(0, std::memory_order_relaxed);
  if (g_harden) {
    if (pg->hbits == nullptr) pg->hbits = static_cast<uint64_t*>(meta_alloc(4096 / 8));
    if (pg->hbits == nullptr) {
      segment_page_free(pg);
      return nullptr;
    }
    memset(pg->hbits, 0, 4096 / 8);
  }
  page_set_heap(pg, h);
  return pg;
}

void segment_page_free(Page* pg) {
  LockGuard g(g_lock);
  g_class_pages[pg->cls]--;
  span_free(pg);
}

void segment_pages_free(Page* list) {
  LockGuard g(g_lock);
  while (list) {
    Page* next = list->next;
    list->next = nullptr;
    g_class_pages[list->cls]--;
    span_free(list);
    list = next;
  }
}

void* large_alloc(size_t size, size_t align, bool zero) {
  unsigned n = (unsigned)((size + k_unit - 1) >> k_unit_shift);
  unsigned guard = g_harden ? 1 : 0;  // a PROT_NONE unit after the block
  unsigned align_units = align > k_unit ? (unsigned)(align >> k_unit_shift) : 1;
  bool zeroed;
  Page* pg;
  {
    LockGuard g(g_lock);
    pg = span_alloc(n + guard, align_units, k_kind_large, &zeroed);
    if (pg == nullptr) return nullptr;
    g_large_bytes += (size_t)n * k_unit;
    g_large_count++;
    g_large_allocs++;
    pg->large_size = (size_t)n * k_unit;
    pg->used = 1;
    pg->block_size = 0;
  }
  void* p = page_start(segment_of(pg), pg);
  if (guard) platform::protect(static_cast<char*>(p) + (size_t)n * k_unit, k_unit, false);
  if (zero && !zeroed) memset(p, 0, size);
  return p;
}

void large_free(Page* pg) {
  if (g_harden) platform::protect(page_start(segment_of(pg), pg) + pg->large_size, k_unit, true);
  LockGuard g(g_lock);
  g_large_bytes -= pg->large_size;
  g_large_count--;
  g_large_frees++;
  span_free(pg);
}

bool large_resize(Page* pg, size_t new_size) {
  if (g_harden) return false;  // keep the guard unit where it is: copy instead
  unsigned n = (unsigned)((new_size + k_unit - 1) >> k_unit_shift);
  LockGuard g(g_lock);
  Segment* s = segment_of(pg);
  unsigned first = (unsigned)(pg - s->pages);
  unsigned old_n = pg->span;
  if (n == old_n) return true;
  if (n > old_n) {
    if (first + n > k_units) return false;
    unsigned extra = n - old_n;
    if (s->free_units.count_in(first + old_n, extra) != extra) return false;
    g_dirty_bytes -= (size_t)s->dirty_units.count_in(first + old_n, extra) * k_unit;
    s->dirty_units.remove(first + old_n, extra);
    s->free_units.remove(first + old_n, extra);
    for (unsigned i = old_n; i < n; i++) s->units[first + i].page = pg;
  } else {
    for (unsigned i = n; i < old_n; i++) {
      s->units[first + i].page = &pg[i];
      pg[i].kind = k_kind_free;
    }
    if (!(s->dirty_units & s->free_units).any()) s->dirty_since_ms = platform::now_ms();
    s->free_units.add(first + n, old_n - n);
    s->dirty_units.add(first + n, old_n - n);
    g_dirty_bytes += (size_t)(old_n - n) * k_unit;
  }
  s->used_units = s->used_units + n - old_n;
  g_in_use_bytes = g_in_use_bytes + (size_t)n * k_unit - (size_t)old_n * k_unit;
  g_large_bytes = g_large_bytes + (size_t)n * k_unit - pg->large_size;
  pg->span = (uint8_t)n;
  pg->large_size = (size_t)n * k_unit;
  purge_check_locked(platform::now_ms());
  return true;
}



OursKind ours_not_block(const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  LockGuard g(g_lock);
  for (MetaChunk* c = g_meta_chunks; c; c = c->next) {
    if (a - reinterpret_cast<uintptr_t>(c) < c->bytes) return k_ours_metadata;
  }
  return huge_ours_locked(p);
}

void purge_tick() {
  // Unlocked peek: a stale read only delays the purge to the next visit.
  if (__atomic_load_n(&g_dirty_bytes, __ATOMIC_RELAXED) == 0) return;
  uint64_t now = platform::now_ms();
  if (now < __atomic_load_n(&g_next_tick_ms, __ATOMIC_RELAXED)) return;
  if (!g_lock.try_lock()) return;
  purge_check_locked(now);
  publish_locked();
  g_lock.unlock();
}

void purge_fork_child() {
  g_purger_running.store(false);
  g_purger_wanted = false;
}

bool purge_all() {
  LockGuard g(g_lock);
  size_t before = g_purged_bytes;
  purge_to(0);
  return g_purged_bytes != before;
}

BackendStats backend_totals() {
  LockGuard g(g_lock);
  publish_locked();
  return stats_region()->backend;
}

void for_each_segment(void (*f)(Segment*, void*), void* ctx) {
  LockGuard g(g_lock);
  for (Segment* s = g_segments; s != nullptr; s = s->next) f(s, ctx);
}

}  // namespace ringpool::pool
