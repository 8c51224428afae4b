/* fragmentation - a 10% survivor population pins memory.
 *
 *  1. allocate `blocks` small blocks (16..256 B);
 *  2. keep a random keep_pct% of them, free the rest (every page is left
 *     about 10% occupied);
 *  3. allocate `blocks` again, sizes 16..512 B (partly other size classes
 *     than the holes), then free those;
 *  4. report RSS, with the survivors still live.
 * Peak RSS (from the runner) shows how well step 3 reuses the holes left by
 * step 2; final_rss_kb shows how much the survivors keep resident, compared
 * with live_kb, the bytes actually requested by the survivors.
 * Prints after_free_rss_kb (after step 2), final_rss_kb and live_kb.
 */
#include "common.h"

#define USAGE "[blocks=2000000] [keep_pct=10] [seed=1]"

int main(int argc, char **argv)
{
    usage_check(argc, argv, 3, USAGE);
    long blocks = arg_long(argc, argv, 1, 2000000, USAGE);
    long keep = arg_long(argc, argv, 2, 10, USAGE);
    uint64_t rng = rng_seed((uint64_t)arg_long(argc, argv, 3, 1, USAGE), 0);
    if (blocks < 1)
        blocks = 1;

    size_t table = (size_t)blocks * sizeof(void *);
    unsigned char **first = harness_alloc(table);
    unsigned char **second = harness_alloc(table);
    uint32_t *len = harness_alloc((size_t)blocks * sizeof *len);
    uint64_t sum = 0, live = 0;

    for (long i = 0; i < blocks; i++) {
        len[i] = 16 + (uint32_t)rng_below(&rng, 241);
        first[i] = xmalloc(len[i]);
        tag_block(first[i], len[i], (uint8_t)i);
    }
    for (long i = 0; i < blocks; i++) {
        if ((long)rng_below(&rng, 100) < keep) {
            live += len[i];
            continue;
        }
        sum = sum * 31 + untag_block(first[i], len[i]);
        free(first[i]);
        first[i] = NULL;
    }
    long after_free = statm_rss_kb();
    for (long i = 0; i < blocks; i++) {
        size_t n = 16 + rng_below(&rng, 497);
        second[i] = xmalloc(n);
        tag_block(second[i], n, (uint8_t)i);
    }
    for (long i = 0; i < blocks; i++) {
        sum = sum * 31 + second[i][0];
        free(second[i]);
    }
    long final_rss = statm_rss_kb();
    for (long i = 0; i < blocks; i++)
        if (first[i]) {
            sum = sum * 31 + untag_block(first[i], len[i]);
            free(first[i]);
        }
    printf("checksum=%016llx\n", (unsigned long long)sum);
    printf("after_free_rss_kb=%ld\n", after_free);
    printf("final_rss_kb=%ld\n", final_rss);
    printf("live_kb=%llu\n", (unsigned long long)(live / 1024));
    return 0;
}
