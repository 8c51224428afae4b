// The leak report: the stacks with sampled blocks still live at exit.
#include <dlfcn.h>

#include "profiler.hpp"

namespace ringpool::profile {

namespace {

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

}  // namespace

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

}  // namespace ringpool::profile
