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
  // Opened with dlopen rather than preloaded, the library loads (its
  // initial-exec TLS fits glibc's surplus) but cannot take over: malloc is
  // already bound to glibc. Say so instead of doing nothing silently.
  Dl_info bound, self;
  if (dladdr(dlsym(RTLD_DEFAULT, "malloc"), &bound) && dladdr(reinterpret_cast<void*>(&foreign_free), &self) &&
      bound.dli_fbase != self.dli_fbase) {
    ringpool::platform::write_err(
        "ringpool: libringpool.so.1 was loaded with dlopen, not preloaded: it does not replace malloc "
        "in this process; use LD_PRELOAD or 'ringpool run'\n");
  }
}

}  // namespace
