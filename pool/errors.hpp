// Two levels of checks.
//   always-on  checks that guard memory safety: a bad pointer stops the
//              program with a message naming the problem and the address,
//              then abort() (so a core dump points at the caller), as glibc
//              does.
//   debug      RINGPOOL_DEBUG_ASSERT(cond): invariants too dear to check in
//              a release build, compiled in with -DRINGPOOL_DEBUG (make
//              DEBUG=1; the sanitizer and fuzz builds always); otherwise the
//              condition is type-checked and never evaluated.
#pragma once

namespace ringpool::pool {

[[noreturn]] void report_bad_pointer(const char* what, const void* p);
// "free(): invalid pointer (why)" (in_free) or "invalid pointer (why)":
// the same reason, whichever call met the pointer.
[[noreturn]] void report_invalid_pointer(bool in_free, const char* why, const void* p);
[[noreturn]] void report_assertion(const char* cond, const char* file, int line);

#ifdef RINGPOOL_DEBUG
#define RINGPOOL_DEBUG_ASSERT(cond) \
  ((cond) ? (void)0 : ::ringpool::pool::report_assertion(#cond, __FILE__, __LINE__))
#else
#define RINGPOOL_DEBUG_ASSERT(cond) ((void)sizeof(!(cond)))
#endif

// Format v as 0x-prefixed hex into buf (at least 19 bytes); returns buf.
char* format_hex(char* buf, unsigned long long v);
// Format v as decimal into buf (at least 21 bytes); returns buf.
char* format_dec(char* buf, unsigned long long v);

}  // namespace ringpool::pool
