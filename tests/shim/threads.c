/* Threads: a thread-per-connection echo server with 16 concurrent clients
 * (each thread gets its own ring, made on its first call and dropped when it
 * exits); threads that come and go; pthread_cancel of a thread blocked in a
 * routed recv (cancelled as the plain call is, and the data sent afterwards
 * is still there for the next reader); a thread that exits while another
 * waits on the same socket. */
#include "shim_test.h"

enum { k_clients = 16, k_rounds = 200 };

static int g_listener;
static uint16_t g_port;

static void* serve(void* arg) {
  int fd = (int)(intptr_t)arg;
  char buf[512];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    if (send(fd, buf, (size_t)n, 0) != n) break;
  }
  close(fd);
  return NULL;
}

static void* acceptor(void* arg) {
  (void)arg;
  for (int i = 0; i < k_clients; i++) {
    int fd = accept(g_listener, NULL, NULL);
    if (fd < 0) break;
    pthread_t t;
    pthread_create(&t, NULL, serve, (void*)(intptr_t)fd);
    pthread_detach(t);
  }
  return NULL;
}

static void* client(void* arg) {
  int id = (int)(intptr_t)arg;
  int fd = tcp_connect(g_port);
  char out[300], in[300];
  uint64_t h = 0;
  int ok = 1;
  for (int r = 0; r < k_rounds; r++) {
    size_t len = 1 + (size_t)((id * 31 + r * 7) % (int)sizeof out);
    fill_pattern(out, len, (unsigned)(id * 1000 + r));
    send_all(fd, out, len);
    if (recv_all(fd, in, len) != len || memcmp(in, out, len) != 0) ok = 0;
    h = fnv(h, in, len);
  }
  close(fd);
  return (void*)(intptr_t)(ok ? 1 : 0);
}

struct blocked {
  int fd;
  volatile int started;
};

static void* cancel_victim(void* arg) {
  struct blocked* b = (struct blocked*)arg;
  char buf[16];
  b->started = 1;
  for (;;) {
    ssize_t n = recv(b->fd, buf, sizeof buf, 0);
    if (n <= 0) break;
  }
  return NULL;
}

/* Two readers on one stream socket: every byte wakes both, one wins. */
struct shared_reader {
  int fd;
  long bytes;
};

static void* read_shared(void* arg) {
  struct shared_reader* r = (struct shared_reader*)arg;
  char c;
  while (recv(r->fd, &c, 1, 0) == 1) r->bytes++;
  return NULL;
}

static void* short_lived(void* arg) {
  int fd = (int)(intptr_t)arg;
  char c = 0;
  send(fd, &c, 1, 0);
  return NULL;
}

int main(void) {
  require_uring();
  watchdog(90);
  g_listener = tcp_listener(64, &g_port);
  pthread_t acc, cl[k_clients];
  pthread_create(&acc, NULL, acceptor, NULL);
  for (int i = 0; i < k_clients; i++) pthread_create(&cl[i], NULL, client, (void*)(intptr_t)i);
  int good = 0;
  for (int i = 0; i < k_clients; i++) {
    void* r;
    pthread_join(cl[i], &r);
    good += (int)(intptr_t)r;
  }
  pthread_join(acc, NULL);
  close(g_listener);
  printf("echo: %d of %d clients got every byte back\n", good, k_clients);

  /* Threads that come and go, each sending once. */
  int a, b;
  tcp_pair(&a, &b);
  for (int i = 0; i < 50; i++) {
    pthread_t t;
    pthread_create(&t, NULL, short_lived, (void*)(intptr_t)a);
    pthread_join(t, NULL);
  }
  char buf[64];
  size_t got = recv_all(b, buf, 50);
  printf("short-lived threads: %zu bytes\n", got);

  /* Two threads blocked on the same stream socket, 600 lone bytes, each a
   * wake-up for both: the loser of each race waits on (with io_uring's own
   * poll, a request re-armed 128 times would move to an io-wq worker whose
   * completion the wait would miss). */
  {
    int x, y;
    tcp_pair(&x, &y);
    struct shared_reader r1 = {y, 0}, r2 = {y, 0};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, read_shared, &r1);
    pthread_create(&t2, NULL, read_shared, &r2);
    sleep_ms(50);
    for (int i = 0; i < 600; i++) {
      send(x, "b", 1, 0);
      struct timespec pause = {0, 200000};
      nanosleep(&pause, NULL);
    }
    shutdown(x, SHUT_WR);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    printf("two readers on one socket: %ld bytes in all\n", r1.bytes + r2.bytes);
    close(x);
    close(y);
  }

  /* pthread_cancel while blocked in recv. */
  struct blocked blk = {b, 0};
  pthread_t v;
  pthread_create(&v, NULL, cancel_victim, &blk);
  while (!blk.started) sleep_ms(1);
  sleep_ms(150);
  pthread_cancel(v);
  void* res;
  pthread_join(v, &res);
  printf("cancelled: %s\n", res == PTHREAD_CANCELED ? "yes" : "no");
  send(a, "after-cancel", 12, 0);
  memset(buf, 0, sizeof buf);
  ssize_t n = recv(b, buf, sizeof buf, 0);
  printf("data after the cancel: %zd %s\n", n, buf);
  close(a);
  close(b);
  printf("done\n");
  return 0;
}
