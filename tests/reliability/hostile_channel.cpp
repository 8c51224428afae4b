// hostile_channel: a process that is not ringpool but publishes a stats
// channel where `ringpool stat PID` looks for one (PID.stats in the channel
// directory, mapped by the process); the contents are hostile. The CLI must not crash on any of them: it reports
// a malformed channel, or prints numbers, and exits with a status, never a
// signal.
//
// usage: hostile_channel KIND [SECONDS]     prints "ready", then waits
//   garbage    64 KiB of random bytes
//   slots      a valid header whose slot count runs past the file's end
//   extreme    a valid header, every counter UINT64_MAX, slots_used huge,
//              a negative pid, a start time in the future
//   tiny       a file shorter than the header
//   shrink     a valid 64 MiB region that a thread truncates to nothing and
//              grows back without pause, so a reader that maps the file
//              finds the pages gone under it (SIGBUS)
//   pointers   a valid header, then addresses of this process's stack, heap
//              and code: what tests/reliability/no_pointers.py must flag
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "../../pool/channel.hpp"

#include "../../pool/stats_layout.hpp"

namespace pool = ringpool::pool;

namespace {

int g_fd;
size_t g_size;

void* shrink_loop(void*) {
  for (;;) {
    if (ftruncate(g_fd, 0) != 0 || ftruncate(g_fd, (off_t)g_size) != 0) return nullptr;
  }
}

void write_all(const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  size_t done = 0;
  while (done < n) {
    ssize_t w = pwrite(g_fd, c + done, n - done, (off_t)done);
    if (w <= 0) {
      perror("pwrite");
      exit(1);
    }
    done += (size_t)w;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: hostile_channel garbage|slots|extreme|tiny|shrink|pointers [SECONDS]\n");
    return 2;
  }
  const char* kind = argv[1];
  int secs = argc > 2 ? atoi(argv[2]) : 30;
  namespace channel = ringpool::pool::channel;
  const char* base = getenv(channel::k_base_env);
  std::string dir = std::string(base && *base == '/' ? base : channel::k_default_base) + "/" + channel::k_dir_prefix +
                    std::to_string(geteuid());
  mkdir(dir.c_str(), 0700);
  std::string path = dir + "/" + std::to_string(getpid()) + "." + channel::k_stats;
  g_fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (g_fd < 0) {
    perror(path.c_str());
    return 77;
  }
  fchmod(g_fd, 0600);
  size_t header = sizeof(pool::SharedStats);
  std::vector<unsigned char> bytes;
  pool::SharedStats* s = nullptr;
  auto valid_header = [&](size_t total, uint32_t slots) {
    bytes.assign(total, 0);
    s = reinterpret_cast<pool::SharedStats*>(bytes.data());
    memcpy(s->magic, pool::k_stats_magic, sizeof s->magic);
    s->layout = pool::k_stats_layout;
    s->header_size = (uint32_t)header;
    s->num_classes = pool::k_num_classes;
    s->slots = slots;
    s->slots_used = slots;
    s->pid = (int32_t)getpid();
    for (unsigned c = 0; c < pool::k_num_classes; c++) s->class_size[c] = 16u * (c + 1);
  };
  if (strcmp(kind, "garbage") == 0) {
    bytes.resize(65536);
    uint64_t x = 88172645463325252ull;
    for (auto& b : bytes) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      b = (unsigned char)x;
    }
  } else if (strcmp(kind, "slots") == 0) {
    valid_header(pool::shared_stats_bytes(4), 1000000);
  } else if (strcmp(kind, "extreme") == 0) {
    valid_header(pool::shared_stats_bytes(16), 16);
    unsigned char* body = reinterpret_cast<unsigned char*>(&s->global);
    memset(body, 0xff, bytes.size() - (size_t)(body - bytes.data()));
    s->slots_used = 0xffffffffu;
    s->pid = -1;
    s->start_ms = UINT64_MAX;
    s->backend.seq = 0;  // even: a consistent read
    for (unsigned c = 0; c < pool::k_num_classes; c++) s->class_size[c] = 0xffffffffu;
  } else if (strcmp(kind, "tiny") == 0) {
    valid_header(header, 1);
    bytes.resize(header / 2);
  } else if (strcmp(kind, "shrink") == 0) {
    g_size = size_t{64} << 20;
    valid_header(pool::shared_stats_bytes(16), 16);
    bytes.resize(g_size);
  } else if (strcmp(kind, "pointers") == 0) {
    valid_header(pool::shared_stats_bytes(4), 4);
    static int on_data;
    void* leaked[] = {&kind, malloc(64), reinterpret_cast<void*>(&main), &on_data};
    memcpy(&s->global, leaked, sizeof leaked);
  } else {
    fprintf(stderr, "hostile_channel: unknown kind '%s'\n", kind);
    return 2;
  }
  if (ftruncate(g_fd, (off_t)bytes.size()) != 0) {
    perror("ftruncate");
    return 1;
  }
  write_all(bytes.data(), bytes.size());
  // Mapped, so that /proc/PID/maps names it as this process's channel.
  if (mmap(nullptr, bytes.size() ? bytes.size() : 1, PROT_READ, MAP_SHARED, g_fd, 0) == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  if (strcmp(kind, "shrink") == 0) {
    pthread_t t;
    pthread_create(&t, nullptr, shrink_loop, nullptr);
  }
  printf("ready\n");
  fflush(stdout);
  sleep((unsigned)secs);
  return 0;
}
