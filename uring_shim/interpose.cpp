// The exported symbols of the shim: one predictable branch on g_on (false
// unless RINGPOOL_URING=1), then a jump to libc's function; when on, the
// shim's side in calls.cpp.
//
// These names interpose libc's in every program the library is preloaded
// into, so the off path is the whole story for almost every process: no
// allocation, no system call of ours, errno exactly as libc sets it, and
// variadic arguments forwarded as libc reads them (fcntl's and ioctl's
// third argument as a pointer-sized word).

// Fortified headers define read() and recv() as inline wrappers; this file
// defines the functions themselves.
#undef _FORTIFY_SOURCE

#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "calls.hpp"
#include "real.hpp"
#include "signals.hpp"
#include "thread_state.hpp"

#define RINGPOOL_SHIM_EXPORT extern "C" __attribute__((visibility("default")))
#define RINGPOOL_SHIM_ON __builtin_expect(ringpool::shim::g_on, 0)

using ringpool::shim::g_real;
namespace shim = ringpool::shim;

extern "C" [[noreturn]] void __chk_fail(void);

RINGPOOL_SHIM_EXPORT ssize_t read(int fd, void* buf, size_t n) {
  if (RINGPOOL_SHIM_ON) return shim::on_read(fd, buf, n);
  return g_real.read(fd, buf, n);
}

RINGPOOL_SHIM_EXPORT ssize_t write(int fd, const void* buf, size_t n) {
  if (RINGPOOL_SHIM_ON) return shim::on_write(fd, buf, n);
  return g_real.write(fd, buf, n);
}

RINGPOOL_SHIM_EXPORT ssize_t readv(int fd, const struct iovec* iov, int cnt) {
  if (RINGPOOL_SHIM_ON) return shim::on_readv(fd, iov, cnt);
  return g_real.readv(fd, iov, cnt);
}

RINGPOOL_SHIM_EXPORT ssize_t writev(int fd, const struct iovec* iov, int cnt) {
  if (RINGPOOL_SHIM_ON) return shim::on_writev(fd, iov, cnt);
  return g_real.writev(fd, iov, cnt);
}

RINGPOOL_SHIM_EXPORT ssize_t recv(int fd, void* buf, size_t n, int flags) {
  if (RINGPOOL_SHIM_ON) return shim::on_recv(fd, buf, n, flags);
  return g_real.recv(fd, buf, n, flags);
}

RINGPOOL_SHIM_EXPORT ssize_t recvfrom(int fd, void* __restrict buf, size_t n, int flags,
                                      struct sockaddr* __restrict addr, socklen_t* __restrict alen) {
  if (RINGPOOL_SHIM_ON) return shim::on_recvfrom(fd, buf, n, flags, addr, alen);
  return g_real.recvfrom(fd, buf, n, flags, addr, alen);
}

RINGPOOL_SHIM_EXPORT ssize_t recvmsg(int fd, struct msghdr* msg, int flags) {
  if (RINGPOOL_SHIM_ON) return shim::on_recvmsg(fd, msg, flags);
  return g_real.recvmsg(fd, msg, flags);
}

RINGPOOL_SHIM_EXPORT ssize_t send(int fd, const void* buf, size_t n, int flags) {
  if (RINGPOOL_SHIM_ON) return shim::on_send(fd, buf, n, flags);
  return g_real.send(fd, buf, n, flags);
}

RINGPOOL_SHIM_EXPORT ssize_t sendto(int fd, const void* buf, size_t n, int flags, const struct sockaddr* addr,
                                    socklen_t alen) {
  if (RINGPOOL_SHIM_ON) return shim::on_sendto(fd, buf, n, flags, addr, alen);
  return g_real.sendto(fd, buf, n, flags, addr, alen);
}

RINGPOOL_SHIM_EXPORT ssize_t sendmsg(int fd, const struct msghdr* msg, int flags) {
  if (RINGPOOL_SHIM_ON) return shim::on_sendmsg(fd, msg, flags);
  return g_real.sendmsg(fd, msg, flags);
}

RINGPOOL_SHIM_EXPORT int accept(int fd, struct sockaddr* __restrict addr, socklen_t* __restrict alen) {
  if (RINGPOOL_SHIM_ON) return shim::on_accept4(fd, addr, alen, 0, false);
  return g_real.accept(fd, addr, alen);
}

RINGPOOL_SHIM_EXPORT int accept4(int fd, struct sockaddr* __restrict addr, socklen_t* __restrict alen, int flags) {
  if (RINGPOOL_SHIM_ON) return shim::on_accept4(fd, addr, alen, flags, true);
  return g_real.accept4(fd, addr, alen, flags);
}

RINGPOOL_SHIM_EXPORT int connect(int fd, const struct sockaddr* addr, socklen_t alen) {
  if (RINGPOOL_SHIM_ON) return shim::on_connect(fd, addr, alen);
  return g_real.connect(fd, addr, alen);
}

RINGPOOL_SHIM_EXPORT int socket(int domain, int type, int protocol) noexcept {
  if (RINGPOOL_SHIM_ON) return shim::on_socket(domain, type, protocol);
  return g_real.socket(domain, type, protocol);
}

RINGPOOL_SHIM_EXPORT int socketpair(int domain, int type, int protocol, int* sv) noexcept {
  if (RINGPOOL_SHIM_ON) return shim::on_socketpair(domain, type, protocol, sv);
  return g_real.socketpair(domain, type, protocol, sv);
}

RINGPOOL_SHIM_EXPORT int close(int fd) {
  if (RINGPOOL_SHIM_ON) return shim::on_close(fd);
  return g_real.close(fd);
}

RINGPOOL_SHIM_EXPORT int close_range(unsigned first, unsigned last, int flags) noexcept {
  if (RINGPOOL_SHIM_ON) return shim::on_close_range(first, last, flags);
  return g_real.close_range(first, last, flags);
}

RINGPOOL_SHIM_EXPORT void closefrom(int lowfd) noexcept {
  if (RINGPOOL_SHIM_ON) return shim::on_closefrom(lowfd);
  g_real.closefrom(lowfd);
}

RINGPOOL_SHIM_EXPORT int dup(int fd) noexcept {
  if (RINGPOOL_SHIM_ON) return shim::on_dup(fd);
  return g_real.dup(fd);
}

RINGPOOL_SHIM_EXPORT int dup2(int fd, int fd2) noexcept {
  if (RINGPOOL_SHIM_ON) return shim::on_dup2(fd, fd2);
  return g_real.dup2(fd, fd2);
}

RINGPOOL_SHIM_EXPORT int dup3(int fd, int fd2, int flags) noexcept {
  if (RINGPOOL_SHIM_ON) return shim::on_dup3(fd, fd2, flags);
  return g_real.dup3(fd, fd2, flags);
}

// libc reads the third argument as a pointer whatever cmd is; so do we.
RINGPOOL_SHIM_EXPORT int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (RINGPOOL_SHIM_ON) return shim::on_fcntl(g_real.fcntl, fd, cmd, arg);
  return g_real.fcntl(fd, cmd, arg);
}

RINGPOOL_SHIM_EXPORT int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (RINGPOOL_SHIM_ON) return shim::on_fcntl(g_real.fcntl64, fd, cmd, arg);
  return g_real.fcntl64(fd, cmd, arg);
}

RINGPOOL_SHIM_EXPORT int ioctl(int fd, unsigned long request, ...) noexcept {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (RINGPOOL_SHIM_ON) return shim::on_ioctl(fd, request, arg);
  return g_real.ioctl(fd, request, arg);
}

RINGPOOL_SHIM_EXPORT int setsockopt(int fd, int level, int name, const void* val, socklen_t len) noexcept {
  if (RINGPOOL_SHIM_ON) return shim::on_setsockopt(fd, level, name, val, len);
  return g_real.setsockopt(fd, level, name, val, len);
}

// The _FORTIFY_SOURCE entry points: the size check, then as above.
RINGPOOL_SHIM_EXPORT ssize_t __read_chk(int fd, void* buf, size_t n, size_t cap) {
  if (RINGPOOL_SHIM_ON) {
    if (n > cap) __chk_fail();
    return shim::on_read(fd, buf, n);
  }
  return g_real.read_chk(fd, buf, n, cap);
}

RINGPOOL_SHIM_EXPORT ssize_t __recv_chk(int fd, void* buf, size_t n, size_t cap, int flags) {
  if (RINGPOOL_SHIM_ON) {
    if (n > cap) __chk_fail();
    return shim::on_recv(fd, buf, n, flags);
  }
  return g_real.recv_chk(fd, buf, n, cap, flags);
}

RINGPOOL_SHIM_EXPORT ssize_t __recvfrom_chk(int fd, void* __restrict buf, size_t n, size_t cap, int flags,
                                            struct sockaddr* __restrict addr, socklen_t* __restrict alen) {
  if (RINGPOOL_SHIM_ON) {
    if (n > cap) __chk_fail();
    return shim::on_recvfrom(fd, buf, n, flags, addr, alen);
  }
  return g_real.recvfrom_chk(fd, buf, n, cap, flags, addr, alen);
}

// The signal family: the shim must know which handlers lack SA_RESTART
// (signals.hpp). glibc's signal() and the rest install through an internal
// sigaction that no interposer sees, so each is interposed.
RINGPOOL_SHIM_EXPORT int sigaction(int sig, const struct sigaction* act, struct sigaction* old) noexcept {
  if (RINGPOOL_SHIM_ON) return shim::signals::on_sigaction(sig, act, old);
  return g_real.sigaction(sig, act, old);
}

RINGPOOL_SHIM_EXPORT sighandler_t signal(int sig, sighandler_t handler) noexcept {
  if (RINGPOOL_SHIM_ON) return shim::signals::on_signal(sig, handler);
  return g_real.signal(sig, handler);
}

RINGPOOL_SHIM_EXPORT sighandler_t sysv_signal(int sig, sighandler_t handler) noexcept {
  if (RINGPOOL_SHIM_ON) return shim::signals::on_sysv_signal(sig, handler);
  return g_real.sysv_signal(sig, handler);
}

RINGPOOL_SHIM_EXPORT sighandler_t sigset(int sig, sighandler_t disp) noexcept {
  if (RINGPOOL_SHIM_ON) return shim::signals::on_sigset(sig, disp);
  return g_real.sigset(sig, disp);
}

RINGPOOL_SHIM_EXPORT int siginterrupt(int sig, int interrupt) noexcept {
  if (RINGPOOL_SHIM_ON) return shim::signals::on_siginterrupt(sig, interrupt);
  return g_real.siginterrupt(sig, interrupt);
}

// glibc's other names for the same functions.
RINGPOOL_SHIM_EXPORT int __sigaction(int, const struct sigaction*, struct sigaction*) noexcept __attribute__((alias("sigaction")));
RINGPOOL_SHIM_EXPORT sighandler_t bsd_signal(int, sighandler_t) noexcept __attribute__((alias("signal")));
RINGPOOL_SHIM_EXPORT sighandler_t ssignal(int, sighandler_t) noexcept __attribute__((alias("signal")));
RINGPOOL_SHIM_EXPORT sighandler_t __sysv_signal(int, sighandler_t) noexcept __attribute__((alias("sysv_signal")));
