// The platform layer: the only code in ringpool that makes system calls.
//
// Glossary
//   map       a fresh, zeroed, read-write private anonymous mapping.
//   decommit  give a range's physical pages back (MADV_DONTNEED): the range
//             stays mapped and reads back as zeros.
//   keep_errno  every function here leaves errno as it found it; failures
//             come back as return values (0 or an errno), never via errno.
//
// Preconditions, stated once: addresses and lengths are multiples of the OS
// page size (4 KiB); nothing here allocates, takes a lock, or calls a
// function that may be interposed (no stdio, no getenv, no pthread calls).
#pragma once
#include <stddef.h>
#include <stdint.h>

// For large zero-filled arrays: .lbss, which the linker places after .bss,
// so that the small globals a process touches at start share a few pages
// instead of lying between the arrays (each page first touched is a fault).
#define RINGPOOL_LARGE_BSS __attribute__((section(".lbss")))

namespace ringpool::platform {

constexpr size_t k_os_page = 4096;
// n rounded up to whole OS pages (0 when that overflows).
constexpr size_t round_os_page(size_t n) { return (n + k_os_page - 1) & ~(k_os_page - 1); }

// Saves errno on entry and restores it on exit (snmalloc's KeepErrno).
class KeepErrno {
 public:
  KeepErrno();
  ~KeepErrno();
 private:
  int saved_;
};

// Fault injection for tests: when set to N > 0, every Nth mapping request
// (map, map_aligned, remap) fails as if the kernel said ENOMEM.
void set_fault_every(uint64_t n);

// A mapping of `size` bytes whose start is a multiple of `align` (a power of
// two >= k_os_page). Returns nullptr on failure (ENOMEM, ulimit -v).
void* map_aligned(size_t size, size_t align);
// A plain mapping of `size` bytes, or nullptr.
void* map(size_t size);
// Reserve address space without committing swap (MAP_NORESERVE), or nullptr.
void* reserve(size_t size);
void unmap(void* p, size_t size);
// Whether the OS page holding p is mapped at all (one system call).
bool is_mapped(const void* p);
// Returns 0 or an errno.
int decommit(void* p, size_t size);
// Grow or shrink a mapping, possibly moving it. Returns the new address or
// nullptr (the old mapping is then untouched).
void* remap(void* p, size_t old_size, size_t new_size, bool may_move);
// Make a range inaccessible (a guard) or read-write again. 0 or an errno.
int protect(void* p, size_t size, bool read_write);

// 64 random bits: getrandom(2) if the kernel (or a seccomp filter) allows
// it, else a mix of ASLR addresses and the clock. Never fails.
uint64_t random_word();

// Start a detached thread running fn, with every signal blocked (so the
// program's signals never land on it) and a small stack. 0 or an errno.
int start_thread(void (*fn)());
void sleep_ms(uint64_t ms);

// Monotonic coarse clock in milliseconds (vDSO, no system call).
uint64_t now_ms();

// Write a message to stderr with write(2); never allocates.
void write_err(const char* s);
void write_err_n(const char* s, size_t n);
// Abort the process (so a core dump points at the caller).
[[noreturn]] void die();

// Read an environment variable from `environ` without getenv (safe before
// libc finished starting up). Returns nullptr when unset.
const char* env(const char* name);
// The environment as the program holds it (environ), or nullptr.
const char* const* environment();

// The calling process's id (getpid without libc's caching concerns).
int process_id();

// ---- files of the channels (see pool/channel.hpp) ----
// The directory `path`, created with mode 0700 if missing, opened without
// following a symbolic link, and accepted only if it belongs to the
// effective uid and grants nothing to group or others. Returns a
// descriptor (and its st_size in *size: on tmpfs, 20 bytes per entry), or
// -1 with *why set to a reason (a string constant).
int open_private_dir(const char* path, const char** why, uint64_t* size);
// Creates `name` in dir (mode 0600, O_EXCL, never through a link; a file
// already there is a stale one and is replaced), `size` bytes long, with
// `copy_bytes` of `copy` at its start (their pages populated); maps it
// shared read-write (at `at` exactly, replacing what is there, if not
// null) and closes it. nullptr on failure.
void* map_new_file(int dir, const char* name, size_t size, const void* copy, size_t copy_bytes, void* at);
void unlink_at(int dir, const char* name);
// Calls fn with each name that one read of the directory returns (a
// bounded pass: 4 KiB of entries), starting at position `start` (on tmpfs,
// the index of an entry; elsewhere a cookie, 0 the beginning).
void for_each_name(int dir, uint64_t start, void (*fn)(int dir, const char* name, void* arg), void* arg);
// false only when no process `pid` exists (kill(pid, 0) says ESRCH).
bool process_exists(int pid);
unsigned effective_uid();
void close_fd(int fd);
// Give the pages of a shared file mapping that hold [p, p + size) their
// memory now. False where the file system has none left (tmpfs full): then
// touching them would raise SIGBUS. True where the kernel cannot tell
// (MADV_POPULATE_WRITE is Linux 5.14): touching them is as before.
bool populate(void* p, size_t size);
// Ask for transparent huge pages over [p, p + size) (MADV_HUGEPAGE): one
// fault per 2 MiB where the kernel has them. Ignored where it has none.
void advise_huge_pages(void* p, size_t size);
// Back [p, p + size), 2 MiB aligned, with transparent huge pages now
// (MADV_COLLAPSE, Linux 6.1): the kernel copies the pages into huge ones.
// False where it cannot (an older kernel, no huge page free, THP off).
bool collapse_huge_pages(void* p, size_t size);
// Replace the mapping at p with a private copy of its contents; p or nullptr.
void* map_private_copy(void* p, size_t size);

// Resident set size of this process in bytes (from /proc/self/statm), or 0.
size_t resident_bytes();

// A small futex-based mutex, constant-initialisable and fork-resettable.
class Mutex {
 public:
  constexpr Mutex() : state_(0) {}
  void lock();
  void unlock();
  bool try_lock();
  void reset() { state_ = 0; }  // only in a fork child, single-threaded
 private:
  void lock_slow();
  int state_;  // 0 free, 1 locked, 2 locked with waiters
};

class LockGuard {
 public:
  explicit LockGuard(Mutex& m) : m_(m) { m_.lock(); }
  ~LockGuard() { m_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;
 private:
  Mutex& m_;
};

}  // namespace ringpool::platform
