// A deliberate leak for RINGPOOL_LEAKS=1: leak_here() drops 10 blocks of
// 3000 bytes, leak_small() 3 blocks of 48 (a class the profiler's own start
// allocates from, before sampling begins); everything else is freed.
#include <stdlib.h>
#include <string.h>

static void* g_sink;

__attribute__((noinline)) void leak_here(void) {
  for (int i = 0; i < 10; i++) {
    char* p = malloc(3000);
    memset(p, 1, 3000);
    g_sink = p;  // only the last one stays reachable; all ten stay allocated
  }
}

__attribute__((noinline)) void leak_small(void) {
  for (int i = 0; i < 3; i++) {
    char* volatile p = malloc(48);
    p[0] = 1;
  }
}

__attribute__((noinline)) void tidy(void) {
  for (int i = 0; i < 1000; i++) {
    char* volatile p = malloc(100 + i);
    free(p);
  }
}

int main(void) {
  tidy();
  leak_here();
  leak_small();
  tidy();
  return 0;
}
