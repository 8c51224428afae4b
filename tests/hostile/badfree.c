/* Bad frees: argv[1] picks one; each must stop the program with a message
 * naming the problem and the address. */
#include <stdio.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>

int main(int argc, char** argv) {
  const char* what = argc > 1 ? argv[1] : "";
  char* keep = malloc(40);
  char* p = malloc(40);
  if (!strcmp(what, "double")) { free(p); free(p); }
  else if (!strcmp(what, "inside")) { free(p + 16); }
  else if (!strcmp(what, "realloc-freed")) { free(p); p = realloc(p, 4000); }
  else if (!strcmp(what, "double-large")) { char* b = malloc(100000); free(b); free(b); }
  else if (!strcmp(what, "inside-huge")) { char* b = malloc(5 << 20); b[0] = 1; free(b + 4096); }
  else if (!strcmp(what, "double-huge")) { char* b = malloc(5 << 20); free(b); malloc_trim(0); free(b); }
  /* The next three are caught with RINGPOOL_HARDEN=1. */
  else if (!strcmp(what, "double-scribbled")) { free(p); memset(p, 0x41, 40); free(p); }
  else if (!strcmp(what, "use-after-free")) {
    free(p);
    memset(p, 0x41, 40);
    for (int i = 0; i < 100000; i++) malloc(40);  /* until p is handed out again */
  }
  else if (!strcmp(what, "overflow-large")) { char* b = malloc(100000); memset(b, 1, 2 * 65536 + 10); free(b); }
  else return 2;
  free(keep);
  puts("not caught");
  return 0;
}
