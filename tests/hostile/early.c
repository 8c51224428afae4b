/* A preloaded library (listed before ringpool in LD_PRELOAD) whose
 * constructor allocates and calls dlerror before any other constructor. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char* early_block;

__attribute__((constructor(101))) static void early_init(void) {
  early_block = malloc(64);
  strcpy(early_block, "early");
  dlsym(RTLD_DEFAULT, "no_such_symbol_anywhere");
  const char* e = dlerror();     /* dlerror allocates its message */
  if (e == NULL) abort();
  void* big = calloc(1, 5 << 20);
  free(big);
}

const char* early_value(void) { return early_block; }
