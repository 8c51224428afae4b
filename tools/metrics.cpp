// The statistics of processes as metrics: the Prometheus text exposition
// format (0.0.4, what Prometheus scrapes and node_exporter's textfile
// collector reads) and OpenMetrics 1.0. One table of families drives both.
//
// Glossary
//   family   one metric: name, type, unit, help; a sample per process (and
//            per size class for the class families), labelled with the
//            process's pid and command.
//   name     the family name carries its unit (`_bytes`, `_seconds`); a
//            counter's samples end in `_total`, which in Prometheus 0.0.4
//            the family name carries too and in OpenMetrics it does not.
//   named    a family for each named counter a process's region carries
//            (pool/stats_layout.hpp): its name, kind and help are the
//            region's, so this file prints them knowing nothing of them.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <string_view>

#include "tool.hpp"

namespace ringpool::tool {

namespace {

enum Type { k_gauge, k_counter };

// The unit a counter's name ends in, if any.
constexpr const char* unit_of(const char* name) {
  std::string_view n = name;
  return n.ends_with("_bytes") ? "bytes" : n.ends_with("_seconds") ? "seconds" : "";
}

struct Family {
  const char* name;  // without ringpool_ and without _total
  Type type;
  const char* unit;  // "" or the name's unit suffix
  const char* help;
  uint64_t (*value)(const pool::Snapshot& s);
};

// The process-wide families (the per-class ones are written below).
const Family k_families[] = {
    {"live_bytes", k_gauge, "bytes", "Bytes in blocks the program holds.", [](const pool::Snapshot& s) { return s.live_bytes; }},
    {"live_blocks", k_gauge, "", "Blocks the program holds.", [](const pool::Snapshot& s) { return s.live_blocks; }},
    {"page_bytes", k_gauge, "bytes", "Bytes in small and large pages and huge blocks.",
     [](const pool::Snapshot& s) { return s.page_bytes + s.rows[pool::k_row_huge].live_bytes; }},
    {"cached_bytes", k_gauge, "bytes", "Free bytes inside small pages, cached by threads.",
     [](const pool::Snapshot& s) { return s.cached_bytes; }},
    {"mapped_bytes", k_gauge, "bytes", "Bytes mapped from the OS.", [](const pool::Snapshot& s) { return s.mapped; }},
    {"resident_bytes", k_gauge, "bytes", "Resident set size of the process.",
     [](const pool::Snapshot& s) { return s.resident; }},
    {"metadata_bytes", k_gauge, "bytes", "Bytes of the allocator's own metadata.",
     [](const pool::Snapshot& s) { return s.meta_bytes; }},
    {"unreturned_bytes", k_gauge, "bytes", "Free bytes not yet returned to the OS.",
     [](const pool::Snapshot& s) { return s.dirty; }},
    {"returned_bytes", k_counter, "bytes", "Bytes returned to the OS since start.",
     [](const pool::Snapshot& s) { return s.released; }},
    {"threads", k_gauge, "", "Threads with a heap, alive.", [](const pool::Snapshot& s) { return s.threads_active; }},
    {"requested_bytes", k_counter, "bytes", "Bytes asked for in small requests since start.",
     [](const pool::Snapshot& s) { return s.requested_bytes; }},
    {"served_bytes", k_counter, "bytes", "Bytes of the small blocks that served those requests.",
     [](const pool::Snapshot& s) { return s.block_bytes; }},
#define RINGPOOL_FAMILY(field, kind, text)                                                                  \
  {#field, k_##kind, unit_of(#field), text, [](const pool::Snapshot& s) { return s.global.field; }},
    RINGPOOL_GLOBAL_COUNTERS(RINGPOOL_FAMILY)
#undef RINGPOOL_FAMILY
};

struct ClassFamily {
  const char* name;
  Type type;
  const char* unit;
  const char* help;
  uint64_t pool::ClassRow::*field;
};

const ClassFamily k_class_families[] = {
    {"class_allocations", k_counter, "", "Blocks allocated since start, per size class.", &pool::ClassRow::allocs},
    {"class_frees", k_counter, "", "Blocks freed since start, per size class.", &pool::ClassRow::frees},
    {"class_live_blocks", k_gauge, "", "Blocks the program holds, per size class.", &pool::ClassRow::live_blocks},
    {"class_live_bytes", k_gauge, "bytes", "Bytes in blocks the program holds, per size class.",
     &pool::ClassRow::live_bytes},
    {"class_page_bytes", k_gauge, "bytes", "Bytes in the pages of a size class.", &pool::ClassRow::page_bytes},
};

const char* const k_uptime = "uptime_seconds";

bool fixed_family(const char* name) {
  auto is = [&](const char* n) { return strcmp(n, name) == 0; };
  return is(k_uptime) || std::any_of(std::begin(k_families), std::end(k_families), [&](const Family& f) { return is(f.name); }) ||
         std::any_of(std::begin(k_class_families), std::end(k_class_families), [&](const ClassFamily& f) { return is(f.name); });
}

// A label value: backslash, double quote and newline escaped.
std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

// HELP, TYPE (and UNIT) lines of a family; returns the samples' name.
std::string header(std::string* out, MetricsFormat f, const char* base, Type type, const char* unit, const char* help) {
  std::string name = std::string("ringpool_") + base;
  std::string sample = type == k_counter ? name + "_total" : name;
  const std::string& family = f == MetricsFormat::openmetrics ? name : sample;
  *out += "# HELP " + family + " " + help + "\n";
  *out += "# TYPE " + family + (type == k_counter ? " counter\n" : " gauge\n");
  if (f == MetricsFormat::openmetrics && *unit) *out += "# UNIT " + family + " " + unit + "\n";
  return sample;
}

std::string labels(const MetricsProcess& p) {
  return "pid=\"" + std::to_string(p.pid) + "\",command=\"" + label_value(p.comm) + "\"";
}

}  // namespace

std::string format_metrics(const std::vector<MetricsProcess>& procs, MetricsFormat f) {
  std::string out;
  for (const Family& fam : k_families) {
    std::string sample = header(&out, f, fam.name, fam.type, fam.unit, fam.help);
    for (const MetricsProcess& p : procs)
      out += sample + "{" + labels(p) + "} " + std::to_string(fam.value(p.s)) + "\n";
  }
  // The named counters: one family per name, in the order the processes
  // registered them, with a sample from each process that has it.
  // A name another family has (a hostile region's) is left out.
  std::vector<const pool::CounterName*> named;
  for (const MetricsProcess& p : procs)
    for (uint32_t k = 0; k < p.s.named_used; k++) {
      const pool::CounterName& c = p.s.named[k].name;
      if (!c.name[0] || fixed_family(c.name)) continue;
      if (std::none_of(named.begin(), named.end(), [&](const pool::CounterName* n) { return strcmp(n->name, c.name) == 0; }))
        named.push_back(&c);
    }
  for (const pool::CounterName* c : named) {
    Type type = c->kind == (uint32_t)pool::CounterKind::gauge ? k_gauge : k_counter;
    std::string sample = header(&out, f, c->name, type, unit_of(c->name), c->help);
    for (const MetricsProcess& p : procs)
      for (uint32_t k = 0; k < p.s.named_used; k++)
        if (strcmp(p.s.named[k].name.name, c->name) == 0)
          out += sample + "{" + labels(p) + "} " + std::to_string(p.s.named[k].value) + "\n";
  }
  for (const ClassFamily& fam : k_class_families) {
    std::string sample = header(&out, f, fam.name, fam.type, fam.unit, fam.help);
    for (const MetricsProcess& p : procs) {
      for (unsigned i = 0; i < pool::k_rows; i++) {
        const pool::ClassRow& r = p.s.rows[i];
        if (r.allocs == 0 && r.page_bytes == 0) continue;
        std::string cls = i == pool::k_row_large ? "large" : i == pool::k_row_huge ? "huge" : std::to_string(r.size);
        out += sample + "{" + labels(p) + ",class=\"" + cls + "\"} " + std::to_string(r.*fam.field) + "\n";
      }
    }
  }
  std::string uptime = header(&out, f, k_uptime, k_gauge, "seconds", "Seconds since the process started the library.");
  for (const MetricsProcess& p : procs) {
    char v[32];
    snprintf(v, sizeof v, "%.3f", (double)p.s.uptime_ms / 1000);
    out += uptime + "{" + labels(p) + "} " + v + "\n";
  }
  if (f == MetricsFormat::openmetrics) out += "# EOF\n";
  return out;
}

namespace {

// The temporary files of this scheme: .NAME.PID.tmp beside NAME.
std::string temp_name(const std::string& dir, const std::string& base, long pid) {
  return dir + "/." + base + "." + std::to_string(pid) + ".tmp";
}

// Removes what writers killed mid-write left behind (their pid is gone).
void remove_dead_temps(const std::string& dir, const std::string& base) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  std::string prefix = "." + base + ".";
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() <= prefix.size() + 4 || n.compare(0, prefix.size(), prefix) != 0 ||
        n.compare(n.size() - 4, 4, ".tmp") != 0)
      continue;
    std::string digits = n.substr(prefix.size(), n.size() - prefix.size() - 4);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    long pid = atol(digits.c_str());
    if (pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH) unlink((dir + "/" + n).c_str());
  }
  closedir(d);
}

}  // namespace

bool write_file_atomically(const std::string& path, const std::string& text) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  remove_dead_temps(dir, base);
  std::string tmp = temp_name(dir, base, (long)getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += (size_t)n;
  }
  bool ok = done == text.size() && fsync(fd) == 0;
  int err = errno;
  if (close(fd) != 0 && ok) ok = false, err = errno;
  if (ok && rename(tmp.c_str(), path.c_str()) == 0) return true;
  if (ok) err = errno;
  unlink(tmp.c_str());
  errno = err;
  return false;
}

}  // namespace ringpool::tool
