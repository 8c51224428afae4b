// One io_uring instance, made with raw system calls on memory the shim maps
// itself (IORING_SETUP_NO_MMAP, Linux 6.5+).
//
// Glossary
//   local tail   SQEs written but not yet handed to the kernel.
//   registered   the ring's descriptor is registered with the kernel
//                (IORING_REGISTER_RING_FDS) and then closed: io_uring_enter
//                takes the registered index, and the program never sees a
//                descriptor of ours (its fd numbers stay what they would be
//                without the shim, and closefrom() cannot break the ring).
//
// Why NO_MMAP: the rings live in private anonymous pages of the process, so
// a fork child gets its own copies (the kernel copies pinned pages at fork)
// and can never write into its parent's ring. A child also has neither the
// registered index nor, with IORING_SETUP_SINGLE_ISSUER, the right to
// submit: its io_uring_enter fails and submit() rolls its SQEs back.
//
// Preconditions: one thread owns a ring and is the only one to call its
// functions; at most k_entries SQEs are outstanding. With
// IORING_SETUP_DEFER_TASKRUN, completions are posted only while the owner
// is in io_uring_enter with GETEVENTS: the owner waits there and nowhere
// else (measured: the least CPU per routed call of the setups tried).
#pragma once
#include <stdint.h>

#include "uring_abi.hpp"

namespace ringpool::shim {

class Ring {
 public:
  static constexpr unsigned k_entries = 4;  // a routed call needs 3 at most

  // 0, or -errno of the step that failed; `step` names it for diagnostics.
  int create(const char** step);
  void destroy();
  // In a fork child: forget the parent's ring without touching the kernel.
  void abandon();
  bool ready() const { return sqes_ != nullptr; }
  // The kernel takes IORING_ACCEPT_DONTWAIT (Linux 6.10); learnt when the
  // first ring is made.
  static bool accept_dontwait();

  // The next SQE, zeroed, or nullptr when k_entries are outstanding.
  abi::Sqe* next_sqe();
  // Hands the written SQEs to the kernel and, with min_complete, waits in
  // the same io_uring_enter until that many CQEs are there or a signal
  // comes (which it does not report: look at the CQ). Returns how many SQEs
  // the kernel took (the rest are rolled back), or -errno when it took none.
  int submit(unsigned min_complete = 0);
  // After a submit that never returned (the thread was cancelled inside):
  // rolls back what the kernel did not take; returns how many it took.
  // 0 after any submit that returned.
  uint32_t reconcile();
  // Pops one CQE; false when the CQ is empty.
  bool pop(abi::Cqe* out);
  // CQEs the kernel still owes: every SQE it took yields exactly one (no
  // multishot, no CQE_SKIP_SUCCESS), so this is the SQEs taken less the
  // CQEs popped, kept by the ring itself and so right even when a handler
  // jumped out of an enter or a cancellation unwound from one.
  uint32_t owed() const { return __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE) - *cq_head_; }
  // Waits in io_uring_enter until min_complete CQEs are there: 0, or
  // -EINTR for any signal (even an SA_RESTART one), or another -errno.
  long wait_enter(unsigned min_complete);


 private:
  long enter(unsigned to_submit, unsigned min_complete, unsigned flags);

  int enter_fd_ = -1;        // registered index, or the descriptor itself
  unsigned enter_flags_ = 0; // k_enter_registered_ring when registered
  int owned_fd_ = -1;        // a descriptor still open (registration failed)
  uint32_t* sq_head_ = nullptr;
  uint32_t* sq_tail_ = nullptr;
  uint32_t* sq_array_ = nullptr;  // nullptr with IORING_SETUP_NO_SQARRAY
  uint32_t sq_mask_ = 0;
  uint32_t local_tail_ = 0;
  uint32_t published_ = 0;  // the SQ tail as the kernel was last shown it
  uint32_t* cq_head_ = nullptr;
  uint32_t* cq_tail_ = nullptr;
  uint32_t cq_mask_ = 0;
  abi::Cqe* cqes_ = nullptr;
  abi::Sqe* sqes_ = nullptr;
  void* ring_mem_ = nullptr;
};

}  // namespace ringpool::shim
