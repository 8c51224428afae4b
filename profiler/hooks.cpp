// The hooks pool/ calls: sample points, sampled blocks and their frees,
// and every malloc slow path (where a request is answered).
#include "profiler.hpp"

namespace ringpool::profile {

namespace {

__attribute__((noinline)) void take_sample(ThreadState& t, void* p, size_t size) {
  platform::KeepErrno keep;
  t.busy = true;
  uintptr_t frames[k_depth];
  int depth = capture(frames);
  uint32_t id;
  {
    LockGuard g(g_stack_lock);
    id = intern_locked(stack_hash(frames, depth), frames, depth);
  }
  account(id, size, +1);
  LiveEntry old;
  if (live_insert(reinterpret_cast<uintptr_t>(p), size, id, &old)) account(old.stack, old.size, -1);
  t.busy = false;
}

__attribute__((noinline)) void free_sampled(void* p) {
  platform::KeepErrno keep;
  LiveEntry e;
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (live_remove(a, mix64(a), &e)) account(e.stack, e.size, -1);
}

}  // namespace

// The hooks. pool/ calls on_sample and next_gap once per sample, on_slow on
// every malloc slow path (a process answers a request on its next one, in
// any thread), on_free for sampled and large blocks: none is on a fast path.
int64_t next_gap() {
  ThreadState& t = t_state;
  if (g_exact) return 0;
  if (RINGPOOL_UNLIKELY(!t.seeded)) seed(t);
  return draw_gap(t, g_rate);
}

void on_sample(void* p, size_t size) {
  ThreadState& t = t_state;
  if (RINGPOOL_UNLIKELY(t.busy)) return;  // the profiler's own allocation
  take_sample(t, p, size);
}

void on_slow() {
  if (RINGPOOL_LIKELY(!t_state.busy)) poll_request();
}

void on_free(void* p) {
  // Only the profiler's own allocations are freed while busy: never sampled.
  if (RINGPOOL_UNLIKELY(t_state.busy)) return;
  if (RINGPOOL_LIKELY(__atomic_load_n(filter_of(reinterpret_cast<uintptr_t>(p)), __ATOMIC_RELAXED) == 0)) return;
  return free_sampled(p);
}

}  // namespace ringpool::profile
