// io_uring by raw system calls (see ring.hpp).
#include "ring.hpp"

#include <string.h>

#include "../pool/platform.hpp"
#include "sys.hpp"

namespace ringpool::shim {

namespace {

// Rings for k_entries SQEs and twice as many CQEs fit one page each: the
// kernel pins exactly the pages it needs from the addresses we give.
constexpr size_t k_page = platform::k_os_page;
static_assert(Ring::k_entries * sizeof(abi::Sqe) <= k_page, "SQEs fit a page");

long setup(abi::Params* p) { return sys::call(abi::k_sys_setup, Ring::k_entries, (long)p); }

bool g_accept_dontwait;

}  // namespace

int Ring::create(const char** step) {
  *step = "mapping ring memory";
  void* rings = platform::map(k_page);
  void* sqes = platform::map(k_page);
  if (rings == nullptr || sqes == nullptr) {
    if (rings) platform::unmap(rings, k_page);
    if (sqes) platform::unmap(sqes, k_page);
    return -ENOMEM;
  }
  abi::Params p;
  long fd = -EINVAL;
  // NO_SQARRAY (6.6) saves an indirection; 6.5 has NO_MMAP without it.
  const uint32_t extras[] = {abi::k_setup_no_sqarray, 0u};
  for (uint32_t extra : extras) {
    memset(&p, 0, sizeof p);
    p.flags = abi::k_setup_single_issuer | abi::k_setup_defer_taskrun | abi::k_setup_no_mmap | extra;
    p.sq_off.user_addr = (uint64_t)(uintptr_t)sqes;
    p.cq_off.user_addr = (uint64_t)(uintptr_t)rings;
    fd = setup(&p);
    if (fd != -EINVAL) break;
  }
  *step = "io_uring_setup";
  if (fd < 0) {
    platform::unmap(rings, k_page);
    platform::unmap(sqes, k_page);
    return (int)fd;
  }
  char* base = static_cast<char*>(rings);
  sq_head_ = reinterpret_cast<uint32_t*>(base + p.sq_off.head);
  sq_tail_ = reinterpret_cast<uint32_t*>(base + p.sq_off.tail);
  sq_mask_ = *reinterpret_cast<uint32_t*>(base + p.sq_off.ring_mask);
  sq_array_ = (p.flags & abi::k_setup_no_sqarray) ? nullptr : reinterpret_cast<uint32_t*>(base + p.sq_off.array);
  cq_head_ = reinterpret_cast<uint32_t*>(base + p.cq_off.head);
  cq_tail_ = reinterpret_cast<uint32_t*>(base + p.cq_off.tail);
  cq_mask_ = *reinterpret_cast<uint32_t*>(base + p.cq_off.ring_mask);
  cqes_ = reinterpret_cast<abi::Cqe*>(base + p.cq_off.cqes);
  if (sq_array_) {
    for (uint32_t i = 0; i <= sq_mask_; i++) sq_array_[i] = i;  // SQE i sits in slot i
  }
  local_tail_ = published_ = *sq_tail_;
  ring_mem_ = rings;
  sqes_ = static_cast<abi::Sqe*>(sqes);

  // Register the descriptor, then close it: from here on the ring is
  // reachable only through this thread's registered index.
  abi::RsrcUpdate up = {};
  up.offset = ~0u;  // any free slot
  up.data = (uint64_t)fd;
  long r = sys::call(abi::k_sys_register, fd, abi::k_register_ring_fds, (long)&up, 1);
  if (r == 1) {
    enter_fd_ = (int)up.offset;
    enter_flags_ = abi::k_enter_registered_ring;
    sys::close((int)fd);
  } else {
    enter_fd_ = (int)fd;  // O_CLOEXEC, as io_uring_setup always makes it
    enter_flags_ = 0;
    owned_fd_ = (int)fd;
  }

  // A NOP end to end (a seccomp filter on io_uring_enter shows here), and
  // an accept on no descriptor: the kernel checks its flags (EINVAL) before
  // the descriptor (EBADF), which tells whether it knows ACCEPT_DONTWAIT.
  *step = "io_uring_enter";
  abi::Sqe* s = next_sqe();
  s->opcode = abi::k_op_nop;
  s->user_data = 1;
  s = next_sqe();
  s->opcode = abi::k_op_accept;
  s->fd = -1;
  s->ioprio = abi::k_accept_dontwait;
  s->user_data = 2;
  int n = submit();
  int seen = 0;
  long err = n < 0 ? n : 0;
  while (n == 2 && seen < 2 && err == 0) {
    abi::Cqe c;
    if (pop(&c)) {
      seen++;
      if (c.user_data == 2) __atomic_store_n(&g_accept_dontwait, c.res != -EINVAL, __ATOMIC_RELAXED);
      continue;
    }
    long w = wait_enter(1);
    if (w < 0 && w != -EINTR) err = w;
  }
  if (seen != 2) {
    destroy();
    return err < 0 ? (int)err : -EIO;
  }
  return 0;
}

bool Ring::accept_dontwait() { return __atomic_load_n(&g_accept_dontwait, __ATOMIC_RELAXED); }

void Ring::destroy() {
  // Precondition: nothing in flight (every routed call reaps all it
  // submitted). A registered ring goes away when its thread exits; until
  // then the kernel keeps the pinned pages through its own mapping, so
  // dropping our view of them now is safe.
  if (owned_fd_ >= 0) sys::close(owned_fd_);
  abandon();
}

void Ring::abandon() {
  if (ring_mem_) platform::unmap(ring_mem_, k_page);
  if (sqes_) platform::unmap(sqes_, k_page);
  *this = Ring();
}

abi::Sqe* Ring::next_sqe() {
  uint32_t head = __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE);
  if (local_tail_ - head >= k_entries) return nullptr;
  abi::Sqe* s = &sqes_[local_tail_ & sq_mask_];
  memset(s, 0, sizeof *s);
  local_tail_++;
  return s;
}

long Ring::enter(unsigned to_submit, unsigned min_complete, unsigned flags) {
  return sys::call(abi::k_sys_enter, enter_fd_, to_submit, min_complete, flags | enter_flags_, 0, 0);
}

int Ring::submit(unsigned min_complete) {
  unsigned count = local_tail_ - published_;
  if (count == 0) return 0;
  __atomic_store_n(sq_tail_, local_tail_, __ATOMIC_RELEASE);
  long r;
  do {
    r = enter(count, min_complete, min_complete ? abi::k_enter_getevents : 0);
  } while (r == -EINTR);
  uint32_t taken = reconcile();
  if (taken == 0) return r < 0 ? (int)r : -EAGAIN;
  return (int)taken;
}

uint32_t Ring::reconcile() {
  // Whatever the kernel did not consume goes back: a later enter must not
  // submit SQEs this call gave up on (a vfork child's, say).
  uint32_t head = __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE);
  if (head != local_tail_) {
    local_tail_ = head;
    __atomic_store_n(sq_tail_, head, __ATOMIC_RELEASE);
  }
  uint32_t taken = head - published_;
  published_ = head;
  return taken;
}

bool Ring::pop(abi::Cqe* out) {
  uint32_t head = *cq_head_;
  if (head == __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE)) return false;
  *out = cqes_[head & cq_mask_];
  __atomic_store_n(cq_head_, head + 1, __ATOMIC_RELEASE);
  return true;
}

long Ring::wait_enter(unsigned min_complete) {
  long r = enter(0, min_complete, abi::k_enter_getevents);
  return r < 0 ? r : 0;
}

}  // namespace ringpool::shim
