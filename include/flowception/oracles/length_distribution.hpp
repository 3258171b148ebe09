// A discrete distribution of video lengths P(L), used by the length oracle and the examples.
#pragma once

#include <cmath>
#include <cstddef>
#include <map>
#include <vector>

#include "flowception/core/errors.hpp"

namespace flowception {

class LengthDistribution {
 public:
  /// Lengths and their (unnormalised) weights.
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

  const std::vector<std::size_t>& lengths() const { return lengths_; }
  const std::vector<double>& probabilities() const { return probs_; }
  std::size_t min_length() const { return lengths_.front(); }
  std::size_t max_length() const { return lengths_.back(); }
  double probability(std::size_t L) const {
    for (std::size_t i = 0; i < lengths_.size(); ++i)
      if (lengths_[i] == L) return probs_[i];
    return 0.0;
  }
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
