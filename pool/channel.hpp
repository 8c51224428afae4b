// The channel directory: where a process publishes the files that
// `ringpool stat`, `top` and `profile` read (the stats region, the profile
// request page), so that the program itself holds no descriptor for them.
//
// Glossary
//   base      RINGPOOL_CHANNEL_DIR if set (an absolute path), else /dev/shm
//             (a tmpfs: the files never reach a disk).
//   dir       BASE/ringpool-EUID: created mode 0700; used only if it is a
//             real directory (no symbolic link), owned by the process's
//             effective uid, with no access for group or others. Otherwise
//             nothing is published and the statistics stay in-process
//             (RINGPOOL_VERBOSE=1 says why).
//   file      DIR/PID.KIND (KIND: stats, profile), mode 0600, created with
//             O_EXCL|O_NOFOLLOW, mapped shared, and closed at once.
//   stale     a file whose process is gone: the next process that publishes
//             (started or forked; one bounded pass over the directory) or
//             the next `ringpool` command removes it. A process does not
//             remove its own at exit: a program may have put itself under a
//             seccomp filter by then, and a system call it did not allow
//             would kill it.
//
// A fork child publishes files of its own; an exec'd image with the same
// pid replaces the files of the image before it.
#pragma once
#include <stddef.h>
#include <string.h>

namespace ringpool::pool::channel {

// ---- both sides --------------------------------------------------------------
constexpr const char* k_base_env = "RINGPOOL_CHANNEL_DIR";
constexpr const char* k_default_base = "/dev/shm";
constexpr const char* k_dir_prefix = "ringpool-";  // then the uid
constexpr const char* k_stats = "stats";
constexpr const char* k_profile = "profile";

// The pid of a file named "PID.KIND", KIND being `kind` (or, for nullptr,
// either of ours); 0 for any other name.
inline int pid_of_name(const char* name, const char* kind) {
  long long pid = 0;
  const char* s = name;
  for (; *s >= '0' && *s <= '9' && pid < (1LL << 31); s++) pid = pid * 10 + (*s - '0');
  if (s == name || *s != '.' || pid <= 0 || pid >= (1LL << 31)) return 0;
  s++;
  bool ours = kind ? strcmp(s, kind) == 0 : strcmp(s, k_stats) == 0 || strcmp(s, k_profile) == 0;
  return ours ? (int)pid : 0;
}

// ---- the process side (channel.cpp) --------------------------------------------
// Publish DIR/PID.KIND: `size` bytes, the first `copy_bytes` from `copy`,
// mapped shared at `at` (exactly, if not null). The mapping, or nullptr.
void* publish(const char* kind, size_t size, const void* copy, size_t copy_bytes, void* at);
// In a fork child, before it publishes its own files.
void forked();

}  // namespace ringpool::pool::channel
