// The global back end (see segment.hpp): segments, spans of units, large
// and huge blocks, purging, metadata.
#include "segment.hpp"

#include <string.h>

#include "options.hpp"
#include "pool.hpp"

namespace ringpool::pool {

platform::Mutex g_lock;

namespace {
void publish_locked();
void start_purger();
bool g_purger_wanted;  // under g_lock
}  // namespace

__thread bool t_defer_purger __attribute__((tls_model("initial-exec")));

// Takes g_lock; on release, copies the back end's totals into the shared
// stats region, so every change is published with the lock that made it.
class LockGuard {
 public:
  explicit LockGuard(platform::Mutex& m) : m_(m) { m_.lock(); }
  ~LockGuard() {
    publish_locked();
    bool purger = g_purger_wanted;
    m_.unlock();
    if (RINGPOOL_UNLIKELY(purger) && !t_defer_purger) start_purger();  // never under a lock
  }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;
 private:
  platform::Mutex& m_;
};
alignas(4096) uint8_t g_chunk_map[size_t{1} << (k_address_bits - k_chunk_shift)];

namespace {

// All below: under g_lock.
Segment* g_segments;       // fuller (older) segments first
Segment* g_segments_last;
size_t g_segment_count;
size_t g_in_use_bytes;     // units in pages + huge blocks in use
size_t g_dirty_bytes;      // free units not purged + cached huge mappings
size_t g_large_bytes, g_large_count;
size_t g_huge_bytes, g_huge_count;
size_t g_purged_bytes;
uint64_t g_next_tick_ms;
uint64_t g_class_pages[k_num_classes];
uint64_t g_large_allocs, g_large_frees, g_huge_allocs, g_huge_frees;

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

// ---- huge blocks ----------------------------------------------------------
// Open addressing on the user pointer; tombstones are (void*)1.
struct HugeEntry {
  void* user;
  void* base;      // start of the mapping
  size_t mapped;   // length of the mapping
};
HugeEntry* g_huge_table;
size_t g_huge_cap;   // power of two
size_t g_huge_used;  // live + tombstones
uintptr_t g_huge_lo = UINTPTR_MAX, g_huge_hi;  // every huge mapping ever made lies in [lo, hi)

// Freed huge mappings kept for reuse, youngest last.
struct HugeCached {
  void* base;
  size_t mapped;
  uint64_t since_ms;
};
constexpr unsigned k_huge_cache = 16;
HugeCached g_huge_cache[k_huge_cache];
unsigned g_huge_cached;
// The last huge blocks freed, whatever became of their mappings: a second
// free of one that is no longer mapped is told from a foreign pointer.
constexpr unsigned k_huge_freed_ring = 32;
void* g_huge_freed[k_huge_freed_ring];
unsigned g_huge_freed_next;

void* const k_tombstone = reinterpret_cast<void*>(1);

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
  for (unsigned u = 0; u < k_units; u++) s->unit_page[u] = &s->pages[u];
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
    d.remove(first, n);
    s->dirty_units.remove(first, n);
    g_dirty_bytes -= (size_t)n * k_unit;
    g_purged_bytes += (size_t)n * k_unit;
  }
  return false;
}

void huge_cache_drop(unsigned i) {
  platform::unmap(g_huge_cache[i].base, g_huge_cache[i].mapped);
  g_dirty_bytes -= g_huge_cache[i].mapped;
  g_purged_bytes += g_huge_cache[i].mapped;
  g_huge_cache[i] = g_huge_cache[--g_huge_cached];
}

// Purge oldest-first-ish until dirty <= target: the huge cache, then
// segments from the emptiest (newest) end.
void purge_to(size_t target) {
  while (g_dirty_bytes > target && g_huge_cached > 0) huge_cache_drop(0);
  for (Segment* s = g_segments_last; s != nullptr && g_dirty_bytes > target;) {
    Segment* prev = s->prev;
    if ((s->dirty_units & s->free_units).any()) segment_purge(s);
    s = prev;
  }
}

void purge_check_locked(uint64_t now) {
  if (g_dirty_bytes > purge_now_limit()) purge_to(retain_limit());
  if (g_dirty_bytes > purger_trigger() && !g_purger_failed && options().purge_thread &&
      !g_purger_running.load(std::memory_order_relaxed))
    g_purger_wanted = true;
  if (g_dirty_bytes == 0 || now < g_next_tick_ms) return;
  uint64_t delay = options().purge_delay_ms;
  g_next_tick_ms = now + (delay / 4 ? delay / 4 : 1);
  for (unsigned i = 0; i < g_huge_cached;) {
    if (now - g_huge_cache[i].since_ms >= delay) huge_cache_drop(i); else i++;
  }
  for (Segment* s = g_segments; s != nullptr;) {
    Segment* next = s->next;
    if ((s->dirty_units & s->free_units).any() && now - s->dirty_since_ms >= delay) segment_purge(s);
    s = next;
  }
}

// Take a span of n units aligned to align_units; sets up the descriptors.
// Returns the first page descriptor, or nullptr.
// Units still resident (dirty) are taken before clean ones: they cost no
// page faults and are memory the process holds already.
Page* span_alloc(unsigned n, unsigned align_units, PageKind kind, bool* zeroed) {
  Segment* s = nullptr;
  unsigned first = 0;
  for (int pass = 0; pass < 2 && s == nullptr; pass++) {
    for (s = g_segments; s != nullptr; s = s->next) {
      UnitSet m = pass == 0 ? s->free_units & s->dirty_units : s->free_units;
      if (m.count() < n) continue;
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
  g_in_use_bytes += (size_t)n * k_unit;
  Page* pg = &s->pages[first];
  for (unsigned i = 0; i < n; i++) s->unit_page[first + i] = pg;
  pg->span = (uint8_t)n;
  pg->head = 0;
  pg->kind = kind;
  return pg;
}

void span_free(Page* pg) {
  Segment* s = segment_of(pg);
  unsigned first = (unsigned)(pg - s->pages);
  unsigned n = pg->span;
  for (unsigned i = 0; i < n; i++) {
    s->unit_page[first + i] = &pg[i];
    pg[i].kind = k_kind_free;
  }
  pg->head = 0;
  pg->heap.store(nullptr, std::memory_order_relaxed);
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

// ---- huge registry --------------------------------------------------------

size_t huge_hash(const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p) >> 12;
  return (size_t)(a * 0x9E3779B97F4A7C15ull >> 20);
}

HugeEntry* huge_find(const void* user) {
  if (g_huge_cap == 0) return nullptr;
  for (size_t i = huge_hash(user) & (g_huge_cap - 1);; i = (i + 1) & (g_huge_cap - 1)) {
    HugeEntry* e = &g_huge_table[i];
    if (e->user == user) return e;
    if (e->user == nullptr) return nullptr;
  }
}

void huge_table_put(const HugeEntry& in) {
  size_t i = huge_hash(in.user) & (g_huge_cap - 1);
  while (g_huge_table[i].user != nullptr && g_huge_table[i].user != k_tombstone) i = (i + 1) & (g_huge_cap - 1);
  if (g_huge_table[i].user == nullptr) g_huge_used++;
  g_huge_table[i] = in;
}

// Room for one more entry: grows the table when it is half full. The only
// step of an insert that can fail (it maps the new table).
bool huge_reserve() {
  if ((g_huge_used + 1) * 2 > g_huge_cap) {
    // Sized from the live count, so tombstones never make it grow forever.
    size_t cap = 256;
    while (cap < (g_huge_count + 1) * 4) cap *= 2;
    HugeEntry* t = static_cast<HugeEntry*>(platform::map(cap * sizeof(HugeEntry)));
    if (t == nullptr) return false;
    HugeEntry* old = g_huge_table;
    size_t old_cap = g_huge_cap;
    g_huge_table = t;
    g_huge_cap = cap;
    g_huge_used = 0;
    for (size_t i = 0; i < old_cap; i++) {
      if (old[i].user != nullptr && old[i].user != k_tombstone) huge_table_put(old[i]);
    }
    if (old) platform::unmap(old, old_cap * sizeof(HugeEntry));
  }
  return true;
}

bool huge_insert(const HugeEntry& in) {
  if (!huge_reserve()) return false;
  huge_table_put(in);
  uintptr_t base = reinterpret_cast<uintptr_t>(in.base);
  if (base < g_huge_lo) g_huge_lo = base;
  if (base + in.mapped > g_huge_hi) g_huge_hi = base + in.mapped;
  uint8_t* c = &g_chunk_map[reinterpret_cast<uintptr_t>(in.user) >> k_chunk_shift];
  (*c)++;  // a count of huge starts in this chunk (at most 2: blocks > 2 MiB)
  return true;
}

void huge_remove(HugeEntry* e) {
  g_chunk_map[reinterpret_cast<uintptr_t>(e->user) >> k_chunk_shift]--;
  e->user = k_tombstone;
}

size_t round_os(size_t n) { return (n + platform::k_os_page - 1) & ~(platform::k_os_page - 1); }

size_t huge_cache_bytes() {
  size_t n = 0;
  for (unsigned i = 0; i < g_huge_cached; i++) n += g_huge_cache[i].mapped;
  return n;
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

}  // namespace

// ---- public back end ------------------------------------------------------

void* meta_alloc(size_t size) {
  size = (size + 63) & ~size_t{63};
  LockGuard g(g_lock);
  if (size > g_meta_left) {
    size_t chunk = size > (1u << 20) ? round_os(size) : (1u << 20);
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
  pg->cls = (uint8_t)cls;
  pg->block_size = k_classes.size[cls];
  pg->start32 = (uint32_t)reinterpret_cast<uintptr_t>(page_start(segment_of(pg), pg));
  pg->div_magic = div_magic_for(pg->block_size);
  pg->reserved = k_classes.blocks[cls];
  pg->capacity = 0;
  __atomic_store_n(&pg->carved_below, uint64_t{0}, __ATOMIC_RELAXED);
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
  pg->heap.store(h, std::memory_order_release);
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
    pg->heap.store(nullptr, std::memory_order_relaxed);
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
    for (unsigned i = old_n; i < n; i++) s->unit_page[first + i] = pg;
  } else {
    for (unsigned i = n; i < old_n; i++) {
      s->unit_page[first + i] = &pg[i];
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

// Huge mappings come in quarter steps between powers of two: at most a
// quarter more address space than asked for (memory is only what is
// touched), so that a freed mapping serves the next blocks of about its
// size whole, with no system call.
size_t huge_mapping_size(size_t n) {
  size_t r = round_os(n);
  if (r < n) return 0;
  size_t step = (size_t)1 << (61 - __builtin_clzll(r));  // a quarter of r's power of two
  size_t m = (r + step - 1) & ~(step - 1);
  return m < r ? 0 : m;
}

void* huge_alloc(size_t size, size_t align, bool zero) {
  size_t guard = g_harden ? platform::k_os_page : 0;  // a PROT_NONE page after
  size_t mapped = huge_mapping_size(size) + guard;
  if (mapped < size) return nullptr;  // huge_mapping_size overflowed (0)
  void* base = nullptr;
  bool zeroed = true;
  {
    LockGuard g(g_lock);
    // Reuse cached mappings, whose pages are already faulted in: the
    // smallest one that is large enough, its tail split off and cached
    // again; else the largest one, grown with mremap (its pages move, only
    // the new part faults).
    if (align <= platform::k_os_page && !guard && g_huge_cached > 0) {
      unsigned best = k_huge_cache, largest = 0;
      for (unsigned i = 0; i < g_huge_cached; i++) {
        if (g_huge_cache[i].mapped >= mapped && (best == k_huge_cache || g_huge_cache[i].mapped < g_huge_cache[best].mapped))
          best = i;
        if (g_huge_cache[i].mapped > g_huge_cache[largest].mapped) largest = i;
      }
      unsigned take = best != k_huge_cache ? best : largest;
      HugeCached c = g_huge_cache[take];
      g_huge_cache[take] = g_huge_cache[--g_huge_cached];
      g_dirty_bytes -= c.mapped;
      if (c.mapped >= mapped) {
        base = c.base;
        size_t tail = c.mapped - mapped;
        // A block that fills more than half of it takes it whole: cut, the
        // pieces were soon too small for the next block, which then grew
        // one with mremap (a loop of 5-25 MB blocks: 458 mremap and 322
        // munmap calls in 2,000 blocks, 8 and 0 this way).
        if (tail < k_large_max || tail * 2 < c.mapped) {
          mapped = c.mapped;
        } else {  // the tail is huge itself: keep it for the next one
          g_huge_cache[g_huge_cached++] = HugeCached{static_cast<char*>(base) + mapped, tail, c.since_ms};
          g_dirty_bytes += tail;
        }
      } else {
        base = platform::remap(c.base, c.mapped, mapped, true);
        if (base == nullptr) {
          platform::unmap(c.base, c.mapped);
          g_purged_bytes += c.mapped;
        }
      }
      zeroed = false;
    }
  }
  if (base == nullptr) {
    base = platform::map_aligned(mapped, align > platform::k_os_page ? align : platform::k_os_page);
    if (base == nullptr) {
      // Maybe cached mappings stand in the way (ulimit -v): drop them, retry.
      if (!purge_all()) return nullptr;
      base = platform::map_aligned(mapped, align > platform::k_os_page ? align : platform::k_os_page);
      if (base == nullptr) return nullptr;
    }
  }
  {
    LockGuard g(g_lock);
    if (!huge_insert(HugeEntry{base, base, mapped})) {
      platform::unmap(base, mapped);
      return nullptr;
    }
    g_huge_bytes += mapped;
    g_huge_count++;
    g_huge_allocs++;
    g_in_use_bytes += mapped;
  }
  if (guard) platform::protect(static_cast<char*>(base) + mapped - guard, guard, false);
  if (zero && !zeroed) memset(base, 0, size);
  return base;
}

bool huge_free(void* p) {
  LockGuard g(g_lock);
  HugeEntry* e = huge_find(p);
  if (e == nullptr) return false;
  void* base = e->base;
  size_t mapped = e->mapped;
  huge_remove(e);
  g_huge_freed[g_huge_freed_next++ % k_huge_freed_ring] = p;
  g_huge_bytes -= mapped;
  g_huge_count--;
  g_huge_frees++;
  g_in_use_bytes -= mapped;
  uint64_t now = platform::now_ms();
  if (g_harden) {  // no cache: the guard page goes with the mapping
    platform::unmap(base, mapped);
    g_purged_bytes += mapped;
    return true;
  }
  if (g_huge_cached == k_huge_cache) huge_cache_drop(0);
  g_huge_cache[g_huge_cached++] = HugeCached{base, mapped, now};
  g_dirty_bytes += mapped;
  purge_check_locked(now);
  return true;
}

size_t huge_usable(const void* p) {
  LockGuard g(g_lock);
  HugeEntry* e = huge_find(p);
  if (e == nullptr) return 0;
  size_t guard = g_harden ? platform::k_os_page : 0;
  return e->mapped - guard - (size_t)(static_cast<const char*>(e->user) - static_cast<const char*>(e->base));
}

OursKind ours_not_block(const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  LockGuard g(g_lock);
  for (unsigned i = 0; i < g_huge_cached; i++) {
    uintptr_t base = reinterpret_cast<uintptr_t>(g_huge_cache[i].base);
    if (a - base < g_huge_cache[i].mapped) return k_ours_freed_huge;
  }
  if (a >= g_huge_lo && a < g_huge_hi) {
    for (size_t i = 0; i < g_huge_cap; i++) {
      const HugeEntry& e = g_huge_table[i];
      if (e.user == nullptr || e.user == k_tombstone) continue;
      if (a - reinterpret_cast<uintptr_t>(e.base) < e.mapped) return k_ours_huge_inside;
    }
  }
  for (MetaChunk* c = g_meta_chunks; c; c = c->next) {
    if (a - reinterpret_cast<uintptr_t>(c) < c->bytes) return k_ours_metadata;
  }
  if (a - reinterpret_cast<uintptr_t>(g_huge_table) < g_huge_cap * sizeof(HugeEntry)) return k_ours_metadata;
  for (void* freed : g_huge_freed) {
    // Unmapped: no allocator can have handed p out since.
    if (freed == p && !platform::is_mapped(p)) return k_ours_freed_huge;
  }
  return k_not_ours;
}

void* huge_realloc(void* p, size_t new_size) {
  size_t mapped = huge_mapping_size(new_size);
  if (mapped == 0) return nullptr;
  LockGuard g(g_lock);
  HugeEntry* e = huge_find(p);
  if (e == nullptr || e->base != e->user || g_harden) return nullptr;  // copy instead
  HugeEntry copy = *e;
  // In place while it fits and would give back less than a quarter.
  if (mapped <= copy.mapped && mapped * 4 >= copy.mapped * 3) return p;
  // Room for the new entry before the block moves: after mremap there is
  // no way back, and a table that cannot grow then would lose the block.
  if (!huge_reserve()) return nullptr;
  e = huge_find(p);  // growing rebuilt the table
  void* q = platform::remap(copy.base, copy.mapped, mapped, true);
  if (q == nullptr) return nullptr;
  huge_remove(e);
  g_huge_bytes = g_huge_bytes + mapped - copy.mapped;
  g_in_use_bytes = g_in_use_bytes + mapped - copy.mapped;
  copy.base = copy.user = q;
  copy.mapped = mapped;
  if (!huge_insert(copy)) platform::die();  // cannot happen: room was made above
  return q;
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
