/* startup - what preloading an allocator adds to starting a process.
 *
 * usage: startup ROUNDS PROGRAM NAME=LIBRARY...
 *   Each round starts PROGRAM once per library (posix_spawn, LD_PRELOAD set
 *   to LIBRARY; "" for none) and waits for it, the libraries interleaved so
 *   that a busy moment of the machine hits them alike. Prints the median
 *   wall time of each, and its difference from the row named "empty" (a
 *   library with no code: the cost of preloading any library at all).
 *   A library file that does not exist is listed as missing and skipped.
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: startup ROUNDS PROGRAM NAME=LIBRARY...\n");
        return 2;
    }
    int rounds = atoi(argv[1]);
    char *prog = argv[2];
    int k = 0;
    char *names[64], *libs[64];
    for (int i = 3; i < argc && k < 64; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL) {
            fprintf(stderr, "startup: '%s' is not NAME=LIBRARY\n", argv[i]);
            return 2;
        }
        *eq = 0;
        if (eq[1] && access(eq + 1, R_OK) != 0) {
            printf("%-12s missing (%s)\n", argv[i], eq + 1);
            continue;
        }
        names[k] = argv[i];
        libs[k++] = eq + 1;
    }
    if (rounds < 1 || k == 0)
        return 2;
    long long *t = calloc((size_t)rounds * (size_t)k, sizeof *t);
    char *av[] = {prog, NULL};
    for (int r = 0; r < rounds; r++) {
        for (int j = 0; j < k; j++) {
            char pre[4096];
            snprintf(pre, sizeof pre, "LD_PRELOAD=%s", libs[j]);
            char *env[] = {pre, NULL};
            pid_t pid;
            long long t0 = now_ns();
            if (posix_spawn(&pid, prog, NULL, NULL, av, env) != 0) {
                perror(prog);
                return 1;
            }
            int status;
            waitpid(pid, &status, 0);
            t[(size_t)j * rounds + r] = now_ns() - t0;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "startup: %s under %s: status %#x\n", prog, names[j], status);
                return 1;
            }
        }
    }
    double med[64], empty = -1;
    for (int j = 0; j < k; j++) {
        qsort(t + (size_t)j * rounds, (size_t)rounds, sizeof *t, by_value);
        med[j] = t[(size_t)j * rounds + rounds / 2] / 1000.0;
        if (strcmp(names[j], "empty") == 0)
            empty = med[j];
    }
    printf("%-12s %10s %12s   (%d starts each, interleaved; median)\n", "library", "start+exit", "above empty",
           rounds);
    for (int j = 0; j < k; j++) {
        if (empty >= 0)
            printf("%-12s %8.0f us %+9.0f us\n", names[j], med[j], med[j] - empty);
        else
            printf("%-12s %8.0f us\n", names[j], med[j]);
    }
    return 0;
}
