// Options: every knob in one table (options.cpp), read from RINGPOOL_<NAME>
// environment variables once at start-up. Before that, defaults hold.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace ringpool::pool {

struct Options {
  uint64_t purge_delay_ms = 100;              // RINGPOOL_PURGE_DELAY
  size_t retain_bytes = size_t{8} << 20;      // RINGPOOL_RETAIN (MiB in the environment)
  int verbose = 0;                            // RINGPOOL_VERBOSE
  int harden = 0;                             // RINGPOOL_HARDEN
  int stats = 0;                              // RINGPOOL_STATS
  int leaks = 0;                              // RINGPOOL_LEAKS
  uint64_t profile_rate = 512 * 1024;         // RINGPOOL_PROFILE_RATE (bytes between samples)
  int purge_thread = 1;                       // RINGPOOL_PURGE_THREAD
  int uring = 0;                              // RINGPOOL_URING (acted on by uring_shim/)
  uint64_t fault_mmap = 0;                    // RINGPOOL_FAULT_MMAP (tests)
  bool profiling = false;                     // RINGPOOL_PROFILE is set, or RINGPOOL_LEAKS=1
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
  void (*set)(Options& o, long long v);  // store a value already range-checked
};
const OptionInfo* option_table(size_t* count);

// Diagnostics: "ringpool: " + message + "\n" on stderr, when verbose.
void verbose_msg(const char* msg);

}  // namespace ringpool::pool
