// The heap profiler: sampled allocation stacks, written at exit (and on
// request) in the gperftools heap-profile text format; RINGPOOL_LEAKS=1
// prints the sampled blocks still live at exit.
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
#include "../pool/channel.hpp"
#include "../pool/profile_channel.hpp"

#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include "preload.hpp"

namespace ringpool::profile {

namespace {

namespace pool = ringpool::pool;
namespace platform = ringpool::platform;
using platform::LockGuard;
using platform::Mutex;

constexpr int k_depth = 128;       // frames kept per stack (jemalloc keeps 128)
constexpr int k_skip_room = 16;    // extra frames unwound for our own
constexpr size_t k_path_max = 4096;

// ---- arithmetic without libm ---------------------------------------------
// The library links no libm; these are accurate to ~1e-12, far below the
// sampling noise.

constexpr double k_ln2 = 0.693147180559945309417;

// exp(-x) for x >= 0.
double exp_neg(double x) {
  if (x > 700) return 0;
  uint64_t k = (uint64_t)(x / k_ln2 + 0.5);
  double r = x - (double)k * k_ln2;  // |r| <= ln2/2
  double term = 1, sum = 1;
  for (int i = 1; i <= 14; i++) {
    term *= -r / i;
    sum += term;
  }
  if (k > 1020) return 0;
  uint64_t bits = (1023 - k) << 52;  // 2^-k
  double scale;
  memcpy(&scale, &bits, sizeof scale);
  return sum * scale;
}

// 1 - exp(-x) for x >= 0, without cancellation for small x.
double one_minus_exp_neg(double x) {
  if (x >= 0.5) return 1 - exp_neg(x);
  double term = x, sum = x;
  for (int i = 2; i <= 18; i++) {
    term *= -x / i;
    sum += term;
  }
  return sum;
}

// -ln(u) for 0 < u <= 1.
double neg_log(double u) {
  uint64_t bits;
  memcpy(&bits, &u, sizeof bits);
  int e = (int)((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & ((uint64_t{1} << 52) - 1)) | (uint64_t{1023} << 52);
  double m;  // in [1, 2)
  memcpy(&m, &bits, sizeof m);
  double t = (m - 1) / (m + 1), t2 = t * t, term = t, sum = 0;
  for (int i = 1; i <= 25; i += 2) {
    sum += term / i;
    term *= t2;
  }
  return -(e * k_ln2 + 2 * sum);
}

uint64_t mix64(uint64_t x) {  // murmur3's finaliser
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// ---- per-thread state -------------------------------------------------------

struct ThreadState {
  uint64_t rng;       // xorshift64 state, never 0 once seeded
  bool seeded;
  bool busy;          // inside the profiler: allocations are not profiled
};
__thread ThreadState t_state;

std::atomic<uint64_t> g_seed_counter;
uint64_t g_seed;

uint64_t next_random(ThreadState& t) {
  uint64_t x = t.rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  t.rng = x;
  return x;
}

// The bytes to the next sample point: floor of an exponential draw.
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

// ---- global state -------------------------------------------------------------

bool g_ready;           // tables set up and hooks registered
bool g_exact;           // rate 1: every block sampled with weight 1
uint64_t g_rate;
bool g_forked_child;    // this process is a fork child (names its profile apart)
char g_path[k_path_max];  // RINGPOOL_PROFILE made absolute, "" for none

// The blocks and bytes a sample of `size` bytes stands for.
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

// ---- the unwinder -------------------------------------------------------------

// libgcc's unwinder, through glibc's backtrace(): it reads the unwind
// tables of the objects it finds with _dl_find_object (glibc 2.35+), which
// takes no lock, so a sampler may run in any thread, across fork, and in a
// fork child. libunwind, faster once warm, is not used: its conservative
// build (Debian's) checks every stack read by writing a byte from the
// address into a pipe it keeps open at the program's lowest free numbers;
// a program that closes its descriptors (closefrom, close_range) gives
// those numbers to its own files, and libunwind then reads a byte from one
// of them and writes one into another.
__attribute__((noinline)) int capture(uintptr_t* out) {
  void* raw[k_depth + k_skip_room];
  int n = backtrace(raw, k_depth + k_skip_room);
  uintptr_t lo, hi;
  preload::code_range(&lo, &hi);
  int i = 0;
  while (i < n && reinterpret_cast<uintptr_t>(raw[i]) >= lo && reinterpret_cast<uintptr_t>(raw[i]) < hi) i++;
  int depth = 0;
  for (; i < n && depth < k_depth; i++) out[depth++] = reinterpret_cast<uintptr_t>(raw[i]);
  return depth;
}

// backtrace() loads libgcc_s and allocates on its first call: do it now,
// so that the first real sample does not run the loader from inside malloc.
void unwinder_init() {
  void* raw[k_depth];
  backtrace(raw, k_depth);
}

// ---- the stack table ------------------------------------------------------------

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

constexpr size_t k_arena_bytes = size_t{256} << 20;  // reserved, touched as used
constexpr uint32_t k_bucket_bits = 16;

Mutex g_stack_lock;       // guards everything in this section
char* g_arena;            // record id i is at g_arena + 8 * i; id 0 is unused
size_t g_arena_used;      // bytes
uint32_t* g_buckets;      // 1 << k_bucket_bits chain heads
uint32_t g_overflow_id;   // the empty stack, for samples once the arena is full

StackRec* rec(uint32_t id) { return reinterpret_cast<StackRec*>(g_arena + size_t{8} * id); }

size_t rec_bytes(uint32_t depth) { return sizeof(StackRec) + sizeof(uintptr_t) * depth; }

uint64_t stack_hash(const uintptr_t* f, int depth) {
  uint64_t h = 0x84222325cbf29ce4ULL ^ (uint64_t)depth;
  for (int i = 0; i < depth; i++) h = mix64(h ^ f[i]);
  return h;
}

// Under g_stack_lock.
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

// ---- the live set -----------------------------------------------------------------

struct LiveEntry {
  uintptr_t addr;  // 0: empty slot
  uint64_t size;
  uint32_t stack;
  uint32_t unused;
};

struct alignas(64) Shard {
  Mutex lock;
  unsigned log_cap;
  size_t count;
  LiveEntry* slots;
};

constexpr unsigned k_shard_bits = 4;
constexpr unsigned k_initial_log_cap = 8;
constexpr unsigned k_filter_bits = 20;
Shard g_shards[1u << k_shard_bits];
// Counters by address, saturating at 255 (then never decremented): zero
// means "no sampled block starts in any 16-byte granule with this index", so
// free skips the lock. The index is the address's granule number itself, not
// a hash: the filter is a 1/16-scale shadow of the heap (aliasing every
// 16 MiB), so a free touches a filter line near the ones its neighbours
// touched. A random index cost a cache miss per free (measured: 77% of
// on_free's time, +3-5 ns per malloc/free pair). A block is inserted before
// malloc returns it, so any free of it sees the count.
uint8_t* g_filter;

Shard& shard_of(uint64_t h) { return g_shards[h & ((1u << k_shard_bits) - 1)]; }
size_t home_of(uint64_t h, unsigned log_cap) { return (size_t)(h >> k_shard_bits) & ((size_t{1} << log_cap) - 1); }
uint8_t* filter_of(uintptr_t addr) { return &g_filter[(addr >> 4) & ((1u << k_filter_bits) - 1)]; }

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

// ---- output -------------------------------------------------------------------------

// Buffered write(2); one at a time, under g_dump_lock.
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
  void flush() {
    size_t off = 0;
    while (off < n && !failed) {
      ssize_t w = write(fd, buf + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) failed = true;
      else off += (size_t)w;
    }
    n = 0;
  }
  void put(const char* s, size_t len) {
    while (len > 0) {
      if (n == sizeof buf) flush();
      size_t k = sizeof buf - n < len ? sizeof buf - n : len;
      memcpy(buf + n, s, k);
      n += k;
      s += k;
      len -= k;
    }
  }
  void str(const char* s) { put(s, strlen(s)); }
  // Decimal, right-aligned in `width` columns.
  void dec(uint64_t v, int width = 0) {
    char t[24];
    int i = sizeof t;
    do {
      t[--i] = (char)('0' + v % 10);
      v /= 10;
    } while (v);
    for (int pad = width - ((int)sizeof t - i); pad > 0; pad--) put(" ", 1);
    put(t + i, sizeof t - i);
  }
  void hex(uint64_t v) {
    char t[18];
    int i = sizeof t;
    do {
      t[--i] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } while (v);
    t[--i] = 'x';
    t[--i] = '0';
    put(t + i, sizeof t - i);
  }
};

Mutex g_dump_lock;  // one dump (profile or leak report) at a time
Writer g_writer;

uint64_t round_count(double v) { return v < 0.5 ? 0 : (uint64_t)(v + 0.5); }

struct Rounded {
  uint64_t live_blocks, live_bytes, alloc_blocks, alloc_bytes;
};

// What a record prints: blocks are at least 1 where bytes are non-zero
// (pprof rejects "0: B" with B > 0).
Rounded rounded(const StackRec* r) {
  Rounded x;
  x.live_bytes = r->live_samples ? r->live_bytes : 0;
  x.live_blocks = r->live_samples ? round_count(r->live_blocks) : 0;
  if (r->live_samples && x.live_blocks == 0) x.live_blocks = 1;
  x.alloc_bytes = r->alloc_bytes;
  x.alloc_blocks = round_count(r->alloc_blocks);
  if (r->samples && x.alloc_blocks == 0) x.alloc_blocks = 1;
  return x;
}

template <typename F>
void for_each_stack_locked(F f) {
  for (size_t off = 8; off < g_arena_used;) {
    StackRec* r = reinterpret_cast<StackRec*>(g_arena + off);
    f(r);
    off += rec_bytes(r->depth);
  }
}

void counts_line(Writer& w, uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  w.dec(a, 6);
  w.str(": ");
  w.dec(b, 8);
  w.str(" [");
  w.dec(c, 6);
  w.str(": ");
  w.dec(d, 8);
  w.str("] @");
}

// The gperftools heap-profile text format (what pprof and jeprof read):
//   heap profile: LIVE_N: LIVE_B [ALLOC_N: ALLOC_B] @ heapprofile
//   LIVE_N: LIVE_B [ALLOC_N: ALLOC_B] @ 0xRET 0xRET ...      (one per stack)
//   (blank line) MAPPED_LIBRARIES: then /proc/self/maps
// The numbers are already unbiased estimates, so the header says
// "heapprofile" (unsampled: pprof scales nothing) rather than heap_v2/RATE.
// Under g_dump_lock.
bool write_profile_locked(int fd) {
  Writer& w = g_writer;
  w.start(fd);
  {
    LockGuard g(g_stack_lock);
    Rounded total{};
    for_each_stack_locked([&](StackRec* r) {
      Rounded x = rounded(r);
      total.live_blocks += x.live_blocks;
      total.live_bytes += x.live_bytes;
      total.alloc_blocks += x.alloc_blocks;
      total.alloc_bytes += x.alloc_bytes;
    });
    w.str("heap profile: ");
    counts_line(w, total.live_blocks, total.live_bytes, total.alloc_blocks, total.alloc_bytes);
    w.str(" heapprofile\n");
    for_each_stack_locked([&](StackRec* r) {
      if (r->samples == 0) return;
      Rounded x = rounded(r);
      counts_line(w, x.live_blocks, x.live_bytes, x.alloc_blocks, x.alloc_bytes);
      for (uint32_t i = 0; i < r->depth; i++) {
        w.str(" ");
        w.hex(r->frames[i]);
      }
      w.str("\n");
    });
  }
  w.str("\nMAPPED_LIBRARIES:\n");
  int maps = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (maps >= 0) {
    char chunk[4096];
    for (;;) {
      ssize_t k = read(maps, chunk, sizeof chunk);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) break;
      w.put(chunk, (size_t)k);
    }
    close(maps);
  }
  w.flush();
  return !w.failed;
}

void write_exit_profile() {
  char path[k_path_max + 32];
  if (!pool::expand_pid(g_path, g_forked_child, path, sizeof path)) {
    platform::write_err("ringpool: heap profile path too long\n");
    return;
  }
  LockGuard g(g_dump_lock);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && write_profile_locked(fd);
  int err = errno;
  if (fd >= 0) close(fd);
  if (!ok) {
    platform::write_err("ringpool: cannot write the heap profile to ");
    platform::write_err(path);
    platform::write_err(": ");
    platform::write_err(strerror(err));
    platform::write_err("\n");
  } else if (pool::options().verbose) {
    platform::write_err("ringpool: heap profile written to ");
    platform::write_err(path);
    platform::write_err("\n");
  }
}

// ---- the leak report ------------------------------------------------------------------

constexpr int k_leak_stacks = 25;

void frame_line(Writer& w, int i, uintptr_t pc) {
  w.str("ringpool:     #");
  w.dec((uint64_t)i);
  w.str(" ");
  w.hex(pc);
  Dl_info info;
  // A return address: look up the call instruction before it.
  if (dladdr(reinterpret_cast<void*>(pc - 1), &info) && info.dli_fname) {
    if (info.dli_sname && info.dli_saddr) {
      w.str(" ");
      w.str(info.dli_sname);
      w.str("+");
      w.hex(pc - reinterpret_cast<uintptr_t>(info.dli_saddr));
    }
    w.str(" (");
    w.str(info.dli_fname[0] ? info.dli_fname : "main program");
    if (!info.dli_sname) {
      w.str("+");
      w.hex(pc - reinterpret_cast<uintptr_t>(info.dli_fbase));
    }
    w.str(")");
  }
  w.str("\n");
}

// The stacks with sampled blocks still live, largest first, on stderr.
void write_leak_report() {
  LockGuard g(g_dump_lock);
  Writer& w = g_writer;
  w.start(2);
  uint32_t top[k_leak_stacks];
  int ntop = 0;
  uint64_t stacks = 0, blocks = 0, bytes = 0;
  {
    LockGuard s(g_stack_lock);
    for_each_stack_locked([&](StackRec* r) {
      if (r->live_samples == 0) return;
      Rounded x = rounded(r);
      stacks++;
      blocks += x.live_blocks;
      bytes += x.live_bytes;
      // Keep the k largest (insertion into a short sorted array).
      uint32_t id = (uint32_t)((reinterpret_cast<char*>(r) - g_arena) / 8);
      int i = ntop < k_leak_stacks ? ntop++ : k_leak_stacks;
      while (i > 0 && rec(top[i - 1])->live_bytes < r->live_bytes) {
        if (i < k_leak_stacks) top[i] = top[i - 1];
        i--;
      }
      if (i < k_leak_stacks) top[i] = id;
    });
  }
  w.str("ringpool: leak report: ");
  if (blocks == 0) {
    w.str(g_exact ? "no block is still allocated at exit (every block was sampled)\n"
                  : "no sampled block is still allocated at exit (sampled; RINGPOOL_PROFILE_RATE=1 makes it exact)\n");
    w.flush();
    return;
  }
  w.dec(bytes);
  w.str(" bytes in ");
  w.dec(blocks);
  w.str(" blocks still allocated at exit, from ");
  w.dec(stacks);
  w.str(stacks == 1 ? " stack" : " stacks");
  w.str(g_exact ? " (exact: every block was sampled)\n"
                : " (estimated from samples; RINGPOOL_PROFILE_RATE=1 makes it exact)\n");
  w.str("ringpool: (blocks still reachable at exit count too, e.g. stdio buffers)\n");
  for (int k = 0; k < ntop; k++) {
    // The records do not move, and exit is single-minded enough that a
    // concurrent update only changes the numbers a little.
    const StackRec* r = rec(top[k]);
    Rounded x = rounded(r);
    w.str("ringpool:   ");
    w.dec(x.live_bytes);
    w.str(" bytes in ");
    w.dec(x.live_blocks);
    w.str(x.live_blocks == 1 ? " block" : " blocks");
    w.str(r->depth ? " allocated at:\n" : " (stack unknown)\n");
    for (uint32_t i = 0; i < r->depth; i++) frame_line(w, (int)i, r->frames[i]);
  }
  if (stacks > (uint64_t)ntop) {
    w.str("ringpool:   ... and ");
    w.dec(stacks - ntop);
    w.str(" smaller stacks\n");
  }
  w.flush();
}

// ---- the request channel ----------------------------------------------------------------

Channel* g_channel;

void channel_open() {
  Channel c = {};
  memcpy(c.magic, k_channel_magic, sizeof c.magic);
  c.layout = k_channel_layout;
  c.size = sizeof(Channel);
  c.pid = platform::process_id();
  c.rate = g_rate;
  void* p = pool::channel::publish(pool::channel::k_profile, k_channel_bytes, &c, sizeof c, nullptr);
  if (p != nullptr) __atomic_store_n(&g_channel, static_cast<Channel*>(p), __ATOMIC_RELEASE);
}

// Write DIR/profile.heap, DIR being a directory of ours that nobody else may
// write to (so no one could have planted a link in it). 0 or an errno.
int dump_to_dir(const char* dir) {
  if (dir[0] != '/') return EINVAL;
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return errno;
  struct stat st;
  if (fstat(dfd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
    close(dfd);
    return EPERM;
  }
  int fd = openat(dfd, k_dump_file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  int err = fd < 0 ? errno : 0;
  close(dfd);
  if (fd < 0) return err;
  bool ok;
  {
    LockGuard g(g_dump_lock);
    ok = write_profile_locked(fd);
  }
  err = ok ? 0 : (errno ? errno : EIO);
  close(fd);
  return err;
}

__attribute__((noinline)) void answer_request(Channel* ch) {
  ThreadState& t = t_state;
  platform::KeepErrno keep;
  static Mutex answering;
  if (!answering.try_lock()) return;  // another thread is on it
  uint64_t r = __atomic_load_n(&ch->request, __ATOMIC_ACQUIRE);
  if (r != __atomic_load_n(&ch->served, __ATOMIC_RELAXED)) {
    char dir[k_dir_max];
    size_t n = 0;
    for (; n < k_dir_max - 1; n++) {
      dir[n] = __atomic_load_n(&ch->dir[n], __ATOMIC_RELAXED);
      if (dir[n] == 0) break;
    }
    dir[n] = 0;
    t.busy = true;
    int status = n == k_dir_max - 1 ? ENAMETOOLONG : dump_to_dir(dir);
    t.busy = false;
    __atomic_store_n(&ch->status, status, __ATOMIC_RELAXED);
    __atomic_store_n(&ch->served, r, __ATOMIC_RELEASE);
  }
  answering.unlock();
}

inline void poll_request() {
  Channel* ch = __atomic_load_n(&g_channel, __ATOMIC_RELAXED);
  if (RINGPOOL_UNLIKELY(ch != nullptr &&
                        __atomic_load_n(&ch->request, __ATOMIC_RELAXED) != __atomic_load_n(&ch->served, __ATOMIC_RELAXED)))
    answer_request(ch);
}

// ---- the hooks ------------------------------------------------------------------------------

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

// ---- fork ---------------------------------------------------------------------------------------

__thread bool t_busy_before_fork;  // the forking thread's own flag

void fork_prepare() {
  ThreadState& t = t_state;
  t_busy_before_fork = t.busy;
  t.busy = true;
  g_dump_lock.lock();
  g_stack_lock.lock();
  for (Shard& s : g_shards) s.lock.lock();
}

void fork_parent() {
  for (Shard& s : g_shards) s.lock.unlock();
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

// ---- start and exit -----------------------------------------------------------------------------

bool path_init() {
  const char* v = pool::options().profile;
  if (*v == 0) return true;
  size_t n = 0;
  if (v[0] != '/') {
    if (getcwd(g_path, sizeof g_path) == nullptr) return false;
    n = strlen(g_path);
    if (n + 1 < sizeof g_path && (n == 0 || g_path[n - 1] != '/')) g_path[n++] = '/';
  }
  size_t len = strlen(v);
  if (n + len >= sizeof g_path) return false;
  memcpy(g_path + n, v, len + 1);
  return true;
}

// After pool's constructor (101), before ordinary ones: their allocations
// are profiled too.
__attribute__((constructor(102))) void profile_start() {
  pool::ensure_init();
  const pool::Options& o = pool::options();
  if (!o.profiling) return;
  // Opened with dlopen rather than preloaded, the library does not serve
  // malloc (init.cpp says so): the hooks would never run, and the exit
  // profile would be empty. Stay off.
  if (!preload::preloaded()) return;
  ThreadState& t = t_state;
  t.busy = true;
  g_rate = o.profile_rate ? o.profile_rate : 1;
  g_exact = g_rate == 1;
  g_seed = platform::random_word();
  if (!path_init()) {
    platform::write_err("ringpool: RINGPOOL_PROFILE: path too long; heap profiling is off\n");
    t.busy = false;
    return;
  }
  if (!stacks_init() || !live_init()) {
    platform::write_err("ringpool: no memory for the heap profiler's tables; heap profiling is off\n");
    t.busy = false;
    return;
  }
  unwinder_init();
  channel_open();
  pthread_atfork(fork_prepare, fork_parent, fork_child);
  g_ready = true;
  pool::set_profile_hooks(pool::ProfileHooks{next_gap, on_sample, on_free, on_slow});
  if (o.verbose) {
    platform::write_err(g_exact ? "ringpool: heap profiling on (every block sampled)\n" : "ringpool: heap profiling on\n");
  }
  t.busy = false;
}

__attribute__((destructor)) void profile_finish() {
  if (!g_ready) return;
  ThreadState& t = t_state;
  bool was = t.busy;
  t.busy = true;
  platform::KeepErrno keep;
  if (g_path[0]) write_exit_profile();
  if (pool::options().leaks) write_leak_report();
  t.busy = was;
}

}  // namespace

}  // namespace ringpool::profile
