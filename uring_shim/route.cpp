// Routed calls (see route.hpp).
#include "route.hpp"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include "../pool/errors.hpp"
#include "../pool/options.hpp"
#include "../pool/line.hpp"
#include "../pool/platform.hpp"
#include "counters.hpp"
#include "signals.hpp"
#include "thread_state.hpp"

namespace ringpool::shim::route {

namespace {

// user_data = tag | kind; a tag is a thread-local sequence number << 2.
constexpr uint64_t k_poll = 0;
constexpr uint64_t k_main = 1;
constexpr uint64_t k_timer = 2;
constexpr uint64_t k_cancel = 3;
constexpr uint64_t k_kind_mask = 3;

struct Outcome {
  long res = 0;
  bool done = false;       // the operation's CQE arrived
  bool timed_out = false;  // its linked timeout fired
};

void fill(abi::Sqe* s, const Request& rq, bool dontwait) {
  s->opcode = rq.opcode;
  s->fd = rq.fd;
  s->addr = rq.addr;
  s->off = rq.addr2;
  s->len = rq.len;
  s->op_flags = rq.op_flags;
  s->addr_len = rq.addr_len;
  if (dontwait) {
    if (rq.opcode == abi::k_op_accept) {
      s->ioprio |= abi::k_accept_dontwait;
    } else {
      s->op_flags |= MSG_DONTWAIT;
    }
  } else if (rq.opcode == abi::k_op_recv || rq.opcode == abi::k_op_recvmsg) {
    // A blocking receive mostly finds nothing yet: arm the poll without
    // the attempt that would fail first (measured: 5-10% less CPU).
    s->ioprio |= abi::k_recvsend_poll_first;
  }
}

// Takes every CQE there is; those of `tag` go into o.
void absorb(ThreadState& ts, uint64_t tag, Outcome& o) {
  abi::Cqe c;
  while (ts.ring.pop(&c)) {
    if ((c.user_data & ~k_kind_mask) != tag) continue;
    switch (c.user_data & k_kind_mask) {
      case k_main:
        o.res = c.res;
        o.done = true;
        break;
      case k_timer:
        if (c.res == -ETIME) o.timed_out = true;
        break;
      default:
        break;  // the poll's mask, or a cancel's own answer
    }
  }
}

void ring_broken(ThreadState& ts, long err) {
  // Cannot happen with a healthy kernel; if it does, never use the ring
  // again (its CQEs can no longer be accounted for).
  ts.ring_state = ThreadState::k_ring_failed;
  if (pool::options().verbose) {
    pool::Line line;  // one write: see line.hpp
    line.add("ringpool: uring: io_uring_enter failed while reaping (errno ").num((unsigned long long)-err);
    line.add("); this thread passes its calls through from now on").write();
  }
}

// Reaps until the kernel owes nothing. Not interruptible: handlers run and
// the wait goes on; what is still owed is due at once (a cancel's answer,
// a linked timeout's, the operation cancelled).
void drain(ThreadState& ts, uint64_t tag, Outcome& o) {
  absorb(ts, tag, o);
  while (ts.ring.owed()) {
    long r = ts.ring.wait_enter(1);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
      ring_broken(ts, r);
      return;
    }
    absorb(ts, tag, o);
  }
}

// Asks the kernel to cancel the request tagged `target`. If it cannot even
// be asked, drain() waits for the request to finish on its own.
void cancel(ThreadState& ts, uint64_t target) {
  for (int tries = 0; tries < 16; tries++) {
    if (abi::Sqe* s = ts.ring.next_sqe()) {
      s->opcode = abi::k_op_async_cancel;
      s->fd = -1;
      s->addr = target;
      s->user_data = (target & ~k_kind_mask) | k_cancel;
      if (ts.ring.submit() > 0) return;
    }
    ts.ring.wait_enter(0);
  }
}

struct CancelCtx {
  ThreadState* ts;
  uint64_t tag;
  uint64_t target;
};

// pthread_cancel() acted on the thread inside a routed wait: settle before
// it unwinds, so that the ring is never torn down with requests in flight.
// The enter it left may never have returned: roll back what the kernel did
// not take.
void on_thread_cancel(void* arg) {
  auto* c = static_cast<CancelCtx*>(arg);
  c->ts->ring.reconcile();
  Outcome o;
  cancel(*c->ts, c->target);
  drain(*c->ts, c->tag, o);
  c->ts->depth = 0;
}

// Where a routed call blocks. The plain call is a cancellation point
// there, so this is too: asynchronous cancellation is on only around the
// system call itself.
template <typename Call>
long cancellable(Call call) {
  int old = 0;
  pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old);
  long r = call();
  pthread_setcanceltype(old, &old);
  return r;
}

// Waits for the operation's CQE. Returns true when a signal ended the wait
// the way it would end the plain call. io_uring_enter ends on every signal
// (and an enter that also submitted hides even that); a restartable wait
// ends only if a handler without SA_RESTART ran since the call began
// (`interrupts`, see signals.hpp) and otherwise waits again, as the kernel
// restarts the plain call. (A handler that ran in the instant between the
// call's start and its system call counts too, once something wakes the
// wait, though the plain call would not yet have been waiting.) An
// interruptible wait ends on any signal.
bool wait(ThreadState& ts, uint64_t tag, Outcome& o, bool restartable, uint32_t interrupts) {
  for (;;) {
    absorb(ts, tag, o);
    if (o.done) return false;
    if (restartable && signals::interrupts() != interrupts) return true;
    long r = cancellable([&] { return ts.ring.wait_enter(1); });
    if (r == -EINTR && !restartable) return true;
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) return true;  // a broken ring
  }
}

long run_once(ThreadState& ts, const Plan& plan, bool pair, uint32_t interrupts, bool* waited) {
  Ring& ring = ts.ring;
  uint64_t tag = ++ts.seq << 2;
  const unsigned count = (pair || plan.timeout_us) ? 2 : 1;
  abi::Sqe* s = ring.next_sqe();
  if (s == nullptr) return k_not_routed;
  if (pair) {
    s->opcode = abi::k_op_poll_add;
    s->fd = plan.rq.fd;
    s->op_flags = plan.poll_mask;
    s->flags = abi::k_sqe_io_link;
    s->user_data = tag | k_poll;
    s = ring.next_sqe();
    fill(s, plan.rq, true);
    s->user_data = tag | k_main;
  } else {
    fill(s, plan.rq, false);
    s->user_data = tag | k_main;
    if (plan.timeout_us) {
      s->flags |= abi::k_sqe_io_link;
      ts.timeout.tv_sec = (int64_t)(plan.timeout_us / 1000000u);
      ts.timeout.tv_nsec = (int64_t)(plan.timeout_us % 1000000u) * 1000;
      abi::Sqe* t = ring.next_sqe();
      t->opcode = abi::k_op_link_timeout;
      t->fd = -1;
      t->addr = (uint64_t)(uintptr_t)&ts.timeout;
      t->len = 1;
      t->user_data = tag | k_timer;
    }
  }
  ts.tag = tag;
  ts.depth = 1;
  // A restartable call submits and waits in one io_uring_enter; the others
  // submit first, so that their wait sees every signal.
  bool restartable = plan.timeout_us == 0 && !plan.interruptible;
  uint64_t cancel_target = tag | (pair ? k_poll : k_main);
  CancelCtx ctx = {&ts, tag, cancel_target};
  Outcome o;
  int n;
  bool interrupted = false;
  pthread_cleanup_push(on_thread_cancel, &ctx);
  n = restartable ? (int)cancellable([&] { return (long)ring.submit(1); }) : ring.submit();
  if (n > 0) {
    absorb(ts, tag, o);
    if ((unsigned)n == count && !o.done) {
      *waited = true;
      interrupted = wait(ts, tag, o, restartable, interrupts);
    }
  }
  pthread_cleanup_pop(0);
  if (n <= 0) {
    ts.depth = 0;
    return k_not_routed;
  }
  bool partial_submit = (unsigned)n < count;
  if (partial_submit || interrupted) cancel(ts, cancel_target);  // partial: an incomplete link, take it back
  drain(ts, tag, o);
  ts.depth = 0;
  if (partial_submit) return (o.done && o.res != -ECANCELED && o.res != -EAGAIN) ? o.res : k_not_routed;
  if (interrupted) {
    shim::count(k_interrupted);
    if (o.done && o.res != -ECANCELED && o.res != -EAGAIN) {
      shim::count(k_raced);  // the data (or an error) won the race
      return o.res;
    }
    return -EINTR;
  }
  if (o.res == -ECANCELED && o.timed_out) {
    shim::count(k_timeouts);
    return plan.on_timeout == OnTimeout::eagain ? -EAGAIN : -EINPROGRESS;
  }
  return o.res;
}

// A routed call is already in progress on this thread: a signal handler
// either makes this call from inside it (nested: the ring is busy, so this
// call goes to libc) or jumped out of it with longjmp (abandoned: settle it
// and go on). Handler frames sit below the interrupted one on the same
// stack, or on the alternate signal stack.
bool abandoned(const ThreadState& ts, uintptr_t here) {
  if (here < ts.frame) return false;
  stack_t ss;
  if (sys::sigaltstack(nullptr, &ss) == 0 && (ss.ss_flags & SS_ONSTACK)) return false;
  return true;
}

}  // namespace

void settle(ThreadState& ts) {
  if (ts.ring_state == ThreadState::k_ring_ready) {
    // A handler may have jumped out of the enter itself, before the ring's
    // books were kept: roll back what the kernel did not take first.
    ts.ring.reconcile();
    if (ts.ring.owed()) {
      cancel(ts, ts.tag | k_poll);
      cancel(ts, ts.tag | k_main);
      Outcome o;
      drain(ts, ts.tag, o);
    }
  }
  ts.depth = 0;
}

long run(const Plan& plan) {
  ThreadState* ts = thread_state();
  if (ts == nullptr) return k_not_routed;
  uintptr_t here = (uintptr_t)__builtin_frame_address(0);
  if (ts->depth != 0) {
    if (!abandoned(*ts, here)) return k_pass;
    settle(*ts);
  }
  if (thread_ring(ts) == nullptr) return k_not_routed;
  pthread_testcancel();  // the plain call is a cancellation point on entry
  ts->frame = here;
  // Pair mode needs a non-blocking form of the operation: accept has one
  // from Linux 6.10 (IORING_ACCEPT_DONTWAIT).
  bool pair = plan.pair && plan.timeout_us == 0 && !plan.interruptible &&
              (plan.rq.opcode != abi::k_op_accept || Ring::accept_dontwait());
  bool waited = false;
  uint32_t interrupts = signals::interrupts();
  long r;
  for (;;) {
    r = run_once(*ts, plan, pair, interrupts, &waited);
    // In pair mode EAGAIN is a wake-up another waiter won: wait again,
    // unless a handler without SA_RESTART ran meanwhile (the plain call,
    // waiting all along, would have ended with EINTR).
    if (!pair || r != -EAGAIN) break;
    if (signals::interrupts() != interrupts) {
      shim::count(k_interrupted);
      r = -EINTR;
      break;
    }
  }
  if (waited && r != k_not_routed) shim::count(k_waits);
  return r;
}

}  // namespace ringpool::shim::route
