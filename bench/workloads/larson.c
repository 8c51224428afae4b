/* larson - server mix: blocks are allocated by one thread, freed by another.
 *
 * After Larson & Krishnan's server benchmark. T threads each work on a table
 * of `slots` blocks: pick a random slot, free its block, allocate a new one
 * of a random size. After every round the tables rotate (thread t takes the
 * table thread t-1 just worked on), so almost every free is of a block that
 * another thread allocated: the pattern of a server whose request objects
 * are created by one worker and retired by another. Tests remote frees and
 * how memory moves back to its owner.
 * Sizes: size_mixed() (mostly 8..1024 B). The checksum is deterministic:
 * within a round each table belongs to exactly one thread.
 */
#include "common.h"
#include <pthread.h>

#define USAGE "[threads=4] [rounds=100] [ops_per_round=80000] [slots=4000] [seed=1]"

struct table {
    void **ptr;
    size_t *len;
};

static long n_threads, n_rounds, n_ops, n_slots;
static uint64_t seed;
static struct table *tables;
static pthread_barrier_t barrier;

struct worker {
    pthread_t tid;
    long index;
    uint64_t sum;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    uint64_t rng = rng_seed(seed, (uint64_t)w->index);
    uint64_t sum = 0;
    for (long r = 0; r < n_rounds; r++) {
        struct table *t = &tables[(w->index + r) % n_threads];
        for (long i = 0; i < n_ops; i++) {
            long k = (long)rng_below(&rng, (uint64_t)n_slots);
            if (t->ptr[k]) {
                sum = sum * 31 + untag_block(t->ptr[k], t->len[k]);
                free(t->ptr[k]);
            }
            size_t n = size_mixed(&rng);
            t->ptr[k] = xmalloc(n);
            t->len[k] = n;
            tag_block(t->ptr[k], n, (uint8_t)(i + w->index));
        }
        pthread_barrier_wait(&barrier);
    }
    w->sum = sum;
    return NULL;
}

int main(int argc, char **argv)
{
    usage_check(argc, argv, 5, USAGE);
    n_threads = arg_long(argc, argv, 1, 4, USAGE);
    n_rounds = arg_long(argc, argv, 2, 100, USAGE);
    n_ops = arg_long(argc, argv, 3, 80000, USAGE);
    n_slots = arg_long(argc, argv, 4, 4000, USAGE);
    seed = (uint64_t)arg_long(argc, argv, 5, 1, USAGE);
    if (n_threads < 1)
        n_threads = 1;
    if (n_slots < 1)
        n_slots = 1;

    tables = harness_alloc(n_threads * sizeof *tables);
    for (long t = 0; t < n_threads; t++) {
        tables[t].ptr = harness_alloc(n_slots * sizeof(void *));
        tables[t].len = harness_alloc(n_slots * sizeof(size_t));
    }
    struct worker *w = harness_alloc(n_threads * sizeof *w);
    pthread_barrier_init(&barrier, NULL, (unsigned)n_threads);
    for (long t = 0; t < n_threads; t++) {
        w[t].index = t;
        if (pthread_create(&w[t].tid, NULL, work, &w[t])) {
            perror("pthread_create");
            return 2;
        }
    }
    uint64_t sum = 0;
    for (long t = 0; t < n_threads; t++) {
        pthread_join(w[t].tid, NULL);
        sum ^= w[t].sum * (uint64_t)(2 * t + 1);
    }
    for (long t = 0; t < n_threads; t++)
        for (long k = 0; k < n_slots; k++)
            if (tables[t].ptr[k]) {
                sum = sum * 31 + untag_block(tables[t].ptr[k], tables[t].len[k]);
                free(tables[t].ptr[k]);
            }
    printf("checksum=%016llx\n", (unsigned long long)sum);
    return 0;
}
