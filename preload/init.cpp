// Start-up of the preloaded library: global init as early as possible, and
// the next allocator in the chain (glibc's) for pointers that are not ours.
#include <dlfcn.h>
#include <link.h>
#include <string.h>

#include "preload.hpp"

namespace pool = ringpool::pool;

namespace {

void (*g_next_free)(void*);
size_t (*g_next_usable)(void*);

void foreign_free(void* p) {
  if (g_next_free) g_next_free(p);  // before the constructor ran: leaked
}

size_t foreign_usable(void* p) { return g_next_usable ? g_next_usable(p) : 0; }

// Where the link map (in dl_iterate_phdr's order: the program, preloaded
// objects, then the rest) has this library and libc, and where this
// library's code lies (the profiler drops its frames from stacks). Asking
// dlsym where "malloc" resolves instead is wrong for a non-PIE program that
// takes malloc's address, as Debian's python3 does: dlsym then returns the
// program's PLT entry.
struct Order {
  int index, self, libc;
  uintptr_t code_lo, code_hi;
};
Order g_order = {0, -1, -1, 0, 0};

int visit(struct dl_phdr_info* info, size_t, void* arg) {
  Order* o = static_cast<Order*>(arg);
  uintptr_t me = reinterpret_cast<uintptr_t>(&visit), lo = UINTPTR_MAX, hi = 0;
  bool mine = false;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    uintptr_t a = info->dlpi_addr + ph.p_vaddr, b = a + ph.p_memsz;
    mine |= me >= a && me < b;
    if (a < lo) lo = a;
    if (b > hi) hi = b;
  }
  if (mine && o->self < 0) {
    o->self = o->index;
    o->code_lo = lo;
    o->code_hi = hi;
  }
  const char* slash = strrchr(info->dlpi_name, '/');
  const char* base = slash ? slash + 1 : info->dlpi_name;
  if (strncmp(base, "libc.so.", 8) == 0 && o->libc < 0) o->libc = o->index;
  o->index++;
  return 0;
}

// Priority 101: before ordinary constructors of this and later libraries.
__attribute__((constructor(101))) void ringpool_preload_init() {
  pool::init();
  // dlsym may allocate: the pool already works, so that is fine.
  g_next_free = reinterpret_cast<void (*)(void*)>(dlsym(RTLD_NEXT, "free"));
  g_next_usable = reinterpret_cast<size_t (*)(void*)>(dlsym(RTLD_NEXT, "malloc_usable_size"));
  pool::set_foreign_hooks(pool::ForeignHooks{foreign_free, foreign_usable});
  dl_iterate_phdr(visit, &g_order);
  // Opened with dlopen rather than preloaded, the library loads (its
  // initial-exec TLS fits glibc's surplus) but cannot take over: malloc is
  // already bound to glibc. Say so instead of doing nothing silently.
  if (!ringpool::preload::preloaded()) {
    ringpool::platform::write_err(
        "ringpool: libringpool.so.1 was loaded with dlopen, not preloaded: it does not replace malloc "
        "in this process; use LD_PRELOAD or 'ringpool run'\n");
  }
}

}  // namespace

bool ringpool::preload::preloaded() {
  return g_order.self >= 0 && (g_order.libc < 0 || g_order.self < g_order.libc);
}

void ringpool::preload::code_range(uintptr_t* lo, uintptr_t* hi) {
  *lo = g_order.code_lo;
  *hi = g_order.code_hi;
}
