// fuzz_stats_reader: a libFuzzer target for the code `ringpool stat` runs on
// another process's stats region: pool::snapshot_from, then format_text and
// format_json. The region is whatever the other process (which may be any
// program that maps a file in its user's channel directory) wrote, so no byte may crash
// the reader or make it read outside the region.
//
// Glossary
//   region  the input bytes after the first 9, in a buffer of exactly their
//           size (as the CLI copies the file), so a read past the end is an
//           AddressSanitizer report.
//   mode    the first byte: raw (the bytes as they are) or patched (the
//           header's magic, layout, header size and class count made valid,
//           so the fuzzer spends its time past the header check).
//   now     the next 8 bytes: the reader's clock.
//
// Checks besides "no crash": a snapshot is refused when the region is
// shorter than its header says; the numbers obey frees <= allocs per row;
// every named counter's name is empty (not shown) or [a-z][a-z0-9_]*; the
// text and JSON outputs are NUL-terminated in any buffer size, report the
// length they need, and hold printable ASCII only.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../pool/stats_layout.hpp"

namespace pool = ringpool::pool;

namespace {

[[noreturn]] __attribute__((format(printf, 1, 2))) void fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_stats_reader: FAIL: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  abort();
}

void check_output(const char* buf, size_t size, size_t need, const char* what) {
  if (size == 0) return;
  size_t len = strnlen(buf, size);
  if (len == size) fail("%s: not NUL-terminated in a %zu-byte buffer", what, size);
  if (need < size && len != need) fail("%s: wrote %zu bytes but says it needs %zu", what, len, need);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)buf[i];
    if (c != '\n' && (c < 0x20 || c > 0x7e)) fail("%s: byte %#x at %zu", what, c, i);
  }
}

// Formats into a heap buffer of exactly `size` bytes (size 0: a null one).
void format_into(const pool::Snapshot& s, int how, size_t size) {
  char* buf = size ? static_cast<char*>(malloc(size)) : nullptr;
  if (buf) memset(buf, 'x', size);
  size_t need = how == 2 ? pool::format_json(s, buf, size) : pool::format_text(s, how == 1, buf, size);
  check_output(buf, size, need, how == 2 ? "format_json" : "format_text");
  if (size == 0 && need == 0) fail("format says it needs 0 bytes");
  free(buf);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 9) return 0;
  uint8_t mode = data[0];
  uint64_t now;
  memcpy(&now, data + 1, 8);
  data += 9;
  size -= 9;

  // Patched: at least a header's worth, the header made valid, the rest
  // (slots, slots_used, counters) from the input.
  size_t len = size;
  bool patched = mode & 1;
  if (patched && len < sizeof(pool::SharedStats)) len = sizeof(pool::SharedStats) + (mode >> 1) * 64;
  uint8_t* region = static_cast<uint8_t*>(malloc(len ? len : 1));
  memset(region, 0, len);
  memcpy(region, data, size < len ? size : len);
  if (patched) {
    pool::SharedStats* s = reinterpret_cast<pool::SharedStats*>(region);
    memcpy(s->magic, pool::k_stats_magic, sizeof s->magic);
    s->layout = pool::k_stats_layout;
    s->header_size = sizeof(pool::SharedStats);
    s->num_classes = pool::k_num_classes;
    if (mode & 2) s->slots = 1 + s->slots % 8;  // mostly small enough to fit
  }

  pool::Snapshot snap;
  bool ok = pool::snapshot_from(reinterpret_cast<const pool::SharedStats*>(region), len, now, &snap);
  if (ok) {
    const pool::SharedStats* s = reinterpret_cast<const pool::SharedStats*>(region);
    if (len < pool::shared_stats_bytes(s->slots))
      fail("a %zu-byte region with %u slots (%zu bytes) was accepted", len, s->slots,
           pool::shared_stats_bytes(s->slots));
    for (unsigned r = 0; r < pool::k_rows; r++) {
      const pool::ClassRow& row = snap.rows[r];
      if (r < pool::k_num_classes && (row.frees > row.allocs || row.live_blocks != row.allocs - row.frees))
        fail("row %u: allocs %llu, frees %llu, live %llu", r, (unsigned long long)row.allocs,
             (unsigned long long)row.frees, (unsigned long long)row.live_blocks);
    }
    if (snap.named_used > pool::k_named_counters) fail("%u named counters", snap.named_used);
    for (unsigned k = 0; k < snap.named_used; k++) {
      const char* n = snap.named[k].name.name;
      size_t len = strnlen(n, sizeof snap.named[k].name.name);
      if (len == sizeof snap.named[k].name.name || (len && strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789_") != len) ||
          (len && (n[0] < 'a' || n[0] > 'z')))
        fail("named counter %u has a name that is not one", k);
    }
    // Buffers of every kind of size: none, tiny, a cut inside the output, ample.
    static const size_t sizes[] = {0, 1, 7, 100, 333, 1000, 4096, 1 << 16};
    for (size_t bsize : sizes)
      for (int how = 0; how < 3; how++) format_into(snap, how, bsize);
  }
  free(region);
  return 0;
}
