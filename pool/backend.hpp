// What segment.cpp (segments, spans, large blocks, purging) and huge.cpp
// (huge blocks and their cache) share: the back end's totals, all under
// g_lock, and the guard that publishes them.
#pragma once
#include "pool.hpp"
#include "segment.hpp"

namespace ringpool::pool {

void publish_locked();
void start_purger();
extern bool g_purger_wanted;  // under g_lock

// Takes g_lock; on release, copies the back end's totals into the shared
// stats region, so every change is published with the lock that made it.
class LockGuard {
 public:
  explicit LockGuard(platform::Mutex& m) : m_(m) { m_.lock(); }
  ~LockGuard() {
    publish_locked();
    bool purger = g_purger_wanted;
    m_.unlock();
    if (RINGPOOL_UNLIKELY(purger) && !t_defer_purger) start_purger();  // never under a lock
  }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;
 private:
  platform::Mutex& m_;
};

extern size_t g_in_use_bytes;  // units in pages + huge blocks in use
extern size_t g_dirty_bytes;   // free units not purged + cached huge mappings
extern size_t g_purged_bytes;
extern size_t g_huge_bytes, g_huge_count;  // huge.cpp
extern uint64_t g_huge_allocs, g_huge_frees;

// Purge on the delay, and at once beyond the drop limit (segment.hpp).
void purge_check_locked(uint64_t now);

// ---- huge.cpp

// Bytes in cached huge mappings.
size_t huge_cache_bytes();
// Unmap the oldest cached mapping; false when there is none.
bool huge_cache_drop_oldest();
// Unmap the cached mappings older than delay.
void huge_cache_expire(uint64_t now, uint64_t delay);
// ours_not_block's part for huge blocks: a freed one, inside a live one,
// the huge table itself.
OursKind huge_ours_locked(const void* p);

}  // namespace ringpool::pool
