// The sampler: per-thread exponential gaps between sample points, and what
// a sample stands for (profiler.hpp's glossary).
#include "profiler.hpp"

namespace ringpool::profile {

__thread ThreadState t_state;

namespace {
std::atomic<uint64_t> g_seed_counter;
}  // namespace
uint64_t g_seed;

static uint64_t next_random(ThreadState& t) {
  uint64_t x = t.rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  t.rng = x;
  return x;
}

int64_t draw_gap(ThreadState& t, uint64_t rate) {
  double u = (double)((next_random(t) >> 11) + 1) * (1.0 / 9007199254740992.0);  // (0, 1]
  double gap = neg_log(u) * (double)rate;
  return gap > 4e18 ? (int64_t)4e18 : (int64_t)gap;
}

void seed(ThreadState& t) {
  uint64_t s = mix64(g_seed ^ reinterpret_cast<uintptr_t>(&t) ^
                     (g_seed_counter.fetch_add(1, std::memory_order_relaxed) * 0x9e3779b97f4a7c15ULL));
  t.rng = s ? s : 0x2545f4914f6cdd1dULL;
  t.seeded = true;
}

bool g_ready;
bool g_exact;
uint64_t g_rate;
bool g_forked_child;
RINGPOOL_LARGE_BSS char g_path[k_path_max];

void weight(uint64_t size, double* blocks, uint64_t* bytes) {
  if (g_exact) {
    *blocks = 1;
    *bytes = size;
    return;
  }
  double p = one_minus_exp_neg((double)pool::sample_span(size) / (double)g_rate);
  *blocks = 1 / p;
  *bytes = (uint64_t)((double)size / p + 0.5);
}

}  // namespace ringpool::profile
