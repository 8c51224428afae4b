// Options: every knob in one table (options.cpp), read from RINGPOOL_<NAME>
// environment variables once at start-up. Before that, defaults hold.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace ringpool::pool {

struct Options {
  uint64_t purge_delay_ms;  // RINGPOOL_PURGE_DELAY
  size_t retain_bytes;      // RINGPOOL_RETAIN (MiB in the environment)
  int verbose;              // RINGPOOL_VERBOSE
  int harden;               // RINGPOOL_HARDEN
  int stats;                // RINGPOOL_STATS
  int leaks;                // RINGPOOL_LEAKS
  int purge_thread;         // RINGPOOL_PURGE_THREAD
  uint64_t fault_mmap;      // RINGPOOL_FAULT_MMAP (tests)
  uint64_t profile_rate;    // RINGPOOL_PROFILE_RATE (bytes between samples)
  bool profiling;           // RINGPOOL_PROFILE is set, or RINGPOOL_LEAKS=1
};

const Options& options();
// Parse the environment; warn once per bad value (write(2)) and keep the
// default. Safe before libc's constructors ran.
void options_init();

// One row per option, for the man page check and `ringpool help`.
struct OptionInfo {
  const char* name;  // without the RINGPOOL_ prefix
  const char* help;
  long long def, min, max;
};
const OptionInfo* option_table(size_t* count);

// Diagnostics: "ringpool: " + message + "\n" on stderr, when verbose.
void verbose_msg(const char* msg);

}  // namespace ringpool::pool
