// Two allocation sites of known weight, for the heap profiler's tests.
//
//   sites [BIG_MB SMALL_MB [CHURN_MB]]   keep BIG_MB live in 64 KiB blocks
//       (site_big) and SMALL_MB in 1 KiB blocks (site_small); allocate and
//       free CHURN_MB in 4 KiB blocks (site_churn: allocated, not live).
//   sites wait BIG_MB SMALL_MB   the same, then print "ready" and keep
//       allocating a little every 20 ms until stdin closes (for
//       `ringpool profile PID`).
// Built with -g -fno-omit-frame-pointer -rdynamic so the names resolve.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>

static void** g_keep;
static size_t g_count;

__attribute__((noinline)) void site_big(size_t mb) {
  size_t n = mb * 16;  // 64 KiB blocks
  for (size_t i = 0; i < n; i++) {
    char* p = malloc(64 * 1024);
    p[0] = 1;
    g_keep[g_count++] = p;
  }
}

__attribute__((noinline)) void site_small(size_t mb) {
  size_t n = mb * 1024;  // 1 KiB blocks
  for (size_t i = 0; i < n; i++) {
    char* p = malloc(1024);
    p[0] = 1;
    g_keep[g_count++] = p;
  }
}

__attribute__((noinline)) void site_churn(size_t mb) {
  size_t n = mb * 256;  // 4 KiB blocks, freed at once
  for (size_t i = 0; i < n; i++) {
    char* volatile p = malloc(4096);
    p[0] = 1;
    free(p);
  }
}

int main(int argc, char** argv) {
  int wait = argc > 1 && strcmp(argv[1], "wait") == 0;
  int a = wait ? 2 : 1;
  size_t big = argc > a ? strtoul(argv[a], 0, 10) : 80;
  size_t small = argc > a + 1 ? strtoul(argv[a + 1], 0, 10) : 8;
  size_t churn = argc > a + 2 ? strtoul(argv[a + 2], 0, 10) : 0;
  g_keep = calloc(big * 16 + small * 1024 + 1, sizeof(void*));
  site_big(big);
  site_small(small);
  site_churn(churn);
  if (wait) {
    printf("ready\n");
    fflush(stdout);
    struct pollfd pfd = {0, POLLIN, 0};
    while (poll(&pfd, 1, 20) == 0) free(malloc(100));
  }
  return 0;
}
