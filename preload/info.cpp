// mallinfo, mallinfo2, malloc_stats, malloc_info: glibc's reports, filled
// from ringpool's own counters.
#include <errno.h>
#include <malloc.h>
#include <stdio.h>

#include "../pool/errors.hpp"
#include "../pool/stats.hpp"
#include "preload.hpp"

namespace pool = ringpool::pool;

// arena: bytes mapped; uordblks: bytes in live blocks; fordblks: the rest
// of the mapping; hblks/hblkhd: huge blocks (glibc: mmapped chunks);
// keepcost: free memory not yet returned to the OS.
RINGPOOL_EXPORT struct mallinfo2 mallinfo2(void) {
  pool::Snapshot s;
  pool::snapshot_now(&s);
  struct mallinfo2 m = {};
  m.arena = s.mapped;
  m.ordblks = s.live_blocks;
  m.hblks = s.rows[pool::k_row_huge].live_blocks;
  m.hblkhd = s.rows[pool::k_row_huge].live_bytes;
  m.uordblks = s.live_bytes;
  m.fordblks = s.mapped > s.live_bytes ? s.mapped - s.live_bytes : 0;
  m.keepcost = s.dirty;
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
  m.hblks = clamp_int(m2.hblks);
  m.hblkhd = clamp_int(m2.hblkhd);
  return m;
}

// glibc's layout, written with write(2): malloc_stats may run where stdio
// is not safe.
RINGPOOL_EXPORT void malloc_stats(void) {
  pool::Snapshot s;
  pool::snapshot_now(&s);
  char buf[24];
  auto line = [&](const char* label, size_t v) {
    ringpool::platform::write_err(label);
    ringpool::platform::write_err(pool::format_dec(buf, v));
    ringpool::platform::write_err("\n");
  };
  ringpool::platform::write_err("Arena 0:\n");
  line("system bytes     = ", s.mapped);
  line("in use bytes     = ", s.live_bytes);
  ringpool::platform::write_err("Total (incl. mmap):\n");
  line("system bytes     = ", s.mapped);
  line("in use bytes     = ", s.live_bytes);
  line("max mmap regions = ", s.rows[pool::k_row_huge].live_blocks);
  line("max mmap bytes   = ", s.rows[pool::k_row_huge].live_bytes);
}

RINGPOOL_EXPORT int malloc_info(int options, FILE* f) {
  if (options != 0) {
    errno = EINVAL;
    return -1;
  }
  pool::Snapshot s;
  pool::snapshot_now(&s);
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
          (size_t)s.live_blocks, (size_t)s.live_bytes, (size_t)s.mapped, (size_t)s.mapped, (size_t)s.mapped,
          (size_t)s.mapped, (size_t)s.live_blocks, (size_t)s.live_bytes, (size_t)s.mapped, (size_t)s.mapped,
          (size_t)s.mapped, (size_t)s.mapped);
  return 0;
}
