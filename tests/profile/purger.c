// Frees a peak of sampled blocks while sampling nearly every allocation, so
// that the sample heap gives back pages, the purge thread is wanted, and it
// is started (pthread_create allocates) while the sample heap's lock is held:
// that once deadlocked. Run with RINGPOOL_RETAIN=0 RINGPOOL_PROFILE_RATE=64.
//
//   purger [ROUNDS]   prints "done" at the end
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 20;
  enum { n = 20000 };
  static void* keep[n];
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < n; i++) keep[i] = malloc(16 + (size_t)(i % 64) * 16);
    for (int i = 0; i < n; i++) free(keep[i]);
  }
  printf("done\n");
  return 0;
}
