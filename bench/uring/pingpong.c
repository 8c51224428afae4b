/* Blocking ping-pong over TCP on 127.0.0.1: a client process sends SIZE
 * bytes and waits for them back, ITERS times; the server process echoes.
 * Both make plain blocking calls (send, recv), so under RINGPOOL_URING=1
 * both are routed.
 *
 *   pingpong SIZE ITERS
 * prints: "requests=N seconds=S cpu_seconds=C" (CPU of both processes). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: pingpong SIZE ITERS\n");
    return 2;
  }
  size_t size = (size_t)atol(argv[1]);
  long iters = atol(argv[2]);
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(l, (struct sockaddr*)&a, sizeof a) != 0 || listen(l, 1) != 0) return 1;
  socklen_t len = sizeof a;
  getsockname(l, (struct sockaddr*)&a, &len);
  char* buf = malloc(size);
  memset(buf, 7, size);
  pid_t pid = fork();
  if (pid == 0) {
    int s = accept(l, NULL, NULL);
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (full(s, buf, size, 0) == 0 && full(s, buf, size, 1) == 0) {
    }
    _exit(0);
  }
  close(l);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(c, (struct sockaddr*)&a, sizeof a) != 0) return 1;
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  /* Warm up: rings made, buffers sized. */
  for (int i = 0; i < 100; i++) full(c, buf, size, 1), full(c, buf, size, 0);
  double c0 = cpu(RUSAGE_SELF);
  double t0 = now();
  for (long i = 0; i < iters; i++) {
    if (full(c, buf, size, 1) != 0 || full(c, buf, size, 0) != 0) return 1;
  }
  double t = now() - t0;
  double mine = cpu(RUSAGE_SELF) - c0;
  close(c);
  int st;
  waitpid(pid, &st, 0);
  /* The server's whole life is the measured loop plus the warm-up. */
  double theirs = cpu(RUSAGE_CHILDREN) * (double)iters / (double)(iters + 100);
  printf("requests=%ld seconds=%.6f cpu_seconds=%.6f\n", iters, t, mine + theirs);
  return 0;
}
