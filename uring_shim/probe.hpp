// Whether io_uring can be used in this process, and if not, why.
//
// io_uring may be missing (old kernel), switched off (sysctl
// kernel.io_uring_disabled answers EPERM), or filtered by seccomp, which may
// answer EPERM or ENOSYS, or kill the caller. The first two show as errors
// when a ring is made. A filter that kills cannot be tried in place: under a
// seccomp filter, the first ring (and the first after another filter was
// added) is made in a throwaway child first.
#pragma once

namespace ringpool::shim::probe {

// Before a thread makes its ring: false once io_uring is known unusable.
bool usable();

// Making a ring failed with -err at `step`. Errors that mean "not here"
// (EPERM, EACCES, ENOSYS, EINVAL) turn routing off for the process; others
// (ENOMEM, EMFILE...) only for the calling thread. Says why, once, when
// RINGPOOL_VERBOSE is set.
void ring_failed(long err, const char* step);

// Why io_uring is unusable, or nullptr.
const char* reason();

// pthread_atfork: the probe lock must not be held across fork.
void fork_prepare();
void fork_parent();
void fork_child();

}  // namespace ringpool::shim::probe
