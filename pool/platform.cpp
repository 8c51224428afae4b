// The platform layer (see platform.hpp): raw system calls, nothing else.
#include "platform.hpp"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

namespace ringpool::platform {

KeepErrno::KeepErrno() : saved_(errno) {}
KeepErrno::~KeepErrno() { errno = saved_; }

namespace {
uint64_t g_fault_every;
uint64_t g_fault_count;

bool inject_fault() {
  if (__builtin_expect(g_fault_every == 0, 1)) return false;
  return __atomic_add_fetch(&g_fault_count, 1, __ATOMIC_RELAXED) % g_fault_every == 0;
}
}  // namespace

void set_fault_every(uint64_t n) { g_fault_every = n; }

void* map(size_t size) {
  if (inject_fault()) return nullptr;
  KeepErrno keep;
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void* reserve(size_t size) {
  KeepErrno keep;
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void* map_aligned(size_t size, size_t align) {
  if (align <= k_os_page) return map(size);
  if (size + align < size) return nullptr;
  // Over-map by `align`, then trim both ends: the kernel has no aligned mmap.
  char* raw = static_cast<char*>(map(size + align));
  if (raw == nullptr) {
    // Short of address space: the hole a freed block of this size and
    // alignment left is still aligned, and a plain mapping may take it.
    char* p = static_cast<char*>(map(size));
    if (p != nullptr && (reinterpret_cast<uintptr_t>(p) & (align - 1)) == 0) return p;
    if (p != nullptr) unmap(p, size);
    return nullptr;
  }
  uintptr_t start = (reinterpret_cast<uintptr_t>(raw) + align - 1) & ~(uintptr_t)(align - 1);
  char* p = reinterpret_cast<char*>(start);
  size_t head = p - raw;
  size_t tail = align - head;
  if (head) unmap(raw, head);
  if (tail) unmap(p + size, tail);
  return p;
}

void unmap(void* p, size_t size) {
  KeepErrno keep;
  munmap(p, size);
}

bool is_mapped(const void* p) {
  KeepErrno keep;
  unsigned char resident;
  void* page = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) & ~(uintptr_t)(k_os_page - 1));
  return mincore(page, k_os_page, &resident) == 0 || errno != ENOMEM;
}

int decommit(void* p, size_t size) {
  KeepErrno keep;
  // MADV_DONTNEED, not MADV_FREE: RSS drops now, which is what users measure.
  return madvise(p, size, MADV_DONTNEED) == 0 ? 0 : errno;
}

void advise_huge_pages(void* p, size_t size) {
  KeepErrno keep;
  madvise(p, size, MADV_HUGEPAGE);
}

bool collapse_huge_pages(void* p, size_t size) {
  KeepErrno keep;
#ifndef MADV_COLLAPSE
  constexpr int MADV_COLLAPSE = 25;
#endif
  return madvise(p, size, MADV_COLLAPSE) == 0;
}

bool populate(void* p, size_t size) {
  KeepErrno keep;
#ifndef MADV_POPULATE_WRITE
  constexpr int MADV_POPULATE_WRITE = 23;
#endif
  uintptr_t a = reinterpret_cast<uintptr_t>(p) & ~(uintptr_t)(k_os_page - 1);
  size_t n = round_os_page(reinterpret_cast<uintptr_t>(p) + size - a);
  if (madvise(reinterpret_cast<void*>(a), n, MADV_POPULATE_WRITE) == 0) return true;
  return errno != EFAULT && errno != ENOMEM;
}

void* remap(void* p, size_t old_size, size_t new_size, bool may_move) {
  if (inject_fault()) return nullptr;
  KeepErrno keep;
  void* q = mremap(p, old_size, new_size, may_move ? MREMAP_MAYMOVE : 0);
  return q == MAP_FAILED ? nullptr : q;
}

int protect(void* p, size_t size, bool read_write) {
  KeepErrno keep;
  return mprotect(p, size, read_write ? PROT_READ | PROT_WRITE : PROT_NONE) == 0 ? 0 : errno;
}

uint64_t random_word() {
  KeepErrno keep;
  uint64_t v = 0;
  if (syscall(SYS_getrandom, &v, sizeof v, 0x0001 /* GRND_NONBLOCK */) == (long)sizeof v && v) return v;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  v = reinterpret_cast<uintptr_t>(&v) ^ reinterpret_cast<uintptr_t>(&random_word) ^
      ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec;
  v ^= v >> 33;
  v *= 0xff51afd7ed558ccdull;
  v ^= v >> 33;
  return v;
}

static void* thread_trampoline(void* fn) {
  reinterpret_cast<void (*)()>(fn)();
  return nullptr;
}

int start_thread(void (*fn)()) {
  KeepErrno keep;
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return EAGAIN;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t t;
  int rc = pthread_create(&t, &attr, thread_trampoline, reinterpret_cast<void*>(fn));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  return rc;
}

// A futex wait that nobody wakes: futex is among the system calls glibc's
// malloc makes, so seccomp filters written for it allow this (nanosleep
// might not be).
void sleep_ms(uint64_t ms) {
  KeepErrno keep;
  int word = 0;
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
  syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, &ts, nullptr, 0);
}

uint64_t now_ms() {
  KeepErrno keep;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void write_err_n(const char* s, size_t n) {
  KeepErrno keep;
  while (n > 0) {
    ssize_t w = write(2, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

void write_err(const char* s) { write_err_n(s, strlen(s)); }

void die() { abort(); }

const char* env(const char* name) {
  if (environ == nullptr) return nullptr;
  size_t n = strlen(name);
  for (char** e = environ; *e != nullptr; e++) {
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  }
  return nullptr;
}

const char* const* environment() { return environ; }

size_t resident_bytes() {
  KeepErrno keep;
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char* s = buf;
  while (*s && *s != ' ') s++;
  size_t pages = 0;
  while (*s == ' ') s++;
  while (*s >= '0' && *s <= '9') pages = pages * 10 + (size_t)(*s++ - '0');
  return pages * (size_t)sysconf(_SC_PAGESIZE);
}

int process_id() { return (int)syscall(SYS_getpid); }

int open_private_dir(const char* path, const char** why, uint64_t* size) {
  KeepErrno keep;
  constexpr int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  int fd = (int)syscall(SYS_openat, AT_FDCWD, path, flags);
  if (fd < 0 && errno == ENOENT) {  // the first process of this user: make it
    if (syscall(SYS_mkdirat, AT_FDCWD, path, 0700) != 0 && errno != EEXIST) {
      *why = errno == ENOENT ? "its parent directory does not exist" : "it cannot be created";
      return -1;
    }
    fd = (int)syscall(SYS_openat, AT_FDCWD, path, flags);
  }
  if (fd < 0) {
    *why = errno == ELOOP || errno == ENOTDIR ? "it is a symbolic link or not a directory" : "it cannot be opened";
    return -1;
  }
  struct stat st;
  if (syscall(SYS_fstat, fd, &st) != 0 || st.st_uid != (uid_t)syscall(SYS_geteuid)) {
    *why = "it belongs to another user";
  } else if ((st.st_mode & 077) != 0) {
    *why = "group or others have access to it (it must be mode 0700)";
  } else {
    *size = (uint64_t)st.st_size;
    return fd;
  }
  syscall(SYS_close, fd);
  return -1;
}

void* map_new_file(int dir, const char* name, size_t size, const void* copy, size_t copy_bytes, void* at) {
  KeepErrno keep;
  int flags = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  int fd = (int)syscall(SYS_openat, dir, name, flags, 0600);
  if (fd < 0 && errno == EEXIST) {  // left by a process that had our pid
    syscall(SYS_unlinkat, dir, name, 0);
    fd = (int)syscall(SYS_openat, dir, name, flags, 0600);
  }
  if (fd < 0) return nullptr;
  void* p = nullptr;
  // fchmod: a umask may have taken bits away; the tools need exactly 0600.
  if (syscall(SYS_fchmod, fd, 0600) == 0 && syscall(SYS_ftruncate, fd, (off_t)size) == 0) {
    // Mapped anywhere first, so that the copy can come from `copy` even
    // when it lies at `at`; then moved there, over it.
    p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) p = nullptr;
    if (p && !populate(p, copy_bytes)) {
      munmap(p, size);
      p = nullptr;
    }
    if (p) memcpy(p, copy, copy_bytes);
    if (p && at) {
      void* moved = mremap(p, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, at);
      if (moved == MAP_FAILED) munmap(p, size);
      p = moved == MAP_FAILED ? nullptr : moved;
    }
  }
  syscall(SYS_close, fd);
  if (p == nullptr) syscall(SYS_unlinkat, dir, name, 0);
  return p;
}

void unlink_at(int dir, const char* name) {
  KeepErrno keep;
  syscall(SYS_unlinkat, dir, name, 0);
}

void for_each_name(int dir, uint64_t start, void (*fn)(int dir, const char* name, void* arg), void* arg) {
  KeepErrno keep;
  alignas(8) char buf[4096];
  if (start != 0 && syscall(SYS_lseek, dir, (off_t)start, SEEK_SET) < 0) return;
  long n = syscall(SYS_getdents64, dir, buf, sizeof buf);
  // struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name.
  for (long at = 0; at + 19 < n;) {
    unsigned short reclen;
    memcpy(&reclen, buf + at + 16, sizeof reclen);
    if (reclen == 0 || at + reclen > n) break;
    fn(dir, buf + at + 19, arg);
    at += reclen;
  }
}

bool process_exists(int pid) {
  KeepErrno keep;
  return syscall(SYS_kill, pid, 0) == 0 || errno != ESRCH;
}

unsigned effective_uid() { return (unsigned)syscall(SYS_geteuid); }

void close_fd(int fd) {
  KeepErrno keep;
  syscall(SYS_close, fd);
}

void* map_private_copy(void* p, size_t size) {
  KeepErrno keep;
  void* tmp = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (tmp == MAP_FAILED) return nullptr;
  memcpy(tmp, p, size);
  void* q = mmap(p, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (q != MAP_FAILED) memcpy(q, tmp, size);
  munmap(tmp, size);
  return q == MAP_FAILED ? nullptr : q;
}

static long futex(int* addr, int op, int val) {
  return syscall(SYS_futex, addr, op, val, nullptr, nullptr, 0);
}

bool Mutex::try_lock() {
  int expected = 0;
  return __atomic_compare_exchange_n(&state_, &expected, 1, false,
                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

void Mutex::lock() {
  if (try_lock()) return;
  lock_slow();
}

void Mutex::lock_slow() {
  // Spin briefly: the critical sections here are short.
  for (int i = 0; i < 100; i++) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (__atomic_load_n(&state_, __ATOMIC_RELAXED) == 0 && try_lock()) return;
  }
  KeepErrno keep;
  while (__atomic_exchange_n(&state_, 2, __ATOMIC_ACQUIRE) != 0) {
    futex(&state_, FUTEX_WAIT_PRIVATE, 2);
  }
}

void Mutex::unlock() {
  if (__atomic_exchange_n(&state_, 0, __ATOMIC_RELEASE) == 2) {
    KeepErrno keep;
    futex(&state_, FUTEX_WAKE_PRIVATE, 1);
  }
}

}  // namespace ringpool::platform
