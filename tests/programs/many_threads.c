/* many_threads: a long line of short-lived threads must not grow the heap.
 *
 * usage: many_threads [THREADS] [BATCH] [RSS_LIMIT_MIB]
 *   (defaults 100000, 4 and 200)
 *
 * Threads run BATCH at a time; each allocates and frees some blocks, frees
 * a block in a thread-specific-data destructor (allocating once more
 * there), and leaves two blocks behind that the main thread frees a few
 * batches later, after the thread is gone.  What each thread held must be
 * reusable once it exits, so the RSS at the end stays bounded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

enum { LEFT_RING = 1024, MAX_BATCH = 256 };

static pthread_key_t key;
static void *left[LEFT_RING];             /* blocks outliving their thread */
static size_t left_next;

struct job { uint64_t seed; void *left[2]; };

static void key_destructor(void *p)
{
    size_t size = pattern_size(p, "tsd destructor");
    pattern_check(p, size, (uintptr_t)p, size, "tsd destructor");
    free(p);
    /* allocating inside a TSD destructor, after the allocator may have
     * flushed this thread's heap, must work too */
    void *q = malloc(200);
    if (!q)
        fail("malloc in a TSD destructor returned NULL");
    pattern_fill(q, 200);
    free(q);
}

static void *thread_main(void *arg)
{
    struct job *job = arg;
    rng_t r = rng_seed(job->seed);
    void *blocks[32];
    size_t n = rng_range(&r, 4, 32);
    for (size_t i = 0; i < n; i++) {
        size_t size = rng_next(&r) % 16 == 0 ? rng_range(&r, 16384, 65536) : rng_range(&r, 8, 2048);
        blocks[i] = malloc(size);
        if (!blocks[i])
            fail("malloc(%zu) returned NULL in a thread", size);
        pattern_fill(blocks[i], size);
    }
    for (size_t i = 0; i < n; i++) {
        size_t size = pattern_size(blocks[i], "thread");
        pattern_check(blocks[i], size, (uintptr_t)blocks[i], size, "thread");
        if (i < 2)
            job->left[i] = blocks[i];
        else
            free(blocks[i]);
    }
    void *tsd = malloc(96);
    if (!tsd)
        fail("malloc(96) returned NULL");
    pattern_fill(tsd, 96);
    pthread_setspecific(key, tsd);
    return NULL;
}

static void free_left(void *p)
{
    if (!p)
        return;
    size_t size = pattern_size(p, "left behind");
    pattern_check(p, size, (uintptr_t)p, size, "left behind");
    free(p);
}

static long arg_long(int argc, char **argv, int i, long dflt)
{
    if (argc <= i)
        return dflt;
    char *end;
    long v = strtol(argv[i], &end, 0);
    if (*end || v <= 0)
        fail("bad argument '%s'", argv[i]);
    return v;
}

int main(int argc, char **argv)
{
    test_name = "many_threads";
    long total = arg_long(argc, argv, 1, 100000);
    long batch = arg_long(argc, argv, 2, 4);
    long limit_mib = arg_long(argc, argv, 3, 200);
    if (batch > MAX_BATCH)
        batch = MAX_BATCH;

    int rc = pthread_key_create(&key, key_destructor);
    if (rc)
        fail("pthread_key_create: %s", strerror(rc));

    /* small stacks: the point is thread churn, not stack memory */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 * 1024);

    pthread_t tids[MAX_BATCH];
    struct job jobs[MAX_BATCH];
    size_t peak = 0;
    for (long done = 0; done < total;) {
        long n = total - done < batch ? total - done : batch;
        for (long i = 0; i < n; i++) {
            jobs[i].seed = (uint64_t)(done + i);
            jobs[i].left[0] = jobs[i].left[1] = NULL;
            rc = pthread_create(&tids[i], &attr, thread_main, &jobs[i]);
            if (rc)
                fail("pthread_create (thread %ld): %s", done + i, strerror(rc));
        }
        for (long i = 0; i < n; i++) {
            pthread_join(tids[i], NULL);
            for (int k = 0; k < 2; k++) {
                free_left(left[left_next]);
                left[left_next] = jobs[i].left[k];
                left_next = (left_next + 1) % LEFT_RING;
            }
        }
        done += n;
        if (done % 10000 < n) {
            size_t rss = rss_bytes();
            if (rss > peak)
                peak = rss;
        }
    }
    for (size_t i = 0; i < LEFT_RING; i++)
        free_left(left[i]);
    pthread_attr_destroy(&attr);

    size_t rss = rss_bytes();
    if (rss > peak)
        peak = rss;
    printf("many_threads: %ld threads, %ld at a time: rss %zu MiB at the end, peak seen %zu MiB\n",
           total, batch, rss >> 20, peak >> 20);
    if (rss == 0)
        fail("cannot read /proc/self/statm");
    if (peak > (size_t)limit_mib << 20)
        fail("rss reached %zu MiB, over the %ld MiB bound", peak >> 20, limit_mib);
    printf("many_threads: ok\n");
    return 0;
}
