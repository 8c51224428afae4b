/* A program with known allocations for the live-stats tests: 10,000 blocks
 * of 100 bytes and 40 of 1 MiB, then it says "ready" and waits to be killed
 * (or exits after argv[1] seconds). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  int secs = argc > 1 ? atoi(argv[1]) : 30;
  static void* small[10000];
  static void* big[40];
  for (int i = 0; i < 10000; i++) {
    small[i] = malloc(100);
    memset(small[i], 1, 100);
  }
  for (int i = 0; i < 40; i++) {
    big[i] = malloc(1 << 20);
    memset(big[i], 2, 1 << 20);
  }
  printf("ready\n");
  fflush(stdout);
  sleep((unsigned)secs);
  for (int i = 0; i < 10000; i++) free(small[i]);
  for (int i = 0; i < 40; i++) free(big[i]);
  return 0;
}
