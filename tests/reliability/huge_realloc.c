/* huge_realloc: regression for "realloc of a huge block aborts under memory
 * pressure". huge_realloc() moved the block with mremap first and then
 * entered it in the huge-block table; when the table had to grow just then
 * and its new mapping failed, the library called abort() (no message),
 * although realloc may simply fail. Reproduced with RINGPOOL_FAULT_MMAP=3
 * (or 7): 64 huge blocks resized at random, 3 to 8 MiB.
 *
 * usage: LD_PRELOAD=libringpool.so.1 RINGPOOL_FAULT_MMAP=N huge_realloc [ROUNDS] [SEED]
 * Passes when every realloc either succeeds with the contents kept or fails
 * with ENOMEM and the old block intact.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "../programs/testutil.h"

/* Each block's first 4 KiB carry the pattern of (the address it had when
 * the pattern was written, 4096): enough to see a block lost or mixed up. */
enum { N = 64, MARK = 4096 };

int main(int argc, char **argv)
{
    test_name = "huge_realloc";
    long rounds = argc > 1 ? atol(argv[1]) : 20000;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 7;
    void *p[N] = { 0 };
    uintptr_t base[N] = { 0 };
    unsigned long failed = 0, moved = 0;
    rng_t r = rng_seed(seed);
    for (long i = 0; i < rounds; i++) {
        int k = (int)(rng_next(&r) % N);
        size_t want = (size_t)rng_range(&r, 3, 8) << 20;
        errno = 0;
        void *q = realloc(p[k], want);
        if (!q) {
            if (errno != ENOMEM)
                fail("realloc(%zu) failed with errno %d", want, errno);
            if (p[k])
                pattern_check(p[k], MARK, base[k], MARK, "after a failed realloc");
            failed++;
            continue;
        }
        if (p[k]) {
            pattern_check(q, MARK, base[k], MARK, "after realloc");
            moved += q != p[k];
        }
        p[k] = q;
        base[k] = (uintptr_t)q;
        pattern_fill(q, MARK);
    }
    for (int k = 0; k < N; k++)
        if (p[k]) {
            pattern_check(p[k], MARK, base[k], MARK, "before free");
            free(p[k]);
        }
    printf("huge_realloc: ok: %ld reallocs of huge blocks, %lu moved, %lu failed cleanly\n", rounds, moved, failed);
    return 0;
}
