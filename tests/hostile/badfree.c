/* Bad frees: argv[1] picks one; each must stop the program with a message
 * naming the problem and the address. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  const char* what = argc > 1 ? argv[1] : "";
  char* keep = malloc(40);
  char* p = malloc(40);
  if (!strcmp(what, "double")) { free(p); free(p); }
  else if (!strcmp(what, "inside")) { free(p + 16); }
  else if (!strcmp(what, "realloc-freed")) { free(p); p = realloc(p, 4000); }
  else if (!strcmp(what, "double-large")) { char* b = malloc(100000); free(b); free(b); }
  else return 2;
  free(keep);
  puts("not caught");
  return 0;
}
