/* examples/optional.c: use the ringpool API when the library is there, and
 * run on any malloc when it is not (ringpool(3), "Using the API only when
 * ringpool is there").
 *
 *   cc optional.c $(pkg-config --cflags ringpool) -o optional
 *   ./optional                               prints "ringpool: not loaded"
 *   LD_PRELOAD=libringpool.so.1 ./optional   prints "ringpool 1.0.0: ..."
 *
 * Exit status: 0, or 1 if the library is there and answers wrongly; with the
 * argument "require", also 1 when it is not there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ringpool.h>

/* Weak: the program links without -lringpool, and these are NULL unless a
 * preloaded (or linked) libringpool defines them. */
#pragma weak ringpool_version
#pragma weak ringpool_stats_get

enum { k_blocks = 500, k_size = 200 };
void* g_blocks[k_blocks]; /* not static: the mallocs must stay */

int main(int argc, char** argv) {
  int require = argc > 1 && strcmp(argv[1], "require") == 0;
  if (ringpool_version == NULL || ringpool_stats_get == NULL) {
    printf("ringpool: not loaded\n");
    return require ? 1 : 0;
  }
  for (int i = 0; i < k_blocks; i++) g_blocks[i] = malloc(k_size);
  struct ringpool_stats s = {.size = sizeof s};
  if (ringpool_stats_get(&s) != 0 || s.live_blocks < k_blocks ||
      s.live_bytes < (uint64_t)k_blocks * k_size) {
    fprintf(stderr, "optional: ringpool_stats_get() does not count our blocks\n");
    return 1;
  }
  printf("ringpool %s: %llu bytes live in %llu blocks\n", ringpool_version(),
         (unsigned long long)s.live_bytes, (unsigned long long)s.live_blocks);
  for (int i = 0; i < k_blocks; i++) free(g_blocks[i]);
  return 0;
}
