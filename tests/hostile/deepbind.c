/* Pointers cross between the program and a library opened with
 * RTLD_DEEPBIND, both ways, with realloc and malloc_usable_size between. */
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  if (argc < 2) { fprintf(stderr, "usage: deepbind LIBDEEP.so\n"); return 2; }
  void* h = dlopen(argv[1], RTLD_NOW | RTLD_DEEPBIND);
  if (!h) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
  void* (*d_alloc)(size_t) = (void* (*)(size_t))dlsym(h, "deep_alloc");
  void* (*d_realloc)(void*, size_t) = (void* (*)(void*, size_t))dlsym(h, "deep_realloc");
  size_t (*d_usable)(void*) = (size_t (*)(void*))dlsym(h, "deep_usable");
  void (*d_free)(void*) = (void (*)(void*))dlsym(h, "deep_free");
  char* (*d_strdup)(const char*) = (char* (*)(const char*))dlsym(h, "deep_strdup");
  for (int i = 0; i < 5000; i++) {
    size_t n = 8 + (size_t)(i * 131) % 70000;
    unsigned char* p = d_alloc(n);                 /* library allocates */
    if (!p || malloc_usable_size(p) < n) { fprintf(stderr, "usable size\n"); return 1; }
    p = realloc(p, n * 2);                         /* program reallocates */
    for (size_t k = 0; k < n; k += 97) if (p[k] != 7) { fprintf(stderr, "content lost\n"); return 1; }
    free(p);                                       /* program frees */
    unsigned char* q = malloc(n);                  /* program allocates */
    memset(q, 9, n);
    q = d_realloc(q, n + 100);                     /* library reallocates */
    if (d_usable(q) < n + 100 || q[n - 1] != 9) { fprintf(stderr, "library view\n"); return 1; }
    d_free(q);                                     /* library frees */
    char* s = d_strdup("deep");
    if (strcmp(s, "deep") != 0) return 1;
    free(s);
  }
  puts("deepbind ok");
  return 0;
}
