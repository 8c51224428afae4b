/* signals: signals land in the middle of allocation-heavy work.
 *
 * usage: signals [SECONDS] [THREADS] [INTERVAL_US]   (defaults 5, 4, 200)
 *
 * THREADS threads allocate, reallocate, hand over and free patterned blocks
 * (testutil.h) of every size from 8 bytes to 4 MiB. Meanwhile an interval
 * timer raises SIGALRM every INTERVAL_US (process-directed: any thread may
 * take it) and the main thread sends SIGUSR1 to each worker in turn
 * (thread-directed: it lands wherever that thread is, often inside malloc
 * or free). Neither handler is installed with SA_RESTART, so futex waits
 * inside the allocator see EINTR.
 *
 * The handlers do async-signal-safe things only: count, save and restore
 * errno, and write(2) a byte to a non-blocking pipe.
 *
 * Passes when every block keeps its pattern, the counts balance, and the
 * workers never stall: a watchdog fails the run when no operation completes
 * for 10 s (a lock left held, a lost wake-up). Prints the counts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../programs/testutil.h"

enum { LOCAL_SLOTS = 128, TRANSFER_SLOTS = 64, MAX_THREADS = 16, STALL_S = 10 };

static _Atomic(void *) transfer[TRANSFER_SLOTS];
static atomic_int stop;
static atomic_ullong n_ops, n_alloc, n_free;
static atomic_ullong n_alrm, n_usr1;
static int pipe_w = -1;

struct worker { pthread_t tid; uint64_t seed; };

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGALRM)
        atomic_fetch_add_explicit(&n_alrm, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&n_usr1, 1, memory_order_relaxed);
    char c = (char)sig;
    if (write(pipe_w, &c, 1) < 0) { /* a full pipe is fine */ }
    errno = saved;
}

static size_t pick_size(rng_t *r)
{
    uint64_t x = rng_next(r) % 1000;
    if (x < 600) return rng_range(r, 8, 256);
    if (x < 850) return rng_range(r, 257, 4096);
    if (x < 970) return rng_range(r, 4097, 65536);
    if (x < 995) return rng_range(r, 65537, 1u << 20);
    return rng_range(r, (1u << 20) + 1, 4u << 20);
}

static void *new_block(rng_t *r)
{
    size_t size = pick_size(r);
    void *p;
    switch (rng_next(r) % 4) {
    case 0: p = calloc(1, size); break;
    case 1: if (posix_memalign(&p, (size_t)64 << (rng_next(r) % 4), size) != 0) p = NULL; break;
    default: p = malloc(size); break;
    }
    if (!p)
        fail("allocation of %zu bytes failed (errno %d)", size, errno);
    pattern_fill(p, size);
    atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
    return p;
}

static size_t check_block(void *p, const char *what)
{
    size_t size = pattern_size(p, what);
    pattern_check(p, size, (uintptr_t)p, size, what);
    return size;
}

static void drop_block(void *p)
{
    check_block(p, "before free");
    free(p);
    atomic_fetch_add_explicit(&n_free, 1, memory_order_relaxed);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    rng_t r = rng_seed(w->seed);
    void *local[LOCAL_SLOTS] = { 0 };
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        void **slot = &local[rng_next(&r) % LOCAL_SLOTS];
        uint64_t what = rng_next(&r) % 10;
        if (!*slot) {
            *slot = new_block(&r);
        } else if (what < 5) {
            drop_block(*slot);
            *slot = NULL;
        } else if (what < 7) {
            size_t old = check_block(*slot, "before realloc");
            size_t size = pick_size(&r);
            void *q = realloc(*slot, size);
            if (!q)
                fail("realloc(%zu) failed (errno %d)", size, errno);
            pattern_check(q, old < size ? old : size, (uintptr_t)*slot, old, "after realloc");
            pattern_fill(q, size);
            *slot = q;
        } else {
            check_block(*slot, "before hand-over");
            void *got = atomic_exchange(&transfer[rng_next(&r) % TRANSFER_SLOTS], *slot);
            if (got)
                check_block(got, "after hand-over");
            *slot = got;
        }
        atomic_fetch_add_explicit(&n_ops, 1, memory_order_relaxed);
    }
    for (size_t i = 0; i < LOCAL_SLOTS; i++)
        if (local[i])
            drop_block(local[i]);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    test_name = "signals";
    double seconds = argc > 1 ? atof(argv[1]) : 5;
    int threads = argc > 2 ? atoi(argv[2]) : 4;
    long interval_us = argc > 3 ? atol(argv[3]) : 200;
    if (!(seconds > 0) || threads < 1 || threads > MAX_THREADS || interval_us < 1) {
        fprintf(stderr, "usage: %s [SECONDS] [THREADS 1..%d] [INTERVAL_US]\n", argv[0], MAX_THREADS);
        return 2;
    }

    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
        fail("pipe2: %s", strerror(errno));
    pipe_w = fds[1];

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  /* no SA_RESTART: blocking calls see EINTR */
    if (sigaction(SIGALRM, &sa, NULL) != 0 || sigaction(SIGUSR1, &sa, NULL) != 0)
        fail("sigaction: %s", strerror(errno));

    struct worker w[MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        w[t].seed = 1000 + (uint64_t)t;
        int rc = pthread_create(&w[t].tid, NULL, worker_main, &w[t]);
        if (rc)
            fail("pthread_create: %s", strerror(rc));
    }

    struct itimerval it = { { 0, interval_us }, { 0, interval_us } };
    if (setitimer(ITIMER_REAL, &it, NULL) != 0)
        fail("setitimer: %s", strerror(errno));

    /* Main thread: SIGUSR1 to each worker in turn, drain the pipe, watch
     * progress. */
    double start = now_s(), last_progress = start;
    unsigned long long seen_ops = 0;
    char sink[4096];
    for (int k = 0; now_s() - start < seconds; k++) {
        pthread_kill(w[k % threads].tid, SIGUSR1);
        struct timespec ts = { 0, 100 * 1000 };
        nanosleep(&ts, NULL);  /* EINTR is fine: the loop goes on */
        while (read(fds[0], sink, sizeof sink) > 0) { }
        unsigned long long ops = atomic_load(&n_ops);
        double t = now_s();
        if (ops != seen_ops) {
            seen_ops = ops;
            last_progress = t;
        } else if (t - last_progress > STALL_S) {
            fail("no operation completed for %d s (%llu so far): a thread is stuck", STALL_S, ops);
        }
    }

    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    atomic_store(&stop, 1);
    for (int t = 0; t < threads; t++)
        pthread_join(w[t].tid, NULL);
    for (size_t i = 0; i < TRANSFER_SLOTS; i++) {
        void *p = atomic_exchange(&transfer[i], NULL);
        if (p)
            drop_block(p);
    }
    if (atomic_load(&n_alloc) != atomic_load(&n_free))
        fail("%llu blocks allocated, %llu freed", atomic_load(&n_alloc), atomic_load(&n_free));
    if (atomic_load(&n_alrm) == 0 || atomic_load(&n_usr1) == 0)
        fail("no signal arrived (SIGALRM %llu, SIGUSR1 %llu)", atomic_load(&n_alrm), atomic_load(&n_usr1));
    printf("signals: ok: %llu operations in %d threads over %.1f s; %llu SIGALRM and %llu SIGUSR1 handled "
           "during them; %llu blocks allocated and freed intact\n",
           atomic_load(&n_ops), threads, seconds, atomic_load(&n_alrm), atomic_load(&n_usr1), atomic_load(&n_alloc));
    return 0;
}
