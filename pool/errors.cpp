#include "errors.hpp"

#include "platform.hpp"

namespace ringpool::pool {

char* format_hex(char* buf, unsigned long long v) {
  char tmp[16];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  buf[0] = '0';
  buf[1] = 'x';
  for (int i = 0; i < n; i++) buf[2 + i] = tmp[n - 1 - i];
  buf[2 + n] = 0;
  return buf;
}

char* format_dec(char* buf, unsigned long long v) {
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (int i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
  buf[n] = 0;
  return buf;
}

namespace {

[[noreturn]] void report(const char* a, const char* b, const char* c, const void* p) {
  char hex[24];
  platform::write_err("ringpool: ");
  platform::write_err(a);
  platform::write_err(b);
  platform::write_err(c);
  platform::write_err(": ");
  platform::write_err(format_hex(hex, (unsigned long long)p));
  platform::write_err("\n");
  platform::die();
}

}  // namespace

void report_bad_pointer(const char* what, const void* p) { report(what, "", "", p); }

void report_invalid_pointer(bool in_free, const char* why, const void* p) {
  report(in_free ? "free(): invalid pointer (" : "invalid pointer (", why, ")", p);
}

void report_assertion(const char* cond, const char* file, int line) {
  char dec[24];
  platform::write_err("ringpool: internal check failed: ");
  platform::write_err(cond);
  platform::write_err(" (");
  platform::write_err(file);
  platform::write_err(":");
  platform::write_err(format_dec(dec, (unsigned long long)line));
  platform::write_err(")\n");
  platform::die();
}

}  // namespace ringpool::pool
