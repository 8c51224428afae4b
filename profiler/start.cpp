// Start and exit: the constructor that turns the profiler on (or leaves
// everything off), the destructor that writes the profile and leak report.
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "profiler.hpp"

namespace ringpool::profile {

namespace {

bool path_init() {
  const char* v = pool::options().profile;
  if (*v == 0) return true;
  size_t n = 0;
  if (v[0] != '/') {
    if (getcwd(g_path, sizeof g_path) == nullptr) return false;
    n = strlen(g_path);
    if (n + 1 < sizeof g_path && (n == 0 || g_path[n - 1] != '/')) g_path[n++] = '/';
  }
  size_t len = strlen(v);
  if (n + len >= sizeof g_path) return false;
  memcpy(g_path + n, v, len + 1);
  return true;
}

}  // namespace

// After pool's constructor (101), before ordinary ones: their allocations
// are profiled too.
__attribute__((constructor(102))) void profile_start() {
  pool::ensure_init();
  const pool::Options& o = pool::options();
  if (!o.profiling) return;
  // Opened with dlopen rather than preloaded, the library does not serve
  // malloc (init.cpp says so): the hooks would never run, and the exit
  // profile would be empty. Stay off.
  if (!preload::preloaded()) return;
  ThreadState& t = t_state;
  t.busy = true;
  g_rate = o.profile_rate ? o.profile_rate : 1;
  g_exact = g_rate == 1;
  g_seed = platform::random_word();
  if (!path_init()) {
    platform::write_err("ringpool: RINGPOOL_PROFILE: path too long; heap profiling is off\n");
    t.busy = false;
    return;
  }
  if (!stacks_init() || !live_init()) {
    platform::write_err("ringpool: no memory for the heap profiler's tables; heap profiling is off\n");
    t.busy = false;
    return;
  }
  unwinder_init();
  channel_open();
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  g_ready = true;
  pool::set_profile_hooks(pool::ProfileHooks{next_gap, on_sample, on_free, on_slow});
  if (o.verbose) {
    platform::write_err(g_exact ? "ringpool: heap profiling on (every block sampled)\n" : "ringpool: heap profiling on\n");
  }
  t.busy = false;
}

__attribute__((destructor)) void profile_finish() {
  if (!g_ready) return;
  ThreadState& t = t_state;
  bool was = t.busy;
  t.busy = true;
  platform::KeepErrno keep;
  if (g_path[0]) write_exit_profile();
  if (pool::options().leaks) write_leak_report();
  t.busy = was;
}

}  // namespace ringpool::profile
