// The shim's counters as named counters of the allocator (counters.hpp).
#include "counters.hpp"

namespace ringpool::shim {

unsigned g_first = pool::k_named_counters;

namespace {

static_assert(k_counters <= pool::k_named_counters, "the shim's counters fit the stats region");

uint64_t g_at_fork[k_counters];

}  // namespace

void counters_init() {
  static const pool::CounterSpec specs[] = {
#define RINGPOOL_SHIM_SPEC(name, label, help) {"socket_" #name, label, help, pool::CounterKind::counter},
      RINGPOOL_SHIM_COUNTERS(RINGPOOL_SHIM_SPEC)
#undef RINGPOOL_SHIM_SPEC
  };
  unsigned first;
  if (pool::counters_register("sockets", specs, k_counters, &first)) g_first = first;
}

void counters_fork_child() {
  if (g_first < pool::k_named_counters) pool::counters_read(g_first, k_counters, g_at_fork);
}

Counters counters() {
  Counters c = {};
  if (!enabled() || g_first >= pool::k_named_counters) return c;
  uint64_t now[k_counters];
  pool::counters_read(g_first, k_counters, now);
#define RINGPOOL_SHIM_TOTAL(name, label, help) c.name = now[k_##name] - g_at_fork[k_##name];
  RINGPOOL_SHIM_COUNTERS(RINGPOOL_SHIM_TOTAL)
#undef RINGPOOL_SHIM_TOTAL
  return c;
}

}  // namespace ringpool::shim
