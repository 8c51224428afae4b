/* testutil.h: helpers shared by the programs run under LD_PRELOAD.
 *
 * Glossary
 *   pattern  bytes derived from a block's address and size; written after
 *            allocation and checked before free, so a block that two owners
 *            share, or that the allocator scribbles on, is caught.
 *   header   the first 8 bytes of a patterned block: the size in the low 32
 *            bits and a 32-bit check of (address, size) above, so a block
 *            handed to another thread carries its own size.
 *   rng      a per-thread xorshift generator; runs repeat for a given seed.
 *
 * The programs link no allocator: they test whatever malloc the process
 * ends up with, glibc's or a preloaded one.
 */
#ifndef RINGPOOL_TESTS_TESTUTIL_H
#define RINGPOOL_TESTS_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

static const char *test_name = "test";

/* Report and leave at once: other threads may be mid-operation, so exit
 * handlers (which free) must not run. */
__attribute__((noreturn, format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n = snprintf(buf, sizeof buf, "%s: FAIL: ", test_name);
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    fflush(stdout);
    if (write(2, buf, (size_t)n) < 0) { /* nothing left to try */ }
    _exit(1);
}

typedef struct { uint64_t s; } rng_t;

static inline uint64_t rng_next(rng_t *r)
{
    /* xorshift64*: fast, and good enough to pick sizes and slots */
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline rng_t rng_seed(uint64_t seed)
{
    rng_t r = { seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL };
    if (r.s == 0)
        r.s = 1;
    for (int i = 0; i < 4; i++)
        rng_next(&r);
    return r;
}

/* Uniform in [lo, hi]. */
static inline size_t rng_range(rng_t *r, size_t lo, size_t hi)
{
    return lo + (size_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDULL;
    x ^= x >> 33;
    return x;
}

/* The pattern word at an 8-aligned offset; byte i of a block is byte i % 8
 * (little-endian) of the word at i & ~7, whatever length is checked. */
static inline uint64_t pattern_word(uintptr_t base, size_t size, size_t off)
{
    return (uint64_t)(base + off) * 0x9E3779B97F4A7C15ULL ^ (uint64_t)size;
}

static inline unsigned char pattern_byte(uintptr_t base, size_t size, size_t off)
{
    return (unsigned char)(pattern_word(base, size, off & ~(size_t)7) >> (8 * (off & 7)));
}

static inline uint64_t pattern_header(uintptr_t base, size_t size)
{
    uint64_t check = mix64((uint64_t)base ^ ((uint64_t)size << 17)) >> 32;
    return (uint64_t)(uint32_t)size | check << 32;
}

/* Fill [p, p+size) with the pattern for (base, size), base being p.
 * Blocks under 8 bytes get no header. */
static inline void pattern_fill(void *p, size_t size)
{
    uintptr_t base = (uintptr_t)p;
    unsigned char *b = (unsigned char *)p;
    size_t off = 0;
    if (size >= 8) {
        uint64_t h = pattern_header(base, size);
        memcpy(b, &h, 8);
        off = 8;
    }
    for (; off + 8 <= size; off += 8) {
        uint64_t w = pattern_word(base, size, off);
        memcpy(b + off, &w, 8);
    }
    for (; off < size; off++)
        b[off] = pattern_byte(base, size, off);
}

/* Check the first n bytes of p against the pattern written for (base,
 * size) -- base differs from p after realloc moved the block.  Returns the
 * offset of the first bad byte, or (size_t)-1 when all match. */
static inline size_t pattern_find_bad(const void *p, size_t n, uintptr_t base, size_t size)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t off = 0;
    if (size >= 8 && n >= 8) {
        uint64_t h;
        memcpy(&h, b, 8);
        if (h != pattern_header(base, size))
            return 0;
        off = 8;
    }
    for (; off + 8 <= n; off += 8) {
        uint64_t w;
        memcpy(&w, b + off, 8);
        if (w != pattern_word(base, size, off))
            break;
    }
    for (; off < n; off++)
        if (b[off] != pattern_byte(base, size, off))
            return off;
    return (size_t)-1;
}

static inline void pattern_check(const void *p, size_t n, uintptr_t base, size_t size,
                                 const char *what)
{
    size_t bad = pattern_find_bad(p, n, base, size);
    if (bad != (size_t)-1)
        fail("%s: block %p (size %zu, pattern of %#lx) corrupt at offset %zu",
             what, p, size, (unsigned long)base, bad);
}

/* Read the size a patterned block carries in its header, checking it. */
static inline size_t pattern_size(const void *p, const char *what)
{
    uint64_t h;
    memcpy(&h, p, 8);
    size_t size = (size_t)(uint32_t)h;
    if (size < 8 || h != pattern_header((uintptr_t)p, size))
        fail("%s: block %p has a corrupt header %#llx", what, p, (unsigned long long)h);
    return size;
}

/* Resident set size in bytes, from /proc/self/statm. */
static inline size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

#ifdef __cplusplus
}
#endif

#endif
