// Start-up and the public face of the shim (uring_shim.hpp).
#include "uring_shim.hpp"

#include "../pool/errors.hpp"
#include "../pool/options.hpp"
#include "../pool/pool.hpp"
#include "../pool/line.hpp"
#include "../pool/platform.hpp"
#include "counters.hpp"
#include "probe.hpp"
#include "real.hpp"
#include "signals.hpp"
#include "thread_state.hpp"

namespace ringpool::shim {

namespace {

// After preload's constructor (101): the pool serves dlsym's allocations
// and the options (RINGPOOL_VERBOSE) are parsed.
__attribute__((constructor(102))) void shim_init() {
  objects_init();
  // RINGPOOL_URING is in pool/options' table (one parser, one warning for a
  // bad value); the allocator itself never acts on it.
  pool::init();
  if (!pool::options().uring) return;
  counters_init();
  thread_state_init();
  signals::init();
  __atomic_store_n(&g_on, true, __ATOMIC_RELEASE);
}

// With RINGPOOL_VERBOSE, the counters at exit: tests read them to see that
// routing happened at all.
__attribute__((destructor)) void shim_fini() {
  if (g_on && pool::options().verbose) print_counters();
}

}  // namespace

bool enabled() { return g_on; }

const char* unavailable_reason() { return probe::reason(); }

void print_counters() {
  Counters c = counters();
  // One write: see line.hpp.
  pool::Line line;
  line.add("ringpool: uring[").num((unsigned long long)sys::getpid()).add("]:");
#define RINGPOOL_SHIM_PRINT(name, label, help) line.add(" " #name "=").num((unsigned long long)c.name);
  RINGPOOL_SHIM_COUNTERS(RINGPOOL_SHIM_PRINT)
#undef RINGPOOL_SHIM_PRINT
  line.write();
}

}  // namespace ringpool::shim
