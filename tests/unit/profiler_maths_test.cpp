// The heap profiler's arithmetic without libm (profiler/maths.hpp) against
// libm: the profiler claims about 1e-12 relative error, far below its
// sampling noise; the weights and gaps of every sample depend on it.
#include <math.h>
#include <stdint.h>

#include <catch2/catch.hpp>

#include "../../profiler/maths.hpp"

namespace profile = ringpool::profile;

namespace {

double rel_err(double got, double want) {
  if (want == 0) return fabs(got);
  return fabs(got - want) / fabs(want);
}

}  // namespace

TEST_CASE("exp_neg(x) is exp(-x) within 1e-12 from 0 to 700", "[profiler][maths]") {
  double worst = 0;
  for (double x = 0; x <= 700; x = x < 1 ? x + 1e-3 : x * 1.001 + 1e-3) worst = fmax(worst, rel_err(profile::exp_neg(x), exp(-x)));
  CHECK(worst < 1e-12);
  CHECK(profile::exp_neg(0) == 1);
  CHECK(profile::exp_neg(800) == 0);
}

TEST_CASE("one_minus_exp_neg(x) is 1 - exp(-x) within 1e-12, small x included", "[profiler][maths]") {
  double worst = 0;
  for (double x = 1e-12; x <= 700; x *= 1.01) worst = fmax(worst, rel_err(profile::one_minus_exp_neg(x), -expm1(-x)));
  CHECK(worst < 1e-12);
}

TEST_CASE("neg_log(u) is -ln(u) within 1e-12 on (0, 1]", "[profiler][maths]") {
  double worst_abs = 0, worst_rel = 0;
  for (double u = 1; u > 1e-300; u *= 0.999) {
    double want = -log(u), got = profile::neg_log(u);
    if (want > 1e-3) worst_rel = fmax(worst_rel, rel_err(got, want));
    else worst_abs = fmax(worst_abs, fabs(got - want));
  }
  CHECK(worst_rel < 1e-12);
  CHECK(worst_abs < 1e-15);
  // The smallest draw the sampler makes, 2^-53, and the largest, 1.
  CHECK(rel_err(profile::neg_log(1.0 / 9007199254740992.0), 53 * log(2.0)) < 1e-12);
  CHECK(profile::neg_log(1) == 0);
}

TEST_CASE("exponential gaps drawn with neg_log have the asked-for mean", "[profiler][maths]") {
  // What draw_gap does: u uniform in (0, 1], gap = -ln(u) * rate.
  uint64_t x = 0x2545f4914f6cdd1dULL;
  const double rate = 512 * 1024;
  const int n = 200000;
  double sum = 0;
  for (int i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    double u = (double)((x >> 11) + 1) * (1.0 / 9007199254740992.0);
    sum += profile::neg_log(u) * rate;
  }
  // The mean of n exponentials has a standard error of rate / sqrt(n).
  CHECK(fabs(sum / n - rate) < 5 * rate / sqrt((double)n));
}
