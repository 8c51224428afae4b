/* chown_channel: run under the library; gives this process's stats channel
 * to another user (fchown, so this must run as root), says "ready" and
 * waits. `ringpool stat PID` must then refuse the process: a channel owned
 * by someone else is not the process's own, whoever could have written it.
 *
 * usage: chown_channel UID [SECONDS]     (exit 77: not root, or no channel)
 */
#define _GNU_SOURCE
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
    const char *base = getenv("RINGPOOL_CHANNEL_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/ringpool-%u/%d.stats", base && *base == '/' ? base : "/dev/shm",
             (unsigned)geteuid(), (int)getpid());
    if (access(path, F_OK) != 0) {
        printf("no channel\n");
        return 77;
    }
    if (chown(path, uid, uid) != 0) {
        perror("chown");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    sleep((unsigned)secs);
    return 0;
}
