// A fork child starts with an empty profile: the parent keeps 8 MB from
// site_parent, forks, and the child allocates 2 MB from site_child and
// exits normally (writing its own profile).
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void* g_keep[20000];

__attribute__((noinline)) void site_parent(void) {
  for (int i = 0; i < 8192; i++) g_keep[i] = malloc(1024);
}

__attribute__((noinline)) void site_child(void) {
  for (int i = 0; i < 2048; i++) g_keep[10000 + i] = malloc(1024);
}

int main(void) {
  site_parent();
  pid_t pid = fork();
  if (pid == 0) {
    site_child();
    exit(0);
  }
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
