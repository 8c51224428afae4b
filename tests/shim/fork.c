/* fork, vfork, posix_spawn and exec with rings in use:
 *   a fork child routes its own calls on its own ring and never touches the
 *     parent's, even while another parent thread has a request in flight;
 *   a vfork child's socket calls go straight to libc (they share the
 *     parent's memory, rings included) and leave the parent's state intact;
 *   posix_spawn and system() children are unaffected;
 *   the shim holds no descriptor the program can see (counted in
 *     /proc/self/fd, and in an exec'd child). */
#include "shim_test.h"

#include <dirent.h>
#include <spawn.h>

extern char** environ;

static int count_fds(void) {
  DIR* d = opendir("/proc/self/fd");
  int n = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

static void ping(const char* who, int a, int b) {
  char buf[32];
  send(a, who, strlen(who), 0);
  memset(buf, 0, sizeof buf);
  ssize_t n = recv(b, buf, sizeof buf - 1, 0);
  printf("%s: %zd %s\n", who, n, buf);
  fflush(stdout);
}

struct blocked {
  int fd;
  ssize_t result;
  char data[32];
};

static void* recv_main(void* arg) {
  struct blocked* b = (struct blocked*)arg;
  memset(b->data, 0, sizeof b->data);
  b->result = recv(b->fd, b->data, sizeof b->data - 1, 0);
  return NULL;
}

int main(void) {
  require_uring();
  watchdog(60);
  int a, b;
  tcp_pair(&a, &b);
  ping("parent before fork", a, b);
  int fds_before = count_fds();

  /* A second thread waits in a routed recv across the fork. */
  int c, d;
  tcp_pair(&c, &d);
  struct blocked blk = {d, 0, {0}};
  pthread_t t;
  pthread_create(&t, NULL, recv_main, &blk);
  sleep_ms(100);

  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    ping("child on inherited sockets", a, b);
    int x, y;
    tcp_pair(&x, &y);
    ping("child on its own sockets", x, y);
    close(x);
    close(y);
    _exit(0);
  }
  int st;
  waitpid(pid, &st, 0);
  printf("fork child exit: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  ping("parent after fork", a, b);
  send(c, "in-flight", 9, 0);
  pthread_join(t, NULL);
  printf("request in flight across fork: %zd %s\n", blk.result, blk.data);

  /* vfork: the child writes to a socket and moves descriptors around. */
  fflush(stdout);
  pid = vfork();
  if (pid == 0) {
    ssize_t r = write(a, "from-vfork", 10);
    int spare = dup(b);
    dup2(a, spare);
    close(spare);
    _exit(r == 10 ? 0 : 1);
  }
  waitpid(pid, &st, 0);
  printf("vfork child exit: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  char buf[32];
  memset(buf, 0, sizeof buf);
  ssize_t n = recv(b, buf, sizeof buf - 1, 0);
  printf("data from the vfork child: %zd %s\n", n, buf);
  ping("parent after vfork", a, b);
  /* The parent's view of b survived the child's dup2/close. */
  int fl = fcntl(b, F_GETFL);
  fcntl(b, F_SETFL, fl | O_NONBLOCK);
  REPORT("b non-blocking: recv", recv(b, buf, sizeof buf, 0));
  fcntl(b, F_SETFL, fl);

  /* posix_spawn and system(). */
  pid_t sp;
  char* argv[] = {"/bin/sh", "-c", "exit 7", NULL};
  int rc = posix_spawn(&sp, "/bin/sh", NULL, NULL, argv, environ);
  if (rc == 0) waitpid(sp, &st, 0);
  printf("posix_spawn child exit: %d\n", rc == 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  fflush(stdout);
  rc = system("exit 5");
  printf("system() exit: %d\n", WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
  ping("parent after spawn", a, b);

  /* No descriptor of the shim: here, and in an exec'd child. */
  printf("descriptors: %d before, %d now\n", fds_before, count_fds() - 2); /* c, d */
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    /* Close-on-exec descriptors vanish; count what the new program sees.
       (A glob in the shell itself: a pipeline would count the shell's
       pipe descriptors, which come and go with its children.) */
    execl("/bin/sh", "sh", "-c", "set -- /proc/$$/fd/*; echo $#", (char*)NULL);
    _exit(127);
  }
  waitpid(pid, &st, 0);
  close(a);
  close(b);
  close(c);
  close(d);
  printf("done\n");
  return 0;
}
