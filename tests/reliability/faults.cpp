// faults: allocation failures injected by the allocator (RINGPOOL_FAULT_MMAP=N
// fails every Nth request for memory from the OS) must come back as clean
// failures, and the program must go on with nothing lost.
//
// usage: faults [THREADS] [OPS] [SEED]      (defaults 4, 20000, 1)
//   run as LD_PRELOAD=libringpool.so.1 RINGPOOL_FAULT_MMAP=N faults ...;
//   RINGPOOL_PURGE_DELAY=0 RINGPOOL_RETAIN=0 make memory go back to the OS
//   at once, so that more requests reach it (and more of them fail).
//
// Glossary
//   call      one of the allocation forms: malloc, calloc, realloc,
//             aligned_alloc, posix_memalign, memalign, new[], nothrow new,
//             aligned new. Each failure must look the way its form promises:
//             NULL with errno ENOMEM (C), the error code ENOMEM with errno
//             untouched (posix_memalign), std::bad_alloc (new), NULL
//             (nothrow new). A failed realloc leaves the old block intact.
//             (operator new tries twice before it gives up, so one injected
//             fault seldom reaches it; oom exercises its bad_alloc for real.)
//   slot      a thread's live block, with the call that made it (so it is
//             released the matching way) and the testutil.h pattern.
//   transfer  shared atomic slots: threads swap blocks through them, so that
//             blocks are freed by threads that did not allocate them.
//   recovery  at the end: every size, from 16 bytes to 8 MiB, must be
//             allocatable again within a few tries, and every block still
//             held must carry its pattern.
//
// Prints one line of counts; exits 0 when every failure was clean and no
// block was corrupt, 1 otherwise, 77 when the allocator is not ringpool.
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <new>

#include "../programs/testutil.h"

namespace {

enum Call { c_malloc, c_calloc, c_realloc, c_aligned_alloc, c_posix_memalign, c_memalign, c_new_array,
            c_new_nothrow, c_new_aligned, c_calls };
const char* const k_call_names[c_calls] = {"malloc",   "calloc",  "realloc",        "aligned_alloc", "posix_memalign",
                                           "memalign", "new[]",   "nothrow new[]",  "aligned new"};

constexpr size_t k_slots = 128;
constexpr size_t k_transfer = 64;
constexpr size_t k_max = size_t{8} << 20;

struct Block {
  void* p;
  size_t size;
  size_t align;  // for aligned new: the delete must say it too
  Call call;
};

// Each transfer slot holds a Block record made with new(nothrow), or null.
std::atomic<Block*> g_transfer[k_transfer];
std::atomic<unsigned long long> g_ops, g_fail[c_calls], g_ok[c_calls], g_handed;

// Sizes from tiny to 8 MiB, weighted toward the ones that need new memory
// from the OS (large and huge), where the faults are.
size_t pick_size(rng_t* r) {
  uint64_t x = rng_next(r) % 100;
  if (x < 30) return rng_range(r, 8, 1024);
  if (x < 45) return rng_range(r, 1025, 32768);
  if (x < 80) return rng_range(r, 32769, 2u << 20);
  return rng_range(r, (2u << 20) + 1, k_max);
}

void release(const Block& b) {
  pattern_check(b.p, b.size, (uintptr_t)b.p, b.size, "before free");
  switch (b.call) {
    case c_new_array: delete[] static_cast<char*>(b.p); break;
    case c_new_nothrow: operator delete[](b.p, std::nothrow); break;
    case c_new_aligned: operator delete(b.p, std::align_val_t(b.align)); break;
    default: free(b.p); break;
  }
}

// A failure of `call`: check it looks the way the call promises.
void failed(Call call, int err, size_t size) {
  if (call == c_new_array || call == c_new_aligned || call == c_new_nothrow) {
    // bad_alloc was caught, or nothrow gave NULL: nothing more to check.
  } else if (err != ENOMEM) {
    fail("%s(%zu) failed with errno %d (%s), want ENOMEM", k_call_names[call], size, err, strerror(err));
  }
  g_fail[call]++;
}

// One allocation by a random call; false when it failed (cleanly).
bool allocate(rng_t* r, Block* out) {
  size_t size = pick_size(r);
  Call call = (Call)(rng_next(r) % c_calls);
  if (call == c_realloc) call = c_malloc;  // realloc has its own path
  size_t align = (size_t)1 << rng_range(r, 4, 16);
  if (rng_next(r) % 16 == 0) align = (size_t)1 << rng_range(r, 17, 22);  // up to 4 MiB
  void* p = nullptr;
  errno = 0;
  switch (call) {
    case c_malloc: p = malloc(size); break;
    case c_calloc: {
      p = size % 8 == 0 ? calloc(size / 8, 8) : calloc(1, size);
      if (p) {
        const unsigned char* b = static_cast<const unsigned char*>(p);
        for (size_t i = 0; i < size; i += 61)
          if (b[i]) fail("calloc(%zu) = %p: byte %zu is %#x", size, p, i, b[i]);
      }
      break;
    }
    case c_aligned_alloc:
      size = (size + align - 1) & ~(align - 1);
      p = aligned_alloc(align, size);
      break;
    case c_memalign: p = memalign(align, size); break;
    case c_posix_memalign: {
      errno = 4242;
      int rc = posix_memalign(&p, align, size);
      if (errno != 4242) fail("posix_memalign(%zu, %zu) changed errno to %d", align, size, errno);
      if (rc != 0) {
        if (rc != ENOMEM) fail("posix_memalign(%zu, %zu) = %d, want 0 or ENOMEM", align, size, rc);
        failed(call, ENOMEM, size);
        return false;
      }
      break;
    }
    case c_new_array:
      try {
        p = new char[size];
      } catch (const std::bad_alloc&) {
        p = nullptr;
      }
      break;
    case c_new_nothrow: p = new (std::nothrow) char[size]; break;
    case c_new_aligned:
      try {
        p = operator new(size, std::align_val_t(align));
      } catch (const std::bad_alloc&) {
        p = nullptr;
      }
      break;
    default: break;
  }
  if (p == nullptr) {
    failed(call, errno, size);
    return false;
  }
  bool aligned_call = call == c_aligned_alloc || call == c_memalign || call == c_posix_memalign || call == c_new_aligned;
  if (aligned_call && (uintptr_t)p % align)
    fail("%s(%zu, align %zu) = %p: misaligned", k_call_names[call], size, align, p);
  if (malloc_usable_size(p) < size) fail("%s(%zu) = %p: usable size %zu", k_call_names[call], size, p, malloc_usable_size(p));
  if (size < 8) size = 8;  // the pattern's header needs 8 bytes (every block holds 16)
  pattern_fill(p, size);
  g_ok[call]++;
  *out = Block{p, size, aligned_call ? align : 0, call};
  return true;
}

// realloc a malloc'd block: on failure the old block must be intact.
void reallocate(rng_t* r, Block* b) {
  size_t size = rng_next(r) % 2 ? pick_size(r) : (b->size < k_max / 2 ? b->size * 2 : b->size / 2);
  if (size < 8) size = 8;
  errno = 0;
  void* q = realloc(b->p, size);
  if (q == nullptr) {
    failed(c_realloc, errno, size);
    pattern_check(b->p, b->size, (uintptr_t)b->p, b->size, "after a failed realloc");
    return;
  }
  pattern_check(q, b->size < size ? b->size : size, (uintptr_t)b->p, b->size, "after realloc");
  if (malloc_usable_size(q) < size) fail("realloc(%zu) = %p: usable size %zu", size, q, malloc_usable_size(q));
  pattern_fill(q, size);
  g_ok[c_realloc]++;
  b->p = q;
  b->size = size;
}

// The argument carries the seed (low half) and the op count (high half).
void* worker(void* arg) {
  rng_t r = rng_seed((uint64_t)(uintptr_t)arg);
  Block slots[k_slots] = {};
  unsigned long long ops = (unsigned long long)(uintptr_t)arg >> 32;
  for (unsigned long long op = 0; op < ops; op++) {
    g_ops++;
    Block& b = slots[rng_next(&r) % k_slots];
    if (!b.p) {
      allocate(&r, &b);
      continue;
    }
    uint64_t what = rng_next(&r) % 10;
    if (what < 5) {
      release(b);
      b = Block{};
    } else if (what < 7 && (b.call == c_malloc || b.call == c_calloc || b.call == c_realloc)) {
      reallocate(&r, &b);
      b.call = c_realloc;
    } else {
      // Hand the block over: another thread frees or keeps it.
      Block* rec = new (std::nothrow) Block(b);
      if (!rec) {
        failed(c_new_nothrow, 0, sizeof(Block));
        continue;
      }
      pattern_check(b.p, b.size, (uintptr_t)b.p, b.size, "before hand-over");
      Block* got = g_transfer[rng_next(&r) % k_transfer].exchange(rec);
      b = Block{};
      if (got) {
        pattern_check(got->p, got->size, (uintptr_t)got->p, got->size, "after hand-over");
        b = *got;
        delete got;
        g_handed++;
      }
    }
  }
  for (Block& b : slots)
    if (b.p) release(b);
  return nullptr;
}

// After the storm: every size must come back within a few tries (at most
// every Nth request fails, and one allocation makes at most two requests).
unsigned long long recover_all() {
  static const size_t sizes[] = {16, 100, 1000, 5000, 30000, 40000, 100000, 1u << 20, 2u << 20, 3u << 20, 8u << 20};
  unsigned long long failures = 0;
  for (int round = 0; round < 3; round++) {
    for (size_t size : sizes) {
      void* p = nullptr;
      for (int attempt = 0; attempt < 8 && !p; attempt++) {
        errno = 0;
        p = malloc(size);
        if (!p) {
          if (errno != ENOMEM) fail("recovery: malloc(%zu) failed with errno %d", size, errno);
          failures++;
        }
      }
      if (!p) fail("recovery: malloc(%zu) failed 8 times in a row", size);
      pattern_fill(p, size);
      pattern_check(p, size, (uintptr_t)p, size, "recovery");
      free(p);
    }
  }
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  test_name = "faults";
  if (!dlsym(RTLD_DEFAULT, "ringpool_version")) {
    printf("faults: not running under libringpool (LD_PRELOAD it)\n");
    return 77;
  }
  const char* every = getenv("RINGPOOL_FAULT_MMAP");
  if (!every || atoi(every) <= 0) {
    printf("faults: RINGPOOL_FAULT_MMAP is not set: no faults to observe\n");
    return 77;
  }
  unsigned threads = argc > 1 ? (unsigned)atoi(argv[1]) : 4;
  unsigned long long ops = argc > 2 ? strtoull(argv[2], nullptr, 0) : 20000;
  uint64_t seed = argc > 3 ? strtoull(argv[3], nullptr, 0) : 1;
  if (threads < 1 || threads > 64 || ops < 1 || ops > 0xffffffffull) {
    fprintf(stderr, "usage: faults [THREADS 1..64] [OPS] [SEED]\n");
    return 2;
  }
  pthread_t tid[64];
  for (unsigned t = 0; t < threads; t++) {
    // The argument carries the seed (low half) and the op count (high half).
    uintptr_t arg = (uintptr_t)((seed * 7919 + t * 104729) & 0xffffffffu) | (uintptr_t)ops << 32;
    int rc = EAGAIN;
    for (int attempt = 0; attempt < 100 && rc != 0; attempt++) rc = pthread_create(&tid[t], nullptr, worker, (void*)arg);
    if (rc) fail("pthread_create: %s", strerror(rc));
  }
  for (unsigned t = 0; t < threads; t++) pthread_join(tid[t], nullptr);
  for (auto& slot : g_transfer) {
    Block* b = slot.exchange(nullptr);
    if (b) {
      release(*b);
      delete b;
    }
  }
  unsigned long long recovery_failures = recover_all();
  unsigned long long failures = 0, oks = 0;
  char detail[512];
  size_t n = 0;
  for (int c = 0; c < c_calls; c++) {
    failures += g_fail[c];
    oks += g_ok[c];
    n += (size_t)snprintf(detail + n, sizeof detail - n, "%s%s %llu", c ? ", " : "", k_call_names[c],
                          (unsigned long long)g_fail[c]);
  }
  printf("faults: RINGPOOL_FAULT_MMAP=%s: %llu ops in %u threads, %llu allocations, %llu handed over; "
         "%llu failures seen, all clean (%s); %llu more while recovering; no block corrupt\n",
         every, (unsigned long long)g_ops, threads, oks, (unsigned long long)g_handed, failures, detail,
         recovery_failures);
  if (failures == 0) fail("no allocation failed: RINGPOOL_FAULT_MMAP=%s had no effect", every);
  return 0;
}
