/* churn_random - one thread, small objects, freed in random order.
 *
 * `slots` live blocks; every op picks a random slot, frees what is there
 * and allocates a new block of a random size into it. The live set stays
 * constant while its layout scatters: the classic steady-state pattern of
 * long-running programs with mixed object lifetimes. Tests free-list
 * management when frees land on many different pages.
 * Sizes: size_mixed() (mostly 8..1024 B).
 */
#include "common.h"

#define USAGE "[ops=12000000] [slots=100000] [seed=1]"

int main(int argc, char **argv)
{
    usage_check(argc, argv, 3, USAGE);
    long ops = arg_long(argc, argv, 1, 12000000, USAGE);
    long slots = arg_long(argc, argv, 2, 100000, USAGE);
    uint64_t rng = rng_seed((uint64_t)arg_long(argc, argv, 3, 1, USAGE), 0);
    if (slots < 1)
        slots = 1;

    void **ptr = harness_alloc(slots * sizeof *ptr);
    size_t *len = harness_alloc(slots * sizeof *len);
    uint64_t sum = 0;

    for (long i = 0; i < ops; i++) {
        long k = (long)rng_below(&rng, (uint64_t)slots);
        if (ptr[k]) {
            sum = sum * 31 + untag_block(ptr[k], len[k]);
            free(ptr[k]);
        }
        size_t n = size_mixed(&rng);
        ptr[k] = xmalloc(n);
        len[k] = n;
        tag_block(ptr[k], n, (uint8_t)i);
    }
    for (long k = 0; k < slots; k++) {
        if (ptr[k]) {
            sum = sum * 31 + untag_block(ptr[k], len[k]);
            free(ptr[k]);
        }
    }
    printf("checksum=%016llx\n", (unsigned long long)sum);
    return 0;
}
