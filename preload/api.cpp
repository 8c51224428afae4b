// The extension API (include/ringpool.h) and the exit summary.
#include "../include/ringpool.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "../pool/errors.hpp"
#include "../pool/stats.hpp"
#include "preload.hpp"

namespace pool = ringpool::pool;
namespace platform = ringpool::platform;

namespace {

// 16 KiB of text covers the summary and every class row.
constexpr size_t k_text = 16384;

void print_to(int fd) {
  pool::Snapshot s;
  pool::snapshot_now(&s);
  char buf[k_text];
  size_t n = pool::format_text(s, true, buf, sizeof buf);
  if (n >= sizeof buf) n = sizeof buf - 1;
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    n -= (size_t)w;
  }
}

__attribute__((destructor)) void ringpool_exit_summary() {
  platform::KeepErrno keep;
  const char* file = pool::options().stats_file;
  if (!pool::options().stats && !*file) return;
  if (*file) {
    char path[pool::k_option_path_max + 32];
    int fd = pool::expand_pid(file, false, path, sizeof path)
                 ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)
                 : -1;
    if (fd >= 0) {
      print_to(fd);
      close(fd);
      return;
    }
    platform::write_err("ringpool: cannot open RINGPOOL_STATS_FILE; printing to stderr\n");
  }
  print_to(2);
}

}  // namespace

RINGPOOL_EXPORT const char* ringpool_version(void) { return RINGPOOL_VERSION; }

RINGPOOL_EXPORT int ringpool_stats_get(struct ringpool_stats* out) {
  if (out == nullptr || out->size < RINGPOOL_STATS_SIZE_V1) return EINVAL;
  pool::Snapshot s;
  pool::snapshot_now(&s);
  struct ringpool_stats r;
  memset(&r, 0, sizeof r);
  r.live_bytes = s.live_bytes;
  r.live_blocks = s.live_blocks;
  r.page_bytes = s.page_bytes;
  r.free_in_pages = s.cached_bytes;
  r.mapped = s.mapped;
  r.resident = s.resident;
  r.dirty = s.dirty;
  r.released = s.released;
  r.large_count = s.rows[pool::k_row_large].live_blocks;
  r.large_bytes = s.rows[pool::k_row_large].live_bytes;
  r.huge_count = s.rows[pool::k_row_huge].live_blocks;
  r.huge_bytes = s.rows[pool::k_row_huge].live_bytes;
  r.foreign_frees = s.global.foreign_frees;
  r.threads_active = s.threads_active;
  r.threads_exited = s.threads_exited;
  size_t want = out->size;
  size_t n = want < sizeof r ? want : sizeof r;
  r.size = n;
  memcpy(out, &r, n);
  // A newer caller's struct: the fields this library does not know are 0.
  if (want > sizeof r) memset(reinterpret_cast<char*>(out) + sizeof r, 0, want - sizeof r);
  return 0;
}

RINGPOOL_EXPORT void ringpool_stats_print(int fd) { print_to(fd); }

RINGPOOL_EXPORT int ringpool_trim(void) { return pool::trim() ? 1 : 0; }
