// preload/: the interposition layer. It adapts symbols and nothing more:
// each exported function forwards to pool/.
#pragma once
#include "../pool/pool.hpp"

#define RINGPOOL_EXPORT extern "C" __attribute__((visibility("default")))
#define RINGPOOL_EXPORT_CXX __attribute__((visibility("default")))

namespace ringpool::preload {
// True when the library serves this process's malloc: it was preloaded, so
// it comes before libc in the link map. Opened with dlopen it comes after,
// and malloc stays glibc's. Known once the constructors at priority 101 ran.
bool preloaded();
// Where this library's code is: [lo, hi) over its executable segments.
void code_range(uintptr_t* lo, uintptr_t* hi);
}  // namespace ringpool::preload
