/* common.h - helpers shared by the benchmark workload programs.
 *
 * Glossary:
 *   op         one malloc, paired sooner or later with one free.
 *   tag        a byte written at both ends of a fresh block and read back
 *              just before the block is freed; overlapping blocks or a
 *              block handed out twice change what is read back.
 *   checksum   the tags read back, folded; it depends only on the program's
 *              arguments, so every allocator must print the same one
 *              (bench/run.py compares them across allocators).
 *   harness memory
 *              pointer tables and queues the workload needs for itself;
 *              they come from mmap so that they never count against the
 *              allocator under test.
 *
 * Workloads print nothing but `key=value` lines: checksum=..., and where the
 * workload is about memory, after_free_rss_kb=... / final_rss_kb=...
 */
#ifndef RINGPOOL_BENCH_COMMON_H
#define RINGPOOL_BENCH_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* xorshift64*: cheap and good enough to pick sizes and slots. */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline uint64_t rng_seed(uint64_t seed, uint64_t stream)
{
    /* splitmix64 of (seed, stream): distinct, never-zero thread streams. */
    uint64_t z = seed * 0x9E3779B97F4A7C15ULL + stream + 1;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return z ? z : 1;
}

/* Uniform in [0, n) for n < 2^32, without a division. */
static inline uint64_t rng_below(uint64_t *s, uint64_t n)
{
    return ((rng_next(s) >> 32) * n) >> 32;
}

/* The "mostly 8..1024 bytes" mix used by the churn workloads:
 * 62.5% 8..64, 25% 65..256, 11% 257..1024, 1.5% 1025..8192. */
static inline size_t size_mixed(uint64_t *s)
{
    uint64_t r = rng_next(s);
    unsigned pick = (unsigned)(r & 127);
    uint64_t x = r >> 8;
    if (pick < 80)
        return 8 + x % 57;
    if (pick < 112)
        return 65 + x % 192;
    if (pick < 126)
        return 257 + x % 768;
    return 1025 + x % 7168;
}

static inline void tag_block(void *p, size_t n, uint8_t tag)
{
    unsigned char *c = (unsigned char *)p;
    c[0] = tag;
    c[n - 1] = (uint8_t)(tag ^ 0x5a);
}

/* Reads both tags back; folds them into the checksum. */
static inline uint64_t untag_block(const void *p, size_t n)
{
    const unsigned char *c = (const unsigned char *)p;
    return (uint64_t)c[0] * 257u + c[n - 1];
}

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "malloc(%zu) failed\n", n);
        exit(2);
    }
    return p;
}

/* Harness memory: see the glossary. Zero-filled. */
static inline void *harness_alloc(size_t bytes)
{
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    return p;
}

static inline void harness_free(void *p, size_t bytes)
{
    munmap(p, bytes ? bytes : 1);
}

/* argv[i] as a non-negative integer, or `def` when absent. */
static inline long arg_long(int argc, char **argv, int i, long def,
                            const char *usage)
{
    if (i >= argc)
        return def;
    char *end;
    errno = 0;
    long v = strtol(argv[i], &end, 10);
    if (errno || end == argv[i] || *end || v < 0) {
        fprintf(stderr, "usage: %s %s\n", argv[0], usage);
        exit(64);
    }
    return v;
}

static inline void usage_check(int argc, char **argv, int max_args,
                               const char *usage)
{
    if (argc > max_args + 1 ||
        (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))) {
        fprintf(stderr, "usage: %s %s\n", argv[0], usage);
        exit(argc > max_args + 1 ? 64 : 0);
    }
}

/* Resident set size now, from /proc/self/statm (what `top` shows). */
static inline long statm_rss_kb(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static inline void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* Keeps the compiler from proving a block unused and deleting the
 * malloc/free pair around it. */
static inline void escape(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

#endif
