// replay_main: stands in for libFuzzer's main where there is no libFuzzer
// (a gcc build): runs LLVMFuzzerTestOneInput once on each file named, and on
// each file inside each directory named. Each input sits in a buffer of
// exactly its size, so that AddressSanitizer catches a read past its end.
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <algorithm>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool run_file(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  if (!f) {
    perror(path.c_str());
    return false;
  }
  std::vector<uint8_t> bytes;
  uint8_t buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
  fclose(f);
  uint8_t* exact = static_cast<uint8_t*>(malloc(bytes.size() ? bytes.size() : 1));
  if (!bytes.empty()) memcpy(exact, bytes.data(), bytes.size());
  fprintf(stderr, "replay: %s (%zu bytes)\n", path.c_str(), bytes.size());
  LLVMFuzzerTestOneInput(exact, bytes.size());
  free(exact);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned count = 0;
  bool ok = true;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      perror(argv[i]);
      ok = false;
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      ok = run_file(argv[i]) && ok;
      count++;
      continue;
    }
    DIR* d = opendir(argv[i]);
    if (!d) continue;
    std::vector<std::string> names;
    while (struct dirent* e = readdir(d))
      if (e->d_name[0] != '.') names.push_back(std::string(argv[i]) + "/" + e->d_name);
    closedir(d);
    std::sort(names.begin(), names.end());
    for (const std::string& p : names) {
      ok = run_file(p) && ok;
      count++;
    }
  }
  printf("replay: %u inputs run\n", count);
  return ok ? 0 : 1;
}
