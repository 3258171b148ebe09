// Small models with known answers, shared by the tests.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "flowception/flowception.hpp"

namespace fc_test {

using namespace flowception;

/// v = f(t) for every element, constant log-rate per kind. Fails the test if called at t > 1
/// or t < 0, and records every call's batch shape.
template <class T = double>
struct TimeFunctionModel {
  std::function<double(double)> f = [](double) { return 0.0; };
  double log_rate_generated = kZeroRateLogRate;
  double log_rate_active = kZeroRateLogRate;
  double log_rate_passive = kZeroRateLogRate;
  std::size_t calls = 0;
  std::vector<std::size_t> batch_videos, batch_frames;
  double max_time_seen = 0.0;

  void evaluate(const ModelInput<HostFrames<T>>& in, ModelOutput<HostFrames<T>>& out) {
    ++calls;
    batch_videos.push_back(in.videos());
    batch_frames.push_back(in.total_frames());
    for (std::size_t row = 0; row < in.total_frames(); ++row) {
      const double t = in.times[row];
      EXPECT_LE(t, 1.0) << "model evaluated at t > 1";
      EXPECT_GE(t, 0.0) << "model evaluated at t < 0";
      max_time_seen = std::max(max_time_seen, t);
      const double v = f(t);
      for (auto& x : out.velocity.frame(row)) x = static_cast<T>(v);
      switch (in.kinds[row]) {
        case FrameKind::generated: out.log_rate[row] = log_rate_generated; break;
        case FrameKind::active_context: out.log_rate[row] = log_rate_active; break;
        case FrameKind::passive_context: out.log_rate[row] = log_rate_passive; break;
      }
    }
  }
};

inline std::map<std::size_t, std::size_t> length_histogram(const SampleResult<float>& r) {
  std::map<std::size_t, std::size_t> h;
  for (const auto& v : r.videos) ++h[v.length()];
  return h;
}

/// A 3-sigma bound on the total-variation distance of an empirical histogram of `samples`
/// draws from its own distribution p: TV = ½Σ|p̂_i − p_i| with each |p̂_i − p_i| <= 3·sd_i.
inline double tv_noise_bound(const LengthDistribution& p, std::size_t samples) {
  double b = 0.0;
  for (double pi : p.probabilities()) b += 3.0 * std::sqrt(pi * (1.0 - pi) / static_cast<double>(samples));
  return 0.5 * b;
}

}  // namespace fc_test
