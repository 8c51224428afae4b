/* A program with two bugs memcheck must find when it runs under the
 * library: a read after free and a leak of 123 bytes. Prints "done". */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  char* leak = malloc(123);
  leak[0] = 1;
  char* p = malloc(16);
  free(p);
  volatile char c = p[3];
  (void)c;
  puts("done");
  return 0;
}
