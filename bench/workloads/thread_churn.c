/* thread_churn - many short-lived threads.
 *
 * `threads` threads in all, started `concurrent` at a time. Each makes
 * `allocs` allocations (mostly 8..1024 B) through a small ring of live
 * blocks, frees them except `leftover` blocks, which it hands back to the
 * main thread; the main thread frees those after the thread has exited.
 * Thread pools that are resized, per-request threads and test runners look
 * like this. Tests thread-heap setup and teardown cost, whether a dead
 * thread's cached memory is reclaimed (final_rss_kb, peak RSS) and frees of
 * blocks whose owner thread is gone.
 */
#include "common.h"
#include <pthread.h>

#define USAGE "[threads=20000] [concurrent=4] [allocs=300] [leftover=4] [seed=1]"

#define RING 64

static long n_allocs, n_leftover;
static uint64_t seed;

struct worker {
    pthread_t tid;
    long index;
    uint64_t sum;
    void **left; /* n_leftover blocks handed back to main */
};

static void *work(void *arg)
{
    struct worker *w = arg;
    uint64_t rng = rng_seed(seed, (uint64_t)w->index);
    void *ring[RING] = { 0 };
    size_t len[RING] = { 0 };
    uint64_t sum = 0;
    for (long i = 0; i < n_allocs; i++) {
        long k = i % RING;
        if (ring[k]) {
            sum = sum * 31 + untag_block(ring[k], len[k]);
            free(ring[k]);
        }
        len[k] = size_mixed(&rng);
        ring[k] = xmalloc(len[k]);
        tag_block(ring[k], len[k], (uint8_t)i);
    }
    long given = 0;
    for (long k = 0; k < RING; k++) {
        if (!ring[k])
            continue;
        sum = sum * 31 + untag_block(ring[k], len[k]);
        if (given < n_leftover)
            w->left[given++] = ring[k];
        else
            free(ring[k]);
    }
    w->sum = sum;
    return NULL;
}

int main(int argc, char **argv)
{
    usage_check(argc, argv, 5, USAGE);
    long n_threads = arg_long(argc, argv, 1, 20000, USAGE);
    long conc = arg_long(argc, argv, 2, 4, USAGE);
    n_allocs = arg_long(argc, argv, 3, 300, USAGE);
    n_leftover = arg_long(argc, argv, 4, 4, USAGE);
    seed = (uint64_t)arg_long(argc, argv, 5, 1, USAGE);
    if (conc < 1)
        conc = 1;
    if (n_leftover > RING)
        n_leftover = RING;

    struct worker *w = harness_alloc(conc * sizeof *w);
    void **left = harness_alloc(conc * RING * sizeof *left);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    uint64_t sum = 0;
    for (long base = 0; base < n_threads; base += conc) {
        long batch = n_threads - base < conc ? n_threads - base : conc;
        for (long t = 0; t < batch; t++) {
            w[t].index = base + t;
            w[t].left = left + t * RING;
            memset(w[t].left, 0, RING * sizeof *left);
            if (pthread_create(&w[t].tid, &attr, work, &w[t])) {
                perror("pthread_create");
                return 2;
            }
        }
        for (long t = 0; t < batch; t++) {
            pthread_join(w[t].tid, NULL);
            sum = sum * 31 + w[t].sum;
            for (long k = 0; k < n_leftover; k++)
                free(w[t].left[k]); /* its owner has exited */
        }
    }
    printf("checksum=%016llx\n", (unsigned long long)sum);
    printf("final_rss_kb=%ld\n", statm_rss_kb());
    return 0;
}
