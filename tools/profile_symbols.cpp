// Symbolising: pc -> object and link-time address (the maps and the ELF
// program headers), then addr2line, then the object's own symbol tables.
#include <cxxabi.h>
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
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <sstream>

#include "profile.hpp"
#include "tool.hpp"

namespace ringpool::tool {

namespace {

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

std::string base_name(const std::string& path) {
  size_t s = path.rfind('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}

// "function" or, without a name, "object+0xOFFSET" or the raw pc.

}  // namespace

Symbols symbolise(const Profile& p) {
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

std::string frame_name(uint64_t pc, const Symbols& syms) {
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

}  // namespace ringpool::tool
