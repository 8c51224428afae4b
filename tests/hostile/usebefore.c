/* Threads started before any allocation, then everything at once. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void* worker(void* arg) {
  (void)arg;
  for (int i = 0; i < 100000; i++) {
    char* p = malloc(16 + i % 500);
    p[0] = 1;
    free(p);
  }
  return NULL;
}

int main(void) {
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, NULL);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  puts("threads ok");
  return 0;
}
