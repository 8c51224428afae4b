// Parsing a heap profile (profile.hpp says which formats).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmath>
#include <sstream>

#include "profile.hpp"
#include "tool.hpp"

namespace ringpool::tool {

namespace {

// pprof's unsampling for "heap_v2/RATE" profiles (raw sample counts).
void unsample(int64_t* n, int64_t* b, int64_t rate) {
  if (*n == 0 || *b == 0 || rate <= 1) return;
  double avg = (double)*b / (double)*n;
  double scale = 1 / (1 - std::exp(-avg / (double)rate));
  *n = (int64_t)((double)*n * scale);
  *b = (int64_t)((double)*b * scale);
}

}  // namespace

bool parse_profile(const std::string& text, Profile* p, std::string* err) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line)) {
    *err = "empty file";
    return false;
  }
  long long a, b, c, d;
  char kind[64] = "";
  if (sscanf(line.c_str(), "heap profile: %lld: %lld [ %lld: %lld ] @ %63s", &a, &b, &c, &d, kind) < 5) {
    *err = "not a heap profile (expected a first line \"heap profile: ...\")";
    return false;
  }
  std::string k = kind;
  size_t slash = k.find('/');
  if (slash != std::string::npos) {
    p->period = atoll(k.c_str() + slash + 1);
    k = k.substr(0, slash);
  }
  p->kind = k;
  if (k != "heapprofile" && k != "heap_v2" && k != "heap") {
    *err = "unknown heap profile kind '" + k + "'";
    return false;
  }
  bool sampled = k != "heapprofile";
  bool in_maps = false;
  while (std::getline(in, line)) {
    if (!in_maps) {
      if (line.rfind("MAPPED_LIBRARIES:", 0) == 0 || line.rfind("--- Memory map:", 0) == 0) {
        in_maps = true;
        continue;
      }
      if (line.empty() || line[0] == '#') continue;
      Stack s;
      int used = 0;
      if (sscanf(line.c_str(), " %lld: %lld [ %lld: %lld ] @%n", &a, &b, &c, &d, &used) < 4 || used == 0) {
        *err = "malformed stack line: " + line.substr(0, 80);
        return false;
      }
      s.live_n = a;
      s.live_b = b;
      s.alloc_n = c;
      s.alloc_b = d;
      if (sampled) {
        unsample(&s.live_n, &s.live_b, p->period);
        unsample(&s.alloc_n, &s.alloc_b, p->period);
      }
      std::istringstream pcs(line.substr((size_t)used));
      std::string w;
      while (pcs >> w) s.pcs.push_back(strtoull(w.c_str(), nullptr, 16));
      p->stacks.push_back(std::move(s));
    } else {
      Mapping m;
      char perms[8] = "", path[4096] = "";
      unsigned long long lo, hi, off;
      int n = sscanf(line.c_str(), "%llx-%llx %7s %llx %*s %*s %4095[^\n]", &lo, &hi, perms, &off, path);
      if (n < 4) continue;
      m.lo = lo;
      m.hi = hi;
      m.offset = off;
      m.perms = perms;
      m.path = n == 5 ? path : "";
      while (!m.path.empty() && m.path[0] == ' ') m.path.erase(0, 1);
      p->maps.push_back(std::move(m));
    }
  }
  return true;
}

}  // namespace ringpool::tool
