// A discrete distribution of video lengths P(L), used by the length oracle and the examples.
#pragma once

#include <cmath>
#include <cstddef>
#include <map>
#include <utility>
#include <vector>

#include "flowception/core/errors.hpp"

namespace flowception {

/// A discrete distribution P(L) of video lengths L ≥ 1, normalised, with only the lengths of
/// positive probability kept, in ascending order.
class LengthDistribution {
 public:
  /// Lengths and their (unnormalised) weights; repeated lengths add up. Throws `ConfigError` if
  /// the lists are empty or differ in size, a length is 0, a weight is negative or not finite, or
  /// the weights sum to 0.
  LengthDistribution(std::vector<std::size_t> lengths, std::vector<double> weights) {
    detail::require(!lengths.empty(), "length distribution needs at least one length");
    detail::require(lengths.size() == weights.size(), "length distribution: ", lengths.size(), " lengths but ",
                    weights.size(), " weights");
    std::map<std::size_t, double> merged;
    double total = 0.0;
    for (std::size_t i = 0; i < lengths.size(); ++i) {
      detail::require(lengths[i] >= 1, "length distribution: length must be >= 1, got ", lengths[i]);
      detail::require(std::isfinite(weights[i]) && weights[i] >= 0.0,
                      "length distribution: weight must be finite and >= 0, got ", weights[i]);
      merged[lengths[i]] += weights[i];
      total += weights[i];
    }
    detail::require(total > 0.0, "length distribution weights sum to zero");
    for (auto [l, w] : merged) {
      if (w <= 0.0) continue;
      lengths_.push_back(l);
      probs_.push_back(w / total);
    }
  }

  /// Equal weights over the given lengths.
  static LengthDistribution uniform(std::vector<std::size_t> lengths) {
    std::vector<double> w(lengths.size(), 1.0);
    return LengthDistribution(std::move(lengths), std::move(w));
  }

  /// The support, ascending.
  const std::vector<std::size_t>& lengths() const { return lengths_; }
  /// P(L) for each entry of lengths(), summing to 1.
  const std::vector<double>& probabilities() const { return probs_; }
  /// Shortest length with positive probability.
  std::size_t min_length() const { return lengths_.front(); }
  /// Longest length with positive probability.
  std::size_t max_length() const { return lengths_.back(); }
  /// P(L), 0 outside the support.
  double probability(std::size_t L) const {
    for (std::size_t i = 0; i < lengths_.size(); ++i)
      if (lengths_[i] == L) return probs_[i];
    return 0.0;
  }
  /// E[L].
  double mean() const {
    double m = 0.0;
    for (std::size_t i = 0; i < lengths_.size(); ++i) m += probs_[i] * static_cast<double>(lengths_[i]);
    return m;
  }

 private:
  std::vector<std::size_t> lengths_;  // ascending, positive probability only
  std::vector<double> probs_;
};

/// Total-variation distance between P and an empirical histogram (counts by length).
inline double total_variation(const LengthDistribution& p, const std::map<std::size_t, std::size_t>& counts) {
  std::size_t total = 0;
  for (auto [l, c] : counts) total += c;
  detail::require(total > 0, "total_variation: empty histogram");
  double tv = 0.0;
  std::map<std::size_t, double> diff;
  for (std::size_t i = 0; i < p.lengths().size(); ++i) diff[p.lengths()[i]] += p.probabilities()[i];
  for (auto [l, c] : counts) diff[l] -= static_cast<double>(c) / static_cast<double>(total);
  for (auto [l, d] : diff) tv += std::fabs(d);
  return 0.5 * tv;
}

}  // namespace flowception
