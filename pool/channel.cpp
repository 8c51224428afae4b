// The channel directory (see channel.hpp): publishing this process's
// files, and removing those of dead processes.
#include "channel.hpp"

#include <string.h>

#include "errors.hpp"
#include "options.hpp"
#include "platform.hpp"

namespace ringpool::pool::channel {

namespace {

constexpr size_t k_path_max = 256;
constexpr uint64_t k_sweep_entries = 150;  // what one getdents64 (4 KiB) returns, about
constexpr uint64_t k_tmpfs_entry_bytes = 20;  // a tmpfs directory's st_size per entry

bool g_swept;        // this image removed stale files once
bool g_warned;       // the directory's problem was reported once

struct Text {
  char buf[k_path_max];
  size_t n = 0;
  bool ok = true;
  Text& add(const char* s) {
    size_t len = strlen(s);
    if (n + len >= sizeof buf) {
      ok = false;
      return *this;
    }
    memcpy(buf + n, s, len + 1);
    n += len;
    return *this;
  }
  Text& add_dec(unsigned long long v) {
    char d[24];
    return add(format_dec(d, v));
  }
};

// BASE/ringpool-EUID, or false if RINGPOOL_CHANNEL_DIR is unusable.
bool dir_path(Text* t) {
  const char* base = options().channel_dir;
  if (*base == 0) base = k_default_base;
  if (base[0] != '/') {
    if (!g_warned) {
      g_warned = true;
      platform::write_err("ringpool: warning: RINGPOOL_CHANNEL_DIR is not an absolute path; "
                          "statistics stay in-process\n");
    }
    return false;
  }
  t->add(base).add("/").add(k_dir_prefix).add_dec(platform::effective_uid());
  return t->ok;
}

void file_name(Text* t, int pid, const char* kind) { t->add_dec((unsigned)pid).add(".").add(kind); }

void sweep_one(int dir, const char* name, void* self) {
  int pid = pid_of_name(name, nullptr);
  if (pid != 0 && pid != *static_cast<int*>(self) && !platform::process_exists(pid))
    platform::unlink_at(dir, name);
}

void report(const Text& dir, const char* why) {
  if (g_warned || !options().verbose) return;
  g_warned = true;
  platform::write_err("ringpool: channel directory ");
  platform::write_err(dir.buf);
  platform::write_err(": ");
  platform::write_err(why);
  platform::write_err("; statistics stay in-process (ringpool stat cannot read them)\n");
}

}  // namespace

void* publish(const char* kind, size_t size, const void* copy, size_t copy_bytes, void* at) {
  Text dir;
  if (!dir_path(&dir)) return nullptr;
  const char* why = nullptr;
  uint64_t dir_bytes = 0;
  int dfd = platform::open_private_dir(dir.buf, &why, &dir_bytes);
  if (dfd < 0) {
    report(dir, why);
    return nullptr;
  }
  int self = platform::process_id();
  if (!g_swept) {
    // A window of the directory at a random place: where many processes
    // live, each start still reaches the files of dead ones in time.
    g_swept = true;
    uint64_t entries = dir_bytes / k_tmpfs_entry_bytes;
    uint64_t start = entries > k_sweep_entries ? platform::random_word() % (entries - k_sweep_entries / 2) : 0;
    platform::for_each_name(dfd, start, sweep_one, &self);
  }
  Text name;
  file_name(&name, self, kind);
  void* p = platform::map_new_file(dfd, name.buf, size, copy, copy_bytes, at);
  platform::close_fd(dfd);
  if (p == nullptr) {
    report(dir, "a file cannot be created in it");
    return nullptr;
  }
  return p;
}

void forked() {
  // A fork child sweeps as a process that starts does: children that exit
  // without exec would otherwise leave a file each, faster than starts
  // remove them.
  g_swept = false;
}

}  // namespace ringpool::pool::channel
