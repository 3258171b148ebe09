// The denoising-time shift of §2: t = u / (u + s·(1 − u)). Independent of κ; applied once, at
// the boundary between a clock (u or clipped τ) and the time a model or solver sees.
#pragma once

#include <cmath>

#include "flowception/core/errors.hpp"

namespace flowception {

/// The denoising-time shift of §2, t = u / (u + s·(1 − u)), mapping a clock u in [0, 1] to the
/// model time t a model or solver sees. Independent of κ; applied once, at that boundary.
class TimeShift {
 public:
  /// The identity shift (s = 1).
  TimeShift() = default;
  /// s > 0; s = 1 is the identity, s > 1 spends more steps near noise. Throws `ConfigError` unless
  /// s is finite and > 0.
  explicit TimeShift(double s) : s_(s) {
    detail::require(std::isfinite(s) && s > 0.0, "time shift must be finite and > 0, got ", s);
  }
  /// The shift factor s.
  double factor() const { return s_; }
  /// True when s = 1 (t = u).
  bool is_identity() const { return s_ == 1.0; }

  /// Clock u in [0,1] to model time t in [0,1]; exact at both ends.
  double operator()(double u) const {
    if (s_ == 1.0 || u <= 0.0 || u >= 1.0) return u <= 0.0 ? 0.0 : (u >= 1.0 ? 1.0 : u);
    return u / (u + s_ * (1.0 - u));
  }
  /// Model time t back to the clock u.
  double inverse(double t) const {
    if (s_ == 1.0 || t <= 0.0 || t >= 1.0) return t <= 0.0 ? 0.0 : (t >= 1.0 ? 1.0 : t);
    return s_ * t / (1.0 - t + s_ * t);
  }

 private:
  double s_ = 1.0;
};

}  // namespace flowception
