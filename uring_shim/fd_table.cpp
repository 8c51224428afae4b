// The descriptor table (see fd_table.hpp): two levels, 1024 chunks of 1024
// slots mapped on first use, so descriptors below 2^20 are tracked; a
// larger one is never routed.
#include "fd_table.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/time.h>

#include "../pool/platform.hpp"
#include "sys.hpp"
#include "thread_state.hpp"

namespace ringpool::shim::fd_table {

namespace {

// word = kind | flags | type << 4 | family << 8
constexpr uint32_t k_kind_mask = 3;
constexpr uint32_t k_unknown = 0;
constexpr uint32_t k_other = 1;
constexpr uint32_t k_socket = 2;
constexpr uint32_t k_nonblock = 1u << 2;
constexpr uint32_t k_shared = 1u << 3;
constexpr uint32_t k_type_shift = 4;
constexpr uint32_t k_family_shift = 8;
constexpr uint32_t k_contended = 1u << 16;

// Written rarely, read on every shim call of the fd: one cache line holds two.
struct Slot {
  uint32_t word;
  uint32_t calls;   // routed calls in progress on the descriptor
  uint64_t rcv_us;  // valid while word says socket
  uint64_t snd_us;
  uint64_t pad2;
};
static_assert(sizeof(Slot) == 32, "two slots per cache line");

constexpr unsigned k_chunk_shift = 10;
constexpr unsigned k_chunk_slots = 1u << k_chunk_shift;
constexpr unsigned k_chunks = 1024;
constexpr unsigned k_max_fd = k_chunks * k_chunk_slots;
constexpr size_t k_chunk_bytes = k_chunk_slots * sizeof(Slot);
static_assert(k_chunk_bytes % platform::k_os_page == 0, "chunks are whole pages");

RINGPOOL_LARGE_BSS Slot* g_chunks[k_chunks];

uint32_t load(const uint32_t& w) { return __atomic_load_n(&w, __ATOMIC_ACQUIRE); }
void store(uint32_t& w, uint32_t v) { __atomic_store_n(&w, v, __ATOMIC_RELEASE); }
uint64_t load64(const uint64_t& v) { return __atomic_load_n(&v, __ATOMIC_RELAXED); }
void store64(uint64_t& d, uint64_t v) { __atomic_store_n(&d, v, __ATOMIC_RELAXED); }

Slot* find(int fd) {
  if (fd < 0 || (unsigned)fd >= k_max_fd) return nullptr;
  Slot* chunk = __atomic_load_n(&g_chunks[(unsigned)fd >> k_chunk_shift], __ATOMIC_ACQUIRE);
  return chunk ? &chunk[(unsigned)fd & (k_chunk_slots - 1)] : nullptr;
}

Slot* find_or_make(int fd) {
  if (Slot* s = find(fd)) return s;
  if (fd < 0 || (unsigned)fd >= k_max_fd) return nullptr;
  Slot*& cell = g_chunks[(unsigned)fd >> k_chunk_shift];
  auto* fresh = static_cast<Slot*>(platform::map(k_chunk_bytes));  // zeroed: all unknown
  if (fresh == nullptr) return nullptr;
  Slot* expected = nullptr;
  if (!__atomic_compare_exchange_n(&cell, &expected, fresh, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    platform::unmap(fresh, k_chunk_bytes);  // another thread won
    fresh = expected;
  }
  return &fresh[(unsigned)fd & (k_chunk_slots - 1)];
}

bool routable_kind(int type, int family) {
  bool type_ok = type == SOCK_STREAM || type == SOCK_DGRAM || type == SOCK_SEQPACKET;
  bool family_ok = family == AF_UNIX || family == AF_INET || family == AF_INET6;
  return type_ok && family_ok;
}

uint32_t socket_word(int type, int family, bool nonblock) {
  if (!routable_kind(type, family)) return k_other;
  return k_socket | (nonblock ? k_nonblock : 0) | ((uint32_t)type << k_type_shift) |
         ((uint32_t)family << k_family_shift);
}

uint64_t timeval_us(const struct timeval& tv) { return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec; }

// The kernel's view of a timeout, after its rounding to jiffies; {0, 0}
// means none. Returns false if it cannot be read.
bool read_timeout(int fd, int optname, uint64_t* us) {
  struct timeval tv = {};
  socklen_t len = sizeof tv;
  if (sys::getsockopt(fd, SOL_SOCKET, optname, &tv, &len) < 0 || len != sizeof tv) return false;
  *us = timeval_us(tv);
  return true;
}

#ifdef SO_RCVTIMEO_OLD
constexpr int k_rcvtimeo = SO_RCVTIMEO_OLD;
constexpr int k_sndtimeo = SO_SNDTIMEO_OLD;
#else
constexpr int k_rcvtimeo = SO_RCVTIMEO;
constexpr int k_sndtimeo = SO_SNDTIMEO;
#endif

// Asks the kernel what fd is. Returns the word to use now; caches it unless
// fd is not open (EBADF: the plain call reports that) or this is not the
// table's process.
uint32_t classify(int fd) {
  int type = 0, family = 0;
  socklen_t len = sizeof type;
  long r = sys::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
  if (r == -EBADF) return k_other;
  uint32_t word = k_other;
  uint64_t rcv = 0, snd = 0;
  if (r == 0) {
    len = sizeof family;
    long fl = sys::fcntl(fd, F_GETFL);
    if (sys::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) == 0 && fl >= 0 &&
        read_timeout(fd, k_rcvtimeo, &rcv) && read_timeout(fd, k_sndtimeo, &snd)) {
      word = socket_word(type, family, (fl & O_NONBLOCK) != 0);
    }
  }
  if (!same_process()) return word;
  if (Slot* s = find_or_make(fd)) {
    store64(s->rcv_us, rcv);
    store64(s->snd_us, snd);
    store(s->word, word | (load(s->word) & k_shared));
  }
  return word;
}

// A change reached through a duplicated descriptor: every shared slot may
// name the same description, so all of them are asked again.
void forget_shared() {
  for (unsigned c = 0; c < k_chunks; c++) {
    Slot* chunk = __atomic_load_n(&g_chunks[c], __ATOMIC_ACQUIRE);
    if (chunk == nullptr) continue;
    for (unsigned i = 0; i < k_chunk_slots; i++) {
      if (load(chunk[i].word) & k_shared) store(chunk[i].word, k_shared);
    }
  }
}

// The slot of a socket whose state a call of this process changes, or
// nullptr: not a socket we track, or one shared through a duplicate (then
// every shared slot is forgotten, to be asked again).
Slot* socket_to_change(int fd) {
  if (!same_process()) return nullptr;
  Slot* s = find(fd);
  if (s == nullptr) return nullptr;
  uint32_t w = load(s->word);
  if ((w & k_kind_mask) != k_socket) return nullptr;
  if (w & k_shared) {
    forget_shared();
    return nullptr;
  }
  return s;
}

}  // namespace

SockInfo lookup(int fd) {
  Slot* s = find(fd);
  uint32_t word = s ? load(s->word) : (fd >= 0 && (unsigned)fd < k_max_fd ? k_unknown : k_other);
  if ((word & k_kind_mask) == k_unknown) word = classify(fd);
  SockInfo info = {};
  if ((word & k_kind_mask) != k_socket || (word & k_nonblock)) return info;
  s = find(fd);
  info.routable = true;
  info.contended = (word & k_contended) != 0;
  info.type = (uint8_t)((word >> k_type_shift) & 15);
  info.family = (uint8_t)(word >> k_family_shift);
  info.rcv_timeout_us = s ? load64(s->rcv_us) : 0;
  info.snd_timeout_us = s ? load64(s->snd_us) : 0;
  return info;
}

void on_socket(int fd, int domain, int type_and_flags) {
  if (!same_process()) return;
  Slot* s = find_or_make(fd);
  if (s == nullptr) return;
  store64(s->rcv_us, 0);
  store64(s->snd_us, 0);
  store(s->word, socket_word(type_and_flags & 0xf, domain, (type_and_flags & SOCK_NONBLOCK) != 0));
}

void on_accept(int listen_fd, int fd, int flags) {
  if (!same_process()) return;
  Slot* s = find_or_make(fd);
  if (s == nullptr) return;
  // The accepted socket inherits the listener's options (timeouts
  // included, sk_clone copies them) but not its O_NONBLOCK.
  Slot* l = find(listen_fd);
  uint32_t lw = l ? load(l->word) : k_unknown;
  if ((lw & k_kind_mask) != k_socket) {
    store(s->word, k_unknown);
    return;
  }
  store64(s->rcv_us, load64(l->rcv_us));
  store64(s->snd_us, load64(l->snd_us));
  uint32_t w = (lw & ~(k_nonblock | k_shared)) | ((flags & SOCK_NONBLOCK) ? k_nonblock : 0);
  store(s->word, w);
}

void on_close(int fd) {
  if (!same_process()) return;
  if (Slot* s = find(fd)) store(s->word, k_unknown);
}

void on_close_from(unsigned first, unsigned last) {
  if (!same_process()) return;
  if (last >= k_max_fd) last = k_max_fd - 1;
  for (unsigned fd = first; fd <= last && first <= last; fd++) {
    Slot* chunk = __atomic_load_n(&g_chunks[fd >> k_chunk_shift], __ATOMIC_ACQUIRE);
    if (chunk == nullptr) {
      fd |= k_chunk_slots - 1;  // skip the whole chunk
      continue;
    }
    store(chunk[fd & (k_chunk_slots - 1)].word, k_unknown);
  }
}

void on_dup(int old_fd, int new_fd) {
  if (!same_process() || old_fd == new_fd) return;
  Slot* o = find_or_make(old_fd);
  Slot* n = find_or_make(new_fd);
  if (o == nullptr || n == nullptr) {
    if (n) store(n->word, k_unknown);
    return;
  }
  uint32_t w = load(o->word) | k_shared;
  store(o->word, w);
  store64(n->rcv_us, load64(o->rcv_us));
  store64(n->snd_us, load64(o->snd_us));
  store(n->word, w);
}

void on_nonblock(int fd, bool nonblock) {
  Slot* s = socket_to_change(fd);
  if (s == nullptr) return;
  uint32_t w = load(s->word);
  store(s->word, nonblock ? (w | k_nonblock) : (w & ~k_nonblock));
}

void on_timeout(int fd, int optname, const void* optval, socklen_t optlen) {
  Slot* s = socket_to_change(fd);
  if (s == nullptr) return;
  // A negative tv_sec makes the kernel's timeout zero, which reads back as
  // "none" but behaves as non-blocking: never route such a socket. (The
  // setsockopt that succeeded has read optval already, so it is readable.)
  if (optlen >= (socklen_t)sizeof(int64_t) && *static_cast<const int64_t*>(optval) < 0) {
    store(s->word, k_other);
    return;
  }
  bool rcv = optname == k_rcvtimeo
#ifdef SO_RCVTIMEO_NEW
             || optname == SO_RCVTIMEO_NEW
#endif
      ;
  uint64_t us = 0;
  if (!read_timeout(fd, rcv ? k_rcvtimeo : k_sndtimeo, &us)) {
    store(s->word, k_unknown);
    return;
  }
  store64(rcv ? s->rcv_us : s->snd_us, us);
}

void call_begin(int fd) {
  Slot* s = find(fd);
  if (s == nullptr) return;
  if (__atomic_fetch_add(&s->calls, 1, __ATOMIC_RELAXED) != 0 && !(load(s->word) & k_contended)) {
    __atomic_fetch_or(&s->word, k_contended, __ATOMIC_RELEASE);
  }
}

void call_end(int fd) {
  if (Slot* s = find(fd)) __atomic_fetch_sub(&s->calls, 1, __ATOMIC_RELAXED);
}

void on_received_fds(const struct msghdr* msg) {
  if (msg->msg_control == nullptr || msg->msg_controllen == 0) return;
  for (const struct cmsghdr* c = CMSG_FIRSTHDR(msg); c != nullptr; c = CMSG_NXTHDR(const_cast<struct msghdr*>(msg), const_cast<struct cmsghdr*>(c))) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const int* fds = reinterpret_cast<const int*>(CMSG_DATA(c));
    for (size_t i = 0; i < n; i++) on_close(fds[i]);
  }
}

}  // namespace ringpool::shim::fd_table
