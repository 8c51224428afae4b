// Always-on checks that guard memory safety: a bad pointer stops the
// program with a message naming the problem and the address, then abort()
// (so a core dump points at the caller), as glibc does.
#pragma once

namespace ringpool::pool {

[[noreturn]] void report_bad_pointer(const char* what, const void* p);

// Format v as 0x-prefixed hex into buf (at least 19 bytes); returns buf.
char* format_hex(char* buf, unsigned long long v);
// Format v as decimal into buf (at least 21 bytes); returns buf.
char* format_dec(char* buf, unsigned long long v);

}  // namespace ringpool::pool
