// Distributions of the global extended time τ_g on [0, τ_max) (§3 step 3).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <concepts>
#include <string>

#include "flowception/core/errors.hpp"
#include "flowception/random/stream.hpp"

namespace flowception {

// clang-format off
/// Draws τ_g given τ_max = max_i u_i + 1 (in [1, 2]) from a random stream.
template <class D>
concept TauDistribution = std::copy_constructible<D> && requires(const D d, double tau_max, random::Stream& rng) {
  { d.sample(tau_max, rng) } -> std::convertible_to<double>;
  { d.name() }               -> std::convertible_to<std::string>;
};
// clang-format on

/// Uniform on [0, τ_max) (the default).
struct UniformTau {
  /// τ_max·(1 − U) with U uniform in (0, 1): one uniform draw from `rng`.
  double sample(double tau_max, random::Stream& rng) const { return tau_max * (1.0 - rng.uniform()); }
  /// "uniform", the name AnyTau::from_name reads.
  std::string name() const { return "uniform"; }
};
static_assert(TauDistribution<UniformTau>);

/// τ_max · sigmoid(m + s·z), z ~ N(0,1): logit-normal scaled to [0, τ_max).
class LogitNormalTau {
 public:
  /// Location m and scale s of the normal before the sigmoid; ConfigError unless m is finite and
  /// s finite and > 0.
  explicit LogitNormalTau(double location = 0.0, double scale = 1.0) : m_(location), s_(scale) {
    detail::require(std::isfinite(location), "logit-normal location must be finite, got ", location);
    detail::require(std::isfinite(scale) && scale > 0.0, "logit-normal scale must be finite and > 0, got ", scale);
  }
  /// One draw from one normal of `rng`; a value that rounds up to τ_max is moved just below it.
  double sample(double tau_max, random::Stream& rng) const {
    const double z = m_ + s_ * rng.normal();
    const double v = tau_max / (1.0 + std::exp(-z));
    return v >= tau_max ? std::nextafter(tau_max, 0.0) : v;
  }
  /// "logit_normal", without the location and scale.
  std::string name() const { return "logit_normal"; }

 private:
  double m_, s_;
};
static_assert(TauDistribution<LogitNormalTau>);

/// Uniform on [0, 2), ignoring τ_max (draws past τ_max leave no loss and are resampled).
struct UniformTwoTau {
  /// 2·(1 − U) with U uniform in (0, 1); the τ_max argument is not used.
  double sample(double, random::Stream& rng) const { return 2.0 * (1.0 - rng.uniform()); }
  /// "uniform_0_2", the name AnyTau::from_name reads.
  std::string name() const { return "uniform_0_2"; }
};
static_assert(TauDistribution<UniformTwoTau>);

/// Uniform on [0, min(τ_max, 1)): only the insertion phase, where the visible fraction of
/// frames grows like κ(τ_g). The training-cost benchmark uses it for the paper's "one third of
/// the attention FLOPs" argument (§3), which averages over τ_g in [0, 1).
struct UniformBelowOneTau {
  /// min(τ_max, 1)·U with U uniform in (0, 1).
  double sample(double tau_max, random::Stream& rng) const {
    const double v = std::min(tau_max, 1.0) * rng.uniform();
    return v;
  }
  /// "uniform_0_1" (AnyTau::from_name does not offer this distribution).
  std::string name() const { return "uniform_0_1"; }
};
static_assert(TauDistribution<UniformBelowOneTau>);

/// Run-time choice among the three: uniform | logit_normal[:m,s] | uniform_0_2.
class AnyTau {
 public:
  /// Reads "uniform", "uniform_0_2", "logit_normal" (location 0, scale 1) or
  /// "logit_normal:M,S"; ConfigError for any other name or an unreadable M or S.
  static AnyTau from_name(const std::string& name) {
    AnyTau t;
    if (name == "uniform") {
      t.kind_ = 0;
    } else if (name == "uniform_0_2") {
      t.kind_ = 2;
    } else if (name.rfind("logit_normal", 0) == 0) {
      t.kind_ = 1;
      double m = 0.0, s = 1.0;
      if (name.size() > 12) {
        const std::string_view args = std::string_view(name).substr(13);
        const auto comma = args.find(',');
        detail::require(name[12] == ':' && comma != std::string_view::npos, "cannot read tau distribution '", name,
                        "' (logit_normal:M,S)");
        m = detail::parse_number(args.substr(0, comma), "the mean of tau distribution '" + name + "'");
        s = detail::parse_number(args.substr(comma + 1), "the scale of tau distribution '" + name + "'");
      }
      t.logit_ = LogitNormalTau(m, s);
    } else {
      detail::fail<ConfigError>("unknown tau distribution '", name, "' (uniform | logit_normal[:M,S] | uniform_0_2)");
    }
    return t;
  }
  /// A draw of the chosen distribution, using `rng` exactly as that distribution does.
  double sample(double tau_max, random::Stream& rng) const {
    switch (kind_) {
      case 1: return logit_.sample(tau_max, rng);
      case 2: return UniformTwoTau{}.sample(tau_max, rng);
      default: return UniformTau{}.sample(tau_max, rng);
    }
  }
  /// The chosen distribution's name(); for a logit-normal, without its location and scale.
  std::string name() const { return kind_ == 1 ? logit_.name() : (kind_ == 2 ? "uniform_0_2" : "uniform"); }

 private:
  int kind_ = 0;
  LogitNormalTau logit_{};
};
static_assert(TauDistribution<AnyTau>);

}  // namespace flowception
