// Size classes: the block sizes that small requests are rounded up to.
//
// Glossary
//   class     an index 0..k_num_classes-1 into the table below.
//   unit      16 KiB, the granule in which segments hand out pages.
//   span      the number of units a page of a class occupies.
//
// Shape: 16-byte steps up to 128 B, then eight classes per doubling up to
// 32 KiB. Eight, not four: with four the first class after a power of two
// wastes up to 20% (2^k+1 -> 1.25*2^k), and the bound we promise above
// 128 B is 12.5%; eight gives at most 1/9 = 11.1%.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace ringpool::pool {

constexpr size_t k_unit_shift = 14;
constexpr size_t k_unit = size_t{1} << k_unit_shift;  // 16 KiB
constexpr size_t k_min_align = 16;
constexpr size_t k_small_max = 32 * 1024;
constexpr unsigned k_num_classes = 8 + 8 * 8;  // 8 steps of 16 B, 8 doublings

// Strong type: a size class is not a page index or a unit count.
struct SizeClass {
  uint8_t value;
};

constexpr size_t class_size_of(unsigned c) {
  if (c < 8) return 16 * (c + 1);
  unsigned k = 7 + (c - 8) / 8;  // the doubling [2^k, 2^(k+1))
  unsigned j = (c - 8) % 8;
  return (size_t{1} << k) + (j + 1) * (size_t{1} << (k - 3));
}

// Fewest units whose page holds at least 4 blocks with a tail of at most
// an eighth. Small pages empty out more often, which drives memory return:
// with 8 blocks a page the classes above 1 KiB, which have few blocks live
// in each thread's heap, held pages twice as large (bench: thread_rounds
// peaked 0.9 MiB higher, of 13, with no workload faster).
constexpr unsigned class_span_of(unsigned c) {
  size_t size = class_size_of(c);
  unsigned units = 1;
  while (units * k_unit < 4 * size || 8 * (units * k_unit % size) > units * k_unit) units++;
  return units;
}

// Computed (not branchy) class of a size above 128 bytes.
constexpr unsigned class_of_large(size_t n) {
  size_t m = n - 1;
  unsigned b = 63 - (unsigned)__builtin_clzll(m);  // b >= 7
  return 8 + (b - 7) * 8 + (unsigned)((m >> (b - 3)) & 7);
}

struct ClassTables {
  uint32_t size[k_num_classes];
  uint8_t span[k_num_classes];
  uint16_t blocks[k_num_classes];  // blocks per page
  uint8_t small_index[1024 / 16 + 1];  // (n + 15) / 16 -> class, n <= 1024
};

constexpr ClassTables make_tables() {
  ClassTables t{};
  for (unsigned c = 0; c < k_num_classes; c++) {
    t.size[c] = (uint32_t)class_size_of(c);
    t.span[c] = (uint8_t)class_span_of(c);
    t.blocks[c] = (uint16_t)(t.span[c] * k_unit / t.size[c]);
  }
  for (unsigned i = 0; i <= 1024 / 16; i++) {
    size_t n = i * 16;
    t.small_index[i] = (uint8_t)(n <= 128 ? (n == 0 ? 0 : n / 16 - 1) : class_of_large(n));
  }
  return t;
}

inline constexpr ClassTables k_classes = make_tables();

constexpr bool classes_sorted_and_aligned() {
  for (unsigned c = 0; c < k_num_classes; c++) {
    if (k_classes.size[c] % k_min_align != 0) return false;
    if (c > 0 && k_classes.size[c] <= k_classes.size[c - 1]) return false;
  }
  return true;
}

// Worst case waste of a request just above the previous class, as a
// fraction of the block: (size[c] - size[c-1]) / size[c] <= 1/8.
constexpr bool class_waste_bounded() {
  for (unsigned c = 1; c < k_num_classes; c++) {
    if (k_classes.size[c - 1] < 128) continue;
    if (8 * (k_classes.size[c] - k_classes.size[c - 1]) > k_classes.size[c]) return false;
  }
  return true;
}

// Page-tail waste: what a page cannot use, at most 1/8 of the page.
constexpr bool page_waste_bounded() {
  for (unsigned c = 0; c < k_num_classes; c++) {
    size_t page = k_classes.span[c] * k_unit;
    if (8 * (page - k_classes.blocks[c] * k_classes.size[c]) > page) return false;
    if (k_classes.blocks[c] < 4) return false;
  }
  return true;
}

constexpr bool index_table_exact() {
  for (size_t n = 0; n <= 1024; n++) {
    unsigned c = k_classes.small_index[(n + 15) / 16];
    if (k_classes.size[c] < n) return false;
    if (c > 0 && k_classes.size[c - 1] >= n && n > 0) return false;
  }
  for (size_t n = 129; n <= k_small_max; n += 7) {
    unsigned c = class_of_large(n);
    if (k_classes.size[c] < n || k_classes.size[c - 1] >= n) return false;
  }
  return true;
}

static_assert(class_size_of(k_num_classes - 1) == k_small_max, "last class is 32 KiB");
static_assert(classes_sorted_and_aligned(), "classes sorted, 16-byte multiples");
static_assert(class_waste_bounded(), "internal waste above 128 B at most 12.5%");
static_assert(page_waste_bounded(), "page tails waste at most 12.5%, 4+ blocks a page");
static_assert(index_table_exact(), "size -> class picks the smallest fitting class");
static_assert(k_num_classes <= 255, "class fits a uint8_t");

// The class of a request of n <= k_small_max bytes.
inline unsigned class_of(size_t n) {
  if (__builtin_expect(n <= 1024, 1)) return k_classes.small_index[(n + 15) >> 4];
  return class_of_large(n);
}

}  // namespace ringpool::pool
