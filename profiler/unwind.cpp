// Stacks of the allocating thread.
#include <execinfo.h>

#include "profiler.hpp"

namespace ringpool::profile {

// libgcc's unwinder, through glibc's backtrace(): it reads the unwind
// tables of the objects it finds with _dl_find_object (glibc 2.35+), which
// takes no lock, so a sampler may run in any thread, across fork, and in a
// fork child. libunwind, faster once warm, is not used: its conservative
// build (Debian's) checks every stack read by writing a byte from the
// address into a pipe it keeps open at the program's lowest free numbers;
// a program that closes its descriptors (closefrom, close_range) gives
// those numbers to its own files, and libunwind then reads a byte from one
// of them and writes one into another.
__attribute__((noinline)) int capture(uintptr_t* out) {
  void* raw[k_depth + k_skip_room];
  int n = backtrace(raw, k_depth + k_skip_room);
  uintptr_t lo, hi;
  preload::code_range(&lo, &hi);
  int i = 0;
  while (i < n && reinterpret_cast<uintptr_t>(raw[i]) >= lo && reinterpret_cast<uintptr_t>(raw[i]) < hi) i++;
  int depth = 0;
  for (; i < n && depth < k_depth; i++) out[depth++] = reinterpret_cast<uintptr_t>(raw[i]);
  return depth;
}

// backtrace() loads libgcc_s and allocates on its first call: do it now,
// so that the first real sample does not run the loader from inside malloc.
void unwinder_init() {
  void* raw[k_depth];
  backtrace(raw, k_depth);
}

}  // namespace ringpool::profile
