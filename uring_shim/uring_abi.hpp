// The part of the io_uring kernel ABI the shim uses, written out here so the
// build does not depend on the installed <linux/io_uring.h> (Debian 12 ships
// Linux 6.1's, which lacks IORING_SETUP_NO_MMAP and NO_SQARRAY).
//
// Glossary
//   SQ, SQE    submission queue, and one 64-byte entry in it.
//   CQ, CQE    completion queue, and one 16-byte entry in it.
//   user_data  the 64-bit tag an SQE carries and its CQE hands back.
//   link       IOSQE_IO_LINK: the next SQE is tied to this one; a
//              LINK_TIMEOUT after an SQE cancels it when the time is up.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace ringpool::shim::abi {

// System call numbers: the same on every architecture since Linux 5.1.
constexpr long k_sys_setup = 425;
constexpr long k_sys_enter = 426;
constexpr long k_sys_register = 427;

struct Sqe {
  uint8_t opcode;
  uint8_t flags;      // IOSQE_*
  uint16_t ioprio;    // per-opcode flags for send/recv/accept
  int32_t fd;
  uint64_t off;       // addr2: accept's addrlen pointer, send's destination
  uint64_t addr;      // buffer, msghdr, sockaddr, timespec or cancel target
  uint32_t len;       // buffer length, connect's addrlen, timeout count
  uint32_t op_flags;  // msg_flags, accept_flags, timeout_flags, cancel_flags
  uint64_t user_data;
  uint16_t buf_index;
  uint16_t personality;
  uint16_t addr_len;  // send's destination length
  uint16_t pad3;
  uint64_t addr3;
  uint64_t pad2;
};
static_assert(sizeof(Sqe) == 64, "io_uring SQE is 64 bytes");
static_assert(offsetof(Sqe, user_data) == 32 && offsetof(Sqe, addr_len) == 44, "SQE layout");

struct Cqe {
  uint64_t user_data;
  int32_t res;
  uint32_t flags;
};
static_assert(sizeof(Cqe) == 16, "io_uring CQE is 16 bytes");

struct SqOffsets {
  uint32_t head, tail, ring_mask, ring_entries, flags, dropped, array, resv1;
  uint64_t user_addr;  // IORING_SETUP_NO_MMAP: where the SQEs live
};
struct CqOffsets {
  uint32_t head, tail, ring_mask, ring_entries, overflow, cqes, flags, resv1;
  uint64_t user_addr;  // IORING_SETUP_NO_MMAP: where the SQ and CQ rings live
};
struct Params {
  uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd;
  uint32_t resv[3];
  SqOffsets sq_off;
  CqOffsets cq_off;
};
static_assert(sizeof(Params) == 120, "io_uring_params is 120 bytes");

struct RsrcUpdate {
  uint32_t offset;
  uint32_t resv;
  uint64_t data;
};

struct KernelTimespec {
  int64_t tv_sec;
  int64_t tv_nsec;
};

// io_uring_setup flags.
constexpr uint32_t k_setup_single_issuer = 1u << 12;  // Linux 6.0
constexpr uint32_t k_setup_defer_taskrun = 1u << 13;  // Linux 6.1
constexpr uint32_t k_setup_no_mmap = 1u << 14;        // Linux 6.5
constexpr uint32_t k_setup_no_sqarray = 1u << 16;     // Linux 6.6

// io_uring_enter flags.
constexpr uint32_t k_enter_getevents = 1u << 0;
constexpr uint32_t k_enter_registered_ring = 1u << 4;  // Linux 5.18

// io_uring_register opcodes.
constexpr uint32_t k_register_ring_fds = 20;  // Linux 5.18

// SQE flags.
constexpr uint8_t k_sqe_io_link = 1u << 2;

// sqe->ioprio for IORING_OP_ACCEPT.
constexpr uint16_t k_accept_dontwait = 1u << 1;  // Linux 6.10
constexpr uint16_t k_recvsend_poll_first = 1u << 0;  // Linux 5.19

// Opcodes.
constexpr uint8_t k_op_nop = 0;
constexpr uint8_t k_op_poll_add = 6;
constexpr uint8_t k_op_sendmsg = 9;
constexpr uint8_t k_op_recvmsg = 10;
constexpr uint8_t k_op_accept = 13;
constexpr uint8_t k_op_async_cancel = 14;
constexpr uint8_t k_op_link_timeout = 15;
constexpr uint8_t k_op_connect = 16;
constexpr uint8_t k_op_send = 26;
constexpr uint8_t k_op_recv = 27;

}  // namespace ringpool::shim::abi
