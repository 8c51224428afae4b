/* Signals racing data. One thread streams numbered records; the other
 * receives them while a third interrupts it every 100-300 us with a signal
 * whose handler has no SA_RESTART. Every interrupted call returns EINTR or
 * the data that won the race: never loses it (a routed call must not return
 * while the kernel still holds its buffer). The same the other way round:
 * the sender interrupted on a full buffer must report exactly what it sent.
 * Stream (TCP), and datagrams (a unix datagram pair: blocking, lossless). */
#include "shim_test.h"

enum { k_records = 20000, k_record = 100 };

static volatile sig_atomic_t g_hits;
static void on_signal(int sig) {
  (void)sig;
  g_hits++;
}

struct peer {
  int fd;
  pthread_t thread;
  volatile int stop;
  uint64_t hash;
  size_t bytes;
  int ok;
};

static void* pester(void* arg) {
  struct peer* p = (struct peer*)arg;
  unsigned x = 12345;
  while (!p->stop) {
    pthread_kill(p->thread, SIGUSR1);
    x = x * 1103515245u + 12345u;
    struct timespec t = {0, 100000 + (long)(x % 200000)};
    nanosleep(&t, NULL);
  }
  return NULL;
}

static void make_record(char* r, unsigned i) {
  memset(r, 'a' + (int)(i % 26), k_record);
  memcpy(r, &i, sizeof i);
}

static void* stream_sender(void* arg) {
  struct peer* p = (struct peer*)arg;
  p->thread = pthread_self();
  char rec[k_record * 10];
  uint64_t h = 0;
  for (unsigned i = 0; i < k_records; i += 10) {
    for (unsigned j = 0; j < 10; j++) make_record(rec + j * k_record, i + j);
    size_t off = 0;
    while (off < sizeof rec) {
      ssize_t n = send(p->fd, rec + off, sizeof rec - off, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return NULL;
      off += (size_t)n;
    }
    h = fnv(h, rec, sizeof rec);
    if (i % 20 == 0) {
      struct timespec t = {0, 100000}; /* let the receiver block, often */
      nanosleep(&t, NULL);
    }
  }
  p->hash = h;
  p->bytes = (size_t)k_records * k_record;
  return NULL;
}

static void stream_case(int interrupt_sender) {
  int a, b;
  tcp_pair(&a, &b);
  int small = 32768;
  setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  struct peer snd = {a, 0, 0, 0, 0, 0}, rcv = {b, pthread_self(), 0, 0, 0, 0};
  pthread_t st, pt;
  pthread_create(&st, NULL, stream_sender, &snd);
  sleep_ms(10);
  struct peer* victim = interrupt_sender ? &snd : &rcv;
  pthread_create(&pt, NULL, pester, victim);
  char buf[777]; /* not a multiple of the record: calls straddle records */
  uint64_t h = 0;
  size_t got = 0;
  while (got < (size_t)k_records * k_record) {
    ssize_t n = recv(b, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    h = fnv(h, buf, (size_t)n); /* FNV runs byte by byte: chunking does not matter */
    got += (size_t)n;
  }
  victim->stop = 1;
  pthread_join(pt, NULL);
  pthread_join(st, NULL);
  printf("stream, %s interrupted: received %zu of %zu, hash %s\n", interrupt_sender ? "sender" : "receiver", got,
         snd.bytes, h == snd.hash ? "matches" : "DIFFERS");
  close(a);
  close(b);
}

static void* dgram_sender(void* arg) {
  struct peer* p = (struct peer*)arg;
  char rec[k_record];
  uint64_t h = 0;
  for (unsigned i = 0; i < k_records; i++) {
    make_record(rec, i);
    for (;;) {
      ssize_t n = send(p->fd, rec, sizeof rec, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n != (ssize_t)sizeof rec) return NULL;
      break;
    }
    h = fnv(h, rec, sizeof rec);
    if (i % 20 == 0) {
      struct timespec t = {0, 100000};
      nanosleep(&t, NULL);
    }
  }
  p->hash = h;
  p->bytes = k_records;
  return NULL;
}

static void dgram_case(void) {
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
  struct peer snd = {sv[0], 0, 0, 0, 0, 0}, rcv = {sv[1], pthread_self(), 0, 0, 0, 0};
  pthread_t st, pt;
  pthread_create(&st, NULL, dgram_sender, &snd);
  pthread_create(&pt, NULL, pester, &rcv);
  char rec[k_record];
  uint64_t h = 0;
  unsigned n_ok = 0, in_order = 1;
  while (n_ok < k_records) {
    ssize_t n = recv(sv[1], rec, sizeof rec, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n != k_record) break;
    unsigned seq;
    memcpy(&seq, rec, sizeof seq);
    if (seq != n_ok) in_order = 0;
    h = fnv(h, rec, sizeof rec);
    n_ok++;
  }
  rcv.stop = 1;
  pthread_join(pt, NULL);
  pthread_join(st, NULL);
  printf("datagrams: received %u of %zu, in order %d, hash %s\n", n_ok, snd.bytes, in_order,
         h == snd.hash ? "matches" : "DIFFERS");
  close(sv[0]);
  close(sv[1]);
}

int main(void) {
  require_uring();
  watchdog(100);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART: every hit may be EINTR */
  stream_case(0);
  stream_case(1);
  dgram_case();
  fprintf(stderr, "race: %d signals delivered\n", (int)g_hits);
  return 0;
}
