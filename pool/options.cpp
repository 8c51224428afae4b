// The option table and its parser (see options.hpp).
#include "options.hpp"

#include <string.h>

#include "platform.hpp"

namespace ringpool::pool {

namespace {

Options g_options;  // the defaults are in the struct (options.hpp)

// One row per option: name, help, default, range, and where it goes. The
// defaults here are for help and the man page; options.hpp's are in force.
const OptionInfo k_table[] = {
    {"PURGE_DELAY", "milliseconds free memory stays resident before it is returned to the OS", 100, 0, 3600000,
     [](Options& o, long long v) { o.purge_delay_ms = (uint64_t)v; }},
    {"RETAIN", "MiB of free memory kept resident once the purge delay passed (or an eighth of the heap, if larger)",
     8, 0, 1 << 20, [](Options& o, long long v) { o.retain_bytes = (size_t)v << 20; }},
    {"VERBOSE", "1: say on stderr what ringpool decided (fallbacks, bad options)", 0, 0, 2,
     [](Options& o, long long v) { o.verbose = (int)v; }},
    {"HARDEN", "1: extra checks against heap corruption, at a measured cost", 0, 0, 1,
     [](Options& o, long long v) { o.harden = (int)v; }},
    {"STATS", "1: print a statistics summary to stderr at exit", 0, 0, 1,
     [](Options& o, long long v) { o.stats = (int)v; }},
    {"LEAKS", "1: report the sampled blocks still live at exit, by stack", 0, 0, 1,
     [](Options& o, long long v) { o.leaks = (int)v; }},
    {"PROFILE_RATE", "bytes allocated between heap-profile samples on average (1: every block)", 512 * 1024, 1,
     1LL << 40, [](Options& o, long long v) { o.profile_rate = (uint64_t)v; }},
    {"PURGE_THREAD", "1: after a large free, a short-lived thread returns memory even if the program idles", 1, 0, 1,
     [](Options& o, long long v) { o.purge_thread = (int)v; }},
    {"URING", "1: route blocking socket calls of the program through io_uring", 0, 0, 1,
     [](Options& o, long long v) { o.uring = (int)v; }},
    {"FAULT_MMAP", "testing only: make every Nth request for memory from the OS fail (0: never)", 0, 0, 1LL << 40,
     [](Options& o, long long v) {
       o.fault_mmap = (uint64_t)v;
       platform::set_fault_every((uint64_t)v);
     }},
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


}  // namespace

const Options& options() { return g_options; }

const OptionInfo* option_table(size_t* count) {
  *count = k_count;
  return k_table;
}

// One pass over the environment: only entries that start with RINGPOOL_
// are looked at twice.
void options_init() {
  constexpr char prefix[] = "RINGPOOL_";
  constexpr size_t k_prefix = sizeof prefix - 1;
  bool profile = false, profile_seen = false;
  bool seen[k_count] = {};  // the first of duplicates wins, as with getenv
  for (const char* const* e = platform::environment(); e && *e; e++) {
    const char* name = *e;
    if (strncmp(name, prefix, k_prefix) != 0) continue;
    name += k_prefix;
    const char* eq = strchr(name, '=');
    if (eq == nullptr) continue;
    size_t len = (size_t)(eq - name);
    const char* v = eq + 1;
    if (len == 7 && strncmp(name, "PROFILE", 7) == 0) {  // a path: not in the numeric table
      if (!profile_seen) profile = *v != 0;
      profile_seen = true;
      continue;
    }
    for (size_t i = 0; i < k_count; i++) {
      if (strlen(k_table[i].name) != len || strncmp(name, k_table[i].name, len) != 0) continue;
      if (seen[i]) break;
      seen[i] = true;
      long long x;
      if (parse(v, &x) && x >= k_table[i].min && x <= k_table[i].max) {
        k_table[i].set(g_options, x);
        break;
      }
      platform::write_err("ringpool: warning: ignoring ");
      platform::write_err_n(*e, (size_t)(eq - *e));
      platform::write_err("='");
      platform::write_err(v);
      platform::write_err("' (not a number in range); using the default\n");
      break;
    }
  }
  g_options.profiling = profile || g_options.leaks;
}

void verbose_msg(const char* msg) {
  if (!g_options.verbose) return;
  platform::write_err("ringpool: ");
  platform::write_err(msg);
  platform::write_err("\n");
}

}  // namespace ringpool::pool
