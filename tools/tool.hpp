// tools/: the ringpool command-line tool.
#pragma once
#include <string>

namespace ringpool::tool {

// The library to preload: next to the tool, else the installed libdir.
std::string find_library();
// The path /proc/PID/fd/N of the process's descriptor whose link reads
// `link`, or "" if none; false (errno set) if the fd folder cannot be read.
bool find_fd_by_link(int pid, const char* link, std::string* path);
int cmd_run(int argc, char** argv);
int cmd_stat(int argc, char** argv);
int cmd_top(int argc, char** argv);
int cmd_profile(int argc, char** argv);

}  // namespace ringpool::tool
