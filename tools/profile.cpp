// ringpool profile: read a heap profile (a file, or one requested from a
// running process), symbolise it, print the top allocation sites, and draw a
// flame graph as SVG.
//
// Glossary
//   profile   the gperftools heap-profile text format the library writes
//             (preload/profile.cpp): a header, one line per stack
//             "LIVE_N: LIVE_B [ALLOC_N: ALLOC_B] @ 0xPC ...", then
//             MAPPED_LIBRARIES: and the process's /proc/PID/maps. tcmalloc's
//             sampled "heap_v2/RATE" profiles are read too (and unsampled).
//   pc        a return address; the call is at pc - 1, which is what gets
//             symbolised.
//   site      the innermost frame of a stack (who called malloc), as
//             "function file:line".
//   symbolise map pc to (object, file offset) with the maps section, the file
//             offset to the object's link-time address with its ELF program
//             headers, then ask `addr2line -f -C` (binutils); where that finds
//             no name, the object's own .symtab/.dynsym.
#include <cxxabi.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "../pool/channel.hpp"
#include "../profiler/channel_layout.hpp"
#include "tool.hpp"

namespace ringpool::tool {

namespace {

namespace prof = ringpool::profile;

// ---- the profile ---------------------------------------------------------------

struct Stack {
  int64_t live_n = 0, live_b = 0, alloc_n = 0, alloc_b = 0;
  std::vector<uint64_t> pcs;  // innermost first
};

struct Mapping {
  uint64_t lo = 0, hi = 0, offset = 0;
  std::string perms, path;
};

struct Profile {
  std::string kind;  // "heapprofile", "heap_v2", ...
  int64_t period = 0;
  std::vector<Stack> stacks;
  std::vector<Mapping> maps;
};

// pprof's unsampling for "heap_v2/RATE" profiles (raw sample counts).
void unsample(int64_t* n, int64_t* b, int64_t rate) {
  if (*n == 0 || *b == 0 || rate <= 1) return;
  double avg = (double)*b / (double)*n;
  double scale = 1 / (1 - std::exp(-avg / (double)rate));
  *n = (int64_t)((double)*n * scale);
  *b = (int64_t)((double)*b * scale);
}

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

// ---- ELF: link-time addresses and symbols -----------------------------------

struct ElfSym {
  uint64_t addr, size;
  std::string name;
};

struct ElfInfo {
  bool ok = false;
  std::vector<Elf64_Phdr> loads;
  std::vector<ElfSym> syms;  // sorted by addr
};

bool read_at(int fd, void* buf, size_t n, off_t off) { return pread(fd, buf, n, off) == (ssize_t)n; }

void read_symbols(int fd, const Elf64_Ehdr& eh, std::vector<ElfSym>* out) {
  if (eh.e_shoff == 0 || eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shnum > 4096) return;
  std::vector<Elf64_Shdr> sh(eh.e_shnum);
  if (!read_at(fd, sh.data(), sizeof(Elf64_Shdr) * sh.size(), (off_t)eh.e_shoff)) return;
  for (const Elf64_Shdr& s : sh) {
    if (s.sh_type != SHT_SYMTAB && s.sh_type != SHT_DYNSYM) continue;
    if (s.sh_link >= sh.size() || s.sh_entsize != sizeof(Elf64_Sym) || s.sh_size > (512u << 20)) continue;
    const Elf64_Shdr& strs = sh[s.sh_link];
    if (strs.sh_size > (512u << 20)) continue;
    std::vector<Elf64_Sym> syms(s.sh_size / sizeof(Elf64_Sym));
    std::string names(strs.sh_size, '\0');
    if (!read_at(fd, syms.data(), syms.size() * sizeof(Elf64_Sym), (off_t)s.sh_offset) ||
        !read_at(fd, names.data(), names.size(), (off_t)strs.sh_offset))
      continue;
    for (const Elf64_Sym& y : syms) {
      int type = ELF64_ST_TYPE(y.st_info);
      if ((type != STT_FUNC && type != STT_GNU_IFUNC) || y.st_value == 0 || y.st_name >= names.size()) continue;
      out->push_back({y.st_value, y.st_size, std::string(names.c_str() + y.st_name)});
    }
  }
  std::sort(out->begin(), out->end(), [](const ElfSym& a, const ElfSym& b) { return a.addr < b.addr; });
}

ElfInfo load_elf(const std::string& path) {
  ElfInfo info;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return info;
  Elf64_Ehdr eh;
  if (read_at(fd, &eh, sizeof eh, 0) && memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_ident[EI_CLASS] == ELFCLASS64 &&
      eh.e_phentsize == sizeof(Elf64_Phdr) && eh.e_phnum < 256) {
    std::vector<Elf64_Phdr> ph(eh.e_phnum);
    if (read_at(fd, ph.data(), sizeof(Elf64_Phdr) * ph.size(), (off_t)eh.e_phoff)) {
      for (const Elf64_Phdr& p : ph)
        if (p.p_type == PT_LOAD) info.loads.push_back(p);
      info.ok = !info.loads.empty();
      read_symbols(fd, eh, &info.syms);
    }
  }
  close(fd);
  return info;
}

std::string demangle(const std::string& s) {
  if (s.rfind("_Z", 0) != 0) return s;
  int status = 0;
  char* d = abi::__cxa_demangle(s.c_str(), nullptr, nullptr, &status);
  if (d == nullptr) return s;
  std::string r = d;
  free(d);
  return r;
}

// ---- addr2line ----------------------------------------------------------------------

// Run argv with `input` on its stdin (a memfd, so that neither side can
// block on a full pipe), return its stdout (empty if it could not run).
std::string run_capture(const std::vector<std::string>& args, const std::string& input) {
  int in = memfd_create("ringpool-addr2line", MFD_CLOEXEC);
  if (in < 0) return "";
  if (write(in, input.data(), input.size()) != (ssize_t)input.size() || lseek(in, 0, SEEK_SET) != 0) {
    close(in);
    return "";
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    close(in);
    return "";
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(in);
    close(fds[0]);
    close(fds[1]);
    return "";
  }
  if (pid == 0) {
    dup2(in, 0);
    dup2(fds[1], 1);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 2);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(in);
  close(fds[1]);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, (size_t)n);
  }
  close(fds[0]);
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return out;
}

struct Symbol {
  std::string function;  // "" when unknown
  std::string file_line; // "" when unknown
  std::string object;    // path of the object, "" when not in a file mapping
  uint64_t offset = 0;   // link-time address in the object
};

// pc -> symbol, for every pc of the profile.
std::unordered_map<uint64_t, Symbol> symbolise(const Profile& p) {
  std::unordered_map<uint64_t, Symbol> out;
  std::map<std::string, ElfInfo> elves;
  std::map<std::string, std::vector<uint64_t>> by_object;  // object -> pcs
  for (const Stack& s : p.stacks)
    for (uint64_t pc : s.pcs) {
      if (out.count(pc)) continue;
      Symbol& sym = out[pc];
      uint64_t at = pc - 1;
      for (const Mapping& m : p.maps) {
        if (at < m.lo || at >= m.hi || m.path.empty() || m.path[0] != '/') continue;
        std::string path = m.path;
        if (path.size() > 10 && path.compare(path.size() - 10, 10, " (deleted)") == 0) break;
        uint64_t file_off = at - m.lo + m.offset;
        auto it = elves.find(path);
        if (it == elves.end()) it = elves.emplace(path, load_elf(path)).first;
        const ElfInfo& e = it->second;
        sym.object = path;
        sym.offset = file_off;
        for (const Elf64_Phdr& ph : e.loads)
          if (file_off >= ph.p_offset && file_off < ph.p_offset + ph.p_filesz) {
            sym.offset = ph.p_vaddr + (file_off - ph.p_offset);
            break;
          }
        if (e.ok) by_object[path].push_back(pc);
        break;
      }
    }
  for (auto& [path, pcs] : by_object) {
    const ElfInfo& e = elves[path];
    // One addr2line per object, addresses on its stdin: it reads the debug
    // info once.
    std::string input;
    char hex[32];
    for (uint64_t pc : pcs) {
      snprintf(hex, sizeof hex, "0x%llx\n", (unsigned long long)out[pc].offset);
      input += hex;
    }
    std::istringstream lines(run_capture({"addr2line", "-f", "-C", "-e", path}, input));
    for (uint64_t pc : pcs) {
      std::string fn, fl;
      if (!std::getline(lines, fn) || !std::getline(lines, fl)) break;
      Symbol& sym = out[pc];
      if (fn != "??") sym.function = fn;
      if (fl.rfind("??", 0) != 0) {
        size_t disc = fl.find(" (discriminator");
        if (disc != std::string::npos) fl.resize(disc);
        sym.file_line = fl;
      }
    }
    // Names addr2line did not find (no .symtab it could use): .dynsym.
    for (uint64_t pc : pcs) {
      Symbol& sym = out[pc];
      if (!sym.function.empty() || e.syms.empty()) continue;
      auto it = std::upper_bound(e.syms.begin(), e.syms.end(), sym.offset,
                                 [](uint64_t a, const ElfSym& s) { return a < s.addr; });
      if (it == e.syms.begin()) continue;
      --it;
      if (it->size == 0 || sym.offset < it->addr + it->size) sym.function = demangle(it->name);
    }
  }
  return out;
}

std::string base_name(const std::string& path) {
  size_t s = path.rfind('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}

// "function" or, without a name, "object+0xOFFSET" or the raw pc.
std::string frame_name(uint64_t pc, const std::unordered_map<uint64_t, Symbol>& syms) {
  auto it = syms.find(pc);
  char buf[64];
  if (it != syms.end() && !it->second.function.empty()) return it->second.function;
  if (it != syms.end() && !it->second.object.empty()) {
    snprintf(buf, sizeof buf, "+0x%llx", (unsigned long long)it->second.offset);
    return base_name(it->second.object) + buf;
  }
  snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)pc);
  return buf;
}

// ---- reports -------------------------------------------------------------------------

std::string human(int64_t b) {
  char buf[32];
  if (b < 0) return std::string("-") + pool::format_bytes((uint64_t)0 - (uint64_t)b, buf, sizeof buf);
  return pool::format_bytes((uint64_t)b, buf, sizeof buf);
}

struct Site {
  std::string function, file_line;
  int64_t live_n = 0, live_b = 0, alloc_n = 0, alloc_b = 0;
};

void print_top(const Profile& p, const std::unordered_map<uint64_t, Symbol>& syms, size_t top) {
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

// ---- flame graph ---------------------------------------------------------------------

struct Node {
  std::string name;
  int64_t value = 0;
  std::map<std::string, std::unique_ptr<Node>> kids;
};

// Length of the valid UTF-8 sequence at s[i], or 0.
size_t utf8_len(const std::string& s, size_t i) {
  unsigned char c = (unsigned char)s[i];
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; k++)
    if (((unsigned char)s[i + k] >> 6) != 2) return 0;
  return n;
}

std::string xml_escape(const std::string& s) {
  std::string r;
  for (size_t i = 0; i < s.size(); i++) {
    char c = s[i];
    if ((unsigned char)c >= 0x80) {  // keep valid UTF-8, replace the rest
      size_t n = utf8_len(s, i);
      if (n == 0) {
        r += '?';
      } else {
        r.append(s, i, n);
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '&': r += "&amp;"; break;
      case '<': r += "&lt;"; break;
      case '>': r += "&gt;"; break;
      case '"': r += "&quot;"; break;
      case '\'': r += "&apos;"; break;
      default:
        // XML 1.0 allows no control characters other than tab/newline/CR.
        if ((unsigned char)c < 0x20 && c != '\t') r += '?';
        else r += c;
    }
  }
  return r;
}

int depth_of(const Node& n) {
  int d = 0;
  for (auto& kv : n.kids) d = std::max(d, depth_of(*kv.second));
  return d + 1;
}

struct Flame {
  FILE* out;
  double total, scale;
  int height;
  static constexpr int k_width = 1200, k_pad = 10, k_row = 17, k_top = 40;

  void draw(const Node& n, double x, int level) {
    double w = (double)n.value * scale;
    if (w < 0.3) return;
    double y = height - k_pad - (level + 1) * k_row;
    unsigned h = 2166136261u;
    for (char c : n.name) h = (h ^ (unsigned char)c) * 16777619u;
    int r = 205 + (int)(h % 50), g = 80 + (int)((h >> 8) % 150), b = (int)((h >> 16) % 60);
    double pct = total > 0 ? 100.0 * (double)n.value / total : 0;
    std::string name = xml_escape(n.name);
    fprintf(out, "<g><title>%s (%s, %.2f%%)</title>", name.c_str(), human(n.value).c_str(), pct);
    fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"rgb(%d,%d,%d)\" rx=\"2\" ry=\"2\"/>", x, y,
            w, k_row - 1, r, g, b);
    size_t fit = w > 14 ? (size_t)((w - 6) / 7) : 0;
    if (fit >= 3) {
      std::string label = n.name.size() <= fit ? n.name : n.name.substr(0, fit - 2) + "..";
      fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">%s</text>", x + 3, y + k_row - 5, xml_escape(label).c_str());
    }
    fprintf(out, "</g>\n");
    std::vector<const Node*> kids;
    for (auto& kv : n.kids) kids.push_back(kv.second.get());
    std::sort(kids.begin(), kids.end(), [](const Node* a, const Node* b) {
      return a->value != b->value ? a->value > b->value : a->name < b->name;
    });
    double cx = x;
    for (const Node* k : kids) {
      draw(*k, cx, level + 1);
      cx += (double)k->value * scale;
    }
  }
};

bool write_flame(const Profile& p, const std::unordered_map<uint64_t, Symbol>& syms, bool by_alloc,
                 const std::string& path, const std::string& source) {
  Node root;
  root.name = "all";
  for (const Stack& s : p.stacks) {
    int64_t v = by_alloc ? s.alloc_b : s.live_b;
    if (v <= 0) continue;
    root.value += v;
    Node* n = &root;
    for (size_t i = s.pcs.size(); i-- > 0;) {  // outermost first
      std::string name = frame_name(s.pcs[i], syms);
      auto& slot = n->kids[name];
      if (!slot) {
        slot = std::make_unique<Node>();
        slot->name = name;
      }
      n = slot.get();
      n->value += v;
    }
  }
  FILE* f = fopen(path.c_str(), "we");
  if (!f) {
    fprintf(stderr, "ringpool profile: cannot write %s: %s\n", path.c_str(), strerror(errno));
    return false;
  }
  Flame fl;
  fl.out = f;
  fl.total = (double)root.value;
  fl.scale = root.value > 0 ? (double)(Flame::k_width - 2 * Flame::k_pad) / (double)root.value : 0;
  int depth = depth_of(root);
  fl.height = Flame::k_top + depth * Flame::k_row + 2 * Flame::k_pad;
  fprintf(f, "<?xml version=\"1.0\" standalone=\"no\"?>\n");
  fprintf(f,
          "<svg version=\"1.1\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
          "xmlns=\"http://www.w3.org/2000/svg\">\n",
          Flame::k_width, fl.height, Flame::k_width, fl.height);
  fprintf(f,
          "<style>text { font-family: Verdana, sans-serif; font-size: 12px; fill: rgb(0,0,0); } "
          "g:hover rect { stroke: black; stroke-width: 0.5; }</style>\n");
  fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"rgb(250,250,240)\"/>\n", Flame::k_width, fl.height);
  std::string title = std::string("Heap flame graph: ") + (by_alloc ? "bytes allocated" : "live bytes") + ", " +
                      human(root.value) + " (" + source + ")";
  fprintf(f, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" style=\"font-size:16px\">%s</text>\n", Flame::k_width / 2,
          xml_escape(title).c_str());
  if (root.value > 0) fl.draw(root, Flame::k_pad, 0);
  fprintf(f, "</svg>\n");
  bool ok = !ferror(f);
  if (fclose(f) != 0) ok = false;
  if (!ok) fprintf(stderr, "ringpool profile: error writing %s\n", path.c_str());
  return ok;
}

// ---- asking a running process ------------------------------------------------------

// The profile channel of another process, mapped shared.
class ChannelAccess {
 public:
  ~ChannelAccess() {
    if (map_) munmap(map_, prof::k_channel_bytes);
  }
  bool open_for(int pid, std::string* why) {
    int fd = -1;
    Found f = open_channel(pid, ringpool::pool::channel::k_profile, O_RDWR, &fd);
    if (f == Found::no_channel && open_channel(pid, ringpool::pool::channel::k_stats, O_RDONLY, &fd) == Found::ok) {
      close(fd);
      *why = "it runs with libringpool but heap profiling is off (start it with RINGPOOL_PROFILE=FILE, "
             "or ringpool run --profile FILE)";
      return false;
    }
    if (f != Found::ok) {
      *why = found_text(f);
      return false;
    }
    struct stat st;
    void* m = MAP_FAILED;
    if (fstat(fd, &st) == 0 && st.st_size >= (off_t)prof::k_channel_bytes)
      m = mmap(nullptr, prof::k_channel_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
      *why = "cannot map its profile channel";
      return false;
    }
    map_ = static_cast<prof::Channel*>(m);
    if (memcmp(map_->magic, prof::k_channel_magic, sizeof map_->magic) != 0 || map_->layout != prof::k_channel_layout) {
      *why = "its profile channel is of another ringpool version";
      return false;
    }
    return true;
  }

  uint64_t load64(size_t off) {
    return __atomic_load_n(reinterpret_cast<uint64_t*>(reinterpret_cast<char*>(map_) + off), __ATOMIC_ACQUIRE);
  }
  int32_t status() { return __atomic_load_n(&map_->status, __ATOMIC_ACQUIRE); }
  // Claim the channel against other CLIs.
  bool claim(std::string* why) {
    uint32_t me = (uint32_t)getpid();
    for (int tries = 0; tries < 2; tries++) {
      uint32_t expected = 0;
      if (__atomic_compare_exchange_n(&map_->owner, &expected, me, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        claimed_ = true;
        return true;
      }
      if (kill((pid_t)expected, 0) == 0 || errno != ESRCH) {
        *why = "another 'ringpool profile' (pid " + std::to_string(expected) + ") is using its channel";
        return false;
      }
      __atomic_compare_exchange_n(&map_->owner, &expected, 0u, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    }
    *why = "its channel is busy";
    return false;
  }
  void release() {
    if (claimed_) {
      uint32_t me = (uint32_t)getpid();
      __atomic_compare_exchange_n(&map_->owner, &me, 0u, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    }
  }
  // Write dir, then bump request; returns the request number to wait for.
  uint64_t post(const std::string& dir) {
    char buf[prof::k_dir_max] = {};
    memcpy(buf, dir.c_str(), std::min(dir.size(), sizeof buf - 1));
    memcpy(map_->dir, buf, sizeof buf);
    return __atomic_add_fetch(&map_->request, 1, __ATOMIC_ACQ_REL);
  }

 private:
  prof::Channel* map_ = nullptr;
  bool claimed_ = false;
};

double now_s() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// Ask process `pid` for a profile; on success *text holds it.
int request_profile(int pid, double timeout, std::string* text) {
  std::string base = "/proc/" + std::to_string(pid);
  struct stat st;
  if (stat(base.c_str(), &st) != 0) {
    fprintf(stderr, "ringpool profile: no process %d\n", pid);
    return 1;
  }
  long uid = effective_uid(pid);
  remove_stale();
  ChannelAccess ch;
  std::string why;
  if (!ch.open_for(pid, &why) || !ch.claim(&why)) {
    fprintf(stderr, "ringpool profile: process %d: %s\n", pid, why.c_str());
    return 1;
  }
  const char* tmp = getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp == '/' ? tmp : "/tmp") + "/ringpool-profile-" + std::to_string(pid) + "-XXXXXX";
  std::vector<char> dirbuf(tmpl.begin(), tmpl.end());
  dirbuf.push_back(0);
  if (mkdtemp(dirbuf.data()) == nullptr) {
    fprintf(stderr, "ringpool profile: cannot create a directory in %s: %s\n", tmpl.c_str(), strerror(errno));
    ch.release();
    return 1;
  }
  std::string dir = dirbuf.data();
  std::string file = dir + "/" + prof::k_dump_file;
  auto cleanup = [&] {
    unlink(file.c_str());
    rmdir(dir.c_str());
    ch.release();
  };
  // The process writes into the directory as itself; mkdtemp made it 0700.
  if (uid >= 0 && (uid_t)uid != geteuid() && chown(dir.c_str(), (uid_t)uid, (gid_t)-1) != 0) {
    fprintf(stderr, "ringpool profile: process %d belongs to uid %ld: cannot hand it a directory: %s\n", pid, uid,
            strerror(errno));
    cleanup();
    return 1;
  }
  if (dir.size() >= prof::k_dir_max) {
    fprintf(stderr, "ringpool profile: TMPDIR path too long\n");
    cleanup();
    return 1;
  }
  uint64_t r = ch.post(dir);
  if (r == 0) {
    fprintf(stderr, "ringpool profile: process %d: cannot write its channel\n", pid);
    cleanup();
    return 1;
  }
  double deadline = now_s() + timeout;
  size_t served_off = offsetof(prof::Channel, served);
  while (ch.load64(served_off) < r) {
    if (now_s() > deadline) {
      fprintf(stderr,
              "ringpool profile: process %d did not answer within %.0f s (a process answers on a malloc slow "
              "path, every few hundred allocations or more; an idle one does not: try again, or --timeout)\n",
              pid, timeout);
      cleanup();
      return 1;
    }
    if (kill(pid, 0) != 0 && errno == ESRCH) {
      fprintf(stderr, "ringpool profile: process %d exited\n", pid);
      cleanup();
      return 1;
    }
    usleep(10000);
  }
  int status = ch.status();
  if (status != 0) {
    fprintf(stderr, "ringpool profile: process %d could not write its profile into %s: %s%s\n", pid, dir.c_str(),
            strerror(status),
            status == ENOENT ? " (does it have a private /tmp? set TMPDIR to a directory it sees)" : "");
    cleanup();
    return 1;
  }
  *text = read_file(file);
  cleanup();
  if (text->empty()) {
    fprintf(stderr, "ringpool profile: process %d wrote an empty profile\n", pid);
    return 1;
  }
  return 0;
}

bool all_digits(const char* s) {
  if (!*s) return false;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return false;
  return true;
}

int usage_error() {
  fprintf(stderr,
          "usage: ringpool profile [--top N] [--flame OUT.svg] [--by live|alloc] [--output FILE] [--timeout SECONDS] "
          "PID|FILE\n");
  return 2;
}

}  // namespace

int cmd_profile(int argc, char** argv) {
  size_t top = 10;
  std::string flame, output, source;
  bool by_alloc = false;
  double timeout = 5;
  for (int i = 0; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&](const char* what) -> const char* {
      if (i + 1 >= argc) {
        fprintf(stderr, "ringpool profile: %s needs %s\n", a.c_str(), what);
        return nullptr;
      }
      return argv[++i];
    };
    if (a == "--top") {
      const char* v = value("a number");
      if (!v || !all_digits(v)) return usage_error();
      top = strtoul(v, nullptr, 10);
    } else if (a == "--flame") {
      const char* v = value("a file name");
      if (!v) return 2;
      flame = v;
    } else if (a == "--by") {
      const char* v = value("live or alloc");
      if (!v) return 2;
      if (strcmp(v, "alloc") == 0) by_alloc = true;
      else if (strcmp(v, "live") != 0) return usage_error();
    } else if (a == "--output" || a == "-o") {
      const char* v = value("a file name");
      if (!v) return 2;
      output = v;
    } else if (a == "--timeout") {
      const char* v = value("a number of seconds");
      char* end;
      if (!v || (timeout = strtod(v, &end), *end != 0) || !(timeout > 0)) return usage_error();
    } else if (a.size() > 1 && a[0] == '-') {
      fprintf(stderr, "ringpool profile: unknown option '%s'\n", a.c_str());
      return usage_error();
    } else if (source.empty()) {
      source = a;
    } else {
      return usage_error();
    }
  }
  if (source.empty()) return usage_error();
  std::string text;
  struct stat st;
  if (all_digits(source.c_str()) && stat(source.c_str(), &st) != 0) {
    int rc = request_profile(atoi(source.c_str()), timeout, &text);
    if (rc) return rc;
    source = "process " + source;
    if (!output.empty()) {
      FILE* f = fopen(output.c_str(), "we");
      if (!f || fwrite(text.data(), 1, text.size(), f) != text.size() || fclose(f) != 0) {
        fprintf(stderr, "ringpool profile: cannot write %s: %s\n", output.c_str(), strerror(errno));
        return 1;
      }
      printf("profile saved to %s\n", output.c_str());
    }
  } else {
    if (access(source.c_str(), R_OK) != 0) {
      fprintf(stderr, "ringpool profile: cannot read %s: %s\n", source.c_str(), strerror(errno));
      return 1;
    }
    text = read_file(source);
  }
  Profile p;
  std::string err;
  if (!parse_profile(text, &p, &err)) {
    fprintf(stderr, "ringpool profile: %s: %s\n", source.c_str(), err.c_str());
    return 1;
  }
  auto syms = symbolise(p);
  print_top(p, syms, top);
  if (!flame.empty()) {
    if (!write_flame(p, syms, by_alloc, flame, source)) return 1;
    printf("\nflame graph (%s bytes) written to %s\n", by_alloc ? "allocated" : "live", flame.c_str());
  }
  return 0;
}

}  // namespace ringpool::tool
