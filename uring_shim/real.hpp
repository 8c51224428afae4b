// The functions the shim interposes, as the next library in the chain
// (normally libc) defines them.
//
// Each pointer starts at a lazy function that looks the real one up on its
// first call: what dlsym(RTLD_NEXT, name) would find, read from the GNU hash
// tables of the objects after this one (dlsym itself where those tables are
// not plain), so a process pays only for the names it calls. Before
// objects_init() has run (a call from another library's constructor, say),
// a stand-in makes the raw system call through syscall(2), which sets errno
// as libc does; a name found nowhere keeps its stand-in (the signal family
// has none: it asks dlsym, or fails with ENOSYS).
#pragma once
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

namespace ringpool::shim {

struct RealFns {
  ssize_t (*read)(int, void*, size_t);
  ssize_t (*write)(int, const void*, size_t);
  ssize_t (*readv)(int, const struct iovec*, int);
  ssize_t (*writev)(int, const struct iovec*, int);
  ssize_t (*recv)(int, void*, size_t, int);
  ssize_t (*recvfrom)(int, void*, size_t, int, struct sockaddr*, socklen_t*);
  ssize_t (*recvmsg)(int, struct msghdr*, int);
  ssize_t (*send)(int, const void*, size_t, int);
  ssize_t (*sendto)(int, const void*, size_t, int, const struct sockaddr*, socklen_t);
  ssize_t (*sendmsg)(int, const struct msghdr*, int);
  int (*accept)(int, struct sockaddr*, socklen_t*);
  int (*accept4)(int, struct sockaddr*, socklen_t*, int);
  int (*connect)(int, const struct sockaddr*, socklen_t);
  int (*socket)(int, int, int);
  int (*socketpair)(int, int, int, int*);
  int (*close)(int);
  int (*close_range)(unsigned, unsigned, int);
  void (*closefrom)(int);
  int (*dup)(int);
  int (*dup2)(int, int);
  int (*dup3)(int, int, int);
  int (*setsockopt)(int, int, int, const void*, socklen_t);
  ssize_t (*read_chk)(int, void*, size_t, size_t);
  ssize_t (*recv_chk)(int, void*, size_t, size_t, int);
  ssize_t (*recvfrom_chk)(int, void*, size_t, size_t, int, struct sockaddr*, socklen_t*);
  // The signal family (signals.hpp): no system call stands in for them.
  int (*sigaction)(int, const struct sigaction*, struct sigaction*);
  sighandler_t (*signal)(int, sighandler_t);
  sighandler_t (*sysv_signal)(int, sighandler_t);
  sighandler_t (*sigset)(int, sighandler_t);
  int (*siginterrupt)(int, int);
  // Variadic as in libc; always called with the one argument as a pointer.
  int (*fcntl)(int, int, ...);
  int (*fcntl64)(int, int, ...);
  int (*ioctl)(int, unsigned long, ...);
};

extern RealFns g_real;

// Read the symbol tables of the objects after this one. Call once, early,
// from the constructor; until then the slots use their stand-ins.
void objects_init();

}  // namespace ringpool::shim
