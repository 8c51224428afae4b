/* The shim's own lines on stderr (RINGPOOL_VERBOSE=1: the counters each
 * process prints at exit, why a thread passes its calls through) are each
 * one write(2). Processes of one program share a stderr and often exit
 * together (socat's server child and its client); a line written piece by
 * piece interleaved with theirs, and run.sh, summing the counter lines, once
 * read "fallback=" of one process followed by another's "928" routed calls
 * as a fallback.
 *
 * Deterministic: the children's stderr is a packet-mode pipe (O_DIRECT), in
 * which every write is one packet and every read returns one packet, so a
 * line written in pieces shows as pieces however the writes are timed. Each
 * child routes a few calls and exits (its destructor prints its counters);
 * one of them first uses up its descriptors, so that making its ring fails
 * with EMFILE and it says that its thread passes its calls through. Run
 * plain, the children print nothing; the stdout is the same. */
#include "shim_test.h"

#include <limits.h>
#include <sys/resource.h>

#define KIDS 4
#define PINGS 10

static int env_is(const char* name, const char* a, const char* b) {
  const char* v = getenv(name);
  return v && (strcmp(v, a) == 0 || (b && strcmp(v, b) == 0));
}

static void pings(int a, int b) {
  for (int i = 0; i < PINGS; i++) {
    char c = (char)('a' + i);
    CHECK(send(a, &c, 1, 0) == 1);
    CHECK(recv(b, &c, 1, 0) == 1 && c == (char)('a' + i));
  }
}

/* A child: stderr is the packet pipe; `starve`: no descriptor left for a
 * ring (the calls then fall back, counted). Exits through exit(), so that
 * the shim's destructor prints the counters. */
static void child(int err_w, int starve) {
  CHECK(dup2(err_w, 2) == 2);
  close(err_w);
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  if (starve) {
    struct rlimit rl = {64, 64};
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    while (dup(0) >= 0) {
    }
    CHECK(errno == EMFILE);
  }
  pings(sv[0], sv[1]);
  exit(0);
}

/* "ringpool: uring[PID]: routed=N passed=N ... rings=N\n", all of it. */
static int counter_line(const char* s) {
  int pid, end = -1;
  unsigned long routed, passed, fallback, waits, interrupted, raced, timeouts, rings;
  int n = sscanf(s,
                 "ringpool: uring[%d]: routed=%lu passed=%lu fallback=%lu waits=%lu interrupted=%lu raced=%lu "
                 "timeouts=%lu rings=%lu%n",
                 &pid, &routed, &passed, &fallback, &waits, &interrupted, &raced, &timeouts, &rings, &end);
  return n == 9 && end > 0 && strcmp(s + end, "\n") == 0;
}

int main(void) {
  require_uring();
  watchdog(60);
  /* The parent routes too: run.sh wants routed calls in its own line. */
  int a, b;
  tcp_pair(&a, &b);
  pings(a, b);

  int p[2];
  CHECK(pipe2(p, O_DIRECT | O_CLOEXEC) == 0);
  fflush(stdout);
  pid_t kids[KIDS];
  for (int k = 0; k < KIDS; k++) {
    kids[k] = fork();
    CHECK(kids[k] >= 0);
    if (kids[k] == 0) {
      close(p[0]);
      child(p[1], k == 0);
    }
  }
  close(p[1]);

  int shim_lines = 0, counters = 0, passes = 0, broken = 0;
  char buf[PIPE_BUF + 1];
  for (;;) {
    ssize_t n = read(p[0], buf, PIPE_BUF);
    if (n < 0 && errno == EINTR) continue;
    CHECK(n >= 0);
    if (n == 0) break;
    buf[n] = 0;
    /* Others' lines (the allocator's) are not this test's business. */
    if (strncmp(buf, "ringpool: uring", 15) != 0) continue;
    shim_lines++;
    int whole = buf[n - 1] == '\n' && memchr(buf, '\n', (size_t)n - 1) == NULL;
    if (!whole) {
      broken++;
      fprintf(stderr, "FAIL: a shim line in more than one write: [%s]\n", buf);
    } else if (counter_line(buf)) {
      counters++;
    } else if (strstr(buf, "passes its calls through") || strstr(buf, "passing calls through")) {
      passes++;
    } else {
      broken++;
      fprintf(stderr, "FAIL: an unexpected shim line: [%s]", buf);
    }
  }
  for (int k = 0; k < KIDS; k++) {
    int st = 0;
    while (waitpid(kids[k], &st, 0) < 0 && errno == EINTR) {
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  CHECK(broken == 0);
  if (env_is("RINGPOOL_URING", "1", NULL) && env_is("RINGPOOL_VERBOSE", "1", "2")) {
    /* Each child's counters, and the starved child's reason, once. */
    CHECK(counters == KIDS);
    CHECK(passes == 1);
  } else if (!env_is("RINGPOOL_URING", "1", NULL)) {
    CHECK(shim_lines == 0);
  }
  printf("%d children, %d pings each: every shim line on their stderr is one write\n", KIDS, PINGS);
  close(a);
  close(b);
  return 0;
}
