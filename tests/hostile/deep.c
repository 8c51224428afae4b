/* A library meant to be opened with RTLD_DEEPBIND: its malloc family binds
 * to whatever its lookup scope finds first. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

void* deep_alloc(size_t n) { void* p = malloc(n); if (p) memset(p, 7, n); return p; }
void* deep_realloc(void* p, size_t n) { return realloc(p, n); }
size_t deep_usable(void* p) { return malloc_usable_size(p); }
void deep_free(void* p) { free(p); }
char* deep_strdup(const char* s) { return strdup(s); }
