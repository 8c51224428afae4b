/* A thread-per-connection echo server (blocking accept, recv, send) and
 * CONNS client threads in another process, each doing request/response
 * rounds of SIZE bytes for SECONDS. Both processes make plain blocking
 * calls, so under RINGPOOL_URING=1 both are routed.
 *
 *   echo CONNS SIZE SECONDS
 * prints: "requests=N seconds=S cpu_seconds=C" (CPU of both processes). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static size_t g_size;
static volatile int g_stop;
static struct sockaddr_in g_addr;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double cpu(int who) {
  struct rusage r;
  getrusage(who, &r);
  return (double)r.ru_utime.tv_sec + (double)r.ru_utime.tv_usec * 1e-6 + (double)r.ru_stime.tv_sec +
         (double)r.ru_stime.tv_usec * 1e-6;
}

static int full(int fd, char* buf, size_t len, int sending) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = sending ? send(fd, buf + done, len - done, 0) : recv(fd, buf + done, len - done, 0);
    if (n <= 0) return -1;
    done += (size_t)n;
  }
  return 0;
}

static void* serve(void* arg) {
  int fd = (int)(long)arg;
  char* buf = malloc(g_size);
  while (full(fd, buf, g_size, 0) == 0 && full(fd, buf, g_size, 1) == 0) {
  }
  close(fd);
  free(buf);
  return NULL;
}

struct client {
  pthread_t t;
  long requests;
};

static void* client(void* arg) {
  struct client* c = (struct client*)arg;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  if (connect(fd, (struct sockaddr*)&g_addr, sizeof g_addr) != 0) return NULL;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char* buf = malloc(g_size);
  memset(buf, 3, g_size);
  while (!g_stop) {
    if (full(fd, buf, g_size, 1) != 0 || full(fd, buf, g_size, 0) != 0) break;
    c->requests++;
  }
  close(fd);
  free(buf);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: echo CONNS SIZE SECONDS\n");
    return 2;
  }
  int conns = atoi(argv[1]);
  g_size = (size_t)atol(argv[2]);
  double secs = atof(argv[3]);
  int l = socket(AF_INET, SOCK_STREAM, 0);
  memset(&g_addr, 0, sizeof g_addr);
  g_addr.sin_family = AF_INET;
  g_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(l, (struct sockaddr*)&g_addr, sizeof g_addr) != 0 || listen(l, 128) != 0) return 1;
  socklen_t len = sizeof g_addr;
  getsockname(l, (struct sockaddr*)&g_addr, &len);
  pid_t pid = fork();
  if (pid == 0) {
    for (int i = 0; i < conns; i++) {
      int s = accept(l, NULL, NULL);
      if (s < 0) _exit(1);
      setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      pthread_t t;
      pthread_create(&t, NULL, serve, (void*)(long)s);
      pthread_detach(t);
    }
    /* Serve until the parent measured the server's CPU and stops it. */
    for (;;) pause();
  }
  close(l);
  struct client* cl = calloc((size_t)conns, sizeof *cl);
  double c0 = cpu(RUSAGE_SELF);
  double t0 = now();
  for (int i = 0; i < conns; i++) pthread_create(&cl[i].t, NULL, client, &cl[i]);
  struct timespec d = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
  nanosleep(&d, NULL);
  g_stop = 1;
  long total = 0;
  for (int i = 0; i < conns; i++) {
    pthread_join(cl[i].t, NULL);
    total += cl[i].requests;
  }
  double t = now() - t0;
  double mine = cpu(RUSAGE_SELF) - c0;
  /* The server's CPU: read from /proc before stopping it. */
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE* f = fopen(path, "r");
  double theirs = 0;
  if (f) {
    unsigned long ut = 0, st = 0;
    int n = fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    if (n == 2) theirs = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    fclose(f);
  }
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  printf("requests=%ld seconds=%.6f cpu_seconds=%.6f\n", total, t, mine + theirs);
  return 0;
}
