// tools/: the ringpool command-line tool.
#pragma once
#include <string>
#include <vector>

#include "../pool/stats_layout.hpp"

namespace ringpool::tool {

// The library to preload: next to the tool, else the installed libdir.
std::string find_library();

// A process's channel file of `kind` (pool/channel.hpp), checked (tools/
// channel.cpp says how) and opened with `flags` (O_RDONLY or O_RDWR).
enum class Found { ok, no_process, no_permission, no_library, no_channel, foreign_channel };
Found open_channel(int pid, const char* kind, int flags, int* fd);
// Why a process's channel was not read, for a message.
const char* found_text(Found f);
// The processes that published a channel of `kind` where this tool looks
// (its user's directory; as root, every user's).
std::vector<int> channel_pids(const char* kind);
// A whole file ("" when it cannot be read): /proc files, profiles.
std::string read_file(const std::string& path);
// The effective uid of a process (the owner of what it creates), or -1.
long effective_uid(int pid);
// Remove the channel files of processes that are gone, where this tool may.
void remove_stale();
// Metrics (tools/metrics.cpp): the snapshots of processes in the
// Prometheus text format or OpenMetrics, labelled by pid and command.
struct MetricsProcess {
  int pid;
  std::string comm;
  pool::Snapshot s;
};
enum class MetricsFormat { prometheus, openmetrics };
std::string format_metrics(const std::vector<MetricsProcess>& procs, MetricsFormat f);
// Replace path's contents in one step: a temporary file beside it (removed
// by the next writer if this one is killed), fsync, rename. False with
// errno on failure; path is then as it was.
bool write_file_atomically(const std::string& path, const std::string& text);
int cmd_run(int argc, char** argv);
int cmd_stat(int argc, char** argv);
int cmd_top(int argc, char** argv);
int cmd_profile(int argc, char** argv);

}  // namespace ringpool::tool
