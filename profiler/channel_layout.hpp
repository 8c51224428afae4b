// The heap profiler's request channel: how `ringpool profile PID` asks a
// running process for a profile. The layout both sides include:
// profiler/channel.cpp (the process) and tools/profile.cpp (the CLI), so it
// holds plain data only.
//
// Glossary
//   channel   the file PID.profile in the channel directory (channel.hpp:
//             mode 0600, one page), published only when profiling is on and
//             mapped shared by the process; the CLI maps it too.
//   request   the CLI writes `dir` (an absolute path of a directory it made,
//             mode 0700, owned by the process's effective uid), then adds one
//             to `request`. The process notices on a malloc slow path (any
//             thread: a thread's free lists run out every few hundred to few
//             thousand allocations; two loads per slow path),
//             writes `dir`/profile.heap with O_CREAT|O_EXCL|O_NOFOLLOW, mode
//             0600, stores `status` (0 or an errno) and then `served`.
//   owner     the pid of the CLI that holds the channel (0: free), so two
//             CLIs do not overwrite each other's `dir`; a CLI may take it
//             over from an owner that no longer exists.
//
// Invariants: served <= request; status belongs to `served`; the process
// reads `dir` once per request into its own buffer and checks it there.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace ringpool::profile {

constexpr char k_channel_magic[8] = {'R', 'P', 'P', 'R', 'O', 'F', 'I', 'L'};
constexpr uint32_t k_channel_layout = 1;
constexpr size_t k_channel_bytes = 4096;
constexpr const char* k_dump_file = "profile.heap";
constexpr size_t k_dir_max = 512;

struct Channel {
  char magic[8];
  uint32_t layout;
  uint32_t size;      // sizeof(Channel)
  int32_t pid;        // the process, as it sees itself
  uint32_t owner;     // CLI: pid of the CLI using the channel, 0 when free
  uint64_t rate;      // RINGPOOL_PROFILE_RATE of the process
  uint64_t request;   // CLI: bumped (atomically) after `dir` is written
  uint64_t served;    // process: the last request answered
  int32_t status;     // process: 0 or an errno, for `served`
  uint32_t reserved;
  char dir[k_dir_max];  // CLI: NUL-terminated absolute path
};
static_assert(sizeof(Channel) <= k_channel_bytes, "the channel fits its page");
static_assert(offsetof(Channel, request) % 8 == 0 && offsetof(Channel, served) % 8 == 0,
              "the counters are naturally aligned (atomic access)");

}  // namespace ringpool::profile
