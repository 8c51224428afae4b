// ringpool profile: the command (profile.hpp says what it does).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "profile.hpp"
#include "tool.hpp"

namespace ringpool::tool {

namespace {

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
      if (!write_file_atomically(output, text)) {
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
