// oom: run out of address space for real (ulimit -v), then recover.
//
// usage: (ulimit -v 300000; LD_PRELOAD=libringpool.so.1 oom)
//
// Each phase allocates blocks of one size until the first failure, checks
// that the failure is clean (NULL with errno ENOMEM, std::bad_alloc from
// new, NULL from nothrow new), frees every other block, allocates the same
// size again until it fails, and checks that at least half of what was
// freed could be had again. Every block carries the testutil.h pattern and
// is checked before it is freed. Between phases everything is freed and
// malloc_trim(0) hands memory back.
//
// Glossary
//   chain   the blocks of a phase, linked through their first 8 bytes (so
//           that the test needs no memory of its own while memory is short);
//           the pattern covers the rest of each block.
//   phase   small (100 B), medium (20 KiB), large (1 MiB), huge (5 MiB),
//           new[] (1 MiB), nothrow new[] (1 MiB), aligned_alloc and
//           posix_memalign at 64 B .. 2 MiB alignments.
//   filler  untouched 4 MiB blocks taken until the address space is gone
//           (they cost no memory): then every size class in turn must run
//           out cleanly in what is left (its pages' free blocks and the free
//           units of mapped segments), and a block grown with realloc must
//           fail cleanly and keep its contents.
//
// Exits 0 when every phase failed cleanly and recovered, 1 otherwise, 77
// when there is no address-space limit (nothing would ever fail).
#define _GNU_SOURCE 1
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <new>

#include "../programs/testutil.h"

namespace {

enum How { h_malloc, h_new, h_nothrow, h_aligned, h_posix_memalign };

size_t g_align;  // for h_aligned and h_posix_memalign

struct Link {
  Link* next;
};

size_t g_max_blocks;  // upper bound for one phase: the limit / size, plus slack

void* get(How how, size_t size, int* err) {
  errno = 0;
  void* p = nullptr;
  switch (how) {
    case h_malloc: p = malloc(size); break;
    case h_new:
      try {
        p = new char[size];
      } catch (const std::bad_alloc&) {
        *err = ENOMEM;  // the form's clean failure
        return nullptr;
      }
      break;
    case h_nothrow: p = new (std::nothrow) char[size]; break;
    case h_aligned: p = aligned_alloc(g_align, size); break;
    case h_posix_memalign: {
      errno = 12345;
      int rc = posix_memalign(&p, g_align, size);
      if (errno != 12345) fail("posix_memalign(%zu, %zu) changed errno to %d", g_align, size, errno);
      if (rc == 0 && p == nullptr) fail("posix_memalign returned 0 and no block");
      *err = rc;
      return rc == 0 ? p : nullptr;
    }
  }
  if (p && (how == h_aligned) && (uintptr_t)p % g_align) fail("aligned_alloc(%zu, %zu) = %p: misaligned", g_align, size, p);
  *err = how == h_malloc || how == h_aligned ? errno : (p ? 0 : ENOMEM);
  return p;
}

// The block's pattern past the link (testutil.h's pattern of (p, size)).
void check_block(const void* p, size_t size, const char* what) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  size_t off = 8;
  for (; off + 8 <= size; off += 8) {
    uint64_t w;
    memcpy(&w, b + off, 8);
    if (w != pattern_word((uintptr_t)p, size, off)) break;
  }
  for (; off < size; off++)
    if (b[off] != pattern_byte((uintptr_t)p, size, off))
      fail("%s: block %p of %zu bytes corrupt at offset %zu", what, p, size, off);
}

void put(How how, void* p, size_t size) {
  check_block(p, size, "before free");
  if (how == h_new || how == h_nothrow) delete[] static_cast<char*>(p);
  else free(p);
}

// Allocates onto *chain until a failure; returns how many it got.
size_t fill_until_failure(How how, size_t size, Link** chain, const char* phase) {
  size_t n = 0;
  for (;;) {
    int err = 0;
    void* p = get(how, size, &err);
    if (p == nullptr) {
      if (err != ENOMEM) fail("%s: allocation %zu failed with errno %d (%s), want ENOMEM", phase, n, err, strerror(err));
      return n;
    }
    if (malloc_usable_size(p) < size) fail("%s: usable size %zu < %zu", phase, malloc_usable_size(p), size);
    // The pattern of (p, size) from offset 8 on; the link takes the first 8.
    pattern_fill(p, size);
    Link* l = static_cast<Link*>(p);
    l->next = *chain;
    *chain = l;
    if (++n > g_max_blocks) fail("%s: %zu blocks of %zu bytes and still no failure: is ulimit -v set?", phase, n, size);
  }
}

// Frees every other block of the chain; returns how many.
size_t free_half(How how, size_t size, Link** chain) {
  size_t freed = 0;
  Link** at = chain;
  bool drop = false;
  while (*at) {
    Link* l = *at;
    if (drop) {
      *at = l->next;
      put(how, l, size);
      freed++;
    } else {
      at = &l->next;
    }
    drop = !drop;
  }
  return freed;
}

size_t free_all(How how, size_t size, Link** chain) {
  size_t n = 0;
  while (Link* l = *chain) {
    *chain = l->next;
    put(how, l, size);
    n++;
  }
  return n;
}

void phase(const char* name, How how, size_t size) {
  Link* chain = nullptr;
  size_t first = fill_until_failure(how, size, &chain, name);
  if (first < 4) fail("%s: only %zu blocks of %zu bytes before the first failure", name, first, size);
  size_t freed = free_half(how, size, &chain);
  size_t again = fill_until_failure(how, size, &chain, name);
  if (again * 2 < freed)
    fail("%s: freed %zu blocks of %zu bytes but got only %zu back", name, freed, size, again);
  size_t total = free_all(how, size, &chain);
  malloc_trim(0);
  printf("oom: %-14s %8zu B: %7zu blocks until ENOMEM, %7zu freed, %7zu allocated again, %7zu checked and freed\n",
         name, size, first, freed, again, total);
}

// Takes untouched 4 MiB blocks until malloc fails: the address space is
// then gone. Returns the chain (linked through the first word only).
Link* exhaust() {
  Link* chain = nullptr;
  while (void* p = malloc(4u << 20)) {
    Link* l = static_cast<Link*>(p);
    l->next = chain;
    chain = l;
  }
  if (errno != ENOMEM) fail("the filler failed with errno %d, want ENOMEM", errno);
  return chain;
}

void release(Link* chain) {
  while (chain) {
    Link* next = chain->next;
    free(chain);
    chain = next;
  }
}

// With no address space left, each size class in turn allocates until it
// fails cleanly, then recovers once the filler goes.
void every_class() {
  size_t classes = 0, blocks = 0;
  for (size_t n = 1; n <= 32768;) {
    void* probe = malloc(n);
    if (!probe) fail("every class: malloc(%zu) failed with nothing held", n);
    size_t size = malloc_usable_size(probe);
    free(probe);
    Link* filler = exhaust();
    Link* chain = nullptr;
    blocks += fill_until_failure(h_malloc, size, &chain, "every class");
    free_all(h_malloc, size, &chain);
    release(filler);
    malloc_trim(0);
    void* again = malloc(size);
    if (!again) fail("every class: malloc(%zu) fails after everything was freed", size);
    free(again);
    classes++;
    n = size + 1;
  }
  printf("oom: every class: %zu classes ran out cleanly with the address space gone (%zu blocks in all)\n", classes,
         blocks);
}

// A block grown by realloc, with the address space gone and then without:
// each failure is NULL with ENOMEM and leaves the block and its contents.
// realloc moves blocks: their bytes follow the offset, not the address.
void fill_from(char* p, size_t from, size_t to) {
  for (size_t i = from; i < to; i++) p[i] = (char)(i * 131 + 7);
}

void check_kept(const char* p, size_t size, const char* what) {
  for (size_t i = 0; i < size; i++)
    if (p[i] != (char)(i * 131 + 7)) fail("%s: block %p of %zu bytes corrupt at offset %zu", what, (const void*)p, size, i);
}

void realloc_growth(bool exhausted) {
  Link* filler = exhausted ? exhaust() : nullptr;
  size_t size = 16;
  char* p = static_cast<char*>(malloc(size));
  if (!p) fail("realloc growth: no first block");
  fill_from(p, 0, size);
  size_t failures = 0;
  while (size < ((size_t)1 << 40)) {
    size_t next = size + size / 2 + 8;
    errno = 0;
    char* q = static_cast<char*>(realloc(p, next));
    if (!q) {
      if (errno != ENOMEM) fail("realloc(%zu -> %zu) failed with errno %d, want ENOMEM", size, next, errno);
      check_kept(p, size, "after a failed realloc");
      failures++;
      break;
    }
    check_kept(q, size, "after realloc");
    fill_from(q, size, next);
    p = q;
    size = next;
  }
  if (failures == 0) fail("realloc growth reached %zu bytes without a failure", size);
  free(p);
  release(filler);
  malloc_trim(0);
  printf("oom: realloc growth%s: failed cleanly at %zu bytes, block intact\n", exhausted ? " (no space left)" : "",
         size);
}

}  // namespace

int main() {
  test_name = "oom";
  struct rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
    printf("oom: no address-space limit (run under ulimit -v)\n");
    return 77;
  }
  if (rl.rlim_cur > (rlim_t)4 << 30) {
    printf("oom: the address-space limit is %llu MiB; want at most 4 GiB\n", (unsigned long long)(rl.rlim_cur >> 20));
    return 77;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);
  printf("oom: address space limited to %llu MiB\n", (unsigned long long)(rl.rlim_cur >> 20));
  struct P {
    const char* name;
    How how;
    size_t size;
  };
  static const P phases[] = {
      {"large", h_malloc, 1u << 20},     {"huge", h_malloc, 5u << 20},   {"small", h_malloc, 100},
      {"medium", h_malloc, 20u << 10},   {"new[]", h_new, 1u << 20},     {"nothrow new[]", h_nothrow, 1u << 20},
      {"large again", h_malloc, 1u << 20},
  };
  for (const P& p : phases) {
    g_max_blocks = (size_t)(rl.rlim_cur / p.size) + 1000;
    phase(p.name, p.how, p.size);
  }
  static const size_t aligns[] = {64, 4096, 65536, 2u << 20};
  for (size_t a : aligns) {
    g_align = a;
    size_t size = a >= 65536 ? a : 3000;
    g_max_blocks = (size_t)(rl.rlim_cur / size) + 1000;
    char name[64];
    snprintf(name, sizeof name, "aligned %zu", a);
    phase(name, h_aligned, size);
    snprintf(name, sizeof name, "posix_memalign %zu", a);
    phase(name, h_posix_memalign, size);
  }
  g_max_blocks = (size_t)(rl.rlim_cur / 16) + 1000;
  every_class();
  realloc_growth(false);
  realloc_growth(true);
  printf("oom: ok\n");
  return 0;
}
