// Insertion schedulers κ (method.md §2). κ(s) is the probability that a non-start frame has been
// inserted by global time s. Each scheduler gives κ, κ', κ⁻¹, the survival 1 − κ computed
// without cancellation, and the hazard η = κ'/(1 − κ), finite for every s < 1.
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <limits>
#include <numbers>
#include <string>
#include <utility>

#include "flowception/core/errors.hpp"

namespace flowception {

// clang-format off
/// A scheduler κ: [0,1] → [0,1], non-decreasing, κ(0) = 0, κ(1) = 1. See docs/concepts.md.
template <class K>
concept KappaScheduler = std::copy_constructible<K> && requires(const K k, double s, double p) {
  { k.kappa(s) }      -> std::convertible_to<double>;   // κ(s)
  { k.derivative(s) } -> std::convertible_to<double>;   // κ'(s)
  { k.inverse(p) }    -> std::convertible_to<double>;   // κ⁻¹(p), p in [0,1]
  { k.survival(s) }   -> std::convertible_to<double>;   // 1 − κ(s), accurate near s = 1
  { k.hazard(s) }     -> std::convertible_to<double>;   // κ'(s)/(1 − κ(s)); +inf only at s = 1
  { k.name() }        -> std::convertible_to<std::string>;
};
// clang-format on

/// Probability that a frame still missing at s appears during (s, s_next]:
/// q = (κ(s_next) − κ(s)) / (1 − κ(s)) = 1 − S(s_next)/S(s), exact for any κ (§4 step 3).
/// If S(s) = 0 nothing can still be missing; q = 1 by convention.
template <KappaScheduler K>
double jump_probability(const K& k, double s, double s_next) {
  const double surv = k.survival(s);
  if (!(surv > 0.0)) return 1.0;
  const double q = (surv - k.survival(s_next)) / surv;
  return q < 0.0 ? 0.0 : (q > 1.0 ? 1.0 : q);
}

namespace detail {
inline void check_unit(double x, const char* what) {
  require(std::isfinite(x) && x >= 0.0 && x <= 1.0, what, " must be in [0, 1], got ", x);
}
}  // namespace detail

/// κ(s) = s: insertion times uniform (the paper's default).
struct LinearKappa {
  /// κ(s) = s.
  double kappa(double s) const { return s; }
  /// κ'(s) = 1.
  double derivative(double) const { return 1.0; }
  /// κ⁻¹(p) = p.
  double inverse(double p) const { return p; }
  /// 1 − s.
  double survival(double s) const { return 1.0 - s; }
  /// η(s) = 1/(1 − s); +∞ for s ≥ 1.
  double hazard(double s) const { return s >= 1.0 ? std::numeric_limits<double>::infinity() : 1.0 / (1.0 - s); }
  /// `"linear"`.
  std::string name() const { return "linear"; }
};
static_assert(KappaScheduler<LinearKappa>);

/// κ(s) = s^p, p > 0 (p = 3 is "cubic": insertions late).
class PolynomialKappa {
 public:
  /// Throws `ConfigError` unless `power` is finite and > 0.
  explicit PolynomialKappa(double power) : p_(power) {
    detail::require(std::isfinite(power) && power > 0.0, "polynomial kappa power must be finite and > 0, got ", power);
  }
  /// The exponent p.
  double power() const { return p_; }
  /// κ(s) = s^p.
  double kappa(double s) const { return std::pow(s, p_); }
  /// κ'(s) = p·s^(p−1); at s ≤ 0 it is 1 for p = 1, +∞ for p < 1 and 0 for p > 1.
  double derivative(double s) const {
    if (s <= 0.0) return p_ == 1.0 ? 1.0 : (p_ < 1.0 ? std::numeric_limits<double>::infinity() : 0.0);
    return p_ * std::pow(s, p_ - 1.0);
  }
  /// κ⁻¹(q) = q^(1/p).
  double inverse(double q) const { return std::pow(q, 1.0 / p_); }
  /// 1 − s^p = −expm1(p·log s): no cancellation as s → 1.
  double survival(double s) const { return s <= 0.0 ? 1.0 : -std::expm1(p_ * std::log(s)); }
  /// η(s) = κ'(s)/(1 − κ(s)); +∞ for s ≥ 1 (and at s = 0 when p < 1).
  double hazard(double s) const {
    if (s >= 1.0) return std::numeric_limits<double>::infinity();
    return derivative(s) / survival(s);
  }
  /// `"polynomial(P)"` with P printed by `std::to_string`.
  std::string name() const { return "polynomial(" + std::to_string(p_) + ")"; }

 private:
  double p_;
};
static_assert(KappaScheduler<PolynomialKappa>);

/// κ(s) = 1 − cos(πs/2).
struct CosineKappa {
  static constexpr double half_pi = std::numbers::pi / 2.0;  ///< π/2
  /// κ(s) = 1 − cos(πs/2).
  double kappa(double s) const { return 1.0 - std::cos(half_pi * s); }
  /// κ'(s) = (π/2)·sin(πs/2).
  double derivative(double s) const { return half_pi * std::sin(half_pi * s); }
  /// κ⁻¹(p) = acos(1 − p)/(π/2), computed as 2·asin(sqrt(p/2)): accurate for small p.
  double inverse(double p) const { return 2.0 * std::asin(std::sqrt(p / 2.0)) / half_pi; }
  /// cos(πs/2), computed as sin(π(1 − s)/2): accurate near s = 1.
  double survival(double s) const { return std::sin(half_pi * (1.0 - s)); }
  /// η(s) = (π/2)/tan(π(1 − s)/2); +∞ for s ≥ 1.
  double hazard(double s) const {
    if (s >= 1.0) return std::numeric_limits<double>::infinity();
    return half_pi / std::tan(half_pi * (1.0 - s));
  }
  /// `"cosine"`.
  std::string name() const { return "cosine"; }
};
static_assert(KappaScheduler<CosineKappa>);

/// A user-defined κ from a callable double(double). Validated at construction: finite values,
/// κ(0) = 0, κ(1) = 1 and non-decreasing on a grid of `check_points` points. κ' is a central
/// finite difference unless given; κ⁻¹ is bisection (exact to ~1e-15 on monotone κ) unless given.
template <class F, class DF = std::nullptr_t, class IF = std::nullptr_t>
class UserKappa {
 public:
  /// `f` is κ; `df` and `inv`, when not `nullptr`, are κ' and κ⁻¹; `label` is the name. Throws
  /// `ConfigError` if `check_points` < 2, κ(0) ≠ 0, κ(1) ≠ 1, or κ is not finite, outside [0, 1] or
  /// decreasing at the `check_points` evenly spaced points of [0, 1].
  explicit UserKappa(F f, DF df = nullptr, IF inv = nullptr, std::string label = "user",
                     std::size_t check_points = 1025)
      : f_(std::move(f)), df_(std::move(df)), inv_(std::move(inv)), label_(std::move(label)) {
    detail::require(check_points >= 2, "user kappa needs at least 2 check points");
    const double k0 = f_(0.0), k1 = f_(1.0);
    detail::require(std::isfinite(k0) && k0 == 0.0, "invalid user kappa '", label_, "': kappa(0) must be 0, got ", k0);
    detail::require(std::isfinite(k1) && k1 == 1.0, "invalid user kappa '", label_, "': kappa(1) must be 1, got ", k1);
    double prev = k0;
    for (std::size_t i = 1; i < check_points; ++i) {
      const double s = static_cast<double>(i) / static_cast<double>(check_points - 1);
      const double v = f_(s);
      detail::require(std::isfinite(v) && v >= 0.0 && v <= 1.0, "invalid user kappa '", label_,
                      "': kappa(", s, ") = ", v, " is outside [0, 1]");
      detail::require(v >= prev, "invalid user kappa '", label_, "': decreasing between s = ",
                      static_cast<double>(i - 1) / static_cast<double>(check_points - 1), " and s = ", s, " (", prev,
                      " > ", v, ")");
      prev = v;
    }
  }

  /// κ(s), the user's function.
  double kappa(double s) const { return f_(s); }
  /// The given κ', else a central difference with step 1e-6, one-sided at the ends of [0, 1].
  double derivative(double s) const {
    if constexpr (!std::is_same_v<DF, std::nullptr_t>) {
      return df_(s);
    } else {
      const double h = 1e-6;
      const double a = s - h < 0.0 ? 0.0 : s - h, b = s + h > 1.0 ? 1.0 : s + h;
      return (f_(b) - f_(a)) / (b - a);
    }
  }
  /// The given κ⁻¹, else the smallest s with κ(s) ≥ p by bisection (0 for p ≤ 0).
  double inverse(double p) const {
    if constexpr (!std::is_same_v<IF, std::nullptr_t>) {
      return inv_(p);
    } else {
      // Smallest s with κ(s) >= p (a generalised inverse: κ may be flat).
      double lo = 0.0, hi = 1.0;
      if (p <= 0.0) return 0.0;
      for (int it = 0; it < 200 && hi - lo > 1e-16; ++it) {
        const double mid = 0.5 * (lo + hi);
        (f_(mid) >= p ? hi : lo) = mid;
      }
      return hi;
    }
  }
  /// 1 − κ(s), computed by subtraction (no better accuracy near s = 1 than κ itself gives).
  double survival(double s) const { return 1.0 - f_(s); }
  /// κ'(s)/(1 − κ(s)); +∞ where the survival is 0.
  double hazard(double s) const {
    const double surv = survival(s);
    if (!(surv > 0.0)) return std::numeric_limits<double>::infinity();
    return derivative(s) / surv;
  }
  /// The label given at construction.
  std::string name() const { return label_; }

 private:
  F f_;
  DF df_;
  IF inv_;
  std::string label_;
};

/// A `UserKappa` from κ alone (numerical κ' and κ⁻¹), named `label`; validated as its constructor does.
template <class F>
UserKappa<F> make_user_kappa(F f, std::string label = "user") {
  return UserKappa<F>(std::move(f), nullptr, nullptr, std::move(label));
}

static_assert(KappaScheduler<UserKappa<double (*)(double)>>);

}  // namespace flowception
