// dlopen with RTLD_DEEPBIND: a deep-bound library would bind to glibc's
// malloc and then free our pointers (or we its), so the flag is cleared and
// the library shares this allocator. Every call ends in a tail call, so
// glibc still sees the program's return address (it picks the caller's
// RUNPATH and $ORIGIN from it).
#include <dlfcn.h>

#include "preload.hpp"

namespace {

using DlopenFn = void* (*)(const char*, int);

DlopenFn real_dlopen() {
  static DlopenFn fn;
  DlopenFn f = __atomic_load_n(&fn, __ATOMIC_ACQUIRE);
  if (f == nullptr) {
    f = reinterpret_cast<DlopenFn>(dlsym(RTLD_NEXT, "dlopen"));
    __atomic_store_n(&fn, f, __ATOMIC_RELEASE);
  }
  return f;
}

__attribute__((noinline)) int clear_deepbind(const char* file, int mode) {
  static bool said;
  if (!said) {
    said = true;
    ringpool::pool::verbose_msg("dlopen: cleared RTLD_DEEPBIND so the library shares ringpool's malloc");
  }
  (void)file;
  return mode & ~RTLD_DEEPBIND;
}

}  // namespace

RINGPOOL_EXPORT void* dlopen(const char* file, int mode) {
  if (RINGPOOL_UNLIKELY(mode & RTLD_DEEPBIND)) mode = clear_deepbind(file, mode);
  return real_dlopen()(file, mode);
}
