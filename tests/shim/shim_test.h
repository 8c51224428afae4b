/* Helpers for the shim tests (the C programs in tests/shim/).
 *
 * Each test is a program that prints what it observes (results, errno
 * names, byte counts, checksums) on stdout; tests/shim/run.sh runs it twice,
 * plain and with RINGPOOL_URING=1, and compares. So a test prints nothing
 * that may differ between two correct runs (no timings, no pids, no counts
 * of EINTR), and fails loudly (exit 1) on what must hold in both.
 *
 * Everything is on loopback, bounded, and watched: a watchdog thread ends a
 * test that hangs with exit 3. Exit 77: cannot run here (no io_uring). */
#ifndef RINGPOOL_SHIM_TEST_H
#define RINGPOOL_SHIM_TEST_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline const char* errname(int e) {
  switch (e) {
    case 0: return "OK";
    case EAGAIN: return "EAGAIN";
    case EINTR: return "EINTR";
    case EPIPE: return "EPIPE";
    case ECONNRESET: return "ECONNRESET";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EINPROGRESS: return "EINPROGRESS";
    case EALREADY: return "EALREADY";
    case ENOTCONN: return "ENOTCONN";
    case EBADF: return "EBADF";
    case ENOTSOCK: return "ENOTSOCK";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case EMSGSIZE: return "EMSGSIZE";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EISCONN: return "EISCONN";
    case ETIMEDOUT: return "ETIMEDOUT";
    default: return "E?";
  }
}

/* "label: 5" or "label: -1 EAGAIN" */
static inline void report(const char* label, long r, int e) {
  if (r < 0)
    printf("%s: %ld %s\n", label, r, errname(e));
  else
    printf("%s: %ld\n", label, r);
  fflush(stdout);
}

#define REPORT(label, call)     \
  do {                          \
    errno = 0;                  \
    long r_ = (long)(call);     \
    report(label, r_, errno);   \
  } while (0)

static inline void die(const char* what) {
  fprintf(stderr, "FAIL: %s: %s\n", what, strerror(errno));
  fflush(stdout);
  _exit(1);
}

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "FAIL: %s:%d: %s (errno %s)\n", __FILE__, __LINE__,    \
              #cond, strerror(errno));                                        \
      fflush(stdout);                                                         \
      _exit(1);                                                               \
    }                                                                         \
  } while (0)

static inline double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline void sleep_ms(int ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

/* Watchdog: a hung test exits 3 instead of hanging the suite. */
static void* watchdog_main(void* arg) {
  int secs = (int)(intptr_t)arg;
  sleep_ms(secs * 1000);
  fprintf(stderr, "FAIL: watchdog: test still running after %d s\n", secs);
  fflush(stdout);
  _exit(3);
  return NULL;
}

static inline void watchdog(int secs) {
  pthread_t t;
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  pthread_create(&t, &a, watchdog_main, (void*)(intptr_t)secs);
  pthread_attr_destroy(&a);
}

/* The shim's own requirements (io_uring with IORING_SETUP_NO_MMAP and
 * SINGLE_ISSUER, Linux 6.5+): where they fail, a test that needs routing
 * exits 77 (skipped), in both runs. */
struct shim_test_uring_params {
  uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd, resv[3];
  uint32_t sq_off[8];
  uint64_t sq_user_addr;
  uint32_t cq_off[8];
  uint64_t cq_user_addr;
};

static inline int uring_usable(void) {
  void* rings = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void* sqes = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  struct shim_test_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = (1u << 12) | (1u << 14); /* SINGLE_ISSUER | NO_MMAP */
  p.sq_user_addr = (uint64_t)(uintptr_t)sqes;
  p.cq_user_addr = (uint64_t)(uintptr_t)rings;
  long fd = syscall(425, 4, &p);
  if (fd >= 0) close((int)fd);
  munmap(rings, 4096);
  munmap(sqes, 4096);
  return fd >= 0;
}

/* Checked in a child: closing a ring queues task work to the tasks that
 * used it, which can end a later blocking call with a spurious EINTR
 * (sockets with SO_RCVTIMEO, epoll_wait): the test must not do that to
 * itself. */
static inline void require_uring(void) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) _exit(uring_usable() ? 0 : 1);
  int st = 1;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    printf("skip: io_uring (Linux 6.5+, not disabled, not filtered) is not available here\n");
    exit(77);
  }
}

/* A listening TCP socket on 127.0.0.1 with a kernel-chosen port. */
static inline int tcp_listener(int backlog, uint16_t* port) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(l >= 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(bind(l, (struct sockaddr*)&a, sizeof a) == 0);
  CHECK(listen(l, backlog) == 0);
  socklen_t len = sizeof a;
  CHECK(getsockname(l, (struct sockaddr*)&a, &len) == 0);
  *port = ntohs(a.sin_port);
  return l;
}

static inline struct sockaddr_in loopback(uint16_t port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

static inline int tcp_connect(uint16_t port) {
  int c = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(c >= 0);
  struct sockaddr_in a = loopback(port);
  CHECK(connect(c, (struct sockaddr*)&a, sizeof a) == 0);
  return c;
}

/* A connected TCP pair over loopback: *a is the client, *b the server side. */
static inline void tcp_pair(int* a, int* b) {
  uint16_t port;
  int l = tcp_listener(4, &port);
  *a = tcp_connect(port);
  *b = accept(l, NULL, NULL);
  CHECK(*b >= 0);
  close(l);
  int one = 1;
  setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Sends len bytes whatever it takes (plain blocking send loop). */
static inline void send_all(int fd, const void* buf, size_t len) {
  const char* p = (const char*)buf;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    CHECK(n > 0);
    p += n;
    len -= (size_t)n;
  }
}

static inline size_t recv_all(int fd, void* buf, size_t len) {
  char* p = (char*)buf;
  size_t got = 0;
  while (got < len) {
    ssize_t n = recv(fd, p + got, len - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  return got;
}

/* FNV-1a, to compare streams without printing them. */
static inline uint64_t fnv(uint64_t h, const void* buf, size_t len) {
  const unsigned char* p = (const unsigned char*)buf;
  if (h == 0) h = 1469598103934665603ull;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

static inline void fill_pattern(void* buf, size_t len, unsigned seed) {
  unsigned char* p = (unsigned char*)buf;
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p[i] = (unsigned char)x;
  }
}

/* Fills a socket's send path until a non-blocking send would block, then
 * restores blocking mode: the next blocking send waits. */
static inline size_t fill_send_buffer(int fd) {
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  static char chunk[65536];
  size_t total = 0;
  for (;;) {
    ssize_t n = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL);
    if (n <= 0) break;
    total += (size_t)n;
  }
  /* Small sends fill the last gaps. */
  for (;;) {
    ssize_t n = send(fd, chunk, 1, MSG_NOSIGNAL);
    if (n <= 0) break;
    total += (size_t)n;
  }
  fcntl(fd, F_SETFL, fl);
  return total;
}

#endif
