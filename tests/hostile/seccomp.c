/* After a seccomp filter that allows only what glibc's malloc needs (plus
 * exit and write), the program still allocates, frees, reallocs across all
 * size ranges and threads. Anything else kills the process. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ALLOW(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

static void* worker(void* arg) {
  (void)arg;
  void* v[2000];
  for (int r = 0; r < 20; r++) {
    for (int i = 0; i < 2000; i++) v[i] = malloc((size_t)(16 + (i * 977) % 40000));
    for (int i = 0; i < 2000; i++) v[i] = realloc(v[i], 100);
    for (int i = 0; i < 2000; i++) free(v[i]);
  }
  void* big = malloc(50 << 20);
  memset(big, 1, 50 << 20);
  big = realloc(big, 80 << 20);
  free(big);
  return NULL;
}

int main(void) {
  /* Threads are made before the filter: clone is not in the list. */
  pthread_t t[2];
  struct sock_filter f[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    ALLOW(SYS_mmap), ALLOW(SYS_munmap), ALLOW(SYS_mremap), ALLOW(SYS_madvise),
    ALLOW(SYS_mprotect), ALLOW(SYS_brk), ALLOW(SYS_futex), ALLOW(SYS_write),
    ALLOW(SYS_exit), ALLOW(SYS_exit_group), ALLOW(SYS_rt_sigprocmask), ALLOW(SYS_rt_sigaction),
    ALLOW(SYS_clock_gettime), ALLOW(SYS_getpid), ALLOW(SYS_gettid), ALLOW(SYS_tgkill),
    ALLOW(SYS_sched_yield), ALLOW(SYS_set_robust_list), ALLOW(SYS_rseq), ALLOW(SYS_clone3), ALLOW(SYS_clone),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
  };
  struct sock_fprog prog = {sizeof f / sizeof f[0], f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
    perror("seccomp");
    return 77;
  }
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, worker, NULL);
  worker(NULL);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  static const char msg[] = "seccomp ok\n";
  write(1, msg, sizeof msg - 1);
  return 0;
}
