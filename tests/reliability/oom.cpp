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
//           new[] (1 MiB), nothrow new[] (1 MiB).
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

enum How { h_malloc, h_new, h_nothrow };

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
  }
  *err = how == h_malloc ? errno : (p ? 0 : ENOMEM);
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
  if (how == h_malloc) free(p);
  else delete[] static_cast<char*>(p);
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
  printf("oom: ok\n");
  return 0;
}
