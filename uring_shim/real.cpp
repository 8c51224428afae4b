// The real functions (see real.hpp): raw-system-call stand-ins, and what
// dlsym(RTLD_NEXT, ...) would find, looked up on each one's first call.
#include "real.hpp"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern "C" [[noreturn]] void __chk_fail(void);

namespace ringpool::shim {

namespace {

// Stand-ins: what libc's wrapper does, minus cancellation points.
ssize_t sc_read(int fd, void* b, size_t n) { return syscall(SYS_read, fd, b, n); }
ssize_t sc_write(int fd, const void* b, size_t n) { return syscall(SYS_write, fd, b, n); }
ssize_t sc_readv(int fd, const struct iovec* v, int n) { return syscall(SYS_readv, fd, v, n); }
ssize_t sc_writev(int fd, const struct iovec* v, int n) { return syscall(SYS_writev, fd, v, n); }
ssize_t sc_recvfrom(int fd, void* b, size_t n, int fl, struct sockaddr* a, socklen_t* al) {
  return syscall(SYS_recvfrom, fd, b, n, fl, a, al);
}
ssize_t sc_recv(int fd, void* b, size_t n, int fl) { return sc_recvfrom(fd, b, n, fl, nullptr, nullptr); }
ssize_t sc_recvmsg(int fd, struct msghdr* m, int fl) { return syscall(SYS_recvmsg, fd, m, fl); }
ssize_t sc_sendto(int fd, const void* b, size_t n, int fl, const struct sockaddr* a, socklen_t al) {
  return syscall(SYS_sendto, fd, b, n, fl, a, al);
}
ssize_t sc_send(int fd, const void* b, size_t n, int fl) { return sc_sendto(fd, b, n, fl, nullptr, 0); }
ssize_t sc_sendmsg(int fd, const struct msghdr* m, int fl) { return syscall(SYS_sendmsg, fd, m, fl); }
int sc_accept4(int fd, struct sockaddr* a, socklen_t* al, int fl) { return (int)syscall(SYS_accept4, fd, a, al, fl); }
int sc_accept(int fd, struct sockaddr* a, socklen_t* al) { return sc_accept4(fd, a, al, 0); }
int sc_connect(int fd, const struct sockaddr* a, socklen_t al) { return (int)syscall(SYS_connect, fd, a, al); }
int sc_socket(int d, int t, int p) { return (int)syscall(SYS_socket, d, t, p); }
int sc_socketpair(int d, int t, int p, int* sv) { return (int)syscall(SYS_socketpair, d, t, p, sv); }
int sc_close(int fd) { return (int)syscall(SYS_close, fd); }
int sc_close_range(unsigned a, unsigned b, int fl) { return (int)syscall(SYS_close_range, a, b, fl); }
void sc_closefrom(int fd) { syscall(SYS_close_range, fd, ~0u, 0); }
int sc_dup(int fd) { return (int)syscall(SYS_dup, fd); }
int sc_dup3(int a, int b, int fl) { return (int)syscall(SYS_dup3, a, b, fl); }
int sc_dup2(int a, int b) {
  if (a == b) return (int)syscall(SYS_fcntl, a, F_GETFD) < 0 ? -1 : a;
  return sc_dup3(a, b, 0);
}
int sc_fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return (int)syscall(SYS_fcntl, fd, cmd, arg);
}
int sc_ioctl(int fd, unsigned long req, ...) {
  va_list ap;
  va_start(ap, req);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return (int)syscall(SYS_ioctl, fd, req, arg);
}
int sc_setsockopt(int fd, int l, int o, const void* v, socklen_t n) { return (int)syscall(SYS_setsockopt, fd, l, o, v, n); }
ssize_t sc_read_chk(int fd, void* b, size_t n, size_t cap) {
  if (n > cap) __chk_fail();
  return sc_read(fd, b, n);
}
ssize_t sc_recv_chk(int fd, void* b, size_t n, size_t cap, int fl) {
  if (n > cap) __chk_fail();
  return sc_recv(fd, b, n, fl);
}
ssize_t sc_recvfrom_chk(int fd, void* b, size_t n, size_t cap, int fl, struct sockaddr* a, socklen_t* al) {
  if (n > cap) __chk_fail();
  return sc_recvfrom(fd, b, n, fl, a, al);
}

// What dlsym(RTLD_NEXT, name) finds, read straight from the GNU hash tables
// of the objects loaded after this library: dlsym costs about 800
// instructions a name (its error handling, the caller's object, version
// checks), which every process paid 33 times at start.
struct Object {
  ElfW(Addr) base;
  const ElfW(Sym)* syms;
  const char* strs;
  const uint32_t* gnu_hash;
  const ElfW(Versym)* versyms;  // nullptr: the object has no versions
};
constexpr int k_max_objects = 32;
Object g_objects[k_max_objects];
int g_object_count;
bool g_objects_ok;    // all objects after this one were read
bool g_objects_read;  // objects_init() has run

// dl_iterate_phdr lists the objects in load order, the order of the global
// scope that RTLD_NEXT searches (at start-up nothing is dlopen'ed yet).
int collect(struct dl_phdr_info* info, size_t, void* seen_self) {
  bool& after_self = *static_cast<bool*>(seen_self);
  const ElfW(Dyn)* dyn = nullptr;
  bool self = false;
  ElfW(Addr) here = reinterpret_cast<ElfW(Addr)>(&collect);
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_DYNAMIC) dyn = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + ph.p_vaddr);
    if (ph.p_type == PT_LOAD && here >= info->dlpi_addr + ph.p_vaddr &&
        here < info->dlpi_addr + ph.p_vaddr + ph.p_memsz)
      self = true;
  }
  if (!after_self) {
    after_self = self;
    return 0;
  }
  if (dyn == nullptr) return 0;
  if (g_object_count == k_max_objects) {
    g_objects_ok = false;
    return 1;
  }
  Object o = {info->dlpi_addr, nullptr, nullptr, nullptr, nullptr};
  // The loader relocates these entries in place, except where the dynamic
  // section is read-only (the vDSO): then they are offsets.
  auto at = [&](ElfW(Addr) p) { return p < o.base ? p + o.base : p; };
  for (; dyn->d_tag != DT_NULL; dyn++) {
    if (dyn->d_tag == DT_GNU_HASH) o.gnu_hash = reinterpret_cast<const uint32_t*>(at(dyn->d_un.d_ptr));
    if (dyn->d_tag == DT_SYMTAB) o.syms = reinterpret_cast<const ElfW(Sym)*>(at(dyn->d_un.d_ptr));
    if (dyn->d_tag == DT_STRTAB) o.strs = reinterpret_cast<const char*>(at(dyn->d_un.d_ptr));
    if (dyn->d_tag == DT_VERSYM) o.versyms = reinterpret_cast<const ElfW(Versym)*>(at(dyn->d_un.d_ptr));
  }
  if (o.syms == nullptr || o.strs == nullptr) return 0;  // defines nothing
  if (o.gnu_hash == nullptr) {  // only the old SysV hash: let dlsym do it
    g_objects_ok = false;
    return 1;
  }
  g_objects[g_object_count++] = o;
  return 0;
}

enum class Lookup { found, absent, ask_dlsym };

Lookup find_in(const Object& o, const char* name, uint32_t h, void** out) {
  const uint32_t* g = o.gnu_hash;
  uint32_t nbuckets = g[0], symoffset = g[1], bloom_size = g[2], bloom_shift = g[3];
  const ElfW(Addr)* bloom = reinterpret_cast<const ElfW(Addr)*>(g + 4);
  const uint32_t* buckets = reinterpret_cast<const uint32_t*>(bloom + bloom_size);
  const uint32_t* chain = buckets + nbuckets;
  constexpr unsigned bits = sizeof(ElfW(Addr)) * 8;
  if (nbuckets == 0 || bloom_size == 0) return Lookup::absent;
  ElfW(Addr) word = bloom[(h / bits) % bloom_size];
  ElfW(Addr) mask = ((ElfW(Addr))1 << (h % bits)) | ((ElfW(Addr))1 << ((h >> bloom_shift) % bits));
  if ((word & mask) != mask) return Lookup::absent;
  uint32_t i = buckets[h % nbuckets];
  if (i < symoffset) return Lookup::absent;
  for (;; i++) {
    uint32_t h2 = chain[i - symoffset];
    const ElfW(Sym)& sym = o.syms[i];
    if ((h | 1) == (h2 | 1) && strcmp(name, o.strs + sym.st_name) == 0 && sym.st_shndx != SHN_UNDEF) {
      unsigned type = ELF64_ST_TYPE(sym.st_info), bind = ELF64_ST_BIND(sym.st_info);
      // Versioned objects: only the default version (not hidden) binds.
      bool usable = (bind == STB_GLOBAL || bind == STB_WEAK) &&
                    (o.versyms == nullptr || ((o.versyms[i] & 0x8000) == 0 && o.versyms[i] != 0));
      if (usable) {
        // An IFUNC's resolver picks the address; anything else is not a plain function.
        if (type != STT_FUNC) return Lookup::ask_dlsym;
        *out = reinterpret_cast<void*>(o.base + sym.st_value);
        return Lookup::found;
      }
    }
    if (h2 & 1) return Lookup::absent;
  }
}

void* find_next(const char* name) {
  if (!g_objects_ok) return dlsym(RTLD_NEXT, name);
  uint32_t h = 5381;
  for (const char* c = name; *c; c++) h = h * 33 + (unsigned char)*c;
  for (int i = 0; i < g_object_count; i++) {
    void* p = nullptr;
    switch (find_in(g_objects[i], name, h, &p)) {
      case Lookup::found:
        return p;
      case Lookup::ask_dlsym:
        return dlsym(RTLD_NEXT, name);
      case Lookup::absent:
        break;
    }
  }
  return dlsym(RTLD_NEXT, name);  // not in the tables read: as before
}

// Before objects_init() the tables are not read yet (a call from the
// constructor of a library loaded earlier, or from a signal handler then):
// the stand-in serves that call, and the slot stays lazy. Where no
// system call stands in (the signal family), dlsym is asked at once.
template <typename T>
struct Same {
  using type = T;
};

template <typename F>
F* resolve(F*& slot, const char* name, typename Same<F>::type* standin) {
  if (standin && !__atomic_load_n(&g_objects_read, __ATOMIC_ACQUIRE)) return standin;
  F* f = reinterpret_cast<F*>(find_next(name));
  if (f == nullptr) f = standin;
  if (f) __atomic_store_n(&slot, f, __ATOMIC_RELAXED);
  return f;
}

int enosys() {
  errno = ENOSYS;
  return -1;
}

}  // namespace

// Each slot starts at its lazy_ function: the first call looks the real
// function up and keeps it, so a process that never calls connect never
// looks for it. A name found nowhere: the stand-in, or ENOSYS.
#define RINGPOOL_SHIM_REAL(X)                                                                                   \
  X(ssize_t, read, "read", (int fd, void* b, size_t n), (fd, b, n), sc_read)                                    \
  X(ssize_t, write, "write", (int fd, const void* b, size_t n), (fd, b, n), sc_write)                           \
  X(ssize_t, readv, "readv", (int fd, const struct iovec* v, int n), (fd, v, n), sc_readv)                      \
  X(ssize_t, writev, "writev", (int fd, const struct iovec* v, int n), (fd, v, n), sc_writev)                   \
  X(ssize_t, recv, "recv", (int fd, void* b, size_t n, int fl), (fd, b, n, fl), sc_recv)                        \
  X(ssize_t, recvfrom, "recvfrom", (int fd, void* b, size_t n, int fl, struct sockaddr* a, socklen_t* al),      \
    (fd, b, n, fl, a, al), sc_recvfrom)                                                                         \
  X(ssize_t, recvmsg, "recvmsg", (int fd, struct msghdr* m, int fl), (fd, m, fl), sc_recvmsg)                   \
  X(ssize_t, send, "send", (int fd, const void* b, size_t n, int fl), (fd, b, n, fl), sc_send)                  \
  X(ssize_t, sendto, "sendto", (int fd, const void* b, size_t n, int fl, const struct sockaddr* a, socklen_t al), \
    (fd, b, n, fl, a, al), sc_sendto)                                                                           \
  X(ssize_t, sendmsg, "sendmsg", (int fd, const struct msghdr* m, int fl), (fd, m, fl), sc_sendmsg)             \
  X(int, accept, "accept", (int fd, struct sockaddr* a, socklen_t* al), (fd, a, al), sc_accept)                 \
  X(int, accept4, "accept4", (int fd, struct sockaddr* a, socklen_t* al, int fl), (fd, a, al, fl), sc_accept4)  \
  X(int, connect, "connect", (int fd, const struct sockaddr* a, socklen_t al), (fd, a, al), sc_connect)         \
  X(int, socket, "socket", (int d, int t, int p), (d, t, p), sc_socket)                                         \
  X(int, socketpair, "socketpair", (int d, int t, int p, int* sv), (d, t, p, sv), sc_socketpair)                \
  X(int, close, "close", (int fd), (fd), sc_close)                                                              \
  X(int, close_range, "close_range", (unsigned a, unsigned b, int fl), (a, b, fl), sc_close_range)              \
  X(void, closefrom, "closefrom", (int fd), (fd), sc_closefrom)                                                 \
  X(int, dup, "dup", (int fd), (fd), sc_dup)                                                                    \
  X(int, dup2, "dup2", (int a, int b), (a, b), sc_dup2)                                                         \
  X(int, dup3, "dup3", (int a, int b, int fl), (a, b, fl), sc_dup3)                                             \
  X(int, setsockopt, "setsockopt", (int fd, int l, int o, const void* v, socklen_t n), (fd, l, o, v, n),        \
    sc_setsockopt)                                                                                              \
  X(ssize_t, read_chk, "__read_chk", (int fd, void* b, size_t n, size_t cap), (fd, b, n, cap), sc_read_chk)     \
  X(ssize_t, recv_chk, "__recv_chk", (int fd, void* b, size_t n, size_t cap, int fl), (fd, b, n, cap, fl),      \
    sc_recv_chk)                                                                                                \
  X(ssize_t, recvfrom_chk, "__recvfrom_chk",                                                                    \
    (int fd, void* b, size_t n, size_t cap, int fl, struct sockaddr* a, socklen_t* al), (fd, b, n, cap, fl, a, al), \
    sc_recvfrom_chk)                                                                                            \
  X(int, sigaction, "sigaction", (int sig, const struct sigaction* act, struct sigaction* old), (sig, act, old), \
    nullptr)                                                                                                    \
  X(sighandler_t, signal, "signal", (int sig, sighandler_t h), (sig, h), nullptr)                               \
  X(sighandler_t, sysv_signal, "sysv_signal", (int sig, sighandler_t h), (sig, h), nullptr)                     \
  X(sighandler_t, sigset, "sigset", (int sig, sighandler_t h), (sig, h), nullptr)                               \
  X(int, siginterrupt, "siginterrupt", (int sig, int interrupt), (sig, interrupt), nullptr)

namespace {

#define RINGPOOL_SHIM_LAZY(ret, name, symbol, params, args, standin)     \
  ret lazy_##name params {                                              \
    auto f = resolve(g_real.name, symbol, standin);                     \
    if (f == nullptr) return (ret)(intptr_t)enosys(); /* SIG_ERR, -1 */ \
    return f args;                                                      \
  }
RINGPOOL_SHIM_REAL(RINGPOOL_SHIM_LAZY)
#undef RINGPOOL_SHIM_LAZY

// The variadic ones: called with their one argument as a pointer.
#define RINGPOOL_SHIM_LAZY_VA(name, symbol, cmd_type, standin)     \
  int lazy_##name(int fd, cmd_type cmd, ...) {                    \
    va_list ap;                                                   \
    va_start(ap, cmd);                                            \
    void* arg = va_arg(ap, void*);                                \
    va_end(ap);                                                   \
    return resolve(g_real.name, symbol, standin)(fd, cmd, arg);   \
  }
RINGPOOL_SHIM_LAZY_VA(fcntl, "fcntl", int, sc_fcntl)
RINGPOOL_SHIM_LAZY_VA(fcntl64, "fcntl64", int, sc_fcntl)
RINGPOOL_SHIM_LAZY_VA(ioctl, "ioctl", unsigned long, sc_ioctl)
#undef RINGPOOL_SHIM_LAZY_VA

}  // namespace

RealFns g_real = {
#define RINGPOOL_SHIM_SLOT(ret, name, symbol, params, args, standin) .name = lazy_##name,
    RINGPOOL_SHIM_REAL(RINGPOOL_SHIM_SLOT)
#undef RINGPOOL_SHIM_SLOT
    .fcntl = lazy_fcntl,
    .fcntl64 = lazy_fcntl64,
    .ioctl = lazy_ioctl,
};

void objects_init() {
  bool after_self = false;
  g_objects_ok = true;
  g_object_count = 0;
  dl_iterate_phdr(collect, &after_self);
  if (!after_self || g_object_count == 0) g_objects_ok = false;  // dlopen'ed, say
  __atomic_store_n(&g_objects_read, true, __ATOMIC_RELEASE);
}

}  // namespace ringpool::shim
