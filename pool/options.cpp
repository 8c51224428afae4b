// The option table and its parser (see options.hpp).
#include "options.hpp"

#include <string.h>

#include "errors.hpp"
#include "line.hpp"
#include "platform.hpp"

namespace ringpool::pool {

namespace {

// One row per option: name, help, default, range, and where it goes.
constexpr OptionInfo k_table[] = {
    {"PURGE_DELAY", "milliseconds free memory stays resident before it is returned to the OS", 100, 0, 3600000,
     [](Options& o, long long v) { o.purge_delay_ms = (uint64_t)v; }, nullptr},
    {"RETAIN", "MiB of free memory kept resident once the purge delay passed (or an eighth of the heap, if larger)",
     8, 0, 1 << 20, [](Options& o, long long v) { o.retain_bytes = (size_t)v << 20; }, nullptr},
    {"VERBOSE", "1: say on stderr what ringpool decided (fallbacks, bad options)", 0, 0, 2,
     [](Options& o, long long v) { o.verbose = (int)v; }, nullptr},
    {"HARDEN", "1: extra checks against heap corruption, at a measured cost", 0, 0, 1,
     [](Options& o, long long v) { o.harden = (int)v; }, nullptr},
    {"STATS", "1: print a statistics summary to stderr at exit", 0, 0, 1,
     [](Options& o, long long v) { o.stats = (int)v; }, nullptr},
    {"LEAKS", "1: report the sampled blocks still live at exit, by stack", 0, 0, 1,
     [](Options& o, long long v) { o.leaks = (int)v; }, nullptr},
    {"PROFILE_RATE", "bytes allocated between heap-profile samples on average (1: every block)", 512 * 1024, 1,
     1LL << 40, [](Options& o, long long v) { o.profile_rate = (uint64_t)v; }, nullptr},
    {"PURGE_THREAD", "1: after a large free, a short-lived thread returns memory even if the program idles", 1, 0, 1,
     [](Options& o, long long v) { o.purge_thread = (int)v; }, nullptr},
    {"THP", "1: transparent huge pages for huge blocks (above 2 MiB) and, before a fork, dense parts of the heap", 1, 0, 1,
     [](Options& o, long long v) { o.thp = (int)v; }, nullptr},
    {"URING", "1: route blocking socket calls of the program through io_uring", 0, 0, 1,
     [](Options& o, long long v) { o.uring = (int)v; }, nullptr},
    {"FAULT_MMAP", "testing only: make every Nth request for memory from the OS fail (0: never)", 0, 0, 1LL << 40,
     [](Options& o, long long v) { o.fault_mmap = (uint64_t)v; }, nullptr},
    {"PROFILE", "file the heap profile is written to at exit (%p: the pid)", 0, 0, 0, nullptr,
     [](Options& o) { return o.profile; }},
    {"STATS_FILE", "file the statistics summary is written to at exit, instead of stderr (%p: the pid)", 0, 0, 0,
     nullptr, [](Options& o) { return o.stats_file; }},
    {"CHANNEL_DIR", "where the per-user channel directory ringpool-EUID/ is made (default /dev/shm)", 0, 0, 0,
     nullptr, [](Options& o) { return o.channel_dir; }},
};
constexpr size_t k_count = sizeof k_table / sizeof k_table[0];

// Strict decimal parse: digits only, no sign, no overflow.
bool parse(const char* s, long long* out) {
  if (*s == 0) return false;
  long long v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return false;
    if (v > (1LL << 50)) return false;
    v = v * 10 + (*s - '0');
  }
  *out = v;
  return true;
}


constexpr Options defaults() {
  Options o{};
  for (const OptionInfo& r : k_table)
    if (r.set) r.set(o, r.def);
  return o;
}

constinit Options g_options = defaults();

}  // namespace

const Options& options() { return g_options; }

// One pass over the environment: only entries that start with RINGPOOL_
// are looked at twice.
void options_init() {
  constexpr char prefix[] = "RINGPOOL_";
  constexpr size_t k_prefix = sizeof prefix - 1;
  bool seen[k_count] = {};  // the first of duplicates wins, as with getenv
  for (const char* const* e = platform::environment(); e && *e; e++) {
    const char* name = *e;
    if (strncmp(name, prefix, k_prefix) != 0) continue;
    name += k_prefix;
    const char* eq = strchr(name, '=');
    if (eq == nullptr) continue;
    size_t len = (size_t)(eq - name);
    const char* v = eq + 1;
    for (size_t i = 0; i < k_count; i++) {
      if (strlen(k_table[i].name) != len || strncmp(name, k_table[i].name, len) != 0) continue;
      if (seen[i]) break;
      seen[i] = true;
      if (k_table[i].path) {
        size_t n = strlen(v);
        if (n < k_option_path_max) {
          memcpy(k_table[i].path(g_options), v, n + 1);
          break;
        }
        Line().add("ringpool: warning: ignoring ").add_n(*e, (size_t)(eq - *e)).add(" (longer than 4095 bytes)").write();
        break;
      }
      long long x;
      if (parse(v, &x) && x >= k_table[i].min && x <= k_table[i].max) {
        k_table[i].set(g_options, x);
        break;
      }
      Line()
          .add("ringpool: warning: ignoring ")
          .add_n(*e, (size_t)(eq - *e))
          .add("='")
          .add(v)
          .add("' (not a number in range); using the default")
          .write();
      break;
    }
  }
  g_options.profiling = g_options.profile[0] != 0 || g_options.leaks;
  platform::set_fault_every(g_options.fault_mmap);
}

bool expand_pid(const char* pattern, bool tag_child, char* out, size_t size) {
  char pid[24];
  const char* digits = format_dec(pid, (unsigned long long)platform::process_id());
  size_t pn = strlen(digits), n = 0;
  bool had_pid = false;
  for (const char* s = pattern; *s; s++) {
    if (s[0] == '%' && s[1] == 'p') {
      had_pid = true;
      if (n + pn >= size) return false;
      memcpy(out + n, digits, pn);
      n += pn;
      s++;
      continue;
    }
    if (n + 1 >= size) return false;
    out[n++] = *s;
  }
  if (!had_pid && tag_child) {
    if (n + pn + 1 >= size) return false;
    out[n++] = '.';
    memcpy(out + n, digits, pn);
    n += pn;
  }
  out[n] = 0;
  return true;
}

void verbose_msg(const char* msg) {
  if (!g_options.verbose) return;
  Line().add("ringpool: ").add(msg).write();
}

}  // namespace ringpool::pool
