// stats_race: the live statistics read while threads allocate, for the
// sanitizers (make check-sanitize links it with the pool objects, like the
// unit tests).
//
// The counters are plain per-thread increments on the fast path, read by
// other threads (ringpool stat, mallinfo2, the exit summary) with relaxed
// atomic loads; the back end's totals are a sequence lock copied with
// memcpy. Both are races by design: the reader tolerates a torn or stale
// value (see pool/stats.hpp). Under ThreadSanitizer they are reported, and
// tests/sanitize/tsan.supp names them; anything else here is a real race.
// Under AddressSanitizer this checks that the reader stays inside the
// region while slots are handed out.
//
// Passes when the reader's allocation count never goes backwards. (Its
// live count may run ahead of the truth by what was allocated and freed
// while it read: frees are read first, by design, so it is never negative.)
//
// usage: stats_race [--no-init]
//   --no-init  start reading before the allocator is initialised, as a
//              program calling ringpool_stats_get() from one thread while
//              another makes the first malloc does: g_region is published
//              by stats_init() with a plain store (a race TSan reports).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <thread>
#include <vector>

#include "../../pool/pool.hpp"

namespace pool = ringpool::pool;

int main(int argc, char** argv) {
  bool no_init = argc > 1 && strcmp(argv[1], "--no-init") == 0;
  if (!no_init) pool::ensure_init();
  constexpr int k_workers = 4, k_slots = 256, k_rounds = 200000;
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < k_workers; t++) {
    workers.emplace_back([t] {
      void* slots[k_slots] = {};
      unsigned x = 12345u + (unsigned)t;
      for (int i = 0; i < k_rounds; i++) {
        x = x * 1103515245u + 12345u;
        void*& s = slots[(x >> 8) % k_slots];
        if (s) {
          pool::free(s);
          s = nullptr;
        } else {
          s = pool::alloc(16 + (x >> 16) % 3000);
        }
      }
      for (void* s : slots) pool::free(s);
      pool::thread_done();
    });
  }
  uint64_t last_allocs = 0, reads = 0;
  std::thread reader([&] {
    while (!stop.load()) {
      pool::Snapshot s;
      pool::snapshot_now(&s);
      uint64_t allocs = 0;
      for (unsigned r = 0; r < pool::k_num_classes; r++) allocs += s.rows[r].allocs;
      if (allocs < last_allocs) {
        fprintf(stderr, "stats_race: allocations went from %llu down to %llu\n", (unsigned long long)last_allocs,
                (unsigned long long)allocs);
        exit(1);
      }
      last_allocs = allocs;
      reads++;
    }
  });
  for (auto& w : workers) w.join();
  stop = true;
  reader.join();
  printf("stats_race: ok: %d threads x %d operations, %llu snapshots read meanwhile\n", k_workers, k_rounds,
         (unsigned long long)reads);
  return 0;
}
