// The process side of the statistics (see stats.hpp): the shared region.
#include "stats.hpp"

#include <string.h>

#include "channel.hpp"
#include "platform.hpp"
#include "pool.hpp"
#include "types.hpp"

namespace ringpool::pool {

namespace {

// Until init creates the shared region (and forever if it cannot), the
// counters live here, private to the process.
constexpr uint32_t k_boot_slots = 8;
RINGPOOL_LARGE_BSS alignas(64) char g_boot[sizeof(SharedStats) + (k_boot_slots - 1) * sizeof(HeapCounters)];
SharedStats* g_region = reinterpret_cast<SharedStats*>(g_boot);
size_t g_region_bytes = sizeof g_boot;
bool g_published;  // g_region is the file in the channel directory
// The last slot, where heaps with private counters flush: 0 not tried yet,
// 1 its pages are there, 2 the file system had none (nothing is flushed).
int g_overflow_state;

// A slot of the published file gets its pages when it is handed out: where
// /dev/shm is full, writing to a page the file never got raises SIGBUS.
bool slot_usable(HeapCounters* c) { return !g_published || platform::populate(c, sizeof *c); }

constexpr uint32_t k_shared_slots = 4096;  // the last is the private heaps' (see stats_slot_acquire)

void fill_header(SharedStats* s, uint32_t slots) {
  memcpy(s->magic, k_stats_magic, sizeof s->magic);
  s->layout = k_stats_layout;
  s->header_size = sizeof(SharedStats);
  s->num_classes = k_num_classes;
  s->slots = slots;
  s->pid = platform::process_id();
  for (unsigned c = 0; c < k_num_classes; c++) s->class_size[c] = k_classes.size[c];
}

// The region published in the channel directory, its first `copy_bytes`
// from `from`, mapped at `at` if not null; nullptr on failure.
SharedStats* publish(const SharedStats* from, size_t copy_bytes, void* at) {
  void* p = channel::publish(channel::k_stats, shared_stats_bytes(k_shared_slots), from, copy_bytes, at);
  if (p == nullptr) return nullptr;
  SharedStats* s = static_cast<SharedStats*>(p);
  fill_header(s, k_shared_slots);
  s->start_ms = platform::now_ms();
  return s;
}

platform::Mutex g_named_lock;  // one registration at a time

bool fill_text(char* to, size_t size, const char* from) {
  size_t n = strlen(from);
  if (n >= size) return false;
  memcpy(to, from, n + 1);
  return true;
}

bool name_taken(const SharedStats* s, uint32_t used, const char* name) {
#define RINGPOOL_TAKEN(field, kind, help) \
  if (strcmp(name, #field) == 0) return true;
  RINGPOOL_GLOBAL_COUNTERS(RINGPOOL_TAKEN)
#undef RINGPOOL_TAKEN
  for (uint32_t i = 0; i < used; i++)
    if (strcmp(name, s->names[i].name) == 0) return true;
  return false;
}

}  // namespace

SharedStats* stats_region() {
  if (g_region->magic[0] == 0) fill_header(g_region, k_boot_slots);
  return g_region;
}

bool in_stats_region(const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  return a - reinterpret_cast<uintptr_t>(g_region) < g_region_bytes || a - reinterpret_cast<uintptr_t>(g_boot) < sizeof g_boot;
}

GlobalStats& stats_global() { return stats_region()->global; }

bool counters_register(const char* group, const CounterSpec* specs, unsigned n, unsigned* first) {
  platform::LockGuard guard(g_named_lock);
  SharedStats* s = stats_region();
  uint32_t used = s->named_used;
  if (n == 0 || n > k_named_counters - used) return false;
  for (unsigned i = 0; i < n; i++) {
    const CounterSpec& c = specs[i];
    CounterName& to = s->names[used + i];
    memset(&to, 0, sizeof to);
    if (!fill_text(to.name, sizeof to.name, c.name) || !fill_text(to.group, sizeof to.group, group) ||
        !fill_text(to.label, sizeof to.label, c.label) || !fill_text(to.help, sizeof to.help, c.help))
      return false;
    to.kind = (uint32_t)c.kind;
    // What a reader would clean is refused here, so that every reader
    // prints what was registered.
    CounterName checked = to;
    if (!clean_counter_name(&checked) || name_taken(s, used + i, to.name)) return false;
  }
  // Readers see the names whole, or not at all.
  __atomic_store_n(&s->named_used, used + n, __ATOMIC_RELEASE);
  *first = used;
  return true;
}

void counter_add(unsigned id, uint64_t by) {
  if (id >= k_named_counters) return;
  if (HeapCounters* c = thread_counters()) {
    __atomic_store_n(&c->named[id], c->named[id] + by, __ATOMIC_RELAXED);
    return;
  }
  stat_inc(stats_region()->named_global[id], by);
}

void counters_read(unsigned first, unsigned n, uint64_t* out) {
  thread_flush_stats();
  const SharedStats* s = stats_region();
  uint32_t used = __atomic_load_n(&s->slots_used, __ATOMIC_ACQUIRE);
  sum_named(s, used < s->slots ? used : s->slots, first, n, out);
}

HeapCounters* stats_slot_acquire() {
  SharedStats* s = stats_region();
  uint32_t i = __atomic_fetch_add(&s->slots_used, 1, __ATOMIC_RELAXED);
  if (i < s->slots - 1) return slot_usable(&s->heaps[i]) ? &s->heaps[i] : nullptr;
  __atomic_store_n(&s->slots_used, s->slots, __ATOMIC_RELAXED);  // readers: all slots
  return nullptr;
}

void stats_flush_private(const HeapCounters* live, HeapCounters* flushed) {
  SharedStats* s = stats_region();
  int state = __atomic_load_n(&g_overflow_state, __ATOMIC_ACQUIRE);
  if (state == 0) {
    state = slot_usable(&s->heaps[s->slots - 1]) ? 1 : 2;
    __atomic_store_n(&g_overflow_state, state, __ATOMIC_RELEASE);
  }
  if (state == 2) return;
  uint64_t* to = reinterpret_cast<uint64_t*>(&s->heaps[s->slots - 1]);
  const uint64_t* now = reinterpret_cast<const uint64_t*>(live);
  uint64_t* done = reinterpret_cast<uint64_t*>(flushed);
  for (size_t i = 0; i < sizeof(HeapCounters) / sizeof(uint64_t); i++) {
    uint64_t v = __atomic_load_n(&now[i], __ATOMIC_RELAXED);
    if (v == done[i]) continue;
    __atomic_fetch_add(&to[i], v - done[i], __ATOMIC_RELAXED);
    done[i] = v;
  }
}

void stats_init() {
  // Heaps made before this point keep their boot slots (none normally);
  // the file's pages past those copied stay untouched until used.
  SharedStats* boot = stats_region();
  uint32_t used = boot->slots_used < k_boot_slots ? boot->slots_used : k_boot_slots;
  SharedStats* s = publish(boot, shared_stats_bytes(used ? used : 1), nullptr);
  if (s == nullptr) return;  // no channel directory: stay private
  g_region = s;
  g_region_bytes = shared_stats_bytes(k_shared_slots);
  g_published = true;
}

void stats_fork_child() {
  channel::forked();
  if (!g_published) return;
  // The parent's region is shared with us: a new file, mapped over it at
  // the same address so that the slot pointers stay valid, takes a copy.
  // Only the slots handed out so far: copying all 4.7 MB made every fork
  // cost 4 ms.
  uint32_t used = __atomic_load_n(&g_region->slots_used, __ATOMIC_RELAXED);
  if (used > g_region->slots) used = g_region->slots;
  if (publish(g_region, shared_stats_bytes(used ? used : 1), g_region) != nullptr) {
    g_overflow_state = 0;  // a new file: its last slot's pages are its own
    return;
  }
  // Keep counting privately rather than into the parent's numbers.
  void* p = platform::map_private_copy(g_region, g_region_bytes);
  if (p) g_region = static_cast<SharedStats*>(p);
  g_published = false;
}

void snapshot_now(Snapshot* out) {
  ensure_init();  // the region may move at init: read it after, not during
  thread_flush_stats();
  SharedStats* s = stats_region();
  snapshot_from(s, shared_stats_bytes(s->slots), platform::now_ms(), out);
  out->resident = platform::resident_bytes();
}

}  // namespace ringpool::pool
