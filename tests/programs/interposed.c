/* interposed: is the preloaded library the malloc this program calls?
 *
 * usage: interposed LIB
 *
 * Takes the address of each allocation function the way any program does
 * (through its own symbol references, with glibc's symbol versions) and asks
 * the dynamic linker which object it lives in.  A library that failed to
 * load, or that exports versioned names (malloc@@X does not interpose),
 * leaves these in libc.so.6, and then every other preload test silently
 * tests glibc.  Each function missing from LIB is also a mixed-heap crash
 * waiting to happen: glibc allocates, LIB frees.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

struct fn { const char *name; void *addr; };

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s LIB\n", argv[0]);
        return 2;
    }
    char want[PATH_MAX];
    if (!realpath(argv[1], want)) {
        fprintf(stderr, "interposed: FAIL: %s: cannot resolve\n", argv[1]);
        return 1;
    }
    /* Resolved through this program's GOT, the same way its calls bind. */
    struct fn fns[] = {
        { "malloc", (void *)malloc }, { "free", (void *)free },
        { "calloc", (void *)calloc }, { "realloc", (void *)realloc },
        { "reallocarray", (void *)reallocarray },
        { "posix_memalign", (void *)posix_memalign },
        { "aligned_alloc", (void *)aligned_alloc }, { "memalign", (void *)memalign },
        { "valloc", (void *)valloc }, { "pvalloc", (void *)pvalloc },
        { "malloc_usable_size", (void *)malloc_usable_size },
        { "__libc_malloc", (void *)__libc_malloc }, { "__libc_free", (void *)__libc_free },
        { "__libc_calloc", (void *)__libc_calloc }, { "__libc_realloc", (void *)__libc_realloc },
        { "__libc_memalign", (void *)__libc_memalign },
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof fns / sizeof *fns; i++) {
        Dl_info info;
        char got[PATH_MAX] = "?";
        if (dladdr(fns[i].addr, &info) && info.dli_fname && !realpath(info.dli_fname, got))
            snprintf(got, sizeof got, "%s", info.dli_fname);
        if (strcmp(got, want) != 0) {
            printf("%s comes from %s\n", fns[i].name, got);
            bad++;
        }
    }
    if (bad) {
        printf("interposed: FAIL: %d functions do not come from %s\n", bad, want);
        return 1;
    }
    printf("interposed: ok: %zu functions come from %s\n", sizeof fns / sizeof *fns, want);
    return 0;
}
