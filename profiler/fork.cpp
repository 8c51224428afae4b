// fork: every lock of the profiler is taken across it; the child starts
// with empty tables and a channel of its own.
#include "profiler.hpp"

namespace ringpool::profile {

namespace {
__thread bool t_busy_before_fork __attribute__((tls_model("initial-exec")));  // the forking thread's own flag
}  // namespace

void fork_prepare() {
  ThreadState& t = t_state;
  t_busy_before_fork = t.busy;
  t.busy = true;
  g_dump_lock.lock();
  g_stack_lock.lock();
  live_lock_all();
}

void fork_parent() {
  live_unlock_all();
  g_stack_lock.unlock();
  g_dump_lock.unlock();
  t_state.busy = t_busy_before_fork;
}

// Only this thread exists now: start clean, with a channel of our own.
void fork_child() {
  g_dump_lock.reset();
  g_stack_lock.reset();
  stacks_reset();
  live_reset();
  g_forked_child = true;
  Channel* ch = g_channel;
  if (ch) {
    __atomic_store_n(&g_channel, static_cast<Channel*>(nullptr), __ATOMIC_RELAXED);
    platform::unmap(ch, k_channel_bytes);
    channel_open();
  }
  ThreadState& t = t_state;
  t.seeded = false;  // do not repeat the parent's draws
  t.busy = t_busy_before_fork;
}

}  // namespace ringpool::profile
