/* examples/stats.c: a program linked with libringpool (see ringpool(3)).
 *
 *   cc stats.c $(pkg-config --cflags --libs ringpool) -o stats && ./stats
 *
 * It allocates known blocks, reads them back through ringpool_stats_get(),
 * checks the error cases and prints one line.  tests/check-install.sh and the
 * Debian autopkgtest build it against an installed copy.  Exit status: 0 when
 * every check held, 1 otherwise.  With -v it also prints the full summary. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ringpool.h>

enum { k_blocks = 1000, k_size = 100 };

/* Not static: the compiler must not drop the malloc/free pairs. */
void* g_blocks[k_blocks];

static int check(int ok, const char* what) {
  if (!ok) fprintf(stderr, "stats: FAILED: %s\n", what);
  return ok ? 0 : 1;
}

int main(int argc, char** argv) {
  int bad = 0;
  const char* v = ringpool_version();
  bad += check(v != NULL && strcmp(v, RINGPOOL_VERSION_STRING) == 0,
               "ringpool_version() equals RINGPOOL_VERSION_STRING");

  struct ringpool_stats before = {.size = sizeof before};
  bad += check(ringpool_stats_get(&before) == 0, "ringpool_stats_get() returns 0");
  for (int i = 0; i < k_blocks; i++) {
    g_blocks[i] = malloc(k_size);
    if (g_blocks[i] != NULL) memset(g_blocks[i], i & 0xff, k_size);
  }
  struct ringpool_stats s = {.size = sizeof s};
  bad += check(ringpool_stats_get(&s) == 0, "ringpool_stats_get() returns 0");
  bad += check(s.size == sizeof s, "the library fills the whole struct");
  /* Only ringpool counts these: this also shows that malloc is ringpool's. */
  bad += check(s.live_blocks >= before.live_blocks + k_blocks, "live_blocks counts our blocks");
  bad += check(s.live_bytes >= before.live_bytes + (uint64_t)k_blocks * k_size,
               "live_bytes counts our bytes");
  bad += check(ringpool_stats_get(NULL) == EINVAL, "NULL gives EINVAL");
  struct ringpool_stats small = {.size = RINGPOOL_STATS_SIZE_V1 - 1};
  bad += check(ringpool_stats_get(&small) == EINVAL, "a short size gives EINVAL");

  for (int i = 0; i < k_blocks; i++) free(g_blocks[i]);
  int trimmed = ringpool_trim();
  bad += check(trimmed == 0 || trimmed == 1, "ringpool_trim() returns 0 or 1");

  printf("ringpool %s (header %s): %llu blocks, %llu bytes live before free\n", v,
         RINGPOOL_VERSION_STRING, (unsigned long long)s.live_blocks,
         (unsigned long long)s.live_bytes);
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    fflush(stdout);
    ringpool_stats_print(1);
  }
  return bad ? 1 : 0;
}
