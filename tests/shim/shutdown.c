/* Another thread acts on a socket a routed call waits on:
 *   shutdown(SHUT_RD) and shutdown(SHUT_RDWR) wake a blocked recv with 0;
 *   shutdown on a listening socket wakes a blocked accept (EINVAL);
 *   shutdown(SHUT_WR) of the peer: EOF;
 *   close() does not wake it on Linux: the blocked recv still gets the data
 *   sent afterwards (the call holds a reference to the socket). */
#include "shim_test.h"

struct blocked {
  int fd;
  int accept;
  long result;
  int err;
  char data[16];
};

static void* blocked_main(void* arg) {
  struct blocked* b = (struct blocked*)arg;
  errno = 0;
  if (b->accept) {
    b->result = accept(b->fd, NULL, NULL);
  } else {
    memset(b->data, 0, sizeof b->data);
    b->result = recv(b->fd, b->data, sizeof b->data - 1, 0);
  }
  b->err = errno;
  return NULL;
}

static void shutdown_case(const char* label, int how, int on_peer) {
  int a, b;
  tcp_pair(&a, &b);
  struct blocked blk = {b, 0, 0, 0, {0}};
  pthread_t t;
  pthread_create(&t, NULL, blocked_main, &blk);
  sleep_ms(150);
  shutdown(on_peer ? a : b, how);
  pthread_join(t, NULL);
  report(label, blk.result, blk.err);
  close(a);
  close(b);
}

int main(void) {
  require_uring();
  watchdog(60);
  shutdown_case("recv, shutdown(SHUT_RD) by another thread", SHUT_RD, 0);
  shutdown_case("recv, shutdown(SHUT_RDWR) by another thread", SHUT_RDWR, 0);
  shutdown_case("recv, peer shutdown(SHUT_WR)", SHUT_WR, 1);

  /* accept, and shutdown of the listener. */
  uint16_t port;
  int l = tcp_listener(4, &port);
  struct blocked blk = {l, 1, 0, 0, {0}};
  pthread_t t;
  pthread_create(&t, NULL, blocked_main, &blk);
  sleep_ms(150);
  shutdown(l, SHUT_RDWR);
  pthread_join(t, NULL);
  report("accept, listener shut down by another thread", blk.result, blk.err);
  close(l);

  /* close() while recv waits: the call keeps the socket; data still comes. */
  int a, b;
  tcp_pair(&a, &b);
  struct blocked rb = {b, 0, 0, 0, {0}};
  pthread_create(&t, NULL, blocked_main, &rb);
  sleep_ms(150);
  close(b);
  sleep_ms(100);
  send(a, "after-close", 11, MSG_NOSIGNAL);
  pthread_join(t, NULL);
  report("recv, descriptor closed by another thread, then data", rb.result, rb.err);
  printf("  data: %s\n", rb.data);
  /* The number is free again: a new socket may take it and is not confused
   * with the old one. */
  int n = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  char buf[8];
  REPORT("recv on the reused number (non-blocking)", recv(n, buf, sizeof buf, 0));
  close(n);
  close(a);
  printf("done\n");
  return 0;
}
