// Finding and checking another process's channel files (pool/channel.hpp
// says where a process publishes them), and removing those of dead ones.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "../pool/channel.hpp"
#include "tool.hpp"

namespace ringpool::tool {

namespace channel = pool::channel;

namespace {

// One line of /proc/PID/maps: start-end perms offset major:minor inode path.
struct MapsLine {
  unsigned dev_major = 0, dev_minor = 0;
  unsigned long long inode = 0;
  std::string path;  // "" for an anonymous mapping
};

// Calls fn for each line of the process's maps until it returns true;
// false if the file cannot be read (errno says why).
template <typename Fn>
bool for_each_mapping(int pid, Fn fn) {
  FILE* f = fopen(("/proc/" + std::to_string(pid) + "/maps").c_str(), "re");
  if (f == nullptr) return false;
  char line[4096];
  while (fgets(line, sizeof line, f)) {
    MapsLine m;
    int path_at = 0;
    if (sscanf(line, "%*x-%*x %*s %*x %x:%x %llu %n", &m.dev_major, &m.dev_minor, &m.inode, &path_at) < 3) continue;
    if (path_at > 0) m.path = line + path_at;
    while (!m.path.empty() && (m.path.back() == '\n' || m.path.back() == ' ')) m.path.pop_back();
    if (fn(m)) break;
  }
  fclose(f);
  return true;
}

enum class Maps { ok, unreadable, no_library, no_file };

// The mapping of DIR/PID.KIND, DIR being a ringpool-UID directory.
Maps find_mapping(int pid, const char* kind, MapsLine* out) {
  std::string want = "/" + std::to_string(pid) + "." + kind;
  bool lib = false, found = false;
  bool read = for_each_mapping(pid, [&](const MapsLine& m) {
    if (m.path.find("libringpool") != std::string::npos) lib = true;
    if (found || m.path.size() <= want.size() ||
        m.path.compare(m.path.size() - want.size(), want.size(), want) != 0)
      return false;
    std::string dir = m.path.substr(0, m.path.size() - want.size());
    std::string leaf = dir.substr(dir.rfind('/') + 1);
    if (leaf.compare(0, strlen(channel::k_dir_prefix), channel::k_dir_prefix) != 0) return false;
    *out = m;
    found = true;
    return false;  // read on: the library may be mapped further down
  });
  if (!read) return Maps::unreadable;
  if (found) return Maps::ok;
  return lib ? Maps::no_file : Maps::no_library;
}

// Does process `pid` map the file with this device and inode?
bool maps_inode(int pid, dev_t dev, ino_t ino) {
  bool found = false;
  bool read = for_each_mapping(pid, [&](const MapsLine& m) {
    found = m.inode == (unsigned long long)ino && m.dev_major == major(dev) && m.dev_minor == minor(dev);
    return found;
  });
  return found || !read;  // cannot tell: keep the file
}

std::string base_dir() {
  const char* b = getenv(channel::k_base_env);
  return b && b[0] == '/' ? b : channel::k_default_base;
}

// The ringpool-UID directories under the base this tool may read: its own,
// or (as root) every one.
std::vector<std::string> channel_dirs() {
  std::vector<std::string> dirs;
  std::string base = base_dir();
  if (geteuid() != 0) {
    dirs.push_back(base + "/" + channel::k_dir_prefix + std::to_string(geteuid()));
    return dirs;
  }
  DIR* d = opendir(base.c_str());
  if (d == nullptr) return dirs;
  while (struct dirent* e = readdir(d)) {
    if (strncmp(e->d_name, channel::k_dir_prefix, strlen(channel::k_dir_prefix)) == 0)
      dirs.push_back(base + "/" + e->d_name);
  }
  closedir(d);
  return dirs;
}

// A directory of channels: ours to trust only if it is not a link, belongs
// to `uid` (or root) and is closed to everyone else. Its descriptor or -1.
int open_trusted_dir(const std::string& path, long uid, Found* why) {
  int dfd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) {
    *why = errno == EACCES || errno == EPERM ? Found::no_permission : Found::no_channel;
    return -1;
  }
  struct stat st;
  if (fstat(dfd, &st) != 0 || (st.st_mode & 077) != 0 || (st.st_uid != (uid_t)uid && st.st_uid != 0)) {
    close(dfd);
    *why = Found::foreign_channel;
    return -1;
  }
  return dfd;
}

}  // namespace

std::string read_file(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, (size_t)n);
  }
  close(fd);
  return out;
}

long effective_uid(int pid) {
  FILE* f = fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "re");
  if (f == nullptr) return -1;
  char line[256];
  long uid = -1;
  while (fgets(line, sizeof line, f)) {
    long r, e;
    if (sscanf(line, "Uid: %ld %ld", &r, &e) == 2) uid = e;
  }
  fclose(f);
  return uid;
}

Found open_channel(int pid, const char* kind, int flags, int* fd) {
  struct stat st;
  if (stat(("/proc/" + std::to_string(pid)).c_str(), &st) != 0) return Found::no_process;
  long uid = effective_uid(pid);
  MapsLine m;
  switch (find_mapping(pid, kind, &m)) {
    case Maps::unreadable:
      return errno == EACCES || errno == EPERM ? Found::no_permission : Found::no_process;
    case Maps::no_library:
      return Found::no_library;
    case Maps::no_file:
      return Found::no_channel;
    case Maps::ok:
      break;
  }
  // The file was removed while the process runs (kill -9 of another pid
  // namespace's process with this pid, or by hand): the mapping is all
  // there is, and only ptrace rights could read that.
  if (m.path.size() > 10 && m.path.compare(m.path.size() - 10, 10, " (deleted)") == 0) return Found::no_channel;
  Found why = Found::ok;
  size_t slash = m.path.rfind('/');
  int dfd = open_trusted_dir(m.path.substr(0, slash), uid, &why);
  if (dfd < 0) return why;
  struct stat dst;
  fstat(dfd, &dst);
  // O_NONBLOCK: were it a FIFO, opening it would wait for a writer.
  int f = openat(dfd, m.path.c_str() + slash + 1, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  int err = errno;
  close(dfd);
  if (f < 0) return err == EACCES || err == EPERM ? Found::no_permission : Found::no_channel;
  // Whoever made the file is who the directory belongs to, and it is the
  // very file the process maps, not one put in its place since.
  if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != dst.st_uid || (st.st_mode & 077) != 0 ||
      (unsigned long long)st.st_ino != m.inode || major(st.st_dev) != m.dev_major ||
      minor(st.st_dev) != m.dev_minor) {
    close(f);
    return Found::foreign_channel;
  }
  *fd = f;
  return Found::ok;
}

const char* found_text(Found f) {
  switch (f) {
    case Found::ok:
      return "ok";
    case Found::no_process:
      return "no such process";
    case Found::no_permission:
      return "permission denied (it belongs to another user)";
    case Found::no_library:
      return "it does not run with libringpool";
    case Found::no_channel:
      return "it runs libringpool but has no readable channel (RINGPOOL_VERBOSE=1 in its environment says why)";
    case Found::foreign_channel:
      return "its channel is not a file of the process's owner; not read";
  }
  return "?";
}

std::vector<int> channel_pids(const char* kind) {
  std::vector<int> pids;
  for (const std::string& dir : channel_dirs()) {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) continue;
    while (struct dirent* e = readdir(d)) {
      if (int pid = channel::pid_of_name(e->d_name, kind)) pids.push_back(pid);
    }
    closedir(d);
  }
  return pids;
}

void remove_stale() {
  time_t now = time(nullptr);
  for (const std::string& dir : channel_dirs()) {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) continue;
    int dfd = dirfd(d);
    struct stat dst;
    if (fstat(dfd, &dst) != 0 || (dst.st_mode & 077) != 0) {
      closedir(d);
      continue;
    }
    while (struct dirent* e = readdir(d)) {
      int pid = channel::pid_of_name(e->d_name, nullptr);
      if (pid == 0) continue;
      struct stat st;
      if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      bool gone = kill(pid, 0) != 0 && errno == ESRCH;
      // A live pid that does not map the file: the pid was reused, or the
      // process exec'd a program without the library. Not a file made a
      // moment ago, which its process may not have mapped yet.
      if (!gone && now - st.st_mtime > 1) gone = !maps_inode(pid, st.st_dev, st.st_ino);
      if (gone) unlinkat(dfd, e->d_name, 0);
    }
    closedir(d);
  }
}

}  // namespace ringpool::tool
