// A library that dlstress opens and closes in a loop; it allocates in its
// constructor and in plugin_work, so samples unwind through it.
#include <stdlib.h>

static void* g_held;

__attribute__((constructor)) static void plugin_init(void) { g_held = malloc(5000); }
__attribute__((destructor)) static void plugin_fini(void) { free(g_held); }

__attribute__((noinline)) void* plugin_work(size_t n) {
  void* p = malloc(n);
  return p;
}
