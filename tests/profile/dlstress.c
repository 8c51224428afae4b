// Heap profiling while other threads dlopen/dlclose: must not deadlock.
//   dlstress PLUGIN.so SECONDS [THREADS]
// THREADS threads allocate and free blocks of mixed sizes (sampled often
// with a small RINGPOOL_PROFILE_RATE), one thread opens PLUGIN.so, calls
// into it and closes it in a loop, and one thread forks children that
// allocate and exit. Prints "done" when every thread finished.
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char* g_plugin;
static double g_end;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static void* churn(void* arg) {
  unsigned seed = (unsigned)(size_t)arg;
  void* keep[256] = {0};
  while (now() < g_end) {
    for (int i = 0; i < 1000; i++) {
      unsigned k = rand_r(&seed) % 256;
      free(keep[k]);
      keep[k] = malloc(16 + rand_r(&seed) % (rand_r(&seed) % 8 ? 512 : 100000));
    }
  }
  for (int k = 0; k < 256; k++) free(keep[k]);
  return NULL;
}

static void* opener(void* arg) {
  (void)arg;
  long rounds = 0;
  while (now() < g_end) {
    void* h = dlopen(g_plugin, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      fprintf(stderr, "dlopen: %s\n", dlerror());
      exit(1);
    }
    void* (*work)(size_t) = (void* (*)(size_t))dlsym(h, "plugin_work");
    for (int i = 0; i < 50; i++) free(work(1000 + i * 100));
    dlclose(h);
    rounds++;
  }
  printf("dlopen rounds: %ld\n", rounds);
  return NULL;
}

static void* forker(void* arg) {
  (void)arg;
  int forks = 0;
  while (now() < g_end) {
    pid_t pid = fork();
    if (pid == 0) {
      for (int i = 0; i < 100; i++) free(malloc(100 + i * 1000));
      _exit(0);
    }
    if (pid > 0) {
      int st;
      waitpid(pid, &st, 0);
      forks++;
    }
    usleep(5000);
  }
  printf("forks: %d\n", forks);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: dlstress PLUGIN.so SECONDS [THREADS]\n");
    return 2;
  }
  g_plugin = argv[1];
  g_end = now() + atof(argv[2]);
  int n = argc > 3 ? atoi(argv[3]) : 3;
  pthread_t t[64];
  for (int i = 0; i < n && i < 60; i++) pthread_create(&t[i], NULL, churn, (void*)(size_t)(i + 1));
  pthread_t o, f;
  pthread_create(&o, NULL, opener, NULL);
  pthread_create(&f, NULL, forker, NULL);
  for (int i = 0; i < n && i < 60; i++) pthread_join(t[i], NULL);
  pthread_join(o, NULL);
  pthread_join(f, NULL);
  printf("done\n");
  return 0;
}
