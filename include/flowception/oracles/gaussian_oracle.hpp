// Gaussian content oracle: data frames i.i.d. N(μ, σ²) per coordinate. On the rectified-flow
// path x_t = t·x1 + (1 − t)·x0 the exact velocity is
//   E[x1 − x0 | x_t] = μ + (t·σ² − (1 − t)) / (t²·σ² + (1 − t)²) · (x_t − t·μ),
// so sampling with it must reproduce N(μ, σ²) in every frame, whenever it was inserted.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>

#include "flowception/core/errors.hpp"
#include "flowception/core/frame_kind.hpp"
#include "flowception/model/velocity_model.hpp"
#include "flowception/algebra/host_algebra.hpp"

namespace flowception {

/// The exact velocity model for data frames drawn i.i.d. N(μ, σ²) per coordinate, on the path
/// x_t = t·x1 + (1 − t)·x0, with a constant log-rate for every frame. A `VelocityModel` on
/// `HostFrames<float>` and `HostFrames<double>`; also the `Content` of a `LengthOracle`.
class GaussianContentOracle {
 public:
  /// `log_rate` is returned for every frame when this oracle is used alone as a model
  /// (−700 ≈ λ = 0: no insertions).
  explicit GaussianContentOracle(double mean = 0.0, double stddev = 1.0, double log_rate = -700.0)
      : mu_(mean), sigma2_(stddev * stddev), log_rate_(log_rate) {
    detail::require(std::isfinite(mean), "Gaussian oracle mean must be finite, got ", mean);
    detail::require(std::isfinite(stddev) && stddev > 0.0, "Gaussian oracle stddev must be finite and > 0, got ", stddev);
    detail::require(std::isfinite(log_rate), "Gaussian oracle log-rate must be finite, got ", log_rate);
  }

  /// μ, the data mean of every coordinate.
  double mean() const { return mu_; }
  /// σ², the data variance of every coordinate.
  double variance() const { return sigma2_; }

  /// The exact velocity of one coordinate at model time t.
  double velocity(double x, double t) const {
    const double a = t * sigma2_ - (1.0 - t);
    const double b = t * t * sigma2_ + (1.0 - t) * (1.0 - t);
    return mu_ + a / b * (x - t * mu_);
  }

  /// Whole-frame velocity (context frames get the formula too; the sampler never moves them).
  template <class T>
  void frame_velocity(std::span<const T> x, double t, std::span<T> v) const {
    for (std::size_t e = 0; e < x.size(); ++e) v[e] = static_cast<T>(velocity(static_cast<double>(x[e]), t));
  }

  /// Writes the exact velocity of every row at its model time and the constant log-rate.
  template <class T>
  void evaluate(const ModelInput<HostFrames<T>>& in, ModelOutput<HostFrames<T>>& out) const {
    const std::size_t n = in.total_frames();
    for (std::size_t f = 0; f < n; ++f) {
      frame_velocity<T>(in.frames.frame(f), in.times[f], out.velocity.frame(f));
      out.log_rate[f] = log_rate_;
    }
  }

 private:
  double mu_, sigma2_, log_rate_;
};

static_assert(VelocityModel<GaussianContentOracle, HostFrames<float>>);
static_assert(VelocityModel<GaussianContentOracle, HostFrames<double>>);

}  // namespace flowception
