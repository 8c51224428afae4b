// profiler/: the heap profiler, an adapter beside pool/ like uring_shim/:
// sampled allocation stacks, written at exit (and on request) in the
// gperftools heap-profile text format; RINGPOOL_LEAKS=1 prints the sampled
// blocks still live at exit. pool/ knows it only through ProfileHooks.
//
// Parts, one file each: maths.hpp (arithmetic without libm), sampler.cpp
// (per-thread draws, weights), unwind.cpp, stacks.cpp (the stack table),
// live.cpp (the live set), output.cpp (the profile writer), leaks.cpp (the
// leak report), channel.cpp (requests from `ringpool profile PID`),
// hooks.cpp, fork.cpp, start.cpp (start and exit). This header declares
// what the parts share.
//
// Glossary
//   rate       RINGPOOL_PROFILE_RATE: the mean number of bytes allocated
//              between two samples (default 512 KiB; 1 samples every block).
//   sample points  a Poisson process over the bytes each thread allocates:
//              gaps are exponential with mean `rate`, drawn as -ln(u) * rate
//              from a per-thread xorshift generator (next_gap). pool/ keeps
//              the countdown to the next point and picks the block that holds
//              it (heap.cpp says how the fast paths stay as they are). A small
//              block spans its class size, a large one its size: a block
//              spanning s bytes holds a point with probability
//              p(s) = 1 - exp(-s/rate), and the gap after a sampled block is
//              drawn afresh from its end (the process is memoryless), as
//              tcmalloc and jemalloc do.
//   weight     a sample of n bytes stands for 1/p(s) blocks and n/p(s) bytes: dividing by
//              the probability of being seen makes the sums unbiased
//              (Horvitz-Thompson; pprof's scaleHeapSample uses the same
//              1/(1 - exp(-s/rate)) factor). For s << rate a sample weighs
//              about `rate` bytes; for s >> rate, s bytes. Rate 1: weight 1.
//   stack      the return addresses above malloc (libgcc's unwinder, through
//              glibc's backtrace(): see capture), leading frames inside this
//              library dropped, at most k_depth.
//   stack table  stack -> {samples, estimated blocks and bytes allocated,
//              the same for those still live}. Records live in an mmap arena,
//              chained from a bucket array, and are never removed.
//   live set   sampled blocks still allocated: address -> {size, stack}, in
//              16 shards of open addressing, plus a filter of counters by
//              address (a 1/16-scale shadow of the heap) so that a free of an
//              unsampled block (nearly all of them) takes no lock.
//
// Rules that keep this from deadlocking (gperftools#1210, jemalloc#585):
//   - pool/ calls the hooks outside its own locks (after alloc, before free);
//   - nothing here holds a lock while unwinding (which may take the loader's
//     locks and allocate); the tables' locks only guard table updates;
//   - a thread inside the profiler has t_state.busy set: what it allocates
//     (the unwinder's first-call setup, say) is served without profiling;
//   - nothing here calls malloc: memory comes from platform::map;
//   - fork: the prepare handler takes every lock here; the child starts
//     with empty tables (see fork_child). The unwinder takes no lock.
//   - in a process that is off (no RINGPOOL_PROFILE or RINGPOOL_LEAKS),
//     nothing here runs past one test in the constructor: no hooks, no
//     unwinder, no channel.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <atomic>

#include "../pool/pool.hpp"
#include "../preload/preload.hpp"
#include "channel_layout.hpp"
#include "maths.hpp"

#pragma GCC visibility push(hidden)

namespace ringpool::profile {

namespace pool = ringpool::pool;
namespace platform = ringpool::platform;
using platform::LockGuard;
using platform::Mutex;

constexpr int k_depth = 128;       // frames kept per stack (jemalloc keeps 128)
constexpr int k_skip_room = 16;    // extra frames unwound for our own
constexpr size_t k_path_max = 4096;

// ---- sampler.cpp: per-thread draws and the weight of a sample
struct ThreadState {
  uint64_t rng;       // xorshift64 state, never 0 once seeded
  bool seeded;
  bool busy;          // inside the profiler: allocations are not profiled
};
extern __thread ThreadState t_state __attribute__((tls_model("initial-exec")));
extern uint64_t g_seed;
extern bool g_ready;           // tables set up and hooks registered
extern bool g_exact;           // rate 1: every block sampled with weight 1
extern uint64_t g_rate;
extern bool g_forked_child;    // this process is a fork child (names its profile apart)
extern char g_path[k_path_max];  // RINGPOOL_PROFILE made absolute, "" for none
// The bytes to the next sample point: floor of an exponential draw.
int64_t draw_gap(ThreadState& t, uint64_t rate);
void seed(ThreadState& t);
// The blocks and bytes a sample of `size` bytes stands for.
void weight(uint64_t size, double* blocks, uint64_t* bytes);

// ---- unwind.cpp
int capture(uintptr_t* out);
void unwinder_init();

// ---- stacks.cpp: stack -> counts
struct StackRec {
  uint64_t hash;
  uint32_t next;   // next record id in the bucket's chain, 0 at the end
  uint32_t depth;
  uint64_t samples, live_samples;
  double alloc_blocks, live_blocks;  // estimates
  uint64_t alloc_bytes, live_bytes;  // estimates
  uintptr_t frames[];                // depth of them
};
static_assert(sizeof(StackRec) % 8 == 0, "records stay 8-byte aligned in the arena");
extern Mutex g_stack_lock;  // guards the table
extern char* g_arena;       // record id i is at g_arena + 8 * i; id 0 is unused
extern size_t g_arena_used; // bytes
inline StackRec* rec(uint32_t id) { return reinterpret_cast<StackRec*>(g_arena + size_t{8} * id); }
inline size_t rec_bytes(uint32_t depth) { return sizeof(StackRec) + sizeof(uintptr_t) * depth; }
uint64_t stack_hash(const uintptr_t* f, int depth);
uint32_t intern_locked(uint64_t h, const uintptr_t* f, int depth);  // under g_stack_lock
void stacks_reset();
bool stacks_init();
void account(uint32_t id, uint64_t size, int sign);
template <typename F>
void for_each_stack_locked(F f) {
  for (size_t off = 8; off < g_arena_used;) {
    StackRec* r = reinterpret_cast<StackRec*>(g_arena + off);
    f(r);
    off += rec_bytes(r->depth);
  }
}

// ---- live.cpp: sampled blocks still allocated
struct LiveEntry {
  uintptr_t addr;  // 0: empty slot
  uint64_t size;
  uint32_t stack;
  uint32_t unused;
};
constexpr unsigned k_filter_bits = 20;
extern uint8_t* g_filter;
inline uint8_t* filter_of(uintptr_t addr) { return &g_filter[(addr >> 4) & ((1u << k_filter_bits) - 1)]; }
bool live_insert(uintptr_t addr, uint64_t size, uint32_t stack, LiveEntry* old);
bool live_remove(uintptr_t addr, uint64_t h, LiveEntry* out);
bool live_init();
void live_reset();
void live_lock_all();
void live_unlock_all();

// ---- output.cpp: the profile writer
struct Writer {
  int fd;
  bool failed;
  size_t n;
  char buf[1 << 16];

  void start(int to) {
    fd = to;
    failed = false;
    n = 0;
  }
  void flush();
  void put(const char* s, size_t len);
  void str(const char* s) { put(s, strlen(s)); }
  void dec(uint64_t v, int width = 0);  // decimal, right-aligned in `width` columns
  void hex(uint64_t v);
};
extern Mutex g_dump_lock;  // one dump (profile or leak report) at a time
extern Writer g_writer;
struct Rounded {
  uint64_t live_blocks, live_bytes, alloc_blocks, alloc_bytes;
};
Rounded rounded(const StackRec* r);
bool write_profile_locked(int fd);  // under g_dump_lock
void write_exit_profile();

// ---- leaks.cpp
void write_leak_report();

// ---- channel.cpp
extern Channel* g_channel;
void channel_open();
void answer_request(Channel* ch);
inline void poll_request() {
  Channel* ch = __atomic_load_n(&g_channel, __ATOMIC_RELAXED);
  if (RINGPOOL_UNLIKELY(ch != nullptr &&
                        __atomic_load_n(&ch->request, __ATOMIC_RELAXED) != __atomic_load_n(&ch->served, __ATOMIC_RELAXED)))
    answer_request(ch);
}

// ---- hooks.cpp: what pool/ calls
int64_t next_gap();
void on_sample(void* p, size_t size);
void on_slow();
void on_free(void* p);

// ---- fork.cpp
void fork_prepare();
void fork_parent();
void fork_child();

}  // namespace ringpool::profile

#pragma GCC visibility pop
