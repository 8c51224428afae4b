/* fork_threads: fork while other threads are in the allocator.
 *
 * usage: fork_threads [FORKS] [THREADS]    (defaults 200 and 4)
 *
 * Background threads allocate, hand over and free without pause while the
 * main thread forks FORKS times.  Each child frees blocks it inherited
 * (from the main thread and from threads that do not exist in the child),
 * allocates and frees blocks of several size classes and one large block,
 * sometimes runs a thread of its own, and leaves with _exit(0).  An
 * allocator lock held across fork shows up as a child that hangs; the
 * child's own alarm turns that into a signal, the parent's watchdog turns a
 * hang of the parent into a failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testutil.h"

enum { SLOTS = 64, CHILD_ALARM_S = 20, PARENT_ALARM_S = 240 };

static _Atomic(void *) slots[SLOTS];       /* blocks in flight between threads */
static atomic_int stop;
static atomic_ullong progress;
static volatile sig_atomic_t fork_no;

static const size_t child_sizes[] = { 8, 24, 48, 100, 256, 1000, 4000, 9000, 40000, 100000 };

static void *churn(void *arg)
{
    rng_t r = rng_seed((uint64_t)(uintptr_t)arg);
    void *own[16] = { 0 };
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        size_t i = rng_next(&r) % 16;
        if (own[i]) {
            size_t size = pattern_size(own[i], "parent thread");
            pattern_check(own[i], size, (uintptr_t)own[i], size, "parent thread");
            if (rng_next(&r) % 2) {
                free(own[i]);
                own[i] = NULL;
            } else {
                own[i] = atomic_exchange(&slots[rng_next(&r) % SLOTS], own[i]);
            }
        } else {
            size_t size = rng_next(&r) % 8 == 0 ? rng_range(&r, 1024, 300000) : rng_range(&r, 8, 1024);
            own[i] = malloc(size);
            if (!own[i])
                fail("malloc(%zu) returned NULL in a parent thread", size);
            pattern_fill(own[i], size);
        }
        atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
    }
    for (size_t i = 0; i < 16; i++)
        free(own[i]);
    return NULL;
}

static void *child_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) {
        size_t size = child_sizes[i % 10];
        void *p = malloc(size);
        if (!p)
            _exit(3);
        pattern_fill(p, size);
        if (pattern_find_bad(p, size, (uintptr_t)p, size) != (size_t)-1)
            _exit(4);
        free(p);
    }
    return NULL;
}

/* In the child: only the forking thread exists.  Exit codes say what broke;
 * the parent prints them. */
static void child(int n, void **inherited, size_t inherited_n)
{
    /* die by SIGALRM, which the parent reports as a hang */
    signal(SIGALRM, SIG_DFL);
    alarm(CHILD_ALARM_S);
    /* blocks of threads that are not there any more */
    for (size_t i = 0; i < SLOTS; i += 3) {
        void *p = atomic_exchange(&slots[i], NULL);
        if (p) {
            size_t size = pattern_size(p, "child, inherited from a thread");
            pattern_check(p, size, (uintptr_t)p, size, "child, inherited from a thread");
            free(p);
        }
    }
    /* blocks of the forking thread */
    for (size_t i = 0; i < inherited_n; i++) {
        size_t size = pattern_size(inherited[i], "child, inherited from main");
        pattern_check(inherited[i], size, (uintptr_t)inherited[i], size, "child, inherited from main");
        free(inherited[i]);
    }
    void *keep[10];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 10; i++) {
            keep[i] = malloc(child_sizes[i]);
            if (!keep[i])
                _exit(5);
            pattern_fill(keep[i], child_sizes[i]);
        }
        for (int i = 0; i < 10; i++) {
            if (pattern_find_bad(keep[i], child_sizes[i], (uintptr_t)keep[i], child_sizes[i]) != (size_t)-1)
                _exit(6);
            free(keep[i]);
        }
    }
    size_t big_size = (size_t)8 << 20;
    char *big = malloc(big_size);
    if (!big)
        _exit(7);
    memset(big, 0x5a, big_size);
    big = realloc(big, big_size * 2);
    if (!big || big[big_size - 1] != 0x5a)
        _exit(8);
    free(big);
    if (n % 4 == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, child_thread, NULL) != 0 || pthread_join(t, NULL) != 0)
            _exit(9);
    }
    _exit(0);
}

static void on_alarm(int sig)
{
    (void)sig;
    char msg[96] = "fork_threads: FAIL: watchdog: parent hung at fork ";
    char num[16];
    int n = 0, v = (int)fork_no;
    do num[n++] = (char)('0' + v % 10); while ((v /= 10) && n < 15);
    size_t len = strlen(msg);
    while (n)
        msg[len++] = num[--n];
    msg[len++] = '\n';
    if (write(2, msg, len) < 0) { /* nothing to do */ }
    _exit(1);
}

int main(int argc, char **argv)
{
    test_name = "fork_threads";
    int forks = argc > 1 ? atoi(argv[1]) : 200;
    int nthreads = argc > 2 ? atoi(argv[2]) : 4;
    if (forks <= 0 || nthreads <= 0 || nthreads > 64) {
        fprintf(stderr, "usage: %s [FORKS] [THREADS]\n", argv[0]);
        return 2;
    }
    signal(SIGALRM, on_alarm);
    alarm(PARENT_ALARM_S);

    pthread_t tids[64];
    for (int t = 0; t < nthreads; t++) {
        int rc = pthread_create(&tids[t], NULL, churn, (void *)(uintptr_t)(t + 1));
        if (rc)
            fail("pthread_create: %s", strerror(rc));
    }
    rng_t r = rng_seed(99);
    for (int n = 0; n < forks; n++) {
        fork_no = n;
        void *mine[8];
        for (size_t i = 0; i < 8; i++) {
            size_t size = child_sizes[rng_next(&r) % 10];
            mine[i] = malloc(size);
            if (!mine[i])
                fail("malloc(%zu) returned NULL in main", size);
            pattern_fill(mine[i], size);
        }
        pid_t pid = fork();
        if (pid < 0)
            fail("fork %d: %s", n, strerror(errno));
        if (pid == 0)
            child(n, mine, 8);
        for (size_t i = 0; i < 8; i++) {
            size_t size = pattern_size(mine[i], "main after fork");
            pattern_check(mine[i], size, (uintptr_t)mine[i], size, "main after fork");
            free(mine[i]);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0)
            if (errno != EINTR)
                fail("waitpid: %s", strerror(errno));
        if (WIFSIGNALED(status))
            fail("child %d killed by signal %d (%s)%s", n, WTERMSIG(status), strsignal(WTERMSIG(status)),
                 WTERMSIG(status) == SIGALRM ? ": it hung" : "");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail("child %d exited with status %d", n, WEXITSTATUS(status));
    }
    unsigned long long before = atomic_load(&progress);
    usleep(20000);
    if (atomic_load(&progress) == before)
        fail("the allocating threads stopped making progress");
    atomic_store(&stop, 1);
    for (int t = 0; t < nthreads; t++)
        pthread_join(tids[t], NULL);
    for (size_t i = 0; i < SLOTS; i++)
        free(atomic_exchange(&slots[i], NULL));
    alarm(0);
    printf("fork_threads: ok: %d forks beside %d allocating threads\n", forks, nthreads);
    return 0;
}
