/* realloc_grow - buffers that grow by realloc, the way vectors and strings do.
 *
 * Each round starts `buffers` empty buffers and grows them, round robin (so
 * a neighbour usually sits right behind each buffer), to a random target:
 *  vector: capacity doubles from 16 B, target log-uniform up to max_kib;
 *  string: naive append, realloc by 1..32 bytes per step, target up to
 *          16 KiB (many reallocs that an allocator can often do in place).
 * New bytes are written, old bytes are checked after every move. Tests
 * in-place growth, size-class rounding and the copy cost of moves.
 */
#include "common.h"

#define USAGE "[rounds=150] [buffers=64] [max_kib=1024] [seed=1]"

struct buf {
    unsigned char *p;
    size_t len, target;
    int is_string;
};

int main(int argc, char **argv)
{
    usage_check(argc, argv, 4, USAGE);
    long rounds = arg_long(argc, argv, 1, 150, USAGE);
    long nbuf = arg_long(argc, argv, 2, 64, USAGE);
    long max_kib = arg_long(argc, argv, 3, 1024, USAGE);
    uint64_t rng = rng_seed((uint64_t)arg_long(argc, argv, 4, 1, USAGE), 0);
    if (nbuf < 1)
        nbuf = 1;
    if (max_kib < 1)
        max_kib = 1;

    struct buf *b = harness_alloc(nbuf * sizeof *b);
    uint64_t sum = 0;
    for (long r = 0; r < rounds; r++) {
        for (long i = 0; i < nbuf; i++) {
            b[i].is_string = rng_below(&rng, 2) == 0;
            size_t cap = b[i].is_string ? 16384 : (size_t)max_kib * 1024;
            /* Log-uniform: a random octave, then uniform inside it. */
            unsigned octaves = 0;
            while ((64u << octaves) < cap)
                octaves++;
            size_t lo = (size_t)64 << rng_below(&rng, octaves + 1);
            size_t t = lo + rng_below(&rng, lo);
            b[i].target = t < cap ? t : cap;
            b[i].len = 0;
            b[i].p = NULL;
        }
        for (long active = nbuf; active > 0;) {
            active = 0;
            for (long i = 0; i < nbuf; i++) {
                struct buf *x = &b[i];
                if (x->len >= x->target)
                    continue;
                size_t n;
                if (x->is_string)
                    n = x->len + 1 + rng_below(&rng, 32);
                else
                    n = x->len ? x->len * 2 : 16;
                if (n > x->target)
                    n = x->target;
                unsigned char *q = realloc(x->p, n);
                if (!q) {
                    fprintf(stderr, "realloc(%zu) failed\n", n);
                    return 2;
                }
                /* The byte pattern is a function of the offset, so a
                 * move that loses data shows up in the checksum. */
                if (x->len)
                    sum = sum * 31 + q[x->len - 1] + q[x->len / 2];
                for (size_t k = x->len; k < n; k++)
                    q[k] = (unsigned char)(k * 7 + (size_t)i);
                x->p = q;
                x->len = n;
                if (n < x->target)
                    active++;
            }
        }
        for (long i = 0; i < nbuf; i++) {
            sum = sum * 31 + b[i].p[b[i].len - 1];
            free(b[i].p);
        }
    }
    printf("checksum=%016llx\n", (unsigned long long)sum);
    return 0;
}
