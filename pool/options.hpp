// Options: every knob in one table (options.cpp), with its default, range
// and help, read from RINGPOOL_<NAME> environment variables once at
// start-up. Before that, the table's defaults hold.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace ringpool::pool {

constexpr size_t k_option_path_max = 4096;

struct Options {
  uint64_t purge_delay_ms;  // RINGPOOL_PURGE_DELAY
  size_t retain_bytes;      // RINGPOOL_RETAIN (MiB in the environment)
  int verbose;              // RINGPOOL_VERBOSE
  int harden;               // RINGPOOL_HARDEN
  int stats;                // RINGPOOL_STATS
  int leaks;                // RINGPOOL_LEAKS
  uint64_t profile_rate;    // RINGPOOL_PROFILE_RATE (bytes between samples)
  int purge_thread;         // RINGPOOL_PURGE_THREAD
  int thp;                  // RINGPOOL_THP
  int uring;                // RINGPOOL_URING (acted on by uring_shim/)
  uint64_t fault_mmap;      // RINGPOOL_FAULT_MMAP (tests)
  // Paths, copied at start-up ("" when unset): later changes to the
  // environment have no effect, as for the numbers.
  char profile[k_option_path_max];      // RINGPOOL_PROFILE
  char stats_file[k_option_path_max];   // RINGPOOL_STATS_FILE (%p: the pid)
  char channel_dir[k_option_path_max];  // RINGPOOL_CHANNEL_DIR ("": /dev/shm)
  bool profiling;                       // RINGPOOL_PROFILE is set, or RINGPOOL_LEAKS=1
};

const Options& options();
// Parse the environment; warn once per bad value (write(2)) and keep the
// default. Safe before libc's constructors ran.
void options_init();

// One row per option. A number has a default and a range; a path
// (set == nullptr) only a place to be copied to.
struct OptionInfo {
  const char* name;  // without the RINGPOOL_ prefix
  const char* help;
  long long def, min, max;
  void (*set)(Options& o, long long v);  // store a value already range-checked
  char* (*path)(Options& o);
};

// pattern with each %p replaced by the pid, into out (size bytes); with
// tag_child, a path without %p gets ".PID" appended (a fork child's copy
// must not overwrite its parent's file). False if it does not fit.
bool expand_pid(const char* pattern, bool tag_child, char* out, size_t size);

// Diagnostics: "ringpool: " + message + "\n" on stderr, when verbose.
void verbose_msg(const char* msg);

}  // namespace ringpool::pool
