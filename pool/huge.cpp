// Huge blocks (above 2 MiB): each mapped on its own, registered in an
// open-addressing table, and kept in a small cache once freed.
#include <string.h>

#include "backend.hpp"
#include "pool.hpp"

namespace ringpool::pool {

size_t g_huge_bytes, g_huge_count;
uint64_t g_huge_allocs, g_huge_frees;

namespace {

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

void huge_cache_drop(unsigned i) {
  platform::unmap(g_huge_cache[i].base, g_huge_cache[i].mapped);
  g_dirty_bytes -= g_huge_cache[i].mapped;
  g_purged_bytes += g_huge_cache[i].mapped;
  g_huge_cache[i] = g_huge_cache[--g_huge_cached];
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


}  // namespace

size_t huge_cache_bytes() {
  size_t n = 0;
  for (unsigned i = 0; i < g_huge_cached; i++) n += g_huge_cache[i].mapped;
  return n;
}

bool huge_cache_drop_oldest() {
  if (g_huge_cached == 0) return false;
  huge_cache_drop(0);
  return true;
}

void huge_cache_expire(uint64_t now, uint64_t delay) {
  for (unsigned i = 0; i < g_huge_cached;) {
    if (now - g_huge_cache[i].since_ms >= delay) huge_cache_drop(i); else i++;
  }
}

OursKind huge_ours_locked(const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
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
  if (a - reinterpret_cast<uintptr_t>(g_huge_table) < g_huge_cap * sizeof(HugeEntry)) return k_ours_metadata;
  for (void* freed : g_huge_freed) {
    // Unmapped: no allocator can have handed p out since.
    if (freed == p && !platform::is_mapped(p)) return k_ours_freed_huge;
  }
  return k_not_ours;
}

// Huge mappings come in quarter steps between powers of two: at most a
// quarter more address space than asked for (memory is only what is
// touched), so that a freed mapping serves the next blocks of about its
// size whole, with no system call.
size_t huge_mapping_size(size_t n) {
  size_t r = platform::round_os_page(n);
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
    // A fresh mapping: with huge pages, 2 MiB-aligned so that they fit, and
    // one fault per 2 MiB instead of 512 (5-64 MB blocks filled in a loop:
    // 312,000 faults in 0.85 s, 6,000 in 0.15-0.45 s). The cost: a block
    // touched sparsely is resident in 2 MiB steps, as with THP "always".
    bool thp = options().thp && !guard;
    size_t at = thp ? k_thp_size : platform::k_os_page;
    if (align > at) at = align;
    base = platform::map_aligned(mapped, at);
    if (base == nullptr) {
      // Maybe cached mappings stand in the way (ulimit -v): drop them, and
      // retry without the 2 MiB alignment, which over-maps by 2 MiB.
      size_t plain = align > platform::k_os_page ? align : platform::k_os_page;
      if (!purge_all() && at == plain) return nullptr;
      at = plain;
      base = platform::map_aligned(mapped, at);
      if (base == nullptr) return nullptr;
    }
    if (thp) platform::advise_huge_pages(base, mapped);
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

}  // namespace ringpool::pool
