/* Where io_uring is unavailable the program must be unaffected: every call
 * passes through, and RINGPOOL_VERBOSE=1 says why, once. Each case runs the
 * same socket workload in a child that first installs a seccomp filter:
 *   io_uring_setup answers EPERM (what kernel.io_uring_disabled=2 and
 *     Docker's default profile do);
 *   io_uring_setup answers ENOSYS;
 *   io_uring_setup kills the process (the shim must find out in a
 *     throwaway child, not in the program);
 *   only io_uring_enter kills;
 *   only io_uring_enter answers EPERM.
 * With --plain-workload the workload runs here, unfiltered (run.sh uses
 * that with the sysctl switched off). */
#include "shim_test.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>

#if defined(__x86_64__)
#define TEST_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TEST_ARCH AUDIT_ARCH_AARCH64
#endif

static void* echo_back(void* arg) {
  int fd = (int)(intptr_t)arg;
  char buf[256];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) send(fd, buf, (size_t)n, 0);
  return NULL;
}

static void workload(const char* label) {
  uint16_t port;
  int l = tcp_listener(4, &port);
  int c = tcp_connect(port);
  int s = accept(l, NULL, NULL);
  pthread_t t;
  pthread_create(&t, NULL, echo_back, (void*)(intptr_t)s);
  char out[200], in[200];
  uint64_t h = 0;
  for (int i = 0; i < 100; i++) {
    fill_pattern(out, sizeof out, (unsigned)i);
    send_all(c, out, sizeof out);
    CHECK(recv_all(c, in, sizeof in) == sizeof in);
    h = fnv(h, in, sizeof in);
  }
  shutdown(c, SHUT_WR);
  pthread_join(t, NULL);
  close(s);
  char x;
  errno = 0;
  long r = recv(c, &x, 1, 0);
  printf("%s: echo %s, eof %ld\n", label, h == 0 ? "none" : "ok", r);
  struct timeval tv = {0, 100000};
  setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  errno = 0;
  r = recv(c, &x, 1, 0);
  printf("%s: recv after eof with a timeout %ld\n", label, r);
  close(c);
  close(l);
  fflush(stdout);
}

static void filtered(const char* label, long nr, unsigned action) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
#ifdef TEST_ARCH
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TEST_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, action),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
#endif
    watchdog(30);
    workload(label);
    exit(0); /* not _exit: the shim prints its counters at exit */
  }
  int st;
  waitpid(pid, &st, 0);
  if (WIFSIGNALED(st))
    printf("%s: child killed by signal %d\n", label, WTERMSIG(st));
  else
    printf("%s: child exit %d\n", label, WEXITSTATUS(st));
  fflush(stdout);
}

int main(int argc, char** argv) {
  watchdog(60);
  if (argc > 1 && strcmp(argv[1], "--plain-workload") == 0) {
    workload("unfiltered");
    return 0;
  }
#ifndef TEST_ARCH
  printf("skip: no seccomp test filter for this architecture\n");
  return 77;
#endif
  filtered("io_uring_setup EPERM", 425, SECCOMP_RET_ERRNO | EPERM);
  filtered("io_uring_setup ENOSYS", 425, SECCOMP_RET_ERRNO | ENOSYS);
  filtered("io_uring_setup kills", 425, SECCOMP_RET_KILL_PROCESS);
  filtered("io_uring_enter kills", 426, SECCOMP_RET_KILL_PROCESS);
  filtered("io_uring_enter EPERM", 426, SECCOMP_RET_ERRNO | EPERM);
  printf("done\n");
  return 0;
}
