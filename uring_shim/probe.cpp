// Is io_uring usable here (see probe.hpp).
#include "probe.hpp"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <string.h>
#include <sys/wait.h>

#include "../pool/errors.hpp"
#include "../pool/options.hpp"
#include "../pool/line.hpp"
#include "../pool/platform.hpp"
#include "ring.hpp"
#include "sys.hpp"

namespace ringpool::shim::probe {

namespace {

platform::Mutex g_lock;
bool g_unusable;        // read without the lock: set once, never cleared (but in a fork child)
bool g_probed;          // a child made a ring under g_probed_filters filters
long g_probed_filters;
char g_reason[160];

void append(char*& p, const char* end, const char* s) {
  while (*s && p < end - 1) *p++ = *s++;
  *p = 0;
}

void append_num(char*& p, const char* end, long v) {
  char digits[24];
  append(p, end, pool::format_dec(digits, (unsigned long long)v));
}

const char* explain(long err) {
  switch (err) {
    case EPERM: return "EPERM: not permitted (sysctl kernel.io_uring_disabled, or a seccomp filter)";
    case EACCES: return "EACCES: not permitted";
    case ENOSYS: return "ENOSYS: no io_uring in this kernel, or a seccomp filter denies it";
    case EINVAL: return "EINVAL: kernel too old (the shim needs Linux 6.5, IORING_SETUP_NO_MMAP)";
    case ENOMEM: return "ENOMEM: out of memory";
    case EMFILE: return "EMFILE: out of descriptors";
    case ENFILE: return "ENFILE: out of descriptors";
    default: return nullptr;
  }
}

void say(const char* what) {
  if (!pool::options().verbose) return;
  pool::Line line;  // one write: see line.hpp
  line.add("ringpool: uring[").num((unsigned long long)sys::getpid()).add("]: ").add(what).write();
}

// Records why io_uring is off for the process and says it once.
void set_unusable(const char* step, long err, int signal) {
  if (g_unusable) return;
  char* p = g_reason;
  const char* end = g_reason + sizeof g_reason;
  append(p, end, "passing calls through: ");
  append(p, end, step);
  append(p, end, ": ");
  if (signal) {
    append(p, end, "a seccomp filter kills io_uring callers (probe child died of signal ");
    append_num(p, end, signal);
    append(p, end, ")");
  } else if (const char* e = explain(err)) {
    append(p, end, e);
  } else {
    append(p, end, "errno ");
    append_num(p, end, err);
  }
  __atomic_store_n(&g_unusable, true, __ATOMIC_RELEASE);
  say(g_reason);
}

// Seccomp_filters from /proc/self/status (Linux 5.9+), or -1.
long seccomp_filters() {
  long fd = sys::openat(AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[4096];
  long n = 0, r;
  while (n < (long)sizeof buf - 1 && (r = sys::read((int)fd, buf + n, sizeof buf - 1 - n)) > 0) n += r;
  sys::close((int)fd);
  buf[n] = 0;
  const char key[] = "Seccomp_filters:";
  for (char* line = buf; *line;) {
    char* k = line;
    const char* q = key;
    while (*q && *k == *q) k++, q++;
    if (*q == 0) {
      while (*k == ' ' || *k == '\t') k++;
      long v = 0;
      while (*k >= '0' && *k <= '9') v = v * 10 + (*k++ - '0');
      return v;
    }
    while (*line && *line != '\n') line++;
    if (*line) line++;
  }
  return -1;
}

// Steps of Ring::create, as a probe child reports them.
const char* const k_steps[] = {"probe child", "io_uring_setup", "io_uring_enter", "mapping ring memory"};
constexpr int k_nsteps = sizeof k_steps / sizeof k_steps[0];

// Makes a ring in a child that shares nothing with us but a copy of memory;
// a filter that kills on io_uring calls kills only the child.
void probe_in_child(long filters) {
  long pid = sys::fork_quiet();
  if (pid == 0) {
    // Exit code: the failing step << 6 | errno (all that can come back is
    // below 64).
    Ring r;
    const char* step = k_steps[0];
    int e = r.create(&step);
    int code = 0;
    if (e < 0) {
      int i = 1;
      while (i < k_nsteps - 1 && strcmp(step, k_steps[i]) != 0) i++;
      code = i << 6 | (-e & 63);
    }
    sys::exit_group(code);
  }
  if (pid < 0) {
    set_unusable("probe (fork)", -pid, 0);
    return;
  }
  int status = 0;
  long w;
  do {
    w = sys::wait4(pid, &status, __WCLONE);
  } while (w == -EINTR);
  if (w != pid) {
    set_unusable("probe (wait)", -w, 0);
  } else if (WIFSIGNALED(status)) {
    set_unusable("probe child", 0, WTERMSIG(status));
  } else if (WEXITSTATUS(status) != 0) {
    int code = WEXITSTATUS(status);
    set_unusable(k_steps[code >> 6 < k_nsteps ? code >> 6 : 0], code & 63, 0);
  } else {
    g_probed = true;
    g_probed_filters = filters;
  }
}

}  // namespace

bool usable() {
  if (__atomic_load_n(&g_unusable, __ATOMIC_ACQUIRE)) return false;
  long mode = sys::prctl(PR_GET_SECCOMP);
  if (mode == 0) return true;  // no filter: failures come back as errors
  platform::LockGuard guard(g_lock);
  if (g_unusable) return false;
  long filters = seccomp_filters();
  if (!g_probed || filters < 0 || filters != g_probed_filters) probe_in_child(filters);
  return !g_unusable;
}

void ring_failed(long err, const char* step) {
  err = -err;
  if (err == EPERM || err == EACCES || err == ENOSYS || err == EINVAL) {
    platform::LockGuard guard(g_lock);
    set_unusable(step, err, 0);
    return;
  }
  // This thread only; say it once per process.
  static bool said;
  if (!__atomic_exchange_n(&said, true, __ATOMIC_RELAXED)) {
    char msg[160];
    char* p = msg;
    append(p, msg + sizeof msg, "a thread passes its calls through: ");
    append(p, msg + sizeof msg, step);
    append(p, msg + sizeof msg, ": ");
    const char* e = explain(err);
    if (e) {
      append(p, msg + sizeof msg, e);
    } else {
      append(p, msg + sizeof msg, "errno ");
      append_num(p, msg + sizeof msg, err);
    }
    say(msg);
  }
}

void fork_prepare() { g_lock.lock(); }
void fork_parent() { g_lock.unlock(); }
void fork_child() { g_lock.reset(); }

const char* reason() { return __atomic_load_n(&g_unusable, __ATOMIC_ACQUIRE) ? g_reason : nullptr; }

}  // namespace ringpool::shim::probe
