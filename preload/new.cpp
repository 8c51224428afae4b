// C++ operator new and delete, every form. On failure operator new calls the
// new-handler and throws std::bad_alloc, both found in the program's own
// libstdc++ at run time (dlsym), so that this library never depends on it:
// a C program it is preloaded into never loads libstdc++.
#include <dlfcn.h>
#include <stddef.h>

#include <new>

#include "preload.hpp"

namespace pool = ringpool::pool;

namespace {

using NewHandler = void (*)();

[[noreturn]] void throw_bad_alloc() {
  auto thrower = reinterpret_cast<void (*)()>(dlsym(RTLD_DEFAULT, "_ZSt17__throw_bad_allocv"));
  if (thrower) thrower();  // throws; frames here have unwind tables
  ringpool::platform::write_err("ringpool: operator new: out of memory (no libstdc++ to throw std::bad_alloc)\n");
  ringpool::platform::die();
}

NewHandler current_handler() {
  auto get = reinterpret_cast<NewHandler (*)()>(dlsym(RTLD_DEFAULT, "_ZSt15get_new_handlerv"));
  return get ? get() : nullptr;
}

// The standard's loop: call the handler until memory comes or there is none.
__attribute__((noinline)) void* new_slow(size_t n, size_t align, bool nothrow) {
  for (;;) {
    void* p = align ? pool::aligned_alloc(align, n) : pool::alloc(n);
    if (p) return p;
    NewHandler h = current_handler();
    if (h == nullptr) {
      if (nothrow) return nullptr;
      throw_bad_alloc();
    }
    // A handler may throw; with nothrow forms that exception would escape,
    // which we cannot catch without libstdc++: do not call it there.
    if (nothrow) return nullptr;
    h();
  }
}

inline void* new_impl(size_t n) {
  void* p = pool::alloc(n);
  return RINGPOOL_LIKELY(p != nullptr) ? p : new_slow(n, 0, false);
}

inline void* new_aligned(size_t n, std::align_val_t a) {
  void* p = pool::aligned_alloc((size_t)a, n);
  return RINGPOOL_LIKELY(p != nullptr) ? p : new_slow(n, (size_t)a, false);
}

inline void* new_nothrow(size_t n, size_t align) {
  void* p = align ? pool::aligned_alloc(align, n) : pool::alloc(n);
  return RINGPOOL_LIKELY(p != nullptr) ? p : new_slow(n, align, true);
}

}  // namespace

RINGPOOL_EXPORT_CXX void* operator new(size_t n) { return new_impl(n); }
RINGPOOL_EXPORT_CXX void* operator new[](size_t n) { return new_impl(n); }
RINGPOOL_EXPORT_CXX void* operator new(size_t n, const std::nothrow_t&) noexcept { return new_nothrow(n, 0); }
RINGPOOL_EXPORT_CXX void* operator new[](size_t n, const std::nothrow_t&) noexcept { return new_nothrow(n, 0); }
RINGPOOL_EXPORT_CXX void* operator new(size_t n, std::align_val_t a) { return new_aligned(n, a); }
RINGPOOL_EXPORT_CXX void* operator new[](size_t n, std::align_val_t a) { return new_aligned(n, a); }
RINGPOOL_EXPORT_CXX void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_nothrow(n, (size_t)a);
}
RINGPOOL_EXPORT_CXX void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_nothrow(n, (size_t)a);
}

RINGPOOL_EXPORT_CXX void operator delete(void* p) noexcept { pool::free(p); }
RINGPOOL_EXPORT_CXX void operator delete[](void* p) noexcept { pool::free(p); }
RINGPOOL_EXPORT_CXX void operator delete(void* p, const std::nothrow_t&) noexcept { pool::free(p); }
RINGPOOL_EXPORT_CXX void operator delete[](void* p, const std::nothrow_t&) noexcept { pool::free(p); }
RINGPOOL_EXPORT_CXX void operator delete(void* p, size_t) noexcept { pool::free(p); }
RINGPOOL_EXPORT_CXX void operator delete[](void* p, size_t) noexcept { pool::free(p); }
RINGPOOL_EXPORT_CXX void operator delete(void* p, std::align_val_t) noexcept { pool::free(p); }
RINGPOOL_EXPORT_CXX void operator delete[](void* p, std::align_val_t) noexcept { pool::free(p); }
RINGPOOL_EXPORT_CXX void operator delete(void* p, size_t, std::align_val_t) noexcept { pool::free(p); }
RINGPOOL_EXPORT_CXX void operator delete[](void* p, size_t, std::align_val_t) noexcept { pool::free(p); }
RINGPOOL_EXPORT_CXX void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { pool::free(p); }
RINGPOOL_EXPORT_CXX void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { pool::free(p); }
