// mallinfo, mallinfo2, malloc_stats, malloc_info: glibc's reports, filled
#include <errno.h>
// from ringpool's own counters.
#include <malloc.h>
#include <stdio.h>

#include "../pool/errors.hpp"
#include "preload.hpp"

namespace pool = ringpool::pool;

RINGPOOL_EXPORT struct mallinfo2 mallinfo2(void) {
  pool::UsageTotals u = pool::usage();
  struct mallinfo2 m = {};
  m.arena = u.mapped;
  m.ordblks = u.live_blocks;
  m.hblks = 0;
  m.hblkhd = 0;
  m.uordblks = u.live_bytes;
  m.fordblks = u.mapped > u.live_bytes ? u.mapped - u.live_bytes : 0;
  m.keepcost = u.dirty;
  return m;
}

static int clamp_int(size_t v) { return v > 0x7fffffff ? 0x7fffffff : (int)v; }

RINGPOOL_EXPORT struct mallinfo mallinfo(void) {
  struct mallinfo2 m2 = mallinfo2();
  struct mallinfo m = {};
  m.arena = clamp_int(m2.arena);
  m.ordblks = clamp_int(m2.ordblks);
  m.uordblks = clamp_int(m2.uordblks);
  m.fordblks = clamp_int(m2.fordblks);
  m.keepcost = clamp_int(m2.keepcost);
  return m;
}

// glibc's layout, written with write(2): malloc_stats may run where stdio
// is not safe.
RINGPOOL_EXPORT void malloc_stats(void) {
  pool::UsageTotals u = pool::usage();
  char buf[24];
  auto line = [&](const char* label, size_t v) {
    ringpool::platform::write_err(label);
    ringpool::platform::write_err(pool::format_dec(buf, v));
    ringpool::platform::write_err("\n");
  };
  ringpool::platform::write_err("Arena 0:\n");
  line("system bytes     = ", u.mapped);
  line("in use bytes     = ", u.live_bytes);
  ringpool::platform::write_err("Total (incl. mmap):\n");
  line("system bytes     = ", u.mapped);
  line("in use bytes     = ", u.live_bytes);
  line("max mmap regions = ", 0);
  line("max mmap bytes   = ", 0);
}

RINGPOOL_EXPORT int malloc_info(int options, FILE* f) {
  if (options != 0) {
    errno = EINVAL;
    return -1;
  }
  pool::UsageTotals u = pool::usage();
  fprintf(f,
          "<malloc version=\"1\">\n"
          "<heap nr=\"0\">\n"
          "<sizes>\n</sizes>\n"
          "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
          "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
          "<system type=\"current\" size=\"%zu\"/>\n"
          "<system type=\"max\" size=\"%zu\"/>\n"
          "<aspace type=\"total\" size=\"%zu\"/>\n"
          "<aspace type=\"mprotect\" size=\"%zu\"/>\n"
          "</heap>\n"
          "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
          "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
          "<total type=\"mmap\" count=\"0\" size=\"0\"/>\n"
          "<system type=\"current\" size=\"%zu\"/>\n"
          "<system type=\"max\" size=\"%zu\"/>\n"
          "<aspace type=\"total\" size=\"%zu\"/>\n"
          "<aspace type=\"mprotect\" size=\"%zu\"/>\n"
          "</malloc>\n",
          u.live_blocks, u.live_bytes, u.mapped, u.mapped, u.mapped, u.mapped,
          u.live_blocks, u.live_bytes, u.mapped, u.mapped, u.mapped, u.mapped);
  return 0;
}
