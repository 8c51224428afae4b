// The real functions (see real.hpp): raw-system-call stand-ins, replaced by
// dlsym(RTLD_NEXT, ...) at start-up.
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
bool g_objects_ok;  // all objects after this one were read

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

template <typename F>
void resolve(F*& slot, const char* name) {
  if (void* p = find_next(name)) slot = reinterpret_cast<F*>(p);
}

int lazy_sigaction(int sig, const struct sigaction* act, struct sigaction* old);
sighandler_t lazy_signal(int sig, sighandler_t h);
sighandler_t lazy_sysv_signal(int sig, sighandler_t h);
sighandler_t lazy_sigset(int sig, sighandler_t h);
int lazy_siginterrupt(int sig, int interrupt);

}  // namespace

RealFns g_real = {
    .read = sc_read,
    .write = sc_write,
    .readv = sc_readv,
    .writev = sc_writev,
    .recv = sc_recv,
    .recvfrom = sc_recvfrom,
    .recvmsg = sc_recvmsg,
    .send = sc_send,
    .sendto = sc_sendto,
    .sendmsg = sc_sendmsg,
    .accept = sc_accept,
    .accept4 = sc_accept4,
    .connect = sc_connect,
    .socket = sc_socket,
    .socketpair = sc_socketpair,
    .close = sc_close,
    .close_range = sc_close_range,
    .closefrom = sc_closefrom,
    .dup = sc_dup,
    .dup2 = sc_dup2,
    .dup3 = sc_dup3,
    .fcntl = sc_fcntl,
    .fcntl64 = sc_fcntl,
    .ioctl = sc_ioctl,
    .setsockopt = sc_setsockopt,
    .read_chk = sc_read_chk,
    .recv_chk = sc_recv_chk,
    .recvfrom_chk = sc_recvfrom_chk,
    .sigaction = lazy_sigaction,
    .signal = lazy_signal,
    .sysv_signal = lazy_sysv_signal,
    .sigset = lazy_sigset,
    .siginterrupt = lazy_siginterrupt,
};

namespace {

// Each resolves its slot (or, if dlsym fails, fails with ENOSYS).
#define RINGPOOL_SHIM_LAZY(ret, name, params, args, fail)   \
  ret lazy_##name params {                                  \
    resolve(g_real.name, #name);                            \
    if (g_real.name == lazy_##name) {                       \
      errno = ENOSYS;                                       \
      return fail;                                          \
    }                                                       \
    return g_real.name args;                                \
  }
RINGPOOL_SHIM_LAZY(int, sigaction, (int sig, const struct sigaction* act, struct sigaction* old), (sig, act, old), -1)
RINGPOOL_SHIM_LAZY(sighandler_t, signal, (int sig, sighandler_t h), (sig, h), SIG_ERR)
RINGPOOL_SHIM_LAZY(sighandler_t, sysv_signal, (int sig, sighandler_t h), (sig, h), SIG_ERR)
RINGPOOL_SHIM_LAZY(sighandler_t, sigset, (int sig, sighandler_t h), (sig, h), SIG_ERR)
RINGPOOL_SHIM_LAZY(int, siginterrupt, (int sig, int interrupt), (sig, interrupt), -1)
#undef RINGPOOL_SHIM_LAZY

}  // namespace

void resolve_real() {
  bool after_self = false;
  g_objects_ok = true;
  g_object_count = 0;
  dl_iterate_phdr(collect, &after_self);
  if (!after_self || g_object_count == 0) g_objects_ok = false;  // dlopen'ed, say
  resolve(g_real.read, "read");
  resolve(g_real.write, "write");
  resolve(g_real.readv, "readv");
  resolve(g_real.writev, "writev");
  resolve(g_real.recv, "recv");
  resolve(g_real.recvfrom, "recvfrom");
  resolve(g_real.recvmsg, "recvmsg");
  resolve(g_real.send, "send");
  resolve(g_real.sendto, "sendto");
  resolve(g_real.sendmsg, "sendmsg");
  resolve(g_real.accept, "accept");
  resolve(g_real.accept4, "accept4");
  resolve(g_real.connect, "connect");
  resolve(g_real.socket, "socket");
  resolve(g_real.socketpair, "socketpair");
  resolve(g_real.close, "close");
  resolve(g_real.close_range, "close_range");
  resolve(g_real.closefrom, "closefrom");
  resolve(g_real.dup, "dup");
  resolve(g_real.dup2, "dup2");
  resolve(g_real.dup3, "dup3");
  resolve(g_real.fcntl, "fcntl");
  resolve(g_real.fcntl64, "fcntl64");
  resolve(g_real.ioctl, "ioctl");
  resolve(g_real.setsockopt, "setsockopt");
  resolve(g_real.read_chk, "__read_chk");
  resolve(g_real.recv_chk, "__recv_chk");
  resolve(g_real.recvfrom_chk, "__recvfrom_chk");
  resolve(g_real.sigaction, "sigaction");
  resolve(g_real.signal, "signal");
  resolve(g_real.sysv_signal, "sysv_signal");
  resolve(g_real.sigset, "sigset");
  resolve(g_real.siginterrupt, "siginterrupt");
}

}  // namespace ringpool::shim
