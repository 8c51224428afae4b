/* probe - tight allocation loops for instruction counting (callgrind).
 *
 * Not a timed workload: bench/run.py runs it under
 * `valgrind --tool=callgrind` twice, with n and 2n ops, and reports
 * (Ir(2n) - Ir(n)) / n, the instructions one op costs, with start-up and
 * exit cancelled out. Modes:
 *   fixed32  malloc(32) then free, n times: the fast path at its best;
 *   window   a window of 1024 live blocks; each op frees a random one and
 *            allocates a new one of a random size in 8..263 B, so frees
 *            and mallocs hit different size classes and pages.
 * The counts include the loop and, for window, the random number generator
 * (about ten instructions), the same for every allocator.
 */
#include "common.h"

#define USAGE "fixed32|window [n=100000]"

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s %s\n", argv[0], USAGE);
        return 64;
    }
    long n = arg_long(argc, argv, 2, 100000, USAGE);
    if (!strcmp(argv[1], "fixed32")) {
        for (long i = 0; i < n; i++) {
            void *p = malloc(32);
            escape(p);
            free(p);
        }
    } else if (!strcmp(argv[1], "window")) {
        enum { WINDOW = 1024 };
        static void *win[WINDOW];
        uint64_t rng = rng_seed(1, 0);
        for (int k = 0; k < WINDOW; k++)
            win[k] = xmalloc(8 + (rng_next(&rng) & 255));
        for (long i = 0; i < n; i++) {
            uint64_t r = rng_next(&rng);
            unsigned k = (unsigned)(r & (WINDOW - 1));
            free(win[k]);
            win[k] = malloc(8 + ((r >> 10) & 255));
            escape(win[k]);
        }
        for (int k = 0; k < WINDOW; k++)
            free(win[k]);
    } else {
        fprintf(stderr, "usage: %s %s\n", argv[0], USAGE);
        return 64;
    }
    return 0;
}
