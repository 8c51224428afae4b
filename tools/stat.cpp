// ringpool stat / ringpool top: read the live statistics of processes that
// run with the library, from outside (see pool/stats.hpp for the channel).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "../pool/channel.hpp"
#include "../pool/stats_layout.hpp"
#include "tool.hpp"

namespace ringpool::tool {

namespace {

uint64_t monotonic_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

std::string comm_of(int pid) {
  std::string c = read_file("/proc/" + std::to_string(pid) + "/comm");
  while (!c.empty() && (c.back() == '\n')) c.pop_back();
  return c;
}

uint64_t resident_of(int pid) {
  std::string s = read_file("/proc/" + std::to_string(pid) + "/statm");
  unsigned long long size = 0, res = 0;
  if (sscanf(s.c_str(), "%llu %llu", &size, &res) != 2) return 0;
  return res * (uint64_t)sysconf(_SC_PAGESIZE);
}

// A copy of another process's stats region.
struct Region {
  std::vector<char> bytes;
};

// Read the region with pread, not mmap: the owner may shrink the file
// while it is read, and a mapping would then fault (SIGBUS); pread just
// returns less, and snapshot_from refuses a region shorter than its header
// says.
Found read_region(int pid, Region* out) {
  int fd = -1;
  Found f = open_channel(pid, pool::channel::k_stats, O_RDONLY, &fd);
  if (f != Found::ok) return f;
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(pool::SharedStats) || st.st_size > (off_t)(256u << 20)) {
    close(fd);
    return Found::foreign_channel;
  }
  out->bytes.resize((size_t)st.st_size);
  size_t got = 0;
  while (got < out->bytes.size()) {
    ssize_t n = pread(fd, out->bytes.data() + got, out->bytes.size() - got, (off_t)got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd);
  out->bytes.resize(got);
  return Found::ok;
}

bool snapshot_of(const Region& r, int pid, pool::Snapshot* s) {
  if (!pool::snapshot_from(reinterpret_cast<const pool::SharedStats*>(r.bytes.data()), r.bytes.size(),
                           monotonic_ms(), s))
    return false;
  s->resident = resident_of(pid);
  return true;
}

// The layout number of a region that starts with the magic.
bool layout_of(const Region& r, uint32_t* layout) {
  const size_t end = offsetof(pool::SharedStats, layout) + sizeof(uint32_t);
  if (r.bytes.size() < end || memcmp(r.bytes.data(), pool::k_stats_magic, sizeof pool::k_stats_magic) != 0) return false;
  memcpy(layout, r.bytes.data() + offsetof(pool::SharedStats, layout), sizeof *layout);
  return true;
}

int report(int pid, Found f) {
  if (f == Found::ok) return 0;
  if (f == Found::no_process) {
    fprintf(stderr, "ringpool stat: no process %d\n", pid);
    return 1;
  }
  std::string name = comm_of(pid);
  fprintf(stderr, "ringpool stat: process %d%s: %s\n", pid, name.empty() ? "" : (" (" + name + ")").c_str(),
          found_text(f));
  return 1;
}

bool parse_pid(const char* s, int* pid) {
  char* end;
  long v = strtol(s, &end, 10);
  if (*s == 0 || *end != 0 || v <= 0 || v > 0x7fffffff) return false;
  *pid = (int)v;
  return true;
}

bool parse_seconds(const char* s, double* out) {
  char* end;
  double v = strtod(s, &end);
  if (*s == 0 || *end != 0 || !(v > 0) || v > 86400) return false;
  *out = v;
  return true;
}

volatile sig_atomic_t g_stop;

void sleep_seconds(double s) {
  struct timespec ts;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  nanosleep(&ts, nullptr);
}

std::string human(uint64_t v) {
  char b[32];
  return pool::format_bytes(v, b, sizeof b);
}

enum class Format { text, json, prometheus, openmetrics };

bool parse_format(const char* s, Format* f) {
  std::string v = s ? s : "";
  if (v == "text") *f = Format::text;
  else if (v == "json") *f = Format::json;
  else if (v == "prometheus") *f = Format::prometheus;
  else if (v == "openmetrics") *f = Format::openmetrics;
  else return false;
  return true;
}

bool is_metrics(Format f) { return f == Format::prometheus || f == Format::openmetrics; }

std::string metrics_of(const std::vector<MetricsProcess>& procs, Format f) {
  return format_metrics(procs, f == Format::openmetrics ? MetricsFormat::openmetrics : MetricsFormat::prometheus);
}

// Options both commands take: --format F (--json), --textfile FILE.
// Returns 1 if argv[*i] was one (consumed), 0 if not, -1 on a bad value.
int output_option(const char* cmd, int argc, char** argv, int* i, Format* f, std::string* textfile) {
  std::string a = argv[*i];
  if (a == "--json") {
    *f = Format::json;
    return 1;
  }
  if (a == "--format") {
    if (*i + 1 >= argc || !parse_format(argv[*i + 1], f)) {
      fprintf(stderr, "ringpool %s: --format needs text, json, prometheus or openmetrics\n", cmd);
      return -1;
    }
    ++*i;
    return 1;
  }
  if (a == "--textfile") {
    if (*i + 1 >= argc || !argv[*i + 1][0]) {
      fprintf(stderr, "ringpool %s: --textfile needs a file name\n", cmd);
      return -1;
    }
    *textfile = argv[++*i];
    return 1;
  }
  return 0;
}

// Text to stdout, or to the textfile, replaced in one step.
bool emit(const char* cmd, const std::string& text, const std::string& textfile) {
  if (textfile.empty()) {
    fputs(text.c_str(), stdout);
    fflush(stdout);
    return true;
  }
  if (write_file_atomically(textfile, text)) return true;
  fprintf(stderr, "ringpool %s: cannot write %s: %s\n", cmd, textfile.c_str(), strerror(errno));
  return false;
}

}  // namespace

int cmd_stat(int argc, char** argv) {
  Format format = Format::text;
  std::string textfile;
  double watch = 0;
  int pid = 0;
  for (int i = 0; i < argc; i++) {
    std::string a = argv[i];
    if (int o = output_option("stat", argc, argv, &i, &format, &textfile)) {
      if (o < 0) return 2;
    } else if (a == "--watch") {
      if (i + 1 >= argc || !parse_seconds(argv[i + 1], &watch)) {
        fprintf(stderr, "ringpool stat: --watch needs a number of seconds\n");
        return 2;
      }
      i++;
    } else if (a.size() > 1 && a[0] == '-') {
      fprintf(stderr, "ringpool stat: unknown option '%s'\n", a.c_str());
      return 2;
    } else if (pid == 0 && parse_pid(argv[i], &pid)) {
    } else {
      fprintf(stderr, "ringpool stat: '%s' is not a process id\n", argv[i]);
      return 2;
    }
  }
  if (pid == 0) {
    fprintf(stderr, "usage: ringpool stat [--format text|json|prometheus|openmetrics] [--textfile FILE] [--watch SECONDS] PID\n");
    return 2;
  }
  if (!textfile.empty() && format == Format::text) format = Format::prometheus;
  if (!textfile.empty() && !is_metrics(format)) {
    fprintf(stderr, "ringpool stat: --textfile writes metrics: --format prometheus or openmetrics\n");
    return 2;
  }
  remove_stale();
  for (int round = 0;; round++) {
    Region r;
    Found f = read_region(pid, &r);
    if (f != Found::ok) {
      if (round > 0 && f == Found::no_process) {
        fprintf(stderr, "ringpool stat: process %d exited\n", pid);
        return 0;
      }
      return report(pid, f);
    }
    pool::Snapshot s;
    if (!snapshot_of(r, pid, &s)) {
      uint32_t layout = 0;
      if (layout_of(r, &layout) && layout != pool::k_stats_layout)
        fprintf(stderr, "ringpool stat: process %d: the stats channel is of another version (layout %u; this ringpool reads %u)\n",
                pid, (unsigned)layout, (unsigned)pool::k_stats_layout);
      else
        fprintf(stderr, "ringpool stat: process %d: the stats channel is malformed or of another version\n", pid);
      return 1;
    }
    std::string text;
    if (is_metrics(format)) {
      text = metrics_of({MetricsProcess{pid, comm_of(pid), s}}, format);
    } else {
      bool json = format == Format::json;
      std::vector<char> buf(1 << 16);
      size_t n = json ? pool::format_json(s, buf.data(), buf.size()) : pool::format_text(s, true, buf.data(), buf.size());
      if (n >= buf.size()) {
        buf.resize(n + 1);
        json ? pool::format_json(s, buf.data(), buf.size()) : pool::format_text(s, true, buf.data(), buf.size());
      }
      text = buf.data();
      if (watch > 0 && !json && isatty(1)) fputs("\033[H\033[2J", stdout);
      if (watch > 0 && !json && round > 0 && !isatty(1)) fputs("\n", stdout);
    }
    if (!emit("stat", text, textfile)) return 1;
    if (watch <= 0) return 0;
    sleep_seconds(watch);
  }
}

int cmd_top(int argc, char** argv) {
  bool once = false, interval_given = false;
  double interval = 2;
  Format format = Format::text;
  std::string textfile;
  for (int i = 0; i < argc; i++) {
    std::string a = argv[i];
    if (int o = output_option("top", argc, argv, &i, &format, &textfile)) {
      if (o < 0) return 2;
    } else if (a == "--once") {
      once = true;
    } else if (a == "--interval") {
      if (i + 1 >= argc || !parse_seconds(argv[i + 1], &interval)) {
        fprintf(stderr, "ringpool top: --interval needs a number of seconds\n");
        return 2;
      }
      interval_given = true;
      i++;
    } else {
      fprintf(stderr, "ringpool top: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (!textfile.empty() && format == Format::text) format = Format::prometheus;
  if (format == Format::json || (!textfile.empty() && !is_metrics(format))) {
    fprintf(stderr, "ringpool top: --format is text, prometheus or openmetrics (--textfile: the latter two)\n");
    return 2;
  }
  // Metrics go to a pipe or a file: once, unless an interval is asked for.
  if (is_metrics(format) ? !interval_given : !isatty(1)) once = true;
  for (;;) {
    struct Row {
      int pid;
      std::string comm;
      pool::Snapshot s;
    };
    std::vector<Row> rows;
    remove_stale();
    for (int pid : channel_pids(pool::channel::k_stats)) {
      Region r;
      if (read_region(pid, &r) != Found::ok) continue;
      Row row{pid, comm_of(pid), {}};
      if (snapshot_of(r, pid, &row.s)) rows.push_back(row);
    }
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.s.resident > b.s.resident; });
    if (is_metrics(format)) {
      std::vector<MetricsProcess> procs;
      for (const Row& r : rows) procs.push_back(MetricsProcess{r.pid, r.comm, r.s});
      if (!emit("top", metrics_of(procs, format), textfile)) return 1;
      if (once) return 0;
      sleep_seconds(interval);
      continue;
    }
    if (!once) fputs("\033[H\033[2J", stdout);
    printf("%8s  %-16s %10s %10s %10s %8s\n", "PID", "COMMAND", "LIVE", "RESIDENT", "OVERHEAD", "THREADS");
    for (const Row& r : rows) {
      uint64_t held = r.s.page_bytes + r.s.rows[pool::k_row_huge].live_bytes;
      uint64_t overhead = held > r.s.live_bytes ? held - r.s.live_bytes : 0;
      printf("%8d  %-16.16s %10s %10s %10s %8llu\n", r.pid, r.comm.c_str(), human(r.s.live_bytes).c_str(),
             human(r.s.resident).c_str(), human(overhead).c_str(), (unsigned long long)r.s.threads_active);
    }
    if (rows.empty()) printf("(no process of yours runs with libringpool)\n");
    fflush(stdout);
    if (once) return 0;
    sleep_seconds(interval);
  }
}

}  // namespace ringpool::tool
