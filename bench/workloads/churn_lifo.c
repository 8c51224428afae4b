/* churn_lifo - one thread, small objects, freed newest first.
 *
 * A stack of live blocks grows by a random burst and shrinks by a random
 * burst, so most frees return the block allocated most recently: scoped
 * temporaries and recursive code. The fuller the stack, the likelier a pop,
 * so it hovers around half of max_live. Measures the fast path with a hot
 * free list. Sizes: size_mixed() (mostly 8..1024 B).
 */
#include "common.h"

#define USAGE "[ops=30000000] [max_live=4096] [seed=1]"

int main(int argc, char **argv)
{
    usage_check(argc, argv, 3, USAGE);
    long ops = arg_long(argc, argv, 1, 30000000, USAGE);
    long max_live = arg_long(argc, argv, 2, 4096, USAGE);
    uint64_t rng = rng_seed((uint64_t)arg_long(argc, argv, 3, 1, USAGE), 0);
    if (max_live < 1)
        max_live = 1;

    void **ptr = harness_alloc(max_live * sizeof *ptr);
    size_t *len = harness_alloc(max_live * sizeof *len);
    long top = 0, done = 0;
    uint64_t sum = 0;

    while (done < ops) {
        long burst = 1 + (long)rng_below(&rng, 64);
        if ((long)rng_below(&rng, (uint64_t)max_live) >= top) {
            for (long i = 0; i < burst && top < max_live; i++, done++) {
                size_t n = size_mixed(&rng);
                ptr[top] = xmalloc(n);
                len[top] = n;
                tag_block(ptr[top], n, (uint8_t)done);
                top++;
            }
        } else {
            for (long i = 0; i < burst && top > 0; i++) {
                top--;
                sum = sum * 31 + untag_block(ptr[top], len[top]);
                free(ptr[top]);
            }
        }
    }
    while (top > 0) {
        top--;
        sum = sum * 31 + untag_block(ptr[top], len[top]);
        free(ptr[top]);
    }
    printf("checksum=%016llx\n", (unsigned long long)sum);
    return 0;
}
