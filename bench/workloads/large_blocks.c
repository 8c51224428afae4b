/* large_blocks - blocks of 64 KiB to 64 MiB, touched and freed in a loop.
 *
 * A window of `live` slots; each iteration frees a random slot's block and
 * allocates a new one, size log-uniform between 64 KiB and 64 MiB, then
 * writes one byte per 4 KiB page (as a program filling a buffer would fault
 * every page in). Tests the large-object path: mmap/munmap churn, page
 * faults on fresh memory versus reuse of cached spans, and how much of the
 * freed memory stays resident (peak RSS).
 */
#include "common.h"

#define USAGE "[iterations=250] [live=4] [min_kib=64] [max_mib=64] [seed=1]"

int main(int argc, char **argv)
{
    usage_check(argc, argv, 5, USAGE);
    long iters = arg_long(argc, argv, 1, 250, USAGE);
    long live = arg_long(argc, argv, 2, 4, USAGE);
    size_t min = (size_t)arg_long(argc, argv, 3, 64, USAGE) * 1024;
    size_t max = (size_t)arg_long(argc, argv, 4, 64, USAGE) * 1024 * 1024;
    uint64_t rng = rng_seed((uint64_t)arg_long(argc, argv, 5, 1, USAGE), 0);
    if (live < 1)
        live = 1;
    if (min < 4096)
        min = 4096;
    if (max < min)
        max = min;
    unsigned octaves = 0;
    while ((min << (octaves + 1)) <= max)
        octaves++;

    unsigned char **ptr = harness_alloc(live * sizeof *ptr);
    size_t *len = harness_alloc(live * sizeof *len);
    uint64_t sum = 0;
    for (long i = 0; i < iters; i++) {
        long k = (long)rng_below(&rng, (uint64_t)live);
        if (ptr[k]) {
            sum = sum * 31 + untag_block(ptr[k], len[k]);
            free(ptr[k]);
        }
        size_t lo = min << rng_below(&rng, octaves + 1);
        size_t n = lo + rng_below(&rng, lo > 0xffffffffu ? 0xffffffffu : lo);
        if (n > max)
            n = max;
        ptr[k] = xmalloc(n);
        len[k] = n;
        for (size_t off = 0; off < n; off += 4096)
            ptr[k][off] = (unsigned char)off;
        tag_block(ptr[k], n, (uint8_t)i);
    }
    for (long k = 0; k < live; k++)
        if (ptr[k]) {
            sum = sum * 31 + untag_block(ptr[k], len[k]);
            free(ptr[k]);
        }
    printf("checksum=%016llx\n", (unsigned long long)sum);
    return 0;
}
