// The shim's side of each interposed call, taken only when RINGPOOL_URING=1
// (interpose.cpp branches here). Each decides: route through io_uring, or
// pass to libc; keeps the descriptor table true; counts; and leaves errno
// as the plain call would.
#pragma once
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

namespace ringpool::shim {

ssize_t on_read(int fd, void* buf, size_t n);
ssize_t on_write(int fd, const void* buf, size_t n);
ssize_t on_readv(int fd, const struct iovec* iov, int cnt);
ssize_t on_writev(int fd, const struct iovec* iov, int cnt);
ssize_t on_recv(int fd, void* buf, size_t n, int flags);
ssize_t on_recvfrom(int fd, void* buf, size_t n, int flags, struct sockaddr* addr, socklen_t* alen);
ssize_t on_recvmsg(int fd, struct msghdr* msg, int flags);
ssize_t on_send(int fd, const void* buf, size_t n, int flags);
ssize_t on_sendto(int fd, const void* buf, size_t n, int flags, const struct sockaddr* addr, socklen_t alen);
ssize_t on_sendmsg(int fd, const struct msghdr* msg, int flags);
int on_accept4(int fd, struct sockaddr* addr, socklen_t* alen, int flags, bool is_accept4);
int on_connect(int fd, const struct sockaddr* addr, socklen_t alen);
int on_socket(int domain, int type, int protocol);
int on_socketpair(int domain, int type, int protocol, int* sv);
int on_close(int fd);
int on_close_range(unsigned first, unsigned last, int flags);
void on_closefrom(int lowfd);
int on_dup(int fd);
int on_dup2(int fd, int fd2);
int on_dup3(int fd, int fd2, int flags);
int on_fcntl(int (*real)(int, int, ...), int fd, int cmd, void* arg);
int on_ioctl(int fd, unsigned long request, void* arg);
int on_setsockopt(int fd, int level, int name, const void* val, socklen_t len);

}  // namespace ringpool::shim
