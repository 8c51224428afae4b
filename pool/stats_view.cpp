// Snapshots and their text/JSON forms, shared by the library (exit summary,
// ringpool_stats_print) and the CLI (ringpool stat). No system calls here.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "stats.hpp"
#include "types.hpp"

namespace ringpool::pool {

namespace {

uint64_t load(const uint64_t& v) { return __atomic_load_n(&v, __ATOMIC_RELAXED); }

// Appends with snprintf, tracking the length needed.
struct Out {
  char* buf;
  size_t size;
  size_t len;
  void put(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    va_list ap;
    va_start(ap, fmt);
    char* at = len < size ? buf + len : nullptr;
    int n = vsnprintf(at, at ? size - len : 0, fmt, ap);
    va_end(ap);
    if (n > 0) len += (size_t)n;
  }
};

// The text summary's lines of named counters are cut after this many
// columns, and go on under their first count.
constexpr size_t k_line_width = 96;

bool is_name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (!first && ((c >= '0' && c <= '9') || c == '_'));
}

// s NUL-terminated within size, and nothing but NULs after its end. A
// `name` must be [a-z][a-z0-9_]* and end before the field does, else it is
// cleared; other text is cut to fit and keeps printable ASCII without '"'
// or '\\' (others become '?'). True when nothing changed.
bool clean_field(char* s, size_t size, bool name) {
  size_t len = strnlen(s, size);
  bool ok = len < size && (!name || len > 0);
  for (size_t i = 0; i < len && name && ok; i++) ok = is_name_char(s[i], i == 0);
  if (name && !ok) {
    memset(s, 0, size);
    return false;
  }
  bool same = ok;
  if (len == size) len = size - 1;
  for (size_t i = len; i < size; i++) same &= s[i] == 0, s[i] = 0;
  for (size_t i = 0; i < len; i++) {
    char& c = s[i];
    if (c >= 0x20 && c <= 0x7e && c != '"' && c != '\\') continue;
    c = '?';
    same = false;
  }
  return same;
}

}  // namespace

bool clean_counter_name(CounterName* c) {
  bool same = clean_field(c->name, sizeof c->name, true);
  same &= clean_field(c->group, sizeof c->group, false);
  same &= clean_field(c->label, sizeof c->label, false);
  same &= clean_field(c->help, sizeof c->help, false);
  if (c->kind > (uint32_t)CounterKind::gauge) c->kind = (uint32_t)CounterKind::counter, same = false;
  if (c->reserved) c->reserved = 0, same = false;
  return same;
}

void sum_named(const SharedStats* s, uint32_t slots, unsigned first, unsigned n, uint64_t* out) {
  if (first > k_named_counters) first = k_named_counters;
  if (n > k_named_counters - first) n = k_named_counters - first;
  for (unsigned k = 0; k < n; k++) out[k] = load(s->named_global[first + k]);
  for (uint32_t i = 0; i < slots; i++)
    for (unsigned k = 0; k < n; k++) out[k] += load(s->heaps[i].named[first + k]);
}

const char* format_bytes(uint64_t v, char* b, size_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double d = (double)v;
  int u = 0;
  while (d >= 1024 && u < 4) {
    d /= 1024;
    u++;
  }
  if (u == 0) snprintf(b, n, "%llu B", (unsigned long long)v);
  else snprintf(b, n, "%.1f %s", d, units[u]);
  return b;
}

bool snapshot_from(const SharedStats* s, size_t mapped_size, uint64_t now_ms, Snapshot* out) {
  if (mapped_size < sizeof(SharedStats) || memcmp(s->magic, k_stats_magic, 8) != 0) return false;
  if (s->layout != k_stats_layout || s->header_size != sizeof(SharedStats) ||
      s->num_classes != k_num_classes || s->slots == 0 || shared_stats_bytes(s->slots) > mapped_size)
    return false;
  memset(out, 0, sizeof *out);
  out->pid = s->pid;
  uint64_t start = load(s->start_ms);
  out->uptime_ms = now_ms > start && start ? now_ms - start : 0;

  // The back end's totals: retry until a read sees no writer.
  BackendStats b;
  for (int tries = 0; tries < 1000; tries++) {
    uint64_t seq = __atomic_load_n(&s->backend.seq, __ATOMIC_ACQUIRE);
    memcpy(&b, &s->backend, sizeof b);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (!(seq & 1) && seq == __atomic_load_n(&s->backend.seq, __ATOMIC_RELAXED)) break;
  }

  uint32_t used = __atomic_load_n(&s->slots_used, __ATOMIC_ACQUIRE);
  if (used > s->slots) used = s->slots;
  // Frees first, then allocations: every counted free's allocation is
  // counted too, so no class shows a negative live count.
  uint64_t frees[k_num_classes] = {};
  for (unsigned c = 0; c < k_num_classes; c++) frees[c] = load(s->remote_frees[c]);
  for (uint32_t i = 0; i < used; i++)
    for (unsigned c = 0; c < k_num_classes; c++) frees[c] += load(s->heaps[i].frees[c]);
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  for (unsigned c = 0; c < k_num_classes; c++) {
    ClassRow& r = out->rows[c];
    r.size = s->class_size[c];
    for (uint32_t i = 0; i < used; i++) r.allocs += load(s->heaps[i].allocs[c]);
    out->block_bytes += r.allocs * r.size;
    r.frees = frees[c] < r.allocs ? frees[c] : r.allocs;
    r.live_blocks = r.allocs - r.frees;
    r.live_bytes = r.live_blocks * r.size;
    r.page_bytes = b.pages[c] * k_classes.span[c] * k_unit;
    out->live_blocks += r.live_blocks;
    out->live_bytes += r.live_bytes;
    out->cached_bytes += r.page_bytes > r.live_bytes ? r.page_bytes - r.live_bytes : 0;
  }
  for (uint32_t i = 0; i < used; i++) out->requested_bytes += load(s->heaps[i].requested);
  if (out->requested_bytes > out->block_bytes) out->requested_bytes = out->block_bytes;
  // A large or huge block is its own page: live bytes are page bytes.
  out->rows[k_row_large] = ClassRow{0, b.large_allocs, b.large_frees, b.large_count, b.large_bytes, b.large_bytes};
  out->rows[k_row_huge] = ClassRow{0, b.huge_allocs, b.huge_frees, b.huge_count, b.huge_bytes, b.huge_bytes};
  out->live_blocks += b.large_count + b.huge_count;
  out->live_bytes += b.large_bytes + b.huge_bytes;
  out->page_bytes = b.page_bytes;
  out->mapped = b.mapped;
  out->dirty = b.dirty;
  out->released = b.purged;
  out->meta_bytes = b.meta_bytes;
#define RINGPOOL_COPY(name, kind, help) out->global.name = load(s->global.name);
  RINGPOOL_GLOBAL_COUNTERS(RINGPOOL_COPY)
#undef RINGPOOL_COPY
  uint32_t named = __atomic_load_n(&s->named_used, __ATOMIC_ACQUIRE);
  out->named_used = named < k_named_counters ? named : k_named_counters;
  uint64_t values[k_named_counters];
  sum_named(s, used, 0, out->named_used, values);
  for (uint32_t k = 0; k < out->named_used; k++) {
    out->named[k].name = s->names[k];
    clean_counter_name(&out->named[k].name);
    out->named[k].value = values[k];
  }
  out->threads_exited = out->global.threads_exited;
  uint64_t started = out->global.threads_started;
  out->threads_active = started > out->threads_exited ? started - out->threads_exited : 0;
  return true;
}

size_t format_text(const Snapshot& s, bool classes, char* buf, size_t size) {
  Out o{buf, size, 0};
  char a[32], b[32], c[32];
  if (size) buf[0] = 0;
  o.put("ringpool statistics for pid %d (up %.1f s)\n", s.pid, (double)s.uptime_ms / 1000);
  o.put("  live:      %s in %llu blocks\n", format_bytes(s.live_bytes, a, sizeof a), (unsigned long long)s.live_blocks);
  o.put("  in pages:  %s (free inside pages, cached by threads: %s)\n", format_bytes(s.page_bytes + s.rows[k_row_huge].live_bytes, b, sizeof b),
        format_bytes(s.cached_bytes, c, sizeof c));
  if (s.block_bytes)
    o.put("  requested: %s in small blocks since start, served with %s (%.1f%% rounding)\n",
          format_bytes(s.requested_bytes, a, sizeof a), format_bytes(s.block_bytes, b, sizeof b),
          100.0 * (double)(s.block_bytes - s.requested_bytes) / (double)s.block_bytes);
  o.put("  mapped:    %s    resident: %s    metadata: %s\n", format_bytes(s.mapped, a, sizeof a),
        s.resident ? format_bytes(s.resident, b, sizeof b) : "?", format_bytes(s.meta_bytes, c, sizeof c));
  o.put("  free, not yet returned to the OS: %s    returned so far: %s\n", format_bytes(s.dirty, a, sizeof a),
        format_bytes(s.released, b, sizeof b));
  o.put("  large (32 KiB-2 MiB): %llu blocks, %s    huge (> 2 MiB): %llu blocks, %s\n",
        (unsigned long long)s.rows[k_row_large].live_blocks, format_bytes(s.rows[k_row_large].live_bytes, a, sizeof a), (unsigned long long)s.rows[k_row_huge].live_blocks,
        format_bytes(s.rows[k_row_huge].live_bytes, b, sizeof b));
  o.put("  threads:   %llu alive, %llu exited    foreign frees: %llu\n", (unsigned long long)s.threads_active,
        (unsigned long long)s.threads_exited, (unsigned long long)s.global.foreign_frees);
  o.put("  idle heaps: %s in pages of exited threads' heaps, with blocks still live\n",
        format_bytes(s.global.idle_heap_bytes, a, sizeof a));
  // The named counters: a line per group (a run of ids with one group
  // name), shown when a count in it is not zero.
  for (uint32_t first = 0, end; first < s.named_used; first = end) {
    const char* group = s.named[first].name.group;
    bool any = false;
    for (end = first; end < s.named_used && strcmp(s.named[end].name.group, group) == 0; end++)
      any |= s.named[end].name.name[0] && s.named[end].value;
    if (!any) continue;
    char head[sizeof s.named[first].name.group + 1];
    snprintf(head, sizeof head, "%s:", group);
    size_t line = o.len;
    o.put("  %-10s", head);
    const char* sep = " ";
    for (uint32_t k = first; k < end; k++) {
      const NamedCount& c = s.named[k];
      if (!c.name.name[0]) continue;
      char item[96];
      snprintf(item, sizeof item, "%llu %s", (unsigned long long)c.value, c.name.label);
      if (*sep == ',' && o.len - line + 2 + strlen(item) > k_line_width) {
        o.put(",\n");
        line = o.len;
        o.put("%13s", "");
        sep = "";
      }
      o.put("%s%s", sep, item);
      sep = ", ";
    }
    o.put("\n");
  }
  if (!classes) return o.len;
  o.put("\n  %9s %12s %12s %10s %10s %10s %6s\n", "class", "allocs", "frees", "live", "live size", "pages", "used");
  for (unsigned i = 0; i < k_rows; i++) {
    const ClassRow& r = s.rows[i];
    if (r.allocs == 0 && r.page_bytes == 0) continue;
    char name[16];
    if (i == k_row_large) snprintf(name, sizeof name, "large");
    else if (i == k_row_huge) snprintf(name, sizeof name, "huge");
    else snprintf(name, sizeof name, "%llu", (unsigned long long)r.size);
    double util = r.page_bytes ? 100.0 * (double)r.live_bytes / (double)r.page_bytes : 0;
    o.put("  %9s %12llu %12llu %10llu %10s %10s %5.0f%%\n", name, (unsigned long long)r.allocs,
          (unsigned long long)r.frees, (unsigned long long)r.live_blocks, format_bytes(r.live_bytes, a, sizeof a),
          format_bytes(r.page_bytes, b, sizeof b), util);
  }
  return o.len;
}

size_t format_json(const Snapshot& s, char* buf, size_t size) {
  Out o{buf, size, 0};
  if (size) buf[0] = 0;
  auto u = [](uint64_t v) { return (unsigned long long)v; };
  o.put("{\"pid\":%d,\"uptime_ms\":%llu,", s.pid, u(s.uptime_ms));
  o.put("\"live_bytes\":%llu,\"live_blocks\":%llu,\"page_bytes\":%llu,\"cached_bytes\":%llu,", u(s.live_bytes),
        u(s.live_blocks), u(s.page_bytes), u(s.cached_bytes));
  o.put("\"mapped\":%llu,\"resident\":%llu,\"dirty\":%llu,\"released\":%llu,\"meta_bytes\":%llu,", u(s.mapped),
        u(s.resident), u(s.dirty), u(s.released), u(s.meta_bytes));
  o.put("\"large_count\":%llu,\"large_bytes\":%llu,\"huge_count\":%llu,\"huge_bytes\":%llu,", u(s.rows[k_row_large].live_blocks),
        u(s.rows[k_row_large].live_bytes), u(s.rows[k_row_huge].live_blocks), u(s.rows[k_row_huge].live_bytes));
  o.put("\"threads_active\":%llu,\"threads_exited\":%llu,", u(s.threads_active), u(s.threads_exited));
  o.put("\"requested_bytes\":%llu,\"block_bytes\":%llu,", u(s.requested_bytes), u(s.block_bytes));
  o.put("\"counters\":{");
  const char* sep = "";
#define RINGPOOL_JSON(name, kind, help)                                \
  o.put("%s\"" #name "\":%llu", sep, u(s.global.name));           \
  sep = ",";
  RINGPOOL_GLOBAL_COUNTERS(RINGPOOL_JSON)
#undef RINGPOOL_JSON
  for (uint32_t k = 0; k < s.named_used; k++) {
    if (!s.named[k].name.name[0]) continue;
    o.put("%s\"%s\":%llu", sep, s.named[k].name.name, u(s.named[k].value));
    sep = ",";
  }
  o.put("},\"classes\":[");
  sep = "";
  for (unsigned i = 0; i < k_rows; i++) {
    const ClassRow& r = s.rows[i];
    if (r.allocs == 0 && r.page_bytes == 0) continue;
    const char* kind = i == k_row_large ? "large" : i == k_row_huge ? "huge" : "small";
    o.put("%s{\"kind\":\"%s\",\"size\":%llu,\"allocs\":%llu,\"frees\":%llu,\"live_blocks\":%llu,"
          "\"live_bytes\":%llu,\"page_bytes\":%llu}",
          sep, kind, u(r.size), u(r.allocs), u(r.frees), u(r.live_blocks), u(r.live_bytes), u(r.page_bytes));
    sep = ",";
  }
  o.put("]}\n");
  return o.len;
}

}  // namespace ringpool::pool
