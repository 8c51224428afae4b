/* peak_release - does memory go back to the OS after a peak, while idle?
 *
 * Allocates about total_mib MiB in small blocks (16..496 B, multiples of
 * 16), touches them, frees them all (in random order by default, as
 * objects with unrelated lifetimes die; order=0 frees in allocation order),
 * then sleeps without calling the allocator and reports RSS from
 * /proc/self/statm.
 * A program that has passed its peak and then waits (a server between
 * bursts, a CLI tool before exit) keeps whatever the allocator holds.
 * Prints after_free_rss_kb (right after the frees) and final_rss_kb
 * (after the sleep). The pointer table is harness memory (mmap), unmapped
 * before the sleep.
 */
#include "common.h"

#define USAGE "[total_mib=1024] [sleep_ms=2000] [order=1 (0 allocation, 1 random)] [seed=1]"

int main(int argc, char **argv)
{
    usage_check(argc, argv, 4, USAGE);
    size_t total = (size_t)arg_long(argc, argv, 1, 1024, USAGE) << 20;
    long sleep_for = arg_long(argc, argv, 2, 2000, USAGE);
    long order = arg_long(argc, argv, 3, 1, USAGE);
    uint64_t rng = rng_seed((uint64_t)arg_long(argc, argv, 4, 1, USAGE), 0);

    /* Mean block size is 256 B; room for a run of small ones. */
    size_t cap = total / 128 + 16;
    unsigned char **ptr = harness_alloc(cap * sizeof *ptr);
    uint16_t *len = harness_alloc(cap * sizeof *len);
    size_t count = 0, bytes = 0;
    while (bytes < total && count < cap) {
        size_t n = 16 + 16 * rng_below(&rng, 31);
        ptr[count] = xmalloc(n);
        len[count] = (uint16_t)n;
        tag_block(ptr[count], n, (uint8_t)count);
        bytes += n;
        count++;
    }
    if (order && count > 1) {
        /* Fisher-Yates over the table (block and length move together). */
        for (size_t i = count - 1; i > 0; i--) {
            size_t j = rng_below(&rng, i + 1);
            unsigned char *p = ptr[i];
            uint16_t l = len[i];
            ptr[i] = ptr[j];
            len[i] = len[j];
            ptr[j] = p;
            len[j] = l;
        }
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < count; i++) {
        sum = sum * 31 + untag_block(ptr[i], len[i]);
        free(ptr[i]);
    }
    long after_free = statm_rss_kb();
    harness_free(ptr, cap * sizeof *ptr);
    harness_free(len, cap * sizeof *len);
    sleep_ms(sleep_for);
    long final_rss = statm_rss_kb();
    printf("checksum=%016llx\n", (unsigned long long)sum);
    printf("after_free_rss_kb=%ld\n", after_free);
    printf("final_rss_kb=%ld\n", final_rss);
    return 0;
}
