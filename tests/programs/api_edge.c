/* api_edge: the corners of the malloc API that programs rely on.
 *
 * Each check is what glibc 2.36 does (this passes without LD_PRELOAD), so a
 * replacement that fails one behaves differently from the malloc the
 * program was written against.  Where C or POSIX leave a choice and glibc
 * versions differ (aligned_alloc with a bad alignment), both answers pass
 * and the output says which one was seen.
 *
 * One line per check, "ok - NAME" or "FAIL - NAME: why"; exit 1 if any
 * failed.  The checks that mix glibc's blocks with the allocator's
 * (__libc_*, pvalloc) crash allocators that lack those symbols, so they run
 * in a child process each, and a crash is reported as a failed check.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* glibc exports these; a replacement must provide them too, or glibc's own
 * callers get glibc blocks that the replacement is then asked to free. */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

/* C23; not in glibc 2.36, so only checked where the allocator has them. */
extern void free_sized(void *, size_t) __attribute__((weak));
extern void free_aligned_sized(void *, size_t, size_t) __attribute__((weak));

static int failures;
static char why[256];

#define CHECK(cond, ...) \
    do { if (!(cond)) { snprintf(why, sizeof why, __VA_ARGS__); return 0; } } while (0)

static void run(const char *name, int (*fn)(void))
{
    why[0] = 0;
    fflush(stdout);
    if (fn()) {
        printf("ok - %s%s%s\n", name, why[0] ? ": " : "", why);
    } else {
        printf("FAIL - %s: %s\n", name, why);
        failures++;
    }
    fflush(stdout);
}

/* The same, in a forked child; the child's exit status carries the verdict:
 * 0, CHILD_REPORTED after printing its FAIL line, anything else unprinted. */
enum { CHILD_REPORTED = 99 };

static void run_isolated(const char *name, int (*fn)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        printf("FAIL - %s: fork: %s\n", name, strerror(errno));
        failures++;
        return;
    }
    if (pid == 0) {
        failures = 0;   /* the verdict on this check alone */
        run(name, fn);
        fflush(stdout);
        _exit(failures ? CHILD_REPORTED : 0);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0) {
        printf("FAIL - %s: waitpid: %s\n", name, strerror(errno));
        failures++;
    } else if (WIFSIGNALED(status)) {
        printf("FAIL - %s: killed by signal %d (%s)\n", name, WTERMSIG(status), strsignal(WTERMSIG(status)));
        failures++;
    } else if (WEXITSTATUS(status) == CHILD_REPORTED) {
        failures++;   /* the child printed why */
    } else if (WEXITSTATUS(status) != 0) {
        printf("FAIL - %s: exited with status %d\n", name, WEXITSTATUS(status));
        failures++;
    }
}

/* Sizes the compiler must not see through. */
static volatile size_t v_zero = 0, v_max = SIZE_MAX;

static int is_aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

static int malloc_zero_unique(void)
{
    enum { N = 100 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(v_zero);
        CHECK(p[i] != NULL, "malloc(0) returned NULL");
        for (int j = 0; j < i; j++)
            CHECK(p[i] != p[j], "malloc(0) returned %p twice", p[i]);
    }
    for (int i = 0; i < N; i++)
        free(p[i]);
    return 1;
}

static int realloc_zero_frees(void)
{
    char *p = malloc(100);
    CHECK(p != NULL, "malloc(100) returned NULL");
    memset(p, 1, 100);
    void *q = realloc(p, v_zero);
    /* glibc frees and returns NULL (REALLOC_ZERO_BYTES_FREES) */
    CHECK(q == NULL, "realloc(p, 0) returned %p, glibc returns NULL", q);
    return 1;
}

static int realloc_null_is_malloc(void)
{
    char *p = realloc(NULL, 100);
    CHECK(p != NULL, "realloc(NULL, 100) returned NULL");
    CHECK(malloc_usable_size(p) >= 100, "usable size %zu < 100", malloc_usable_size(p));
    memset(p, 2, 100);
    free(p);
    p = realloc(NULL, v_zero);
    CHECK(p != NULL, "realloc(NULL, 0) returned NULL (glibc: malloc(0))");
    free(p);
    return 1;
}

static int free_null(void)
{
    errno = 77;
    free(NULL);
    CHECK(errno == 77, "free(NULL) changed errno to %d", errno);
    return 1;
}

static int free_keeps_errno(void)
{
    static const size_t sizes[] = { 1, 16, 100, 1000, 10000, 100000, (size_t)1 << 20, (size_t)16 << 20 };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char *p = malloc(sizes[i]);
        CHECK(p != NULL, "malloc(%zu) returned NULL", sizes[i]);
        memset(p, 3, sizes[i]);
        errno = 1234;
        free(p);
        CHECK(errno == 1234, "free of a %zu-byte block changed errno to %d", sizes[i], errno);
    }
    /* many at once, so that freeing releases pages back to the system */
    enum { N = 2000 };
    static void *many[N];
    for (int i = 0; i < N; i++) {
        many[i] = malloc((size_t)(i % 50 + 1) * 64);
        CHECK(many[i] != NULL, "malloc returned NULL");
        memset(many[i], 4, (size_t)(i % 50 + 1) * 64);
    }
    for (int i = 0; i < N; i++) {
        errno = 1234;
        free(many[i]);
        CHECK(errno == 1234, "free #%d changed errno to %d", i, errno);
    }
    return 1;
}

static int calloc_overflow(void)
{
    errno = 0;
    void *p = calloc(v_max / 2, 3);
    CHECK(p == NULL, "calloc(SIZE_MAX/2, 3) returned %p", p);
    CHECK(errno == ENOMEM, "calloc(SIZE_MAX/2, 3): errno %d, want ENOMEM", errno);
    errno = 0;
    p = calloc(3, v_max / 2);
    CHECK(p == NULL && errno == ENOMEM, "calloc(3, SIZE_MAX/2) gave %p, errno %d", p, errno);
    return 1;
}

static int calloc_zeroes(void)
{
    /* reuse dirty memory: fill, free, calloc the same sizes */
    static const size_t sizes[] = { 8, 100, 3000, 70000, (size_t)3 << 20 };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        for (int round = 0; round < 3; round++) {
            unsigned char *p = malloc(sizes[i]);
            CHECK(p != NULL, "malloc returned NULL");
            memset(p, 0xee, sizes[i]);
            free(p);
            p = calloc(1, sizes[i]);
            CHECK(p != NULL, "calloc(1, %zu) returned NULL", sizes[i]);
            for (size_t k = 0; k < sizes[i]; k++)
                CHECK(p[k] == 0, "calloc(1, %zu): byte %zu is %#x", sizes[i], k, p[k]);
            free(p);
        }
    }
    return 1;
}

static int malloc_huge_fails(void)
{
    errno = 0;
    void *p = malloc(v_max);
    CHECK(p == NULL, "malloc(SIZE_MAX) returned %p", p);
    CHECK(errno == ENOMEM, "malloc(SIZE_MAX): errno %d, want ENOMEM", errno);
    errno = 0;
    p = malloc((size_t)PTRDIFF_MAX + 1 + v_zero);
    CHECK(p == NULL, "malloc(PTRDIFF_MAX+1) returned %p", p);
    CHECK(errno == ENOMEM, "malloc(PTRDIFF_MAX+1): errno %d, want ENOMEM", errno);
    errno = 0;
    p = malloc(v_max - 4096);
    CHECK(p == NULL && errno == ENOMEM, "malloc(SIZE_MAX-4096) gave %p, errno %d", p, errno);
    return 1;
}

static int realloc_huge_keeps_block(void)
{
    char *p = malloc(64);
    CHECK(p != NULL, "malloc(64) returned NULL");
    memset(p, 0x42, 64);
    errno = 0;
    void *q = realloc(p, v_max);
    CHECK(q == NULL, "realloc(p, SIZE_MAX) returned %p", q);
    CHECK(errno == ENOMEM, "realloc(p, SIZE_MAX): errno %d, want ENOMEM", errno);
    for (int i = 0; i < 64; i++)
        CHECK(p[i] == 0x42, "failed realloc changed the old block at %d", i);
    errno = 0;
    q = reallocarray(p, v_max / 2, 3);
    CHECK(q == NULL, "reallocarray(p, SIZE_MAX/2, 3) returned %p", q);
    CHECK(errno == ENOMEM, "reallocarray overflow: errno %d, want ENOMEM", errno);
    for (int i = 0; i < 64; i++)
        CHECK(p[i] == 0x42, "failed reallocarray changed the old block at %d", i);
    q = reallocarray(p, 10, 100);
    CHECK(q != NULL, "reallocarray(p, 10, 100) returned NULL");
    for (int i = 0; i < 64; i++)
        CHECK(((char *)q)[i] == 0x42, "reallocarray lost byte %d", i);
    free(q);
    return 1;
}

static int posix_memalign_bad_alignment(void)
{
    static const size_t bad[] = { 0, 1, 2, 3, 4, 12, 24, 48, 100, 4097 };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        void *p = NULL;
        errno = 4321;
        int rc = posix_memalign(&p, bad[i], 10);
        CHECK(rc == EINVAL, "posix_memalign(align %zu) returned %d, want EINVAL", bad[i], rc);
        CHECK(errno == 4321, "posix_memalign(align %zu) changed errno to %d", bad[i], errno);
    }
    void *p = NULL;
    errno = 4321;
    int rc = posix_memalign(&p, 64, v_max - 4096);
    CHECK(rc == ENOMEM, "posix_memalign(64, huge) returned %d, want ENOMEM", rc);
    CHECK(errno == 4321, "posix_memalign(64, huge) changed errno to %d", errno);
    return 1;
}

static int posix_memalign_good(void)
{
    for (size_t a = sizeof(void *); a <= ((size_t)1 << 16); a *= 2) {
        for (size_t size = 1; size < 100000; size = size * 5 + 3) {
            void *p = NULL;
            int rc = posix_memalign(&p, a, size);
            CHECK(rc == 0 && p != NULL, "posix_memalign(%zu, %zu) returned %d", a, size, rc);
            CHECK(is_aligned(p, a), "posix_memalign(%zu, %zu) gave %p", a, size, p);
            CHECK(malloc_usable_size(p) >= size, "usable %zu < %zu", malloc_usable_size(p), size);
            memset(p, 5, size);
            free(p);
        }
    }
    return 1;
}

static int aligned_alloc_bad_alignment(void)
{
    volatile size_t three = 3;
    errno = 0;
    void *p = aligned_alloc(three, 10);
    if (p == NULL) {
        /* C17 DR 460 and glibc >= 2.38 */
        CHECK(errno == EINVAL, "aligned_alloc(3, 10) returned NULL with errno %d, want EINVAL", errno);
        snprintf(why, sizeof why, "NULL/EINVAL, as glibc 2.38+");
        return 1;
    }
    /* glibc 2.36 treats it as memalign: alignment rounded up to 4 */
    CHECK(is_aligned(p, 4), "aligned_alloc(3, 10) gave %p, not even 4-aligned", p);
    CHECK(malloc_usable_size(p) >= 10, "aligned_alloc(3, 10): usable %zu", malloc_usable_size(p));
    memset(p, 6, 10);
    free(p);
    snprintf(why, sizeof why, "a usable block, as glibc 2.36");
    return 1;
}

static int aligned_alloc_good(void)
{
    for (size_t a = 1; a <= ((size_t)1 << 16); a *= 2) {
        for (size_t size = a; size <= a * 4 + 64; size += a) {
            void *p = aligned_alloc(a, size);
            CHECK(p != NULL, "aligned_alloc(%zu, %zu) returned NULL", a, size);
            CHECK(is_aligned(p, a), "aligned_alloc(%zu, %zu) gave %p", a, size, p);
            CHECK(malloc_usable_size(p) >= size, "usable %zu < %zu", malloc_usable_size(p), size);
            memset(p, 7, size);
            free(p);
        }
    }
    return 1;
}

static int memalign_huge_alignment(void)
{
    static const size_t aligns[] = { (size_t)1 << 20, (size_t)1 << 21, (size_t)1 << 23 };
    for (size_t i = 0; i < 3; i++) {
        for (size_t size = 100; size <= ((size_t)3 << 20); size *= 32) {
            char *p = memalign(aligns[i], size);
            CHECK(p != NULL, "memalign(%zu, %zu) returned NULL", aligns[i], size);
            CHECK(is_aligned(p, aligns[i]), "memalign(%zu, %zu) gave %p", aligns[i], size, (void *)p);
            memset(p, 8, size);
            p = realloc(p, size * 2);
            CHECK(p != NULL && p[size - 1] == 8, "realloc of a memalign block lost data");
            free(p);
        }
    }
    errno = 0;
    void *p = memalign((size_t)1 << 62, 10);
    CHECK(p == NULL && errno == ENOMEM, "memalign(1<<62, 10) gave %p, errno %d, want NULL/ENOMEM", p, errno);
    return 1;
}

static int valloc_page_aligned(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t size = 1; size < 100000; size = size * 3 + 1) {
        void *p = valloc(size);
        CHECK(p != NULL, "valloc(%zu) returned NULL", size);
        CHECK(is_aligned(p, page), "valloc(%zu) gave %p", size, p);
        memset(p, 9, size);
        free(p);
    }
    return 1;
}

static int usable_size(void)
{
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu", malloc_usable_size(NULL));
    for (size_t size = 1; size < ((size_t)8 << 20); size = size * 2 + 1) {
        char *p = malloc(size);
        CHECK(p != NULL, "malloc(%zu) returned NULL", size);
        size_t u = malloc_usable_size(p);
        CHECK(u >= size, "malloc_usable_size(malloc(%zu)) = %zu", size, u);
        memset(p, 10, u);   /* all of it is ours to write */
        free(p);
    }
    return 1;
}

static int glibc_extensions_callable(void)
{
    struct mallinfo2 mi = mallinfo2();
    (void)mi;
    int rc = malloc_trim(0);
    CHECK(rc == 0 || rc == 1, "malloc_trim(0) returned %d", rc);
    rc = mallopt(M_TRIM_THRESHOLD, 128 * 1024);
    CHECK(rc == 0 || rc == 1, "mallopt returned %d", rc);

    /* malloc_stats writes to stderr; keep it out of the test log */
    fflush(stderr);
    int saved = dup(2), devnull = open("/dev/null", O_WRONLY);
    CHECK(saved >= 0 && devnull >= 0, "cannot redirect stderr");
    dup2(devnull, 2);
    malloc_stats();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(devnull);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f != NULL, "open_memstream failed");
    rc = malloc_info(0, f);
    fclose(f);
    CHECK(rc == 0, "malloc_info returned %d", rc);
    CHECK(buf != NULL && len > 0 && buf[0] == '<', "malloc_info wrote no XML (%zu bytes)", len);
    free(buf);
    return 1;
}

static int sized_free_if_present(void)
{
    int seen = 0;
    if (free_sized) {
        for (size_t size = 1; size < 200000; size = size * 3 + 1) {
            void *p = malloc(size);
            CHECK(p != NULL, "malloc returned NULL");
            memset(p, 11, size);
            free_sized(p, size);
        }
        free_sized(NULL, 0);
        seen++;
    }
    if (free_aligned_sized) {
        for (size_t a = 16; a <= 4096; a *= 4) {
            void *p = aligned_alloc(a, a * 3);
            CHECK(p != NULL, "aligned_alloc returned NULL");
            memset(p, 12, a * 3);
            free_aligned_sized(p, a, a * 3);
        }
        free_aligned_sized(NULL, 64, 0);
        seen++;
    }
    snprintf(why, sizeof why, "%s", seen == 2 ? "free_sized and free_aligned_sized checked"
                                   : seen ? "one of free_sized/free_aligned_sized checked"
                                          : "absent, as in glibc 2.36");
    return 1;
}

static int libc_aliases_interoperate(void)
{
    char *p = __libc_malloc(100);
    CHECK(p != NULL, "__libc_malloc(100) returned NULL");
    memset(p, 13, 100);
    p = realloc(p, 5000);
    CHECK(p != NULL && p[99] == 13, "realloc of a __libc_malloc block lost data");
    free(p);

    p = malloc(100);
    CHECK(p != NULL, "malloc returned NULL");
    memset(p, 14, 100);
    p = __libc_realloc(p, 7000);
    CHECK(p != NULL && p[99] == 14, "__libc_realloc of a malloc block lost data");
    __libc_free(p);

    unsigned char *z = __libc_calloc(100, 10);
    CHECK(z != NULL, "__libc_calloc returned NULL");
    for (int i = 0; i < 1000; i++)
        CHECK(z[i] == 0, "__libc_calloc byte %d not zero", i);
    free(z);

    void *a = __libc_memalign(256, 300);
    CHECK(a != NULL && is_aligned(a, 256), "__libc_memalign(256, 300) gave %p", a);
    free(a);

    p = malloc(30);
    CHECK(p != NULL, "malloc returned NULL");
    __libc_free(p);
    return 1;
}

static int pvalloc_page_rounded(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t size = 1; size < 3 * page; size += page / 2) {
        char *p = pvalloc(size);
        CHECK(p != NULL, "pvalloc(%zu) returned NULL", size);
        CHECK(is_aligned(p, page), "pvalloc(%zu) gave %p", size, (void *)p);
        size_t rounded = (size + page - 1) & ~(page - 1);
        CHECK(malloc_usable_size(p) >= rounded, "pvalloc(%zu): usable %zu < %zu",
              size, malloc_usable_size(p), rounded);
        memset(p, 15, rounded);
        free(p);
    }
    return 1;
}

int main(void)
{
    test_name = "api_edge";
    run("malloc(0) returns unique pointers", malloc_zero_unique);
    run("realloc(p, 0) frees and returns NULL", realloc_zero_frees);
    run("realloc(NULL, n) is malloc(n)", realloc_null_is_malloc);
    run("free(NULL) does nothing", free_null);
    run("free keeps errno", free_keeps_errno);
    run("calloc overflow gives NULL and ENOMEM", calloc_overflow);
    run("calloc zeroes reused memory", calloc_zeroes);
    run("malloc beyond PTRDIFF_MAX gives NULL and ENOMEM", malloc_huge_fails);
    run("failed realloc and reallocarray keep the block", realloc_huge_keeps_block);
    run("posix_memalign rejects bad alignments with EINVAL, errno untouched", posix_memalign_bad_alignment);
    run("posix_memalign aligns", posix_memalign_good);
    run("aligned_alloc(3, 10)", aligned_alloc_bad_alignment);
    run("aligned_alloc aligns", aligned_alloc_good);
    run("memalign with 1 MiB to 8 MiB alignment", memalign_huge_alignment);
    run("valloc is page aligned", valloc_page_aligned);
    run("malloc_usable_size", usable_size);
    run("mallinfo2, malloc_trim, mallopt, malloc_stats, malloc_info", glibc_extensions_callable);
    run("free_sized, free_aligned_sized", sized_free_if_present);
    run_isolated("__libc_* aliases work with malloc and free", libc_aliases_interoperate);
    run_isolated("pvalloc is page aligned and page rounded", pvalloc_page_rounded);
    if (failures) {
        printf("api_edge: %d checks failed\n", failures);
        return 1;
    }
    printf("api_edge: ok\n");
    return 0;
}
