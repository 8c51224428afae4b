/* list_fds: allocate as a program does (blocks of many sizes, a thread that
 * allocates and frees, a child made by fork), then print the descriptors
 * the process has open, one "NUMBER TARGET" line each, sorted by number.
 * The descriptor of the listing itself is left out. Run with and without
 * the library, the output must be the same. */
#include <dirent.h>
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

int main(void)
{
    churn(4);
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
        printf("%d %s\n", fds[i], link);
    }
    return 0;
}
