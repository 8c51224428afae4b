// Thread states, their registry, thread exit and fork (see thread_state.hpp).
#include "thread_state.hpp"

#include <pthread.h>

#include <new>

#include "../pool/platform.hpp"
#include "counters.hpp"
#include "probe.hpp"
#include "route.hpp"
#include "signals.hpp"

namespace ringpool::shim {

bool g_on = false;
long g_pid = 0;
__thread ThreadState* t_state;

namespace {

constexpr size_t k_state_bytes = platform::round_os_page(sizeof(ThreadState));

__thread bool t_making;       // a signal handler must not make a second state
__thread bool t_setting_up;   // making this thread's ring: calls made meanwhile
                              // (a diagnostic write to a socket stderr) pass
platform::Mutex g_lock;       // guards g_head
ThreadState* g_head;
pthread_key_t g_key;
bool g_key_ok;

void unlink_locked(ThreadState* ts) {
  if (ts->prev) ts->prev->next = ts->next;
  if (ts->next) ts->next->prev = ts->prev;
  if (g_head == ts) g_head = ts->next;
}

// pthread key destructor. Nothing is in flight here unless a handler
// jumped out of a routed wait; settle (a no-op otherwise), then drop the
// ring.
void thread_exit(void* p) {
  auto* ts = static_cast<ThreadState*>(p);
  route::settle(*ts);
  ts->ring.destroy();
  {
    platform::LockGuard guard(g_lock);
    unlink_locked(ts);
  }
  if (t_state == ts) t_state = nullptr;
  ts->~ThreadState();
  platform::unmap(ts, k_state_bytes);
}

// The locks are held across fork with every signal blocked: a handler of
// the forking thread (a SIGCHLD handler that re-installs itself with
// signal(), say) would otherwise wait for a lock its own thread holds.
sigset_t g_fork_mask;  // the forking thread's mask; forks are serialised

void fork_prepare() {
  sys::block_signals(&g_fork_mask);
  probe::fork_prepare();
  signals::g_lock.lock();
  g_lock.lock();
}

void fork_parent() {
  g_lock.unlock();
  signals::g_lock.unlock();
  probe::fork_parent();
  sys::sigprocmask(SIG_SETMASK, &g_fork_mask, nullptr);
}

// The child has one thread and a private copy of every ring's pages: drop
// them all without a word to the kernel (the rings are the parent's).
void fork_child() {
  __atomic_store_n(&g_pid, sys::getpid(), __ATOMIC_RELAXED);
  ThreadState* ts = g_head;
  while (ts) {
    ThreadState* next = ts->next;
    ts->ring.destroy();
    ts->~ThreadState();
    platform::unmap(ts, k_state_bytes);
    ts = next;
  }
  g_head = nullptr;
  counters_fork_child();
  t_state = nullptr;
  if (g_key_ok) pthread_setspecific(g_key, nullptr);
  g_lock.reset();
  signals::g_lock.reset();
  probe::fork_child();
  sys::sigprocmask(SIG_SETMASK, &g_fork_mask, nullptr);
}

}  // namespace

ThreadState* thread_state_slow() {
  if (!g_on || t_making) return nullptr;
  t_making = true;
  ThreadState* ts = nullptr;
  if (void* mem = platform::map(k_state_bytes)) {
    ts = new (mem) ThreadState();
    {
      platform::LockGuard guard(g_lock);
      ts->next = g_head;
      if (g_head) g_head->prev = ts;
      g_head = ts;
    }
    if (g_key_ok) pthread_setspecific(g_key, ts);
    t_state = ts;
  }
  t_making = false;
  return ts;
}

Ring* thread_ring(ThreadState* ts) {
  if (ts->ring_state == ThreadState::k_ring_ready) return &ts->ring;
  if (ts->ring_state == ThreadState::k_ring_failed) return nullptr;
  // A vfork or raw-clone child shares this state with its parent: it must
  // neither make a ring here nor mark the parent's thread as failed.
  if (t_setting_up || !same_process()) return nullptr;
  t_setting_up = true;
  const char* step = "";
  bool usable = probe::usable();
  int e = usable ? ts->ring.create(&step) : 0;
  if (usable && e == 0) {
    ts->ring_state = ThreadState::k_ring_ready;
    count(k_rings);
  } else {
    if (usable) probe::ring_failed(e, step);
    ts->ring_state = ThreadState::k_ring_failed;
  }
  t_setting_up = false;
  return ts->ring_state == ThreadState::k_ring_ready ? &ts->ring : nullptr;
}

void thread_state_init() {
  __atomic_store_n(&g_pid, sys::getpid(), __ATOMIC_RELAXED);
  g_key_ok = pthread_key_create(&g_key, thread_exit) == 0;
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}

}  // namespace ringpool::shim
