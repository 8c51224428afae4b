// The functions the shim interposes, as the next library in the chain
// (normally libc) defines them.
//
// Until resolve_real() has run (from the shim's constructor) each pointer
// holds a stand-in that makes the raw system call through syscall(2), which
// sets errno as libc does; so a call made before that, from another
// library's constructor say, still works. resolve_real() swaps in what
// dlsym(RTLD_NEXT, name) would find, read from the GNU hash tables of the
// objects after this one (dlsym itself where those tables are not plain);
// a name found nowhere keeps its stand-in.
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
  // Variadic as in libc; always called with the one argument as a pointer.
  int (*fcntl)(int, int, ...);
  int (*fcntl64)(int, int, ...);
  int (*ioctl)(int, unsigned long, ...);
  int (*setsockopt)(int, int, int, const void*, socklen_t);
  ssize_t (*read_chk)(int, void*, size_t, size_t);
  ssize_t (*recv_chk)(int, void*, size_t, size_t, int);
  ssize_t (*recvfrom_chk)(int, void*, size_t, size_t, int, struct sockaddr*, socklen_t*);
  // The signal family (signals.hpp); their stand-ins look the real ones up
  // on first use, as no system call stands in for them.
  int (*sigaction)(int, const struct sigaction*, struct sigaction*);
  sighandler_t (*signal)(int, sighandler_t);
  sighandler_t (*sysv_signal)(int, sighandler_t);
  sighandler_t (*sigset)(int, sighandler_t);
  int (*siginterrupt)(int, int);
};

extern RealFns g_real;

// Look every name up with dlsym(RTLD_NEXT, ...). Call once, early, from the
// constructor (dlsym may allocate; the pool is ready by then).
void resolve_real();

}  // namespace ringpool::shim
