/* churn_fifo - one thread, small objects, freed oldest first.
 *
 * A ring of `window` live blocks: every op allocates one block and, once the
 * ring is full, frees the oldest. Queues, caches with expiry and message
 * buffers free in this order; it walks through memory instead of reusing
 * the block just freed, so it tests free-list locality and page reuse.
 * Sizes: size_mixed() (mostly 8..1024 B).
 */
#include "common.h"

#define USAGE "[ops=30000000] [window=20000] [seed=1]"

int main(int argc, char **argv)
{
    usage_check(argc, argv, 3, USAGE);
    long ops = arg_long(argc, argv, 1, 30000000, USAGE);
    long window = arg_long(argc, argv, 2, 20000, USAGE);
    uint64_t rng = rng_seed((uint64_t)arg_long(argc, argv, 3, 1, USAGE), 0);
    if (window < 1)
        window = 1;

    void **ptr = harness_alloc(window * sizeof *ptr);
    size_t *len = harness_alloc(window * sizeof *len);
    long head = 0, count = 0;
    uint64_t sum = 0;

    for (long i = 0; i < ops; i++) {
        if (count == window) {
            sum = sum * 31 + untag_block(ptr[head], len[head]);
            free(ptr[head]);
            count--;
            if (++head == window)
                head = 0;
        }
        long tail = head + count;
        if (tail >= window)
            tail -= window;
        size_t n = size_mixed(&rng);
        ptr[tail] = xmalloc(n);
        len[tail] = n;
        tag_block(ptr[tail], n, (uint8_t)i);
        count++;
    }
    while (count > 0) {
        sum = sum * 31 + untag_block(ptr[head], len[head]);
        free(ptr[head]);
        count--;
        if (++head == window)
            head = 0;
    }
    printf("checksum=%016llx\n", (unsigned long long)sum);
    return 0;
}
