/* chown_channel: run under the library; gives this process's stats channel
 * to another user (fchown, so this must run as root), says "ready" and
 * waits. `ringpool stat PID` must then refuse the process: a channel owned
 * by someone else is not the process's own, whoever could have written it.
 *
 * usage: chown_channel UID [SECONDS]     (exit 77: not root, or no channel)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: chown_channel UID [SECONDS]\n");
        return 2;
    }
    uid_t uid = (uid_t)atoi(argv[1]);
    int secs = argc > 2 ? atoi(argv[2]) : 30;
    if (geteuid() != 0) {
        printf("not root\n");
        return 77;
    }
    free(malloc(100)); /* the library is initialised */
    int fd = -1;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[300], link[256];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = 0;
        if (strcmp(link, "/memfd:ringpool-stats (deleted)") == 0)
            fd = atoi(e->d_name);
    }
    if (d)
        closedir(d);
    if (fd < 0) {
        printf("no channel\n");
        return 77;
    }
    if (fchown(fd, uid, uid) != 0) {
        perror("fchown");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    sleep((unsigned)secs);
    return 0;
}
