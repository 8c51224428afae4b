/* observe: allocate as a program does (blocks of many sizes, a thread that
 * allocates and frees, a child made by fork), then print what the process
 * can see of itself: its open descriptors ("fd NUMBER TARGET", sorted, the
 * listing's own left out), its signal mask and dispositions (SigBlk,
 * SigIgn, SigCgt of /proc/self/status), its resource limits, its environment and
 * errno. Run with and without the library, the output must be the same. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void churn(int rounds)
{
    static void *keep[4096];
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < 4096; i++) {
            keep[i] = malloc((size_t)(16 + (i * 37 + r) % 20000));
            memset(keep[i], 1, 16);
        }
        for (int i = 0; i < 4096; i++)
            free(keep[i]);
    }
}

static void *worker(void *arg)
{
    (void)arg;
    churn(4);
    return NULL;
}

static int by_number(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

extern char **environ;

static void print_file(const char *path, const char *only)
{
    char line[512];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f))
        if (only == NULL || strncmp(line, only, strlen(only)) == 0)
            printf("%s", line);
    fclose(f);
}

int main(void)
{
    errno = 0;
    churn(4);
    int errno_after = errno;
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0 || pthread_join(t, NULL) != 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        churn(1);
        _exit(0);
    }
    int status;
    if (child < 0 || waitpid(child, &status, 0) != child)
        return 1;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return 1;
    int fds[1024], n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 1024) {
        if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
            fds[n++] = atoi(e->d_name);
    }
    closedir(d);
    qsort(fds, (size_t)n, sizeof fds[0], by_number);
    for (int i = 0; i < n; i++) {
        char path[64], link[512];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
        ssize_t len = readlink(path, link, sizeof link - 1);
        link[len > 0 ? len : 0] = 0;
        printf("fd %d %s\n", fds[i], link);
    }
    /* The mask and the dispositions; not SigQ and SigPnd, which count
     * signals in flight (the child's SIGCHLD, say). */
    print_file("/proc/self/status", "SigBlk");
    print_file("/proc/self/status", "SigIgn");
    print_file("/proc/self/status", "SigCgt");
    print_file("/proc/self/limits", NULL);
    for (char **e = environ; *e; e++)
        printf("env %s\n", *e);
    printf("errno after allocating: %d\n", errno_after);
    return 0;
}
