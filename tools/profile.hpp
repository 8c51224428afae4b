// ringpool profile: read a heap profile (a file, or one requested from a
// running process), symbolise it, print the top allocation sites, and draw a
// flame graph as SVG. One file per part: profile_parse.cpp,
// profile_symbols.cpp, profile_report.cpp (the top sites),
// profile_flame.cpp, profile_channel.cpp (asking a process), profile.cpp
// (the command). This header declares what they share.
//
// Glossary
//   profile   the gperftools heap-profile text format the library writes
//             (profiler/output.cpp): a header, one line per stack
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
#pragma once
#include <stdint.h>

#include <string>
#include <unordered_map>
#include <vector>

namespace ringpool::tool {

// ---- profile_parse.cpp
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

bool parse_profile(const std::string& text, Profile* p, std::string* err);

// ---- profile_symbols.cpp
struct Symbol {
  std::string function;  // "" when unknown
  std::string file_line; // "" when unknown
  std::string object;    // path of the object, "" when not in a file mapping
  uint64_t offset = 0;   // link-time address in the object
};
using Symbols = std::unordered_map<uint64_t, Symbol>;

// pc -> symbol, for every pc of the profile.
Symbols symbolise(const Profile& p);
// What a frame prints as: "function file:line", or the object and offset.
std::string frame_name(uint64_t pc, const Symbols& syms);

// ---- profile_report.cpp
std::string human(int64_t b);
void print_top(const Profile& p, const Symbols& syms, size_t top);

// ---- profile_flame.cpp
bool write_flame(const Profile& p, const Symbols& syms, bool by_alloc, const std::string& path,
                 const std::string& source);

// ---- profile_channel.cpp
// Ask process `pid` for a profile; 0 with *text holding it, or an exit status.
int request_profile(int pid, double timeout, std::string* text);

}  // namespace ringpool::tool
