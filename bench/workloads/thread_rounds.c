/* thread_rounds - threads that exit while others still free their blocks.
 *
 * `rounds` rounds of `threads` threads. Each thread makes `allocs`
 * allocations (the mixed small sizes); each block goes into a random slot
 * of one shared transfer table, and the block that was there before, made
 * by a thread of this round or an earlier one that has exited by now, is
 * freed. Then the thread exits. The table holds `slots` blocks at any time,
 * so what is live stays bounded while the threads that made it are gone:
 * the pages of a dead thread are emptied by other threads' frees. Thread
 * pools that grow and shrink, and mimalloc's stress test, look like this.
 * Peak RSS shows whether an allocator reuses or returns those pages.
 */
#include "common.h"
#include <pthread.h>

#define USAGE "[rounds=200] [threads=2] [allocs=100000] [slots=20000] [seed=1]"

static long n_allocs, n_slots;
static uint64_t seed;
static void **slot;
static size_t *slot_len;
static pthread_mutex_t *slot_lock; /* one per 64 slots */
static volatile uint64_t tag_sum; /* keeps the tag reads */

struct worker {
    pthread_t tid;
    long index;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    uint64_t rng = rng_seed(seed, (uint64_t)w->index);
    uint64_t sum = 0;
    for (long i = 0; i < n_allocs; i++) {
        size_t n = size_mixed(&rng);
        void *p = xmalloc(n);
        tag_block(p, n, (uint8_t)i);
        long k = (long)rng_below(&rng, (uint64_t)n_slots);
        pthread_mutex_t *m = &slot_lock[k / 64];
        pthread_mutex_lock(m);
        void *old = slot[k];
        size_t old_len = slot_len[k];
        slot[k] = p;
        slot_len[k] = n;
        pthread_mutex_unlock(m);
        if (old) {
            sum += untag_block(old, old_len);
            free(old);
        }
    }
    __atomic_fetch_add(&tag_sum, sum, __ATOMIC_RELAXED);
    return NULL;
}

int main(int argc, char **argv)
{
    usage_check(argc, argv, 5, USAGE);
    long rounds = arg_long(argc, argv, 1, 200, USAGE);
    long threads = arg_long(argc, argv, 2, 2, USAGE);
    n_allocs = arg_long(argc, argv, 3, 100000, USAGE);
    n_slots = arg_long(argc, argv, 4, 20000, USAGE);
    seed = (uint64_t)arg_long(argc, argv, 5, 1, USAGE);
    if (threads < 1)
        threads = 1;
    if (n_slots < 1)
        n_slots = 1;

    slot = harness_alloc(n_slots * sizeof *slot);
    slot_len = harness_alloc(n_slots * sizeof *slot_len);
    long n_locks = (n_slots + 63) / 64;
    slot_lock = harness_alloc(n_locks * sizeof *slot_lock);
    for (long i = 0; i < n_locks; i++)
        pthread_mutex_init(&slot_lock[i], NULL);
    struct worker *w = harness_alloc(threads * sizeof *w);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (long r = 0; r < rounds; r++) {
        for (long t = 0; t < threads; t++) {
            w[t].index = r * threads + t;
            if (pthread_create(&w[t].tid, &attr, work, &w[t])) {
                perror("pthread_create");
                return 2;
            }
        }
        for (long t = 0; t < threads; t++)
            pthread_join(w[t].tid, NULL);
    }
    /* Which blocks are freed by whom depends on how the threads
     * interleaved, so the tags are only read (a block handed out twice
     * still shows as a mismatch under the tag check of other workloads);
     * the checksum is the number of blocks left, the same in every run. */
    long left = 0;
    for (long k = 0; k < n_slots; k++) {
        if (slot[k]) {
            left++;
            free(slot[k]);
        }
    }
    printf("checksum=%016llx\n", (unsigned long long)left);
    printf("final_rss_kb=%ld\n", statm_rss_kb());
    return 0;
}
