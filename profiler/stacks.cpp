// The stack table: stack -> samples and estimated blocks and bytes, records
// in an mmap arena chained from a bucket array, never removed.
#include <string.h>

#include "profiler.hpp"

namespace ringpool::profile {

constexpr size_t k_arena_bytes = size_t{256} << 20;  // reserved, touched as used
constexpr uint32_t k_bucket_bits = 16;

Mutex g_stack_lock;
char* g_arena;
size_t g_arena_used;

namespace {
uint32_t* g_buckets;      // 1 << k_bucket_bits chain heads
uint32_t g_overflow_id;   // the empty stack, for samples once the arena is full
}  // namespace

uint64_t stack_hash(const uintptr_t* f, int depth) {
  uint64_t h = 0x84222325cbf29ce4ULL ^ (uint64_t)depth;
  for (int i = 0; i < depth; i++) h = mix64(h ^ f[i]);
  return h;
}

uint32_t intern_locked(uint64_t h, const uintptr_t* f, int depth) {
  uint32_t* head = &g_buckets[h >> (64 - k_bucket_bits)];
  for (uint32_t id = *head; id; id = rec(id)->next) {
    StackRec* r = rec(id);
    if (r->hash == h && r->depth == (uint32_t)depth && memcmp(r->frames, f, sizeof(uintptr_t) * depth) == 0) return id;
  }
  size_t need = rec_bytes((uint32_t)depth);
  if (g_arena_used + need > k_arena_bytes) return g_overflow_id;
  uint32_t id = (uint32_t)(g_arena_used / 8);
  g_arena_used += need;
  StackRec* r = rec(id);
  memset(r, 0, sizeof *r);
  r->hash = h;
  r->depth = (uint32_t)depth;
  memcpy(r->frames, f, sizeof(uintptr_t) * depth);
  r->next = *head;
  *head = id;
  return id;
}

void stacks_reset() {
  platform::decommit(g_buckets, sizeof(uint32_t) << k_bucket_bits);
  g_arena_used = 8;
  g_overflow_id = intern_locked(stack_hash(nullptr, 0), nullptr, 0);
}

bool stacks_init() {
  g_arena = static_cast<char*>(platform::reserve(k_arena_bytes));
  g_buckets = static_cast<uint32_t*>(platform::map(sizeof(uint32_t) << k_bucket_bits));
  if (g_arena == nullptr || g_buckets == nullptr) return false;
  stacks_reset();
  return true;
}

void account(uint32_t id, uint64_t size, int sign) {
  double blocks;
  uint64_t bytes;
  weight(size, &blocks, &bytes);
  LockGuard g(g_stack_lock);
  StackRec* r = rec(id);
  if (sign > 0) {
    r->samples++;
    r->alloc_blocks += blocks;
    r->alloc_bytes += bytes;
    r->live_samples++;
    r->live_blocks += blocks;
    r->live_bytes += bytes;
  } else {
    r->live_samples--;
    r->live_blocks -= blocks;
    r->live_bytes -= bytes;
  }
}

}  // namespace ringpool::profile
