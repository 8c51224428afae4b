// The live set: sampled blocks still allocated, address -> {size, stack},
// in shards of open addressing behind a filter of counters by address.
#include <string.h>

#include "profiler.hpp"

namespace ringpool::profile {

namespace {

struct alignas(64) Shard {
  Mutex lock;
  unsigned log_cap;
  size_t count;
  LiveEntry* slots;
};

constexpr unsigned k_shard_bits = 4;
constexpr unsigned k_initial_log_cap = 8;
RINGPOOL_LARGE_BSS Shard g_shards[1u << k_shard_bits];
// Counters by address, saturating at 255 (then never decremented): zero
// means "no sampled block starts in any 16-byte granule with this index", so
// free skips the lock. The index is the address's granule number itself, not
// a hash: the filter is a 1/16-scale shadow of the heap (aliasing every
// 16 MiB), so a free touches a filter line near the ones its neighbours
// touched. A random index cost a cache miss per free (measured: 77% of
// on_free's time, +3-5 ns per malloc/free pair). A block is inserted before
// malloc returns it, so any free of it sees the count.
}  // namespace

uint8_t* g_filter;

namespace {

Shard& shard_of(uint64_t h) { return g_shards[h & ((1u << k_shard_bits) - 1)]; }
size_t home_of(uint64_t h, unsigned log_cap) { return (size_t)(h >> k_shard_bits) & ((size_t{1} << log_cap) - 1); }

void filter_add(uintptr_t addr, int d) {
  uint8_t* c = filter_of(addr);
  uint8_t v = __atomic_load_n(c, __ATOMIC_RELAXED);
  while (v != 255 && !(d < 0 && v == 0)) {
    if (__atomic_compare_exchange_n(c, &v, (uint8_t)(v + d), true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return;
  }
}

LiveEntry* find_locked(Shard& s, uintptr_t addr, uint64_t h) {
  size_t mask = (size_t{1} << s.log_cap) - 1;
  for (size_t i = home_of(h, s.log_cap);; i = (i + 1) & mask) {
    if (s.slots[i].addr == addr) return &s.slots[i];
    if (s.slots[i].addr == 0) return nullptr;
  }
}

void place_locked(Shard& s, const LiveEntry& e) {
  size_t mask = (size_t{1} << s.log_cap) - 1;
  size_t i = home_of(mix64(e.addr), s.log_cap);
  while (s.slots[i].addr != 0) i = (i + 1) & mask;
  s.slots[i] = e;
}

// Double the shard (load stays <= 1/2). False if no memory: the sample is dropped.
bool grow_locked(Shard& s) {
  unsigned log_cap = s.log_cap + 1;
  size_t bytes = sizeof(LiveEntry) << log_cap;
  LiveEntry* slots = static_cast<LiveEntry*>(platform::map(bytes));
  if (slots == nullptr) return false;
  LiveEntry* old = s.slots;
  size_t old_cap = size_t{1} << s.log_cap;
  s.slots = slots;
  s.log_cap = log_cap;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i].addr) place_locked(s, old[i]);
  platform::unmap(old, sizeof(LiveEntry) * old_cap);
  return true;
}

// Linear probing with backward-shift deletion (no tombstones).
void erase_locked(Shard& s, LiveEntry* e) {
  size_t mask = (size_t{1} << s.log_cap) - 1;
  size_t i = (size_t)(e - s.slots);
  for (size_t j = (i + 1) & mask; s.slots[j].addr != 0; j = (j + 1) & mask) {
    size_t k = home_of(mix64(s.slots[j].addr), s.log_cap);
    // Move j into the hole at i unless its home lies cyclically in (i, j].
    bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (stays) continue;
    s.slots[i] = s.slots[j];
    i = j;
  }
  s.slots[i].addr = 0;
  s.count--;
}

}  // namespace

// Record a sampled block; a stale entry at the same address (a huge block
// moved by mremap in realloc, which calls no hook) is returned in *old.
bool live_insert(uintptr_t addr, uint64_t size, uint32_t stack, LiveEntry* old) {
  uint64_t h = mix64(addr);
  Shard& s = shard_of(h);
  LockGuard g(s.lock);
  if (LiveEntry* e = find_locked(s, addr, h)) {
    *old = *e;
    e->size = size;
    e->stack = stack;
    return true;
  }
  if ((s.count + 1) * 2 > (size_t{1} << s.log_cap) && !grow_locked(s)) {
    old->addr = addr;  // not recorded: undo its accounting
    old->size = size;
    old->stack = stack;
    return true;
  }
  place_locked(s, LiveEntry{addr, size, stack, 0});
  s.count++;
  filter_add(addr, +1);
  return false;
}

bool live_remove(uintptr_t addr, uint64_t h, LiveEntry* out) {
  Shard& s = shard_of(h);
  LockGuard g(s.lock);
  LiveEntry* e = find_locked(s, addr, h);
  if (e == nullptr) return false;
  *out = *e;
  erase_locked(s, e);
  filter_add(addr, -1);
  return true;
}

bool live_init() {
  g_filter = static_cast<uint8_t*>(platform::map(size_t{1} << k_filter_bits));
  if (g_filter == nullptr) return false;
  for (Shard& s : g_shards) {
    s.log_cap = k_initial_log_cap;
    s.count = 0;
    s.slots = static_cast<LiveEntry*>(platform::map(sizeof(LiveEntry) << k_initial_log_cap));
    if (s.slots == nullptr) return false;
  }
  return true;
}

void live_reset() {  // fork child: the shards keep their memory, emptied
  platform::decommit(g_filter, size_t{1} << k_filter_bits);
  for (Shard& s : g_shards) {
    s.lock.reset();
    platform::decommit(s.slots, sizeof(LiveEntry) << s.log_cap);
    s.count = 0;
  }
}

void live_lock_all() {
  for (Shard& s : g_shards) s.lock.lock();
}

void live_unlock_all() {
  for (Shard& s : g_shards) s.lock.unlock();
}

}  // namespace ringpool::profile
