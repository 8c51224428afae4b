// The top allocation sites, live or allocated.
#include <stdio.h>

#include <algorithm>
#include <map>

#include "profile.hpp"
#include "tool.hpp"

namespace ringpool::tool {

namespace {

struct Site {
  std::string function, file_line;
  int64_t live_n = 0, live_b = 0, alloc_n = 0, alloc_b = 0;
};

}  // namespace

std::string human(int64_t b) {
  char buf[32];
  if (b < 0) return std::string("-") + pool::format_bytes((uint64_t)0 - (uint64_t)b, buf, sizeof buf);
  return pool::format_bytes((uint64_t)b, buf, sizeof buf);
}

void print_top(const Profile& p, const Symbols& syms, size_t top) {
  std::map<std::string, Site> sites;
  int64_t live_b = 0, live_n = 0, alloc_b = 0, alloc_n = 0;
  for (const Stack& s : p.stacks) {
    live_b += s.live_b;
    live_n += s.live_n;
    alloc_b += s.alloc_b;
    alloc_n += s.alloc_n;
    std::string fn = "(unknown stack)", fl;
    if (!s.pcs.empty()) {
      fn = frame_name(s.pcs[0], syms);
      auto it = syms.find(s.pcs[0]);
      if (it != syms.end()) fl = it->second.file_line;
    }
    Site& site = sites[fn + "\t" + fl];
    site.function = fn;
    site.file_line = fl;
    site.live_n += s.live_n;
    site.live_b += s.live_b;
    site.alloc_n += s.alloc_n;
    site.alloc_b += s.alloc_b;
  }
  printf("heap profile: %s live in %lld blocks, %s allocated in %lld blocks, %zu stacks\n", human(live_b).c_str(),
         (long long)live_n, human(alloc_b).c_str(), (long long)alloc_n, p.stacks.size());
  std::vector<Site> v;
  for (auto& kv : sites) v.push_back(kv.second);
  for (int by_alloc = 0; by_alloc < 2; by_alloc++) {
    std::sort(v.begin(), v.end(), [&](const Site& a, const Site& b) {
      int64_t x = by_alloc ? a.alloc_b : a.live_b, y = by_alloc ? b.alloc_b : b.live_b;
      return x != y ? x > y : a.function < b.function;
    });
    int64_t total = by_alloc ? alloc_b : live_b;
    printf("\nTop allocation sites by %s bytes:\n", by_alloc ? "allocated" : "live");
    printf("%12s %6s %10s %12s %10s  %s\n", by_alloc ? "allocated" : "live", "%", "blocks", by_alloc ? "live" : "allocated",
           "blocks", "site");
    size_t shown = 0;
    for (const Site& s : v) {
      if (shown == top) break;
      int64_t b = by_alloc ? s.alloc_b : s.live_b;
      if (b == 0) break;
      shown++;
      printf("%12s %5.1f%% %10lld %12s %10lld  %s%s%s\n", human(b).c_str(), total ? 100.0 * (double)b / (double)total : 0.0,
             (long long)(by_alloc ? s.alloc_n : s.live_n), human(by_alloc ? s.live_b : s.alloc_b).c_str(),
             (long long)(by_alloc ? s.live_n : s.alloc_n), s.function.c_str(), s.file_line.empty() ? "" : "  ",
             s.file_line.c_str());
    }
    if (shown == 0) printf("  (none)\n");
  }
}

}  // namespace ringpool::tool
