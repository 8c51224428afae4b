/* cache_scratch - false sharing between threads' small blocks.
 *
 * After Hoard's cache-scratch and cache-thrash. Two phases:
 *  passive: the main thread allocates one small block per thread, all in a
 *           row (so they share cache lines), and hands block i to thread i,
 *           which frees it and then repeatedly allocates a block of the
 *           same size, writes to it hard and frees it. An allocator that
 *           hands the freed block (or its neighbours) back to that thread
 *           makes the threads write to one cache line;
 *  active:  the threads allocate and hammer small blocks at the same time
 *           from the start; an allocator that serves concurrent threads
 *           from one region puts their blocks on one line.
 * Either way false sharing shows as wall time many times the ideal.
 */
#include "common.h"
#include <pthread.h>

#define USAGE "[threads=4] [iterations=5000] [writes=10000] [size=8] [mode=3 (1 passive, 2 active, 3 both)]"

static long n_threads, n_iter, n_writes, obj_size;

struct worker {
    pthread_t tid;
    void *given; /* passive phase: the block to free first, else NULL */
    uint64_t sum;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    if (w->given)
        free(w->given);
    uint64_t sum = 0;
    for (long i = 0; i < n_iter; i++) {
        volatile unsigned char *a = xmalloc((size_t)obj_size);
        for (long j = 0; j < obj_size; j++)
            a[j] = 0;
        for (long r = 0; r < n_writes; r++)
            for (long j = 0; j < obj_size; j++)
                a[j]++;
        for (long j = 0; j < obj_size; j++)
            sum += a[j];
        free((void *)a);
    }
    w->sum = sum;
    return NULL;
}

static uint64_t phase(int passive)
{
    struct worker *w = harness_alloc(n_threads * sizeof *w);
    for (long t = 0; t < n_threads; t++)
        w[t].given = passive ? xmalloc((size_t)obj_size) : NULL;
    for (long t = 0; t < n_threads; t++)
        if (pthread_create(&w[t].tid, NULL, work, &w[t])) {
            perror("pthread_create");
            exit(2);
        }
    uint64_t sum = 0;
    for (long t = 0; t < n_threads; t++) {
        pthread_join(w[t].tid, NULL);
        sum += w[t].sum;
    }
    harness_free(w, n_threads * sizeof *w);
    return sum;
}

int main(int argc, char **argv)
{
    usage_check(argc, argv, 5, USAGE);
    n_threads = arg_long(argc, argv, 1, 4, USAGE);
    n_iter = arg_long(argc, argv, 2, 5000, USAGE);
    n_writes = arg_long(argc, argv, 3, 10000, USAGE);
    obj_size = arg_long(argc, argv, 4, 8, USAGE);
    long mode = arg_long(argc, argv, 5, 3, USAGE);
    if (n_threads < 1)
        n_threads = 1;
    if (obj_size < 1)
        obj_size = 1;

    uint64_t sum = 0;
    if (mode & 1)
        sum += phase(1);
    if (mode & 2)
        sum += phase(0);
    printf("checksum=%016llx\n", (unsigned long long)sum);
    return 0;
}
