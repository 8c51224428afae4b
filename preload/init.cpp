// Start-up of the preloaded library: global init as early as possible, and
// the next allocator in the chain (glibc's) for pointers that are not ours.
#include <dlfcn.h>

#include "preload.hpp"

namespace pool = ringpool::pool;

namespace {

void (*g_next_free)(void*);
size_t (*g_next_usable)(void*);

void foreign_free(void* p) {
  if (g_next_free) g_next_free(p);  // before the constructor ran: leaked
}

size_t foreign_usable(void* p) { return g_next_usable ? g_next_usable(p) : 0; }

// Priority 101: before ordinary constructors of this and later libraries.
__attribute__((constructor(101))) void ringpool_preload_init() {
  pool::init();
  // dlsym may allocate: the pool already works, so that is fine.
  g_next_free = reinterpret_cast<void (*)(void*)>(dlsym(RTLD_NEXT, "free"));
  g_next_usable = reinterpret_cast<size_t (*)(void*)>(dlsym(RTLD_NEXT, "malloc_usable_size"));
  pool::set_foreign_hooks(pool::ForeignHooks{foreign_free, foreign_usable});
}

}  // namespace
