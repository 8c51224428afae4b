/* prodcons - one thread allocates, another frees (remote frees only).
 *
 * The producer allocates a block, tags it and pushes the pointer into a
 * bounded single-producer/single-consumer ring; the consumer pops it, reads
 * the tags and frees it. Every free is remote, and the allocating thread
 * never sees its blocks come back through its own free calls: the pattern
 * of a pipeline stage or a logger thread. Tests the cost of cross-thread
 * frees and whether memory flows back to the producer instead of piling up.
 * Sizes: size_mixed() (mostly 8..1024 B).
 */
#include "common.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define USAGE "[blocks=8000000] [queue=1024] [seed=1]"

struct item {
    void *ptr;
    size_t len;
};

static struct item *ring;
static long ring_size, n_blocks;
static uint64_t seed;
/* Producer writes tail, consumer writes head; each on its own line. */
static _Alignas(64) atomic_long head;
static _Alignas(64) atomic_long tail;

static void backoff(unsigned *spins)
{
    /* Two threads on two cores mostly spin briefly; yield when the other
     * side has been descheduled so that a loaded box does not livelock. */
    if (++*spins > 64) {
        sched_yield();
        *spins = 0;
    }
}

static void *producer(void *arg)
{
    (void)arg;
    uint64_t rng = rng_seed(seed, 0);
    for (long i = 0; i < n_blocks; i++) {
        size_t n = size_mixed(&rng);
        void *p = xmalloc(n);
        tag_block(p, n, (uint8_t)i);
        unsigned spins = 0;
        long t = atomic_load_explicit(&tail, memory_order_relaxed);
        while (t - atomic_load_explicit(&head, memory_order_acquire) >= ring_size)
            backoff(&spins);
        ring[t % ring_size] = (struct item){ p, n };
        atomic_store_explicit(&tail, t + 1, memory_order_release);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    uint64_t sum = 0;
    for (long i = 0; i < n_blocks; i++) {
        unsigned spins = 0;
        long h = atomic_load_explicit(&head, memory_order_relaxed);
        while (atomic_load_explicit(&tail, memory_order_acquire) == h)
            backoff(&spins);
        struct item it = ring[h % ring_size];
        atomic_store_explicit(&head, h + 1, memory_order_release);
        sum = sum * 31 + untag_block(it.ptr, it.len);
        free(it.ptr);
    }
    *(uint64_t *)arg = sum;
    return NULL;
}

int main(int argc, char **argv)
{
    usage_check(argc, argv, 3, USAGE);
    n_blocks = arg_long(argc, argv, 1, 8000000, USAGE);
    ring_size = arg_long(argc, argv, 2, 1024, USAGE);
    seed = (uint64_t)arg_long(argc, argv, 3, 1, USAGE);
    if (ring_size < 1)
        ring_size = 1;
    ring = harness_alloc(ring_size * sizeof *ring);

    pthread_t p, c;
    uint64_t sum = 0;
    if (pthread_create(&c, NULL, consumer, &sum) ||
        pthread_create(&p, NULL, producer, NULL)) {
        perror("pthread_create");
        return 2;
    }
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    printf("checksum=%016llx\n", (unsigned long long)sum);
    return 0;
}
