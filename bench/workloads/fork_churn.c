/* fork_churn - a process with a live heap that forks short-lived children.
 *
 * The parent keeps `live_mib` MiB of small blocks, then forks `forks`
 * children one after the other; each child allocates and frees `allocs`
 * blocks, tags and checks them, and exits with their checksum's low byte;
 * the parent waits for each. Shells, make, build drivers and pre-fork
 * servers look like this. Tests what an allocator does at fork (its
 * pthread_atfork handlers, the child's first allocation) and how much of
 * its state the kernel copies.
 */
#include "common.h"
#include <sys/wait.h>

#define USAGE "[forks=2000] [live_mib=64] [allocs=200] [seed=1]"

int main(int argc, char **argv)
{
    usage_check(argc, argv, 4, USAGE);
    long forks = arg_long(argc, argv, 1, 2000, USAGE);
    long live_mib = arg_long(argc, argv, 2, 64, USAGE);
    long allocs = arg_long(argc, argv, 3, 200, USAGE);
    uint64_t rng = rng_seed((uint64_t)arg_long(argc, argv, 4, 1, USAGE), 0);
    const uint64_t rng0 = rng;

    /* Harness memory for the parent's block table. */
    long nlive = live_mib * 1024 * 1024 / 128;
    void **live = mmap(NULL, (size_t)nlive * sizeof(void *), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (live == MAP_FAILED) return 1;
    for (long i = 0; i < nlive; i++) {
        size_t n = 16 + rng_below(&rng, 224);
        live[i] = malloc(n);
        tag_block(live[i], n, (uint8_t)i);
    }

    uint64_t sum = 0;
    for (long f = 0; f < forks; f++) {
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid == 0) {
            uint64_t r = rng_seed(rng0, (uint64_t)f + 1), s = 0;
            for (long i = 0; i < allocs; i++) {
                size_t n = 16 + rng_below(&r, 1008);
                void *p = malloc(n);
                tag_block(p, n, (uint8_t)i);
                s = s * 31 + untag_block(p, n);
                free(p);
            }
            _exit((int)(s & 0x7f));
        }
        int st = 0;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return 1;
        sum = sum * 31 + (uint64_t)WEXITSTATUS(st);
    }
    rng = rng0;
    for (long i = 0; i < nlive; i++) {
        size_t n = 16 + rng_below(&rng, 224);
        sum = sum * 31 + untag_block(live[i], n);
        free(live[i]);
    }
    printf("checksum=%016llx\n", (unsigned long long)sum);
    return 0;
}
