// Length oracle: the exact expected number of missing frames per gap for a length distribution
// P(L), a scheduler κ, n_start and anchoring. With n frames visible at global time s (the start
// frames' clocks equal s while s <= 1, so the oracle reads s from the times it is given):
//   P(L | n, s) ∝ P(L) · C(L − n_start, n − n_start) · κ(s)^(n − n_start) · (1 − κ(s))^(L − n)
// Anchored: each of the n − 1 inner gaps expects E[(L − n)/(n − 1)], the last frame 0.
// Unanchored: each of the n gaps expects E[(L − n)/n].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <vector>

#include "flowception/algebra/host_algebra.hpp"
#include "flowception/core/errors.hpp"
#include "flowception/core/frame_kind.hpp"
#include "flowception/model/velocity_model.hpp"
#include "flowception/oracles/gaussian_oracle.hpp"
#include "flowception/oracles/length_distribution.hpp"
#include "flowception/schedule/kappa.hpp"
#include "flowception/schedule/time_shift.hpp"

namespace flowception {

/// A log-rate standing for λ = 0 (exp(−700) ≈ 1e−304); models must return finite ℓ.
inline constexpr double kZeroRateLogRate = -700.0;

/// No content: velocity 0 everywhere (frames stay noise). For length-only experiments.
struct ZeroContent {
  /// Sets every element of `v` to 0.
  template <class T>
  void frame_velocity(std::span<const T>, double, std::span<T> v) const {
    for (auto& x : v) x = T(0);
  }
};

/// The exact expected number of missing frames per gap for a length distribution P(L), scheduler
/// κ, `n_start` and anchoring, as a `VelocityModel` on `HostFrames<T>`: the posterior
/// P(L | n, s) ∝ P(L) · C(L − n_start, n − n_start) · κ(s)^(n − n_start) · (1 − κ(s))^(L − n),
/// with the clock s read back from the generated frames' model times. The velocity comes from
/// `Content` (`ZeroContent` or `GaussianContentOracle`).
template <KappaScheduler Kappa, class Content = ZeroContent>
class LengthOracle {
 public:
  /// `anchored`: the last frame is fixed and receives no insertions (needs `n_start` ≥ 2); `shift`
  /// must be the sampler's time shift, used to read s from model times. Throws `ConfigError` if
  /// `n_start` < 1 (< 2 when anchored) or the shortest length in `lengths` is below `n_start`.
  LengthOracle(LengthDistribution lengths, Kappa kappa, std::size_t n_start, bool anchored, TimeShift shift = {},
               Content content = {})
      : p_(std::move(lengths)), kappa_(std::move(kappa)), n_start_(n_start), anchored_(anchored), shift_(shift),
        content_(std::move(content)) {
    detail::require(n_start >= 1, "n_start must be >= 1, got ", n_start);
    detail::require(!anchored || n_start >= 2, "an anchored length oracle needs n_start >= 2, got ", n_start);
    detail::require(p_.min_length() >= n_start, "length distribution has length ", p_.min_length(),
                    " < n_start = ", n_start, ": sampling starts from n_start frames and cannot produce it");
  }

  /// The length distribution P(L).
  const LengthDistribution& lengths() const { return p_; }
  /// The insertion scheduler κ.
  const Kappa& kappa() const { return kappa_; }

  /// P(L | n, s) over the support of P (same order as lengths()).
  std::vector<double> posterior(std::size_t n, double s) const {
    const auto& Ls = p_.lengths();
    std::vector<double> logw(Ls.size(), -std::numeric_limits<double>::infinity());
    const double k = kappa_.kappa(s), surv = kappa_.survival(s);
    const double log_k = std::log(k), log_s = std::log(surv);
    double best = -std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < Ls.size(); ++i) {
      const std::size_t L = Ls[i];
      if (L < n || n < n_start_) continue;
      const double a = static_cast<double>(n - n_start_), b = static_cast<double>(L - n);
      double lw = std::log(p_.probabilities()[i]) + log_choose(L - n_start_, n - n_start_);
      if (a > 0) lw += a * log_k;  // 0 · log 0 = 0
      if (b > 0) lw += b * log_s;
      if (std::isnan(lw)) lw = -std::numeric_limits<double>::infinity();
      logw[i] = lw;
      best = std::max(best, lw);
    }
    std::vector<double> post(Ls.size(), 0.0);
    if (!std::isfinite(best)) return post;  // n frames are impossible under P: nothing is missing
    double z = 0.0;
    for (std::size_t i = 0; i < Ls.size(); ++i) z += (post[i] = std::exp(logw[i] - best));
    for (auto& x : post) x /= z;
    return post;
  }

  /// Expected missing frames in each inner gap (anchored) or each gap (unanchored).
  double expected_missing_per_gap(std::size_t n, double s) const {
    const auto post = posterior(n, s);
    const double gaps = anchored_ ? static_cast<double>(n - 1) : static_cast<double>(n);
    if (gaps <= 0.0) return 0.0;
    double e = 0.0;
    for (std::size_t i = 0; i < post.size(); ++i)
      if (post[i] > 0.0) e += post[i] * static_cast<double>(p_.lengths()[i] - n) / gaps;
    return e;
  }

  /// The global clock s of a video, read from its generated frames' largest model time.
  double clock_of(std::span<const double> times, std::span<const FrameKind> kinds) const {
    double t = -1.0;
    for (std::size_t f = 0; f < times.size(); ++f)
      if (kinds[f] == FrameKind::generated) t = std::max(t, times[f]);
    detail::require(t >= 0.0, "the length oracle reads the clock from generated frames; this video has none");
    return shift_.inverse(t);
  }

  /// Per video: the content velocity for every row, and log-rate log E[missing per gap] (at least
  /// `kZeroRateLogRate`) for every row, except `kZeroRateLogRate` on the last row when anchored.
  /// Throws `ConfigError` for a video without generated frames.
  template <class T>
  void evaluate(const ModelInput<HostFrames<T>>& in, ModelOutput<HostFrames<T>>& out) const {
    for (std::size_t v = 0; v < in.videos(); ++v) {
      const std::size_t b = in.offsets[v], e = in.offsets[v + 1], n = e - b;
      const double s = clock_of(in.times.subspan(b, n), in.kinds.subspan(b, n));
      const double per_gap = expected_missing_per_gap(n, s);
      const double lr = per_gap > 0.0 ? std::max(std::log(per_gap), kZeroRateLogRate) : kZeroRateLogRate;
      for (std::size_t f = b; f < e; ++f) {
        out.log_rate[f] = (anchored_ && f + 1 == e) ? kZeroRateLogRate : lr;
        content_.template frame_velocity<T>(in.frames.frame(f), in.times[f], out.velocity.frame(f));
      }
    }
  }

 private:
  static double log_choose(std::size_t n, std::size_t k) {
    return std::lgamma(static_cast<double>(n) + 1.0) - std::lgamma(static_cast<double>(k) + 1.0) -
           std::lgamma(static_cast<double>(n - k) + 1.0);
  }

  LengthDistribution p_;
  Kappa kappa_;
  std::size_t n_start_;
  bool anchored_;
  TimeShift shift_;
  Content content_;
};

static_assert(VelocityModel<LengthOracle<LinearKappa>, HostFrames<float>>);
static_assert(VelocityModel<LengthOracle<CosineKappa, GaussianContentOracle>, HostFrames<double>>);

}  // namespace flowception
