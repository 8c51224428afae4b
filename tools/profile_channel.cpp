// Asking a running process for its profile through the request channel
// (profiler/channel_layout.hpp).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../pool/channel.hpp"
#include "../profiler/channel_layout.hpp"

#include "profile.hpp"
#include "tool.hpp"

namespace ringpool::tool {

namespace {

namespace prof = ringpool::profile;

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

}  // namespace

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

}  // namespace ringpool::tool
