/* The least a routing shim can cost: a preload library that sends send()
 * and recv() through a per-thread io_uring and does nothing else (no
 * descriptor table, no signal, timeout or cancellation semantics: not for
 * real programs). Same ring setup as uring_shim: SINGLE_ISSUER |
 * DEFER_TASKRUN, registered ring descriptor, one io_uring_enter per call,
 * receives poll-first. `make bench-uring-ceiling` runs the bench with it in
 * place of the shim, so that what the shim adds on top of io_uring's own
 * cost can be told apart from that cost. */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef IORING_RECVSEND_POLL_FIRST
#define IORING_RECVSEND_POLL_FIRST (1U << 0)
#endif

static __thread struct io_uring t_ring;
static __thread int t_state; /* 0 untried, 1 ready, -1 unusable */

static int ring_ready(void) {
  if (t_state == 0) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    t_state = io_uring_queue_init_params(8, &t_ring, &p) == 0 ? 1 : -1;
    if (t_state == 1) io_uring_register_ring_fd(&t_ring);
  }
  return t_state == 1;
}

static ssize_t through_ring(int fd, void* buf, size_t n, int flags, int sending) {
  struct io_uring_sqe* sqe = io_uring_get_sqe(&t_ring);
  if (sending) {
    io_uring_prep_send(sqe, fd, buf, n, flags);
  } else {
    io_uring_prep_recv(sqe, fd, buf, n, flags);
    sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
  }
  struct io_uring_cqe* cqe;
  int r = io_uring_submit_and_wait(&t_ring, 1);
  while (io_uring_peek_cqe(&t_ring, &cqe) != 0) {
    if (r < 0 && r != -EINTR) { /* cannot happen on a healthy ring */
      errno = -r;
      return -1;
    }
    r = io_uring_wait_cqe(&t_ring, &cqe);
  }
  int res = cqe->res;
  io_uring_cqe_seen(&t_ring, cqe);
  if (res < 0) {
    errno = -res;
    return -1;
  }
  return res;
}

ssize_t send(int fd, const void* buf, size_t n, int flags) {
  if (!ring_ready()) return syscall(SYS_sendto, fd, buf, n, flags, NULL, 0);
  return through_ring(fd, (void*)buf, n, flags, 1);
}

ssize_t recv(int fd, void* buf, size_t n, int flags) {
  if (!ring_ready()) return syscall(SYS_recvfrom, fd, buf, n, flags, NULL, NULL);
  return through_ring(fd, buf, n, flags, 0);
}
