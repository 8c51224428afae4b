/* A program with known allocations for the live-stats tests: 10,000 blocks
 * of 100 bytes and 40 of 1 MiB, and argv[2] threads (default 0) that hold
 * 100 blocks of 3000 bytes each; then it says "ready" and waits to be
 * killed (or exits after argv[1] seconds). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_barrier_t started;

static void* holder(void* arg) {
  (void)arg;
  void* held[100];
  for (int i = 0; i < 100; i++) held[i] = malloc(3000);
  pthread_barrier_wait(&started);
  for (;;) pause();
  return held[0];
}

int main(int argc, char** argv) {
  int secs = argc > 1 ? atoi(argv[1]) : 30;
  int threads = argc > 2 ? atoi(argv[2]) : 0;
  pthread_barrier_init(&started, NULL, (unsigned)threads + 1);
  for (int i = 0; i < threads; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, holder, NULL) != 0) return 1;
  }
  pthread_barrier_wait(&started);
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
