// The profile writer: buffered write(2), the gperftools heap-profile text
// format, the profile written at exit.
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "profiler.hpp"

namespace ringpool::profile {

void Writer::flush() {
  size_t off = 0;
  while (off < n && !failed) {
    ssize_t w = write(fd, buf + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) failed = true;
    else off += (size_t)w;
  }
  n = 0;
}

void Writer::put(const char* s, size_t len) {
  while (len > 0) {
    if (n == sizeof buf) flush();
    size_t k = sizeof buf - n < len ? sizeof buf - n : len;
    memcpy(buf + n, s, k);
    n += k;
    s += k;
    len -= k;
  }
}

void Writer::dec(uint64_t v, int width) {
  char t[24];
  int i = sizeof t;
  do {
    t[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (int pad = width - ((int)sizeof t - i); pad > 0; pad--) put(" ", 1);
  put(t + i, sizeof t - i);
}

void Writer::hex(uint64_t v) {
  char t[18];
  int i = sizeof t;
  do {
    t[--i] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  t[--i] = 'x';
  t[--i] = '0';
  put(t + i, sizeof t - i);
}

Mutex g_dump_lock;
RINGPOOL_LARGE_BSS Writer g_writer;

static uint64_t round_count(double v) { return v < 0.5 ? 0 : (uint64_t)(v + 0.5); }

// What a record prints: blocks are at least 1 where bytes are non-zero
// (pprof rejects "0: B" with B > 0).
Rounded rounded(const StackRec* r) {
  Rounded x;
  x.live_bytes = r->live_samples ? r->live_bytes : 0;
  x.live_blocks = r->live_samples ? round_count(r->live_blocks) : 0;
  if (r->live_samples && x.live_blocks == 0) x.live_blocks = 1;
  x.alloc_bytes = r->alloc_bytes;
  x.alloc_blocks = round_count(r->alloc_blocks);
  if (r->samples && x.alloc_blocks == 0) x.alloc_blocks = 1;
  return x;
}

static void counts_line(Writer& w, uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  w.dec(a, 6);
  w.str(": ");
  w.dec(b, 8);
  w.str(" [");
  w.dec(c, 6);
  w.str(": ");
  w.dec(d, 8);
  w.str("] @");
}

// The gperftools heap-profile text format (what pprof and jeprof read):
//   heap profile: LIVE_N: LIVE_B [ALLOC_N: ALLOC_B] @ heapprofile
//   LIVE_N: LIVE_B [ALLOC_N: ALLOC_B] @ 0xRET 0xRET ...      (one per stack)
//   (blank line) MAPPED_LIBRARIES: then /proc/self/maps
// The numbers are already unbiased estimates, so the header says
// "heapprofile" (unsampled: pprof scales nothing) rather than heap_v2/RATE.
bool write_profile_locked(int fd) {
  Writer& w = g_writer;
  w.start(fd);
  {
    LockGuard g(g_stack_lock);
    Rounded total{};
    for_each_stack_locked([&](StackRec* r) {
      Rounded x = rounded(r);
      total.live_blocks += x.live_blocks;
      total.live_bytes += x.live_bytes;
      total.alloc_blocks += x.alloc_blocks;
      total.alloc_bytes += x.alloc_bytes;
    });
    w.str("heap profile: ");
    counts_line(w, total.live_blocks, total.live_bytes, total.alloc_blocks, total.alloc_bytes);
    w.str(" heapprofile\n");
    for_each_stack_locked([&](StackRec* r) {
      if (r->samples == 0) return;
      Rounded x = rounded(r);
      counts_line(w, x.live_blocks, x.live_bytes, x.alloc_blocks, x.alloc_bytes);
      for (uint32_t i = 0; i < r->depth; i++) {
        w.str(" ");
        w.hex(r->frames[i]);
      }
      w.str("\n");
    });
  }
  w.str("\nMAPPED_LIBRARIES:\n");
  int maps = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (maps >= 0) {
    char chunk[4096];
    for (;;) {
      ssize_t k = read(maps, chunk, sizeof chunk);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) break;
      w.put(chunk, (size_t)k);
    }
    close(maps);
  }
  w.flush();
  return !w.failed;
}

void write_exit_profile() {
  char path[k_path_max + 32];
  if (!pool::expand_pid(g_path, g_forked_child, path, sizeof path)) {
    platform::write_err("ringpool: heap profile path too long\n");
    return;
  }
  LockGuard g(g_dump_lock);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && write_profile_locked(fd);
  int err = errno;
  if (fd >= 0) close(fd);
  if (!ok) {
    platform::write_err("ringpool: cannot write the heap profile to ");
    platform::write_err(path);
    platform::write_err(": ");
    platform::write_err(strerror(err));
    platform::write_err("\n");
  } else if (pool::options().verbose) {
    platform::write_err("ringpool: heap profile written to ");
    platform::write_err(path);
    platform::write_err("\n");
  }
}

}  // namespace ringpool::profile
