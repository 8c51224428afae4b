/* stress: many threads allocate, check, hand over and free blocks.
 *
 * usage: stress [quick|long] [THREADS] [OPS] [ROUNDS] [SEED]
 *   quick (default) takes a few seconds and is what `make check` runs;
 *   long is the `make stress` run.  OPS counts operations per thread per
 *   round; each round starts fresh threads, so blocks left in the shared
 *   slots by the threads of one round are freed by those of the next.
 *
 * Glossary
 *   local slot     a block one thread owns; only that thread touches it.
 *   transfer slot  a global atomic pointer; a thread swaps a block of its
 *                  own for whatever is there, so most frees end up remote.
 *   block          every block carries the pattern of testutil.h, written at
 *                  allocation and checked before realloc, transfer and free.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

enum { LOCAL_SLOTS = 256, TRANSFER_SLOTS = 1024 };
#define MAX_SIZE ((size_t)4 << 20)

static _Atomic(void *) transfer[TRANSFER_SLOTS];

static atomic_ullong n_alloc, n_free, n_realloc, n_received, n_aligned, n_calloc;
static atomic_ullong n_bytes;

struct worker { uint64_t seed; size_t ops; pthread_t tid; };

/* Mostly small, a tail to 64 KiB and a few blocks up to 4 MiB (log-uniform
 * there, so the big ones do not dominate the run time). */
static size_t pick_size(rng_t *r)
{
    uint64_t x = rng_next(r) % 1000;
    if (x < 500) return rng_range(r, 8, 128);
    if (x < 800) return rng_range(r, 129, 1024);
    if (x < 950) return rng_range(r, 1025, 16384);
    if (x < 995) return rng_range(r, 16385, 65536);
    unsigned shift = (unsigned)rng_range(r, 16, 21);   /* 64 KiB .. 4 MiB */
    size_t lo = (size_t)1 << shift;
    return rng_range(r, lo + 1, 2 * lo);
}

static void check_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            fail("calloc block %p (size %zu) not zero at offset %zu", (void *)p, n, i);
}

static void *alloc_block(rng_t *r)
{
    size_t size = pick_size(r);
    size_t align = 0;
    void *p = NULL;
    uint64_t kind = rng_next(r) % 100;
    if (kind >= 88) {
        /* 16 B .. 4 KiB, now and then 64 KiB */
        align = (size_t)1 << rng_range(r, 4, 12);
        if (rng_next(r) % 50 == 0)
            align = (size_t)64 << 10;
    }
    if (kind < 80) {
        p = malloc(size);
    } else if (kind < 88) {
        p = size % 8 == 0 ? calloc(size / 8, 8) : calloc(1, size);
        if (p)
            check_zero(p, size);
        atomic_fetch_add_explicit(&n_calloc, 1, memory_order_relaxed);
    } else if (kind < 92) {
        int rc = posix_memalign(&p, align, size);
        if (rc != 0)
            fail("posix_memalign(%zu, %zu) returned %d", align, size, rc);
    } else if (kind < 96) {
        size = (size + align - 1) & ~(align - 1);   /* C11 wants a multiple */
        p = aligned_alloc(align, size);
    } else {
        p = memalign(align, size);
    }
    if (!p)
        fail("allocation of %zu bytes (kind %" PRIu64 ", align %zu) returned NULL", size, kind, align);
    if (align) {
        if ((uintptr_t)p & (align - 1))
            fail("block %p of %zu bytes not aligned to %zu", p, size, align);
        atomic_fetch_add_explicit(&n_aligned, 1, memory_order_relaxed);
    }
    if (malloc_usable_size(p) < size)
        fail("malloc_usable_size(%p) = %zu < requested %zu", p, malloc_usable_size(p), size);
    pattern_fill(p, size);
    atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_bytes, size, memory_order_relaxed);
    return p;
}

static size_t check_block(void *p, const char *what)
{
    size_t size = pattern_size(p, what);
    if (size > MAX_SIZE)
        fail("%s: block %p claims size %zu", what, p, size);
    if (malloc_usable_size(p) < size)
        fail("%s: malloc_usable_size(%p) = %zu < %zu", what, p, malloc_usable_size(p), size);
    pattern_check(p, size, (uintptr_t)p, size, what);
    return size;
}

static void free_block(void *p)
{
    check_block(p, "before free");
    free(p);
    atomic_fetch_add_explicit(&n_free, 1, memory_order_relaxed);
}

/* Grow, shrink or resize at random; the common prefix must survive. */
static void *realloc_block(rng_t *r, void *p)
{
    size_t old = check_block(p, "before realloc");
    size_t size;
    switch (rng_next(r) % 4) {
    case 0: case 1: size = old * 2 > MAX_SIZE ? MAX_SIZE : old * 2; break;
    case 2: size = old / 2 < 8 ? 8 : old / 2; break;
    default: size = pick_size(r); break;
    }
    uintptr_t base = (uintptr_t)p;
    void *q = realloc(p, size);
    if (!q)
        fail("realloc(%p, %zu) returned NULL", p, size);
    pattern_check(q, old < size ? old : size, base, old, "after realloc");
    if (malloc_usable_size(q) < size)
        fail("after realloc: malloc_usable_size(%p) = %zu < %zu", q, malloc_usable_size(q), size);
    pattern_fill(q, size);
    atomic_fetch_add_explicit(&n_realloc, 1, memory_order_relaxed);
    return q;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    rng_t r = rng_seed(w->seed);
    void *local[LOCAL_SLOTS] = { 0 };

    for (size_t op = 0; op < w->ops; op++) {
        void **slot = &local[rng_next(&r) % LOCAL_SLOTS];
        if (!*slot) {
            *slot = alloc_block(&r);
            continue;
        }
        uint64_t action = rng_next(&r) % 100;
        if (action < 55) {
            free_block(*slot);
            *slot = NULL;
        } else if (action < 70) {
            *slot = realloc_block(&r, *slot);
        } else if (action < 95) {
            /* Checked on the way out, and on the way in: the block may
             * come from a thread that has exited since. */
            check_block(*slot, "before transfer");
            void *got = atomic_exchange(&transfer[rng_next(&r) % TRANSFER_SLOTS], *slot);
            if (got) {
                check_block(got, "after transfer");
                atomic_fetch_add_explicit(&n_received, 1, memory_order_relaxed);
            }
            *slot = got;
        } else {
            check_block(*slot, "while live");
        }
    }
    /* Keep a few blocks alive past the thread's exit, in the shared slots. */
    for (size_t i = 0; i < LOCAL_SLOTS; i++) {
        if (!local[i])
            continue;
        if (i % 8 == 0) {
            void *got = atomic_exchange(&transfer[rng_next(&r) % TRANSFER_SLOTS], local[i]);
            if (got)
                free_block(got);
        } else {
            free_block(local[i]);
        }
    }
    return NULL;
}

static size_t arg_size(int argc, char **argv, int i, size_t dflt)
{
    if (argc <= i)
        return dflt;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(argv[i], &end, 0);
    if (errno || *end || end == argv[i] || v == 0)
        fail("bad argument %d: '%s' (want a positive number)", i, argv[i]);
    return (size_t)v;
}

int main(int argc, char **argv)
{
    test_name = "stress";
    int long_mode = 0;
    if (argc > 1) {
        if (strcmp(argv[1], "long") == 0)
            long_mode = 1;
        else if (strcmp(argv[1], "quick") != 0) {
            fprintf(stderr, "usage: %s [quick|long] [THREADS] [OPS] [ROUNDS] [SEED]\n", argv[0]);
            return 2;
        }
    }
    size_t threads = arg_size(argc, argv, 2, long_mode ? 8 : 4);
    size_t ops = arg_size(argc, argv, 3, long_mode ? 1000000 : 100000);
    size_t rounds = arg_size(argc, argv, 4, long_mode ? 10 : 3);
    uint64_t seed = arg_size(argc, argv, 5, 42);

    struct worker *w = calloc(threads, sizeof *w);
    if (!w)
        fail("calloc of %zu workers failed", threads);
    for (size_t round = 0; round < rounds; round++) {
        for (size_t t = 0; t < threads; t++) {
            w[t].seed = seed + round * 7919 + t * 104729;
            w[t].ops = ops;
            int rc = pthread_create(&w[t].tid, NULL, worker_main, &w[t]);
            if (rc)
                fail("pthread_create: %s", strerror(rc));
        }
        for (size_t t = 0; t < threads; t++)
            pthread_join(w[t].tid, NULL);
    }
    size_t left = 0;
    for (size_t i = 0; i < TRANSFER_SLOTS; i++) {
        void *p = atomic_exchange(&transfer[i], NULL);
        if (p) {
            free_block(p);
            left++;
        }
    }
    free(w);
    if (atomic_load(&n_alloc) != atomic_load(&n_free))
        fail("%llu blocks allocated but %llu freed", atomic_load(&n_alloc), atomic_load(&n_free));
    printf("stress: ok: %zu threads x %zu ops x %zu rounds (seed %llu)\n",
           threads, ops, rounds, (unsigned long long)seed);
    printf("stress: %llu allocations (%llu calloc, %llu aligned), %llu reallocs, "
           "%llu handed over, %llu MiB, %zu freed at exit, rss %zu MiB\n",
           atomic_load(&n_alloc), atomic_load(&n_calloc), atomic_load(&n_aligned),
           atomic_load(&n_realloc), atomic_load(&n_received),
           atomic_load(&n_bytes) >> 20, left, rss_bytes() >> 20);
    return 0;
}
