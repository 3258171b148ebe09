// The global clock grid of §4: 0 = s_0 < s_1 < ... < s_N = 1, given explicitly (no default N).
// The sampler runs it once for the insertion phase and again shifted by 1 to finish frames.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "flowception/core/errors.hpp"

namespace flowception {

/// The global clock grid of §4: 0 = s_0 < s_1 < ... < s_N = 1, with N steps always given by the
/// caller. The sampler runs it once for the insertion phase and again shifted by 1 to finish frames.
class TimeGrid {
 public:
  /// Any strictly increasing grid from exactly 0 to exactly 1; `label` names it in logs. Throws
  /// `ConfigError` otherwise (fewer than 2 points, wrong ends, a non-finite or non-increasing point).
  explicit TimeGrid(std::vector<double> points, std::string label = "custom")
      : s_(std::move(points)), label_(std::move(label)) {
    detail::require(s_.size() >= 2, "time grid needs at least 2 points (1 step), got ", s_.size(),
                    " point(s): zero steps");
    detail::require(s_.front() == 0.0, "time grid must start at exactly 0, got ", s_.front());
    detail::require(s_.back() == 1.0, "time grid must end at exactly 1, got ", s_.back());
    for (std::size_t j = 0; j + 1 < s_.size(); ++j) {
      detail::require(std::isfinite(s_[j + 1]) && s_[j + 1] > s_[j], "time grid must be strictly increasing: s[",
                      j, "] = ", s_[j], " and s[", j + 1, "] = ", s_[j + 1]);
    }
  }

  /// The most steps a grid may have: far beyond any useful N, and small enough that N + 1 grid
  /// points can neither wrap around nor exhaust memory.
  static constexpr std::size_t kMaxSteps = 10'000'000;

  /// s_j = j/N.
  static TimeGrid uniform(std::size_t steps) {
    check_steps(steps);
    std::vector<double> s(steps + 1);
    for (std::size_t j = 0; j <= steps; ++j) s[j] = static_cast<double>(j) / static_cast<double>(steps);
    s.back() = 1.0;
    return TimeGrid(std::move(s), "uniform");
  }

  /// s_j = 1 − (1 − j/N)^p: denser near s = 1 for p > 1, where the last insertions happen.
  static TimeGrid end_dense(std::size_t steps, double power = 3.0) {
    check_steps(steps);
    detail::require(std::isfinite(power) && power >= 1.0, "end-dense grid power must be >= 1, got ", power);
    std::vector<double> s(steps + 1);
    for (std::size_t j = 0; j <= steps; ++j)
      s[j] = 1.0 - std::pow(1.0 - static_cast<double>(j) / static_cast<double>(steps), power);
    s.front() = 0.0;
    s.back() = 1.0;
    return TimeGrid(std::move(s), "end_dense(" + std::to_string(power) + ")");
  }

  /// A grid by name, as the CLI's --grid takes it: "uniform", "end_dense" (power 3) or
  /// "end_dense:P". The whole power must be a number; ConfigError quotes what is not.
  static TimeGrid from_name(const std::string& name, std::size_t steps) {
    if (name == "uniform") return uniform(steps);
    if (name == "end_dense") return end_dense(steps, 3.0);
    if (name.rfind("end_dense:", 0) == 0)
      return end_dense(steps, detail::parse_number(std::string_view(name).substr(10), "the power of --grid '" + name + "'"));
    detail::fail<ConfigError>("unknown grid '", name, "' (uniform | end_dense | end_dense:P)");
  }

  /// N, the number of steps (points minus one).
  std::size_t steps() const { return s_.size() - 1; }
  /// s_j, for j in [0, N] (unchecked).
  double operator[](std::size_t j) const { return s_[j]; }
  /// All N + 1 points, s_0 = 0 to s_N = 1.
  const std::vector<double>& points() const { return s_; }
  /// The grid's name: "uniform", "end_dense(P)" or the label given to the constructor.
  const std::string& label() const { return label_; }

  /// Point m of the extended grid on [0, 2]: s_m for m <= N, 1 + s_{m−N} beyond.
  double extended(std::size_t m) const { return m <= steps() ? s_[m] : 1.0 + s_[m - steps()]; }

 private:
  static void check_steps(std::size_t steps) {
    detail::require(steps >= 1, "number of steps must be >= 1, got zero steps");
    detail::require(steps <= kMaxSteps, "number of steps N = ", steps, " is above the limit of ", kMaxSteps);
  }
  std::vector<double> s_;
  std::string label_;
};

}  // namespace flowception
