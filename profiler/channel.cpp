// The request channel: `ringpool profile PID` asks for a profile
// (channel_layout.hpp says how), answered on a malloc slow path.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../pool/channel.hpp"
#include "profiler.hpp"

namespace ringpool::profile {

Channel* g_channel;

void channel_open() {
  Channel c = {};
  memcpy(c.magic, k_channel_magic, sizeof c.magic);
  c.layout = k_channel_layout;
  c.size = sizeof(Channel);
  c.pid = platform::process_id();
  c.rate = g_rate;
  void* p = pool::channel::publish(pool::channel::k_profile, k_channel_bytes, &c, sizeof c, nullptr);
  if (p != nullptr) __atomic_store_n(&g_channel, static_cast<Channel*>(p), __ATOMIC_RELEASE);
}

namespace {

// Write DIR/profile.heap, DIR being a directory of ours that nobody else may
// write to (so no one could have planted a link in it). 0 or an errno.
int dump_to_dir(const char* dir) {
  if (dir[0] != '/') return EINVAL;
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return errno;
  struct stat st;
  if (fstat(dfd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
    close(dfd);
    return EPERM;
  }
  int fd = openat(dfd, k_dump_file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  int err = fd < 0 ? errno : 0;
  close(dfd);
  if (fd < 0) return err;
  bool ok;
  {
    LockGuard g(g_dump_lock);
    ok = write_profile_locked(fd);
  }
  err = ok ? 0 : (errno ? errno : EIO);
  close(fd);
  return err;
}

}  // namespace

__attribute__((noinline)) void answer_request(Channel* ch) {
  ThreadState& t = t_state;
  platform::KeepErrno keep;
  static Mutex answering;
  if (!answering.try_lock()) return;  // another thread is on it
  uint64_t r = __atomic_load_n(&ch->request, __ATOMIC_ACQUIRE);
  if (r != __atomic_load_n(&ch->served, __ATOMIC_RELAXED)) {
    char dir[k_dir_max];
    size_t n = 0;
    for (; n < k_dir_max - 1; n++) {
      dir[n] = __atomic_load_n(&ch->dir[n], __ATOMIC_RELAXED);
      if (dir[n] == 0) break;
    }
    dir[n] = 0;
    t.busy = true;
    int status = n == k_dir_max - 1 ? ENAMETOOLONG : dump_to_dir(dir);
    t.busy = false;
    __atomic_store_n(&ch->status, status, __ATOMIC_RELAXED);
    __atomic_store_n(&ch->served, r, __ATOMIC_RELEASE);
  }
  answering.unlock();
}

}  // namespace ringpool::profile
