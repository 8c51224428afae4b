/* A signal while a blocking call waits, compared plain vs routed:
 *   without SA_RESTART the call fails with EINTR;
 *   with SA_RESTART it carries on and returns what comes later;
 *   with SA_RESTART but SO_RCVTIMEO set, it fails with EINTR (sockets with a
 *     timeout are never restarted);
 *   for recv, accept, send (on a full buffer) and connect (to a full
 *   backlog); a stop and continue (no handler) is transparent; a handler
 *   that itself writes to a socket (nested in a routed wait) works; after
 *   partial progress (MSG_WAITALL) the call returns the bytes it has.
 * Data that arrives after an EINTR is still in the socket afterwards. */
#include "shim_test.h"

#include <sys/wait.h>

static volatile sig_atomic_t g_signals;
static int g_nested_fd = -1;

static void on_signal(int sig) {
  (void)sig;
  g_signals++;
  if (g_nested_fd >= 0) {
    int saved = errno;
    /* A shim call from inside a handler that interrupted a routed wait. */
    ssize_t r = write(g_nested_fd, "n", 1);
    (void)r;
    errno = saved;
  }
}

static void install(int restart) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigaction(SIGUSR1, &sa, NULL);
}

enum op { OP_RECV, OP_ACCEPT, OP_SEND, OP_CONNECT, OP_RECV_WAITALL };

struct blocked {
  enum op op;
  int fd;
  struct sockaddr_in to;
  long result;
  int err;
};

static void* blocked_main(void* arg) {
  struct blocked* b = (struct blocked*)arg;
  char buf[64];
  static char big[1000];
  errno = 0;
  switch (b->op) {
    case OP_RECV: b->result = recv(b->fd, buf, sizeof buf, 0); break;
    case OP_RECV_WAITALL: b->result = recv(b->fd, buf, 10, MSG_WAITALL); break;
    case OP_ACCEPT: b->result = accept(b->fd, NULL, NULL); break;
    case OP_SEND: b->result = send(b->fd, big, sizeof big, 0); break;
    case OP_CONNECT: b->result = connect(b->fd, (struct sockaddr*)&b->to, sizeof b->to); break;
  }
  b->err = errno;
  return NULL;
}

/* Starts op in a thread, signals it after 150 ms, runs `later` after
 * another 150 ms, then joins. */
static void run_case(const char* name, struct blocked* b, void (*later)(void*), void* arg) {
  pthread_t t;
  pthread_create(&t, NULL, blocked_main, b);
  sleep_ms(150);
  pthread_kill(t, SIGUSR1);
  sleep_ms(150);
  if (later) later(arg);
  pthread_join(t, NULL);
  if (b->op == OP_ACCEPT && b->result >= 0) {
    close((int)b->result);
    b->result = 0;  /* the number itself may differ */
  }
  report(name, b->result, b->err);
}

static void send_late(void* arg) { send(*(int*)arg, "late", 4, 0); }
static void send_six(void* arg) { send(*(int*)arg, "abcdef", 6, 0); }

static void recv_cases(int restart, int timeout) {
  int a, b;
  tcp_pair(&a, &b);
  install(restart);
  if (timeout) {
    struct timeval tv = {5, 0};
    setsockopt(b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  struct blocked blk = {OP_RECV, b, {0}, 0, 0};
  char name[64];
  snprintf(name, sizeof name, "recv restart=%d timeout=%d", restart, timeout);
  run_case(name, &blk, send_late, &a);
  char buf[16];
  REPORT("  left in the socket", recv(b, buf, sizeof buf, MSG_DONTWAIT));
  close(a);
  close(b);
}

static void waitall_case(int restart) {
  int a, b;
  tcp_pair(&a, &b);
  install(restart);
  send(a, "1234", 4, 0);
  struct blocked blk = {OP_RECV_WAITALL, b, {0}, 0, 0};
  char name[64];
  snprintf(name, sizeof name, "recv MSG_WAITALL after 4 of 10 restart=%d", restart);
  run_case(name, &blk, send_six, &a);
  char buf[16];
  REPORT("  left in the socket", recv(b, buf, sizeof buf, MSG_DONTWAIT));
  close(a);
  close(b);
}

static void accept_cases(int restart) {
  uint16_t port;
  int l = tcp_listener(4, &port);
  install(restart);
  struct blocked blk = {OP_ACCEPT, l, {0}, 0, 0};
  int c = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in to = loopback(port);
  char name[64];
  snprintf(name, sizeof name, "accept restart=%d", restart);
  pthread_t t;
  pthread_create(&t, NULL, blocked_main, &blk);
  sleep_ms(150);
  pthread_kill(t, SIGUSR1);
  sleep_ms(150);
  CHECK(connect(c, (struct sockaddr*)&to, sizeof to) == 0);
  pthread_join(t, NULL);
  if (blk.result >= 0) {
    close((int)blk.result);
    blk.result = 0;
  }
  report(name, blk.result, blk.err);
  /* After EINTR the connection waits in the backlog. */
  fcntl(l, F_SETFL, O_NONBLOCK);
  int s = accept(l, NULL, NULL);
  printf("  backlog after: %s\n", s >= 0 ? "connection" : errname(errno));
  if (s >= 0) close(s);
  close(c);
  close(l);
}

static void drain_receiver(void* arg) {
  int fd = *(int*)arg;
  static char sink[1 << 16];
  /* Read everything that is there now, then keep reading briefly. */
  for (int i = 0; i < 50; i++) {
    ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n <= 0) sleep_ms(5);
  }
}

static void send_cases(int restart) {
  int a, b;
  tcp_pair(&a, &b);
  install(restart);
  fill_send_buffer(a);
  struct blocked blk = {OP_SEND, a, {0}, 0, 0};
  char name[64];
  snprintf(name, sizeof name, "send on a full buffer restart=%d", restart);
  run_case(name, &blk, restart ? drain_receiver : NULL, &b);
  close(a);
  close(b);
}

static void connect_cases(int restart) {
  /* Backlog 0 holds one connection; a second connect's SYN is dropped
   * until the first is accepted, so that connect waits (SYN retransmitted
   * after 1 s). */
  uint16_t port;
  int l = tcp_listener(0, &port);
  int first = tcp_connect(port);
  sleep_ms(50);
  install(restart);
  struct blocked blk = {OP_CONNECT, socket(AF_INET, SOCK_STREAM, 0), loopback(port), 0, 0};
  char name[64];
  snprintf(name, sizeof name, "connect to a full backlog restart=%d", restart);
  pthread_t t;
  pthread_create(&t, NULL, blocked_main, &blk);
  sleep_ms(150);
  pthread_kill(t, SIGUSR1);
  sleep_ms(150);
  int s = accept(l, NULL, NULL); /* frees the backlog: the retransmitted SYN gets in */
  pthread_join(t, NULL);
  report(name, blk.result, blk.err);
  if (s >= 0) close(s);
  close(blk.fd);
  close(first);
  close(l);
}

static void stop_continue_case(void) {
  int a, b;
  tcp_pair(&a, &b);
  fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    char buf[16];
    errno = 0;
    ssize_t r = recv(b, buf, sizeof buf, 0);
    report("recv across SIGSTOP/SIGCONT", r, errno);
    fflush(stdout);
    _exit(0);
  }
  sleep_ms(150);
  kill(child, SIGSTOP);
  sleep_ms(100);
  kill(child, SIGCONT);
  sleep_ms(100);
  send(a, "cont", 4, 0);
  int st;
  waitpid(child, &st, 0);
  close(a);
  close(b);
}

static void nested_case(void) {
  int a, b, c, d;
  tcp_pair(&a, &b);
  tcp_pair(&c, &d);
  install(1);
  g_nested_fd = c; /* the handler writes here while recv on b waits */
  struct blocked blk = {OP_RECV, b, {0}, 0, 0};
  run_case("recv with a writing handler", &blk, send_late, &a);
  g_nested_fd = -1;
  char buf[8];
  REPORT("  handler's byte", recv(d, buf, sizeof buf, 0));
  close(a);
  close(b);
  close(c);
  close(d);
}

int main(void) {
  require_uring();
  watchdog(60);
  /* A routed call in the main thread first: its ring exists from here on. */
  int a, b;
  tcp_pair(&a, &b);
  send(a, "x", 1, 0);
  char x;
  recv(b, &x, 1, 0);
  close(a);
  close(b);

  recv_cases(0, 0);
  recv_cases(1, 0);
  recv_cases(1, 1);
  recv_cases(0, 1);
  waitall_case(0);
  waitall_case(1);
  accept_cases(0);
  accept_cases(1);
  send_cases(0);
  send_cases(1);
  connect_cases(0);
  connect_cases(1);
  stop_continue_case();
  nested_case();
  printf("handlers ran: %s\n", g_signals > 0 ? "yes" : "no");
  printf("done\n");
  return 0;
}
