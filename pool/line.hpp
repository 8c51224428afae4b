// A diagnostic line, written to stderr by one write(2).
//
// Several processes of one program (a forking server and its children, a
// client next to them) often share one stderr and exit at the same instant.
// A line written piece by piece then interleaves with theirs, and a reader
// of the counter lines (tests/shim/run.sh) sums digits of one process's
// counter into another's field ("fallback=" of one, "928" of the next). One
// write per line cannot interleave: the kernel serialises writes on a
// shared regular file's offset, and keeps a pipe write of up to PIPE_BUF
// bytes whole.
#pragma once
#include <stddef.h>
#include <string.h>

#include "errors.hpp"
#include "platform.hpp"

namespace ringpool::pool {

class Line {
 public:
  // Longer text is cut: the newline always fits.
  Line& add_n(const char* s, size_t n) {
    for (size_t i = 0; i < n && n_ < k_max - 1; i++) buf_[n_++] = s[i];
    return *this;
  }
  Line& add(const char* s) { return add_n(s, strlen(s)); }
  Line& num(unsigned long long v) {
    char digits[24];
    return add(format_dec(digits, v));
  }
  // The text, a newline, one write (write_err_n goes on after a short one).
  void write() {
    buf_[n_++] = '\n';
    platform::write_err_n(buf_, n_);
    n_ = 0;
  }

 private:
  static constexpr size_t k_max = 512;  // <= PIPE_BUF
  char buf_[k_max];
  size_t n_ = 0;
};

}  // namespace ringpool::pool
