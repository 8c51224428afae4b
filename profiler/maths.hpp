// Arithmetic without libm for the heap profiler (the library links no
// libm): accurate to about 1e-12, far below the sampling noise; the unit
// tests check it against libm.
#pragma once
#include <stdint.h>
#include <string.h>

namespace ringpool::profile {
inline constexpr double k_ln2 = 0.693147180559945309417;

// exp(-x) for x >= 0.
inline double exp_neg(double x) {
  if (x > 700) return 0;
  uint64_t k = (uint64_t)(x / k_ln2 + 0.5);
  double r = x - (double)k * k_ln2;  // |r| <= ln2/2
  double term = 1, sum = 1;
  for (int i = 1; i <= 14; i++) {
    term *= -r / i;
    sum += term;
  }
  if (k > 1020) return 0;
  uint64_t bits = (1023 - k) << 52;  // 2^-k
  double scale;
  memcpy(&scale, &bits, sizeof scale);
  return sum * scale;
}

// 1 - exp(-x) for x >= 0, without cancellation for small x.
inline double one_minus_exp_neg(double x) {
  if (x >= 0.5) return 1 - exp_neg(x);
  double term = x, sum = x;
  for (int i = 2; i <= 18; i++) {
    term *= -x / i;
    sum += term;
  }
  return sum;
}

// -ln(u) for 0 < u <= 1.
inline double neg_log(double u) {
  uint64_t bits;
  memcpy(&bits, &u, sizeof bits);
  int e = (int)((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & ((uint64_t{1} << 52) - 1)) | (uint64_t{1023} << 52);
  double m;  // in [1, 2), then [sqrt(1/2), sqrt(2)): near u = 1 the result
  memcpy(&m, &bits, sizeof m);  // must not be a difference of e*ln2 and ln(m)
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e++;
  }
  double t = (m - 1) / (m + 1), t2 = t * t, term = t, sum = 0;
  for (int i = 1; i <= 25; i += 2) {
    sum += term / i;
    term *= t2;
  }
  return -(e * k_ln2 + 2 * sum);
}

inline uint64_t mix64(uint64_t x) {  // murmur3's finaliser
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

}  // namespace ringpool::profile
