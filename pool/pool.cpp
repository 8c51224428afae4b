// The malloc family on top of the fast paths: glibc's semantics for sizes,
// alignment, realloc and foreign pointers.
#include "pool.hpp"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "errors.hpp"
#include "segment.hpp"

namespace ringpool::pool {

size_t heap_counts(size_t* idle);  // heap.cpp

namespace {

ForeignHooks g_foreign;

enum Kind { k_none, k_small, k_large, k_huge, k_foreign };

// p is about to be called foreign: if it points into memory of ours, stop
// with a message that names what it points into (as free's, if in_free).
void report_if_ours(const void* p, bool in_free) {
  static const char* const why[] = {nullptr, "a freed huge block", "inside a huge block, not its start",
                                    "into the allocator's metadata"};
  OursKind k = ours_not_block(p);
  // glibc's words for a second free, as for every other size.
  if (k == k_ours_freed_huge && in_free) report_bad_pointer("free(): double free detected (a huge block)", p);
  if (k != k_not_ours) report_invalid_pointer(in_free, why[k], p);
  if (in_stats_region(p)) report_invalid_pointer(in_free, "into the allocator's statistics", p);
}

// What p is, and its usable size (for ours).
Kind classify(const void* p, size_t* usable, Page** page) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (p == nullptr) return k_none;
  if ((a >> k_address_bits) == 0) {
    uint8_t m = g_chunk_map[a >> k_chunk_shift];
    if (m == k_chunk_segment) {
      Segment* s = segment_of(p);
      Page* pg = s->units[unit_of(s, p)].page;
      *page = pg;
      char* start = page_start(s, pg);
      if (pg->kind == k_kind_small) {
        if (!block_start(pg, p)) report_not_a_block(false, pg, p);
        if (static_cast<const Block*>(p)->canary == (g_cookie ^ a))
          report_bad_pointer("invalid pointer (a freed block)", p);
        *usable = pg->block_size;
        return k_small;
      }
      if (pg->kind == k_kind_large) {
        if (p != start) report_not_a_block(false, pg, p);
        *usable = pg->large_size;
        return k_large;
      }
      report_not_a_block(false, pg, p);
    }
    if (m != 0) {
      size_t u = huge_usable(p);
      if (u != 0) {
        *usable = u;
        return k_huge;
      }
    }
  }
  report_if_ours(p, false);
  return k_foreign;
}

bool too_big(size_t n) { return n > (size_t)PTRDIFF_MAX; }

void* alloc_aligned(size_t align, size_t n) {
  if (align <= k_min_align) return alloc(n);
  if (too_big(n) || too_big(align)) {
    errno = ENOMEM;
    return nullptr;
  }
  size_t rounded = (n + align - 1) & ~(align - 1);
  if (rounded < align) rounded = align;
  if (rounded <= k_small_max && align <= k_unit) {
    // Blocks sit at multiples of their size from a unit-aligned page
    // start: a class whose size is a multiple of align gives aligned blocks.
    for (unsigned c = class_of(rounded); c < k_num_classes; c++) {
      if (k_classes.size[c] % align == 0) return alloc(k_classes.size[c]);
    }
  }
  ensure_init();
  void* p;
  p = nullptr;
  // A span aligned to 2 MiB may not fit a segment (the header units come first):
  // then the block is mapped on its own.
  if (rounded <= k_large_max && align <= k_large_max) p = large_alloc(rounded, align, false);
  if (p == nullptr) p = huge_alloc(rounded, align, false);
  if (p == nullptr) errno = ENOMEM;
  else if (RINGPOOL_UNLIKELY(g_sampling)) sample_large(p, n);
  return p;
}

}  // namespace

void set_foreign_hooks(const ForeignHooks& hooks) { g_foreign = hooks; }

void free_not_segment(void* p) {
  if (p == nullptr) return;
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if ((a >> k_address_bits) == 0 && g_chunk_map[a >> k_chunk_shift] != 0) {
    if (RINGPOOL_UNLIKELY(g_sampling) && huge_usable(p)) g_profile_hooks.on_free(p);
    if (huge_free(p)) return;
  }
  report_if_ours(p, true);
  stat_inc(stats_global().foreign_frees);
  if (g_foreign.free) g_foreign.free(p);
}

void* calloc(size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total) || too_big(total)) {
    errno = ENOMEM;
    return nullptr;
  }
  if (total <= k_small_max) {
    void* p = alloc(total);
    if (p) memset(p, 0, total);
    return p;
  }
  return alloc_slow(total, true);
}

void* realloc(void* p, size_t n) {
  if (p == nullptr) return alloc(n);
  if (n == 0) {  // glibc: frees and returns NULL
    free(p);
    return nullptr;
  }
  if (too_big(n)) {
    errno = ENOMEM;
    return nullptr;
  }
  size_t usable = 0;
  Page* pg = nullptr;
  Kind kind = classify(p, &usable, &pg);
  switch (kind) {
    case k_small:
      if (n <= usable && (n * 2 >= usable || usable <= 64)) return p;
      break;
    case k_large:
      if (n <= usable && n * 2 >= usable) return p;
      if (n > k_small_max && n <= k_large_max && large_resize(pg, n)) return p;
      break;
    case k_huge:
      if (n <= usable && n * 2 >= usable) return p;
      if (n > k_large_max) {
        void* q = huge_realloc(p, n);
        if (q && q != p && g_sampling) {  // moved by mremap
          g_profile_hooks.on_free(p);
          sample_large(q, n);
        }
        if (q) return q;
      }
      break;
    case k_foreign:
      stat_inc(stats_global().foreign_reallocs);
      usable = g_foreign.usable_size ? g_foreign.usable_size(p) : 0;
      break;
    case k_none:
      break;
  }
  void* q = alloc(n);
  if (q == nullptr) return nullptr;  // errno is ENOMEM; p is untouched
  memcpy(q, p, usable < n ? usable : n);
  free(p);
  return q;
}

void* reallocarray(void* p, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  return realloc(p, total);
}

void* memalign(size_t align, size_t n) {
  if (align > (size_t{1} << 62)) {
    errno = EINVAL;
    return nullptr;
  }
  // glibc rounds an alignment that is not a power of two up to one.
  if (align & (align - 1)) align = size_t{1} << (64 - __builtin_clzll(align));
  return alloc_aligned(align, n);
}

void* aligned_alloc(size_t align, size_t n) { return memalign(align, n); }

int posix_memalign(void** out, size_t align, size_t n) {
  if (align % sizeof(void*) != 0 || (align & (align - 1)) != 0 || align == 0) return EINVAL;
  platform::KeepErrno keep;
  void* p = alloc_aligned(align, n);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}

void* valloc(size_t n) { return alloc_aligned(platform::k_os_page, n); }

void* pvalloc(size_t n) {
  size_t rounded = platform::round_os_page(n);
  if (rounded < n) {
    errno = ENOMEM;
    return nullptr;
  }
  return alloc_aligned(platform::k_os_page, rounded ? rounded : platform::k_os_page);
}

size_t usable_size(const void* p) {
  size_t usable = 0;
  Page* pg;
  Kind kind = classify(p, &usable, &pg);
  if (kind == k_foreign) return g_foreign.usable_size ? g_foreign.usable_size(const_cast<void*>(p)) : 0;
  return usable;
}

bool owns(const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (p == nullptr || (a >> k_address_bits) != 0) return false;
  uint8_t m = g_chunk_map[a >> k_chunk_shift];
  if (m == k_chunk_segment) {
    return page_of(p)->kind != k_kind_free;
  }
  return m != 0 && huge_usable(p) != 0;
}

bool trim() {
  thread_collect();
  return purge_all();
}

namespace {
struct SegmentWalk {
  size_t live_bytes, live_blocks, page_bytes, free_in_pages;
};
void walk_segment(Segment* s, void* ctx) {
  SegmentWalk* w = static_cast<SegmentWalk*>(ctx);
  for (unsigned u = k_header_units; u < k_units;) {
    Page* pg = &s->pages[u];
    if (pg->kind == k_kind_free) {
      u++;
      continue;
    }
    size_t bytes = (size_t)pg->span * k_unit;
    w->page_bytes += bytes;
    if (pg->kind == k_kind_small) {
      uint32_t used = __atomic_load_n(&pg->used, __ATOMIC_RELAXED) + __atomic_load_n(&pg->asleep, __ATOMIC_RELAXED) -
                      __atomic_load_n(&pg->head, __ATOMIC_RELAXED);
      w->live_blocks += used;
      w->live_bytes += (size_t)used * pg->block_size;
      w->free_in_pages += bytes - (size_t)used * pg->block_size;
    } else {
      w->live_blocks++;
      w->live_bytes += pg->large_size;
    }
    u += pg->span;
  }
}
}  // namespace

UsageTotals usage() {
  SegmentWalk w{};
  for_each_segment(walk_segment, &w);
  BackendStats b = backend_totals();
  UsageTotals u{};
  u.live_bytes = w.live_bytes + b.huge_bytes;
  u.live_blocks = w.live_blocks + b.huge_count;
  u.page_bytes = w.page_bytes;
  u.free_in_pages = w.free_in_pages;
  u.mapped = b.mapped;
  u.dirty = b.dirty;
  u.purged = b.purged;
  u.heaps_active = heap_counts(&u.heaps_idle);
  return u;
}

}  // namespace ringpool::pool
