/* ringpool.h: the public C API of libringpool (see ringpool(3)).
 *
 * Glossary
 *   extension API  the ringpool_* functions below; the malloc family itself
 *                  needs no header (it is <stdlib.h>'s and <malloc.h>'s)
 *   live           allocated by the program and not yet freed
 *   page           a run of memory that serves small blocks of one size class
 *   large block    32 KiB up to 2 MiB, page-granular; huge block: above 2 MiB,
 *                  mapped on its own
 *   released       handed back to the OS (madvise), address space kept
 *
 * Versions: RINGPOOL_VERSION_* say which header a program was compiled
 * against; ringpool_version() says which library it runs on.  The numbers
 * here are kept in step with the top-level VERSION file by
 * tests/check-version.sh (`make update-version` rewrites them).
 *
 * ABI: struct ringpool_stats only grows at its end.  The caller sets
 * `size` to the size it was compiled with; the library fills what both sides
 * know.  So a program built against an older header keeps working with a
 * newer library, and the reverse. */
#ifndef RINGPOOL_H
#define RINGPOOL_H

#include <stddef.h>
#include <stdint.h>

#define RINGPOOL_VERSION_MAJOR 1
#define RINGPOOL_VERSION_MINOR 0
#define RINGPOOL_VERSION_PATCH 0
#define RINGPOOL_VERSION_STRING "1.0.0"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library in use, "MAJOR.MINOR.PATCH", static storage. */
const char* ringpool_version(void);

/* A snapshot of the allocator's counters, all in bytes or counts.
 * Invariants of one snapshot (the back end's totals are copied as one
 * consistent set; the threads' counters are read while the threads run,
 * frees before allocations, so no count is torn or negative, and blocks
 * allocated or freed while it is taken may be counted or not):
 *   live_bytes <= page_bytes + large_bytes + huge_bytes
 *   free_in_pages <= page_bytes
 *   resident <= mapped,  dirty <= mapped */
struct ringpool_stats {
  size_t size;            /* in: sizeof(struct ringpool_stats) of the caller;
                             out: the number of bytes the library filled */
  uint64_t live_bytes;    /* bytes in live blocks (usable sizes) */
  uint64_t live_blocks;   /* number of live blocks, all sizes */
  uint64_t page_bytes;    /* bytes of pages that serve small blocks */
  uint64_t free_in_pages; /* bytes of those pages not in live blocks */
  uint64_t mapped;        /* bytes of address space mapped from the OS */
  uint64_t resident;      /* bytes of it in RAM, as the OS reports */
  uint64_t dirty;         /* bytes free but not yet released (purge delay) */
  uint64_t released;      /* bytes released to the OS since start */
  uint64_t large_count;   /* live large blocks (32 KiB .. 2 MiB) */
  uint64_t large_bytes;   /* bytes in them */
  uint64_t huge_count;    /* live huge blocks (above 2 MiB) */
  uint64_t huge_bytes;    /* bytes in them */
  uint64_t foreign_frees; /* frees of pointers ringpool did not allocate,
                             passed on to the next allocator */
  uint64_t threads_active;  /* threads that hold a heap now */
  uint64_t threads_exited;  /* threads that handed their heap back */
};

/* The size of the first version of struct ringpool_stats (1.0, ending at
 * threads_exited): the least a caller may pass in `size`.  128 on LP64. */
#define RINGPOOL_STATS_SIZE_V1 \
  (offsetof(struct ringpool_stats, threads_exited) + sizeof(uint64_t))

/* Fill *out with a consistent snapshot.  Set out->size first, e.g.
 *   struct ringpool_stats s = { sizeof s };
 * Returns 0, or EINVAL if out is NULL or out->size < RINGPOOL_STATS_SIZE_V1.
 * Fields the library does not know (a newer header) are set to 0.
 * Async-signal-unsafe; thread-safe. */
int ringpool_stats_get(struct ringpool_stats* out);

/* Write the statistics summary (the one RINGPOOL_STATS=1 prints at exit) to
 * the file descriptor fd with write(2); no stdio, no allocation. */
void ringpool_stats_print(int fd);

/* Release all free memory to the OS now, without waiting for the purge
 * delay.  Returns 1 if some memory was released, 0 if there was none
 * (as malloc_trim). */
int ringpool_trim(void);

#ifdef __cplusplus
}
#endif

#endif /* RINGPOOL_H */
