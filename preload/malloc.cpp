// The C allocation API, unversioned, with glibc's semantics (pool.cpp).
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "preload.hpp"

namespace pool = ringpool::pool;

RINGPOOL_EXPORT void* malloc(size_t n) { return pool::alloc(n); }
RINGPOOL_EXPORT void free(void* p) { pool::free(p); }
RINGPOOL_EXPORT void* calloc(size_t n, size_t size) { return pool::calloc(n, size); }
RINGPOOL_EXPORT void* realloc(void* p, size_t n) { return pool::realloc(p, n); }
RINGPOOL_EXPORT void* reallocarray(void* p, size_t n, size_t size) { return pool::reallocarray(p, n, size); }
RINGPOOL_EXPORT void* memalign(size_t align, size_t n) { return pool::memalign(align, n); }
RINGPOOL_EXPORT void* aligned_alloc(size_t align, size_t n) { return pool::aligned_alloc(align, n); }
RINGPOOL_EXPORT int posix_memalign(void** out, size_t align, size_t n) { return pool::posix_memalign(out, align, n); }
RINGPOOL_EXPORT void* valloc(size_t n) { return pool::valloc(n); }
RINGPOOL_EXPORT void* pvalloc(size_t n) { return pool::pvalloc(n); }
RINGPOOL_EXPORT size_t malloc_usable_size(void* p) { return pool::usable_size(p); }
RINGPOOL_EXPORT void free_sized(void* p, size_t) { pool::free(p); }
RINGPOOL_EXPORT void free_aligned_sized(void* p, size_t, size_t) { pool::free(p); }
RINGPOOL_EXPORT void cfree(void* p) { pool::free(p); }

// glibc's internal names: some programs and libraries call them directly.
RINGPOOL_EXPORT void* __libc_malloc(size_t n) { return pool::alloc(n); }
RINGPOOL_EXPORT void __libc_free(void* p) { pool::free(p); }
RINGPOOL_EXPORT void* __libc_calloc(size_t n, size_t size) { return pool::calloc(n, size); }
RINGPOOL_EXPORT void* __libc_realloc(void* p, size_t n) { return pool::realloc(p, n); }
RINGPOOL_EXPORT void* __libc_memalign(size_t align, size_t n) { return pool::memalign(align, n); }
RINGPOOL_EXPORT void* __libc_valloc(size_t n) { return pool::valloc(n); }
RINGPOOL_EXPORT void* __libc_pvalloc(size_t n) { return pool::pvalloc(n); }
RINGPOOL_EXPORT int __posix_memalign(void** out, size_t align, size_t n) { return pool::posix_memalign(out, align, n); }

RINGPOOL_EXPORT int malloc_trim(size_t) { return pool::trim() ? 1 : 0; }
// Accepted and ignored, as other allocators do: glibc's tunables do not
// apply here (RINGPOOL_* options do).
RINGPOOL_EXPORT int mallopt(int, int) { return 1; }
