/* spawn - run one command and report its own wall time and rusage.
 *
 * usage: spawn REPORT PRELOAD COMMAND [ARG...]
 *   REPORT   file that receives one line:
 *            "wall_ns=N utime_us=N stime_us=N maxrss_kb=N status=exit:N|signal:N"
 *   PRELOAD  LD_PRELOAD for COMMAND only ("" for none)
 *
 * Why not just os.wait4 in the Python runner: Linux carries the high-water
 * RSS of the forking process into the child's ru_maxrss across exec, so a
 * workload forked from a 20 MiB Python process reports at least 20 MiB.
 * This process is small and not preloaded; the command it forks starts
 * from its few hundred KiB instead. The exit status mirrors the command's
 * (128+N for signal N).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s REPORT PRELOAD COMMAND [ARG...]\n", argv[0]);
        return 64;
    }
    long long t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        perror("spawn: fork");
        return 71;
    }
    if (pid == 0) {
        if (argv[2][0])
            setenv("LD_PRELOAD", argv[2], 1);
        else
            unsetenv("LD_PRELOAD");
        execvp(argv[3], argv + 3);
        fprintf(stderr, "spawn: %s: %s\n", argv[3], strerror(errno));
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("spawn: wait4");
            return 71;
        }
    }
    long long wall = now_ns() - t0;
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        perror(argv[1]);
        return 73;
    }
    fprintf(f, "wall_ns=%lld utime_us=%lld stime_us=%lld maxrss_kb=%ld status=%s:%d\n", wall,
            (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
            (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec, ru.ru_maxrss,
            WIFSIGNALED(status) ? "signal" : "exit",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    fclose(f);
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}
