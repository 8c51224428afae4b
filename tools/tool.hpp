// tools/: the ringpool command-line tool.
#pragma once
#include <string>

namespace ringpool::tool {

// The library to preload: next to the tool, else the installed libdir.
std::string find_library();
int cmd_run(int argc, char** argv);
int cmd_stat(int argc, char** argv);
int cmd_top(int argc, char** argv);
int cmd_profile(int argc, char** argv);

}  // namespace ringpool::tool
