// ringpool: the command-line tool.
//
//   ringpool run [--stats] [--verbose] [--lib PATH] -- PROGRAM [ARGS...]
//   ringpool version
//   ringpool help
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tool.hpp"

namespace ringpool::tool {

namespace {

int usage(FILE* out, int rc) {
  fprintf(out,
          "usage: ringpool run [--stats] [--verbose] [--uring] [--profile FILE] [--lib PATH] [--] PROGRAM [ARGS...]\n"
          "       ringpool stat [--format text|json|prometheus|openmetrics] [--textfile FILE] [--watch SECONDS] PID\n"
          "       ringpool top [--format text|prometheus|openmetrics] [--textfile FILE] [--once] [--interval SECONDS]\n"
          "       ringpool profile [--top N] [--flame OUT.svg] [--by live|alloc] [--output FILE] [--timeout SECONDS] PID|FILE\n"
          "       ringpool version\n"
          "       ringpool help\n"
          "\n"
          "  run      start PROGRAM with libringpool preloaded\n"
          "  stat     show the allocator statistics of a running process\n"
          "  top      list the processes that run with libringpool\n"
          "  profile  top allocation sites and a flame graph, from a heap profile file or a running process\n"
          "  version  print the version\n"
          "See ringpool(1).\n");
  return rc;
}

bool readable(const std::string& path) { return access(path.c_str(), R_OK) == 0; }

std::string self_dir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  buf[n] = 0;
  std::string s(buf);
  size_t slash = s.rfind('/');
  return slash == std::string::npos ? "." : s.substr(0, slash);
}

}  // namespace

// Next to the tool (the build tree), else the installed libdir.
std::string find_library() {
  std::string dir = self_dir();
  for (const char* rel : {"/libringpool.so.1", "/" RINGPOOL_LIBDIR_REL "/libringpool.so.1", "/../lib/libringpool.so.1"}) {
    std::string p = dir + rel;
    if (readable(p)) {
      char real[PATH_MAX];
      if (realpath(p.c_str(), real)) return std::string(real).substr(0, std::string(real).rfind('/')) + "/libringpool.so.1";
      return p;
    }
  }
  std::string p = std::string(RINGPOOL_LIBDIR) + "/libringpool.so.1";
  if (readable(p)) return p;
  return "";
}

int cmd_run(int argc, char** argv) {
  std::string lib;
  std::vector<std::pair<std::string, std::string>> env;
  int i = 0;
  for (; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--") {
      i++;
      break;
    }
    if (a == "--stats") {
      env.emplace_back("RINGPOOL_STATS", "1");
    } else if (a == "--verbose") {
      env.emplace_back("RINGPOOL_VERBOSE", "1");
    } else if (a == "--uring") {
      env.emplace_back("RINGPOOL_URING", "1");
    } else if (a == "--profile") {
      if (i + 1 >= argc) {
        fprintf(stderr, "ringpool run: --profile needs a file name\n");
        return 2;
      }
      env.emplace_back("RINGPOOL_PROFILE", argv[++i]);
    } else if (a == "--lib") {
      if (i + 1 >= argc) {
        fprintf(stderr, "ringpool run: --lib needs a path\n");
        return 2;
      }
      lib = argv[++i];
    } else if (a.size() > 1 && a[0] == '-') {
      fprintf(stderr, "ringpool run: unknown option '%s'\n", a.c_str());
      return 2;
    } else {
      break;
    }
  }
  if (i >= argc) {
    fprintf(stderr, "ringpool run: no program given\n");
    return 2;
  }
  if (lib.empty()) lib = find_library();
  if (lib.empty() || !readable(lib)) {
    fprintf(stderr, "ringpool run: cannot find libringpool.so.1 (looked next to this tool and in %s)\n",
            RINGPOOL_LIBDIR);
    return 127;
  }
  for (auto& kv : env) setenv(kv.first.c_str(), kv.second.c_str(), 1);
  const char* old = getenv("LD_PRELOAD");
  std::string preload = lib;
  if (old && *old) preload += std::string(" ") + old;
  setenv("LD_PRELOAD", preload.c_str(), 1);
  execvp(argv[i], argv + i);
  int e = errno;
  fprintf(stderr, "ringpool run: cannot run '%s': %s\n", argv[i], strerror(e));
  return e == ENOENT ? 127 : 126;
}

int main(int argc, char** argv) {
  if (argc < 2) return usage(stderr, 2);
  std::string cmd = argv[1];
  if (cmd == "run") return cmd_run(argc - 2, argv + 2);
  if (cmd == "stat") return cmd_stat(argc - 2, argv + 2);
  if (cmd == "top") return cmd_top(argc - 2, argv + 2);
  if (cmd == "profile") return cmd_profile(argc - 2, argv + 2);
  if (cmd == "version" || cmd == "--version") {
    printf("ringpool %s\n", RINGPOOL_VERSION);
    return 0;
  }
  if (cmd == "help" || cmd == "--help" || cmd == "-h") return usage(stdout, 0);
  fprintf(stderr, "ringpool: unknown command '%s'\n", cmd.c_str());
  return usage(stderr, 2);
}

}  // namespace ringpool::tool

int main(int argc, char** argv) { return ringpool::tool::main(argc, argv); }
