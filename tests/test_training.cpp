#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "flowception/oracles.hpp"
#include "flowception/training.hpp"

using namespace flowception;

namespace {

std::vector<double> ramp_video(std::size_t L, std::size_t D) {
  std::vector<double> v(L * D);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.01 * static_cast<double>(i);
  return v;
}

/// Brute-force count: for each visible frame, invisible data frames up to the next visible one.
std::vector<double> brute_counts(const TrainingSample<double>& s) {
  std::vector<double> k;
  for (std::size_t r = 0; r < s.visible(); ++r) {
    double c = 0;
    for (std::size_t j = s.source_index[r] + 1; j < s.delays.size(); ++j) {
      if (std::find(s.source_index.begin(), s.source_index.end(), j) != s.source_index.end()) break;
      ++c;
    }
    k.push_back(c);
  }
  return k;
}

}  // namespace

TEST(ExtendedTime, StartFramesAnchoredAndUnanchored) {
  const std::size_t L = 20, D = 2;
  const auto video = ramp_video(L, D);
  for (bool anchor : {true, false}) {
    TrainingSamplerOptions o;
    o.n_start = 4;
    o.anchor_endpoints = anchor;
    o.seed = 3;
    ExtendedTimeSampler sampler(LinearKappa{}, o);
    std::vector<int> hits(L, 0);
    for (std::uint64_t i = 0; i < 400; ++i) {
      auto s = sampler.sample<double>(video, D, i);
      std::size_t zero = 0;
      for (std::size_t j = 0; j < L; ++j) {
        if (s.delays[j] == 0.0) {
          ++zero;
          ++hits[j];
        }
      }
      EXPECT_EQ(zero, 4u);
      EXPECT_EQ(s.delays[0], 0.0);
      if (anchor) {
        EXPECT_EQ(s.delays[L - 1], 0.0);
      }
      EXPECT_DOUBLE_EQ(s.tau_max, *std::max_element(s.delays.begin(), s.delays.end()) + 1.0);
    }
    EXPECT_EQ(hits[0], 400);
    if (anchor) {
      EXPECT_EQ(hits[L - 1], 400);
    }
    // The other start frames are uniform over the rest: each inner frame ~ 400·k/(L−a) times.
    const double expected = anchor ? 400.0 * 2 / 18 : 400.0 * 3 / 19;
    for (std::size_t j = 1; j + 1 < L; ++j) EXPECT_NEAR(hits[j], expected, 5 * std::sqrt(expected)) << j;
  }
}

TEST(ExtendedTime, ShortVideoIsAllStartFrames) {
  TrainingSamplerOptions o;
  o.n_start = 3;
  ExtendedTimeSampler sampler(LinearKappa{}, o);
  for (std::size_t L : {1u, 2u, 3u}) {
    auto s = sampler.sample<double>(ramp_video(L, 1), 1, 5);
    for (double u : s.delays) EXPECT_EQ(u, 0.0);
    EXPECT_EQ(s.visible(), L);
  }
}

// With linear κ a non-start frame is visible at τ_g < 1 with probability κ(τ_g) = τ_g.
// Cubic: τ_g³. Empirical fraction per τ_g bin against the bin-averaged κ, 5-sigma binomial.
TEST(ExtendedTime, VisibleFractionFollowsKappa) {
  const std::size_t L = 30, D = 1;
  const auto video = ramp_video(L, D);
  auto check = [&](auto kappa) {
    TrainingSamplerOptions o;
    o.seed = 11;
    ExtendedTimeSampler sampler(kappa, o);
    const int bins = 5;
    std::vector<double> vis(bins, 0), tot(bins, 0), ksum(bins, 0);
    std::vector<int> nsamples(bins, 0);
    for (std::uint64_t i = 0; i < 6000; ++i) {
      auto s = sampler.template sample<double>(video, D, i);
      if (s.tau_global >= 1.0) continue;
      const int b = std::min(bins - 1, static_cast<int>(s.tau_global * bins));
      std::size_t visible_nonstart = 0, nonstart = 0;
      for (std::size_t j = 0; j < L; ++j) {
        if (s.delays[j] == 0.0) continue;
        ++nonstart;
        visible_nonstart += s.delays[j] <= s.tau_global;
      }
      vis[b] += static_cast<double>(visible_nonstart);
      tot[b] += static_cast<double>(nonstart);
      ksum[b] += kappa.kappa(s.tau_global) * static_cast<double>(nonstart);
    }
    for (int b = 0; b < bins; ++b) {
      ASSERT_GT(tot[b], 1000);
      const double p = ksum[b] / tot[b], phat = vis[b] / tot[b];
      // Frames within one sample are independent given τ_g; 5 sigma of the pooled proportion
      // plus the spread of κ within the bin is covered by comparing against the exact mean.
      EXPECT_NEAR(phat, p, 5 * std::sqrt(0.25 / tot[b]) + 0.01) << kappa.name() << " bin " << b;
    }
  };
  check(LinearKappa{});
  check(PolynomialKappa(3.0));
  check(CosineKappa{});
}

TEST(ExtendedTime, CountTargetsEqualBruteForceAndTimesFollowShift) {
  const std::size_t L = 25, D = 3;
  const auto video = ramp_video(L, D);
  TrainingSamplerOptions o;
  o.seed = 5;
  o.shift = TimeShift(3.0);
  o.tasks = TaskMixture{1, 1, 1, 1};
  ExtendedTimeSampler sampler(CosineKappa{}, o);
  for (std::uint64_t i = 0; i < 300; ++i) {
    auto s = sampler.sample<double>(video, D, i);
    EXPECT_EQ(s.counts, brute_counts(s));
    // Counts plus visible frames account for every frame after the first visible one.
    EXPECT_EQ(std::accumulate(s.counts.begin(), s.counts.end(), 0.0) + s.visible(), static_cast<double>(L));
    for (std::size_t r = 0; r < s.visible(); ++r) {
      const std::size_t i0 = s.source_index[r];
      if (r > 0) {
        EXPECT_LT(s.source_index[r - 1], i0);  // order kept
      }
      const double tau = s.tau_global - s.delays[i0];
      EXPECT_EQ(s.local_times[r], tau);
      if (is_context(s.kinds[r])) {
        EXPECT_EQ(s.times[r], 1.0);
        for (std::size_t e = 0; e < D; ++e) EXPECT_EQ(s.inputs[r * D + e], video[i0 * D + e]);
      } else {
        // The shift is applied exactly once: t = shift(clip(τ)).
        EXPECT_EQ(s.times[r], o.shift(std::clamp(tau, 0.0, 1.0)));
        // Noisy input X = t·x1 + (1 − t)·ε with target x1 − ε: X + (1 − t)·target = x1.
        for (std::size_t e = 0; e < D; ++e)
          EXPECT_NEAR(s.inputs[r * D + e] + (1 - s.times[r]) * s.targets[r * D + e], video[i0 * D + e], 1e-12);
      }
    }
  }
}

TEST(ExtendedTime, LossMasksPerTask) {
  const std::size_t L = 12, D = 1;
  const auto video = ramp_video(L, D);
  TrainingSamplerOptions o;
  o.seed = 9;
  o.interpolation_keyframes = 3;
  ExtendedTimeSampler sampler(LinearKappa{}, o);
  for (Task task : {Task::unconditional, Task::image_to_video, Task::interpolation, Task::continuation}) {
    for (std::uint64_t i = 0; i < 200; ++i) {
      auto s = sampler.sample<double>(video, D, i, kNoCondition, &task);
      ASSERT_EQ(s.task, task);
      std::size_t ctx = 0;
      for (auto k : s.data_kinds) ctx += is_context(k);
      switch (task) {
        case Task::unconditional: EXPECT_EQ(ctx, 0u); break;
        case Task::image_to_video:
          EXPECT_EQ(s.data_kinds[0], FrameKind::active_context);
          EXPECT_EQ(ctx, 1u);
          break;
        case Task::interpolation:
          EXPECT_EQ(s.data_kinds[0], FrameKind::active_context);
          EXPECT_EQ(s.data_kinds[L - 1], FrameKind::passive_context);
          EXPECT_EQ(ctx, 3u);
          for (std::size_t j = 0; j < L; ++j)  // only key frames are present at the start
            if (!is_context(s.data_kinds[j])) {
              EXPECT_GT(s.delays[j], 0.0);
            }
          break;
        case Task::continuation: {
          std::size_t j = 0;
          while (s.data_kinds[j] == FrameKind::passive_context) ++j;
          EXPECT_EQ(s.data_kinds[j], FrameKind::active_context);
          EXPECT_EQ(ctx, j + 1);
          for (std::size_t r = j + 1; r < L; ++r) EXPECT_EQ(s.data_kinds[r], FrameKind::generated);
          break;
        }
      }
      bool any = false;
      for (std::size_t r = 0; r < s.visible(); ++r) {
        const double tau = s.local_times[r];
        const FrameKind k = s.kinds[r];
        EXPECT_EQ(s.flow_mask[r], k == FrameKind::generated && tau >= 0 && tau < 1);
        const bool rate = (k == FrameKind::generated && tau < 1) ||
                          (k == FrameKind::active_context && s.tau_global < 1);
        EXPECT_EQ(s.rate_mask[r], rate);
        if (k == FrameKind::passive_context) {
          EXPECT_EQ(s.counts[r], 0.0);
        }
        any |= s.flow_mask[r] || s.rate_mask[r];
      }
      EXPECT_TRUE(any || s.tau_fallback);
      EXPECT_LT(s.tau_global, s.tau_max);
    }
  }
}

TEST(ExtendedTime, TaskMixtureProportions) {
  TrainingSamplerOptions o;
  o.tasks = TaskMixture{1, 2, 0, 1};
  o.seed = 1;
  ExtendedTimeSampler sampler(LinearKappa{}, o);
  std::vector<int> counts(4, 0);
  const int n = 4000;
  const auto video = ramp_video(10, 1);
  for (int i = 0; i < n; ++i) ++counts[static_cast<int>(sampler.sample<double>(video, 1, i).task)];
  EXPECT_EQ(counts[2], 0);
  for (int t : {0, 1, 3}) {
    const double p = t == 1 ? 0.5 : 0.25;
    EXPECT_NEAR(counts[t], n * p, 5 * std::sqrt(n * p * (1 - p)));
  }
}

TEST(ExtendedTime, TauDistributionsAndResampling) {
  const auto video = ramp_video(16, 1);
  TrainingSamplerOptions o;
  o.seed = 2;
  ExtendedTimeSampler uni(LinearKappa{}, o, UniformTwoTau{});
  std::size_t resampled = 0;
  for (std::uint64_t i = 0; i < 500; ++i) {
    auto s = uni.sample<double>(video, 1, i);
    EXPECT_GE(s.tau_global, 0.0);
    EXPECT_LT(s.tau_global, s.tau_max);  // draws past τ_max leave no loss and are redrawn
    resampled += s.tau_resamples;
  }
  EXPECT_GT(resampled, 0u);
  ExtendedTimeSampler logit(LinearKappa{}, o, LogitNormalTau(0.0, 1.0));
  double sum = 0;
  for (std::uint64_t i = 0; i < 2000; ++i) {
    auto s = logit.sample<double>(video, 1, i);
    EXPECT_GE(s.tau_global, 0.0);
    EXPECT_LT(s.tau_global, s.tau_max);
    sum += s.tau_global / s.tau_max;
  }
  EXPECT_NEAR(sum / 2000, 0.5, 0.02);  // sigmoid(N(0,1)) is symmetric about 1/2
  EXPECT_THROW(LogitNormalTau(0.0, 0.0), ConfigError);
  // Names: the whole of each number is read; trailing text is an error that quotes it.
  EXPECT_EQ(AnyTau::from_name("logit_normal:0.5,2").name(), "logit_normal");
  for (const char* bad : {"logit_normal:0,1x", "logit_normal:,1", "logit_normal:0", "logit_normalX", "logit_normal:0;1"}) {
    try {
      (void)AnyTau::from_name(bad);
      ADD_FAILURE() << "accepted tau '" << bad << "'";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
  // Insertion phase only: τ_g uniform on [0, 1) whatever τ_max (mean 1/2, sd of the mean 0.0065).
  ExtendedTimeSampler below(LinearKappa{}, o, UniformBelowOneTau{});
  sum = 0;
  for (std::uint64_t i = 0; i < 2000; ++i) {
    auto s = below.sample<double>(video, 1, i);
    EXPECT_GE(s.tau_global, 0.0);
    EXPECT_LT(s.tau_global, 1.0);
    sum += s.tau_global;
  }
  EXPECT_NEAR(sum / 2000, 0.5, 0.03);
}

TEST(ExtendedTime, ReproducibleBits) {
  const auto video = ramp_video(20, 4);
  TrainingSamplerOptions o;
  o.seed = 77;
  o.tasks = TaskMixture{1, 1, 1, 1};
  ExtendedTimeSampler a(PolynomialKappa(3.0), o), b(PolynomialKappa(3.0), o);
  for (std::uint64_t i = 0; i < 20; ++i) {
    auto x = a.sample<double>(video, 4, i), y = b.sample<double>(video, 4, i);
    EXPECT_EQ(x.inputs, y.inputs);
    EXPECT_EQ(x.delays, y.delays);
    EXPECT_EQ(x.tau_global, y.tau_global);
  }
  o.seed = 78;
  ExtendedTimeSampler c(PolynomialKappa(3.0), o);
  EXPECT_NE(a.sample<double>(video, 4, 0).delays, c.sample<double>(video, 4, 0).delays);
}

TEST(ExtendedTime, BadInputs) {
  TrainingSamplerOptions o;
  ExtendedTimeSampler sampler(LinearKappa{}, o);
  std::vector<double> empty;
  try {
    sampler.sample<double>(empty, 3, 0);
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("empty video"), std::string::npos);
  }
  std::vector<double> odd(7, 0.0);
  EXPECT_THROW(sampler.sample<double>(odd, 3, 0), ShapeError);
  std::vector<double> nan(6, 0.0);
  nan[4] = NAN;
  EXPECT_THROW(sampler.sample<double>(nan, 3, 0), ShapeError);
  EXPECT_THROW(sampler.sample<double>(ramp_video(3, 1), 0, 0), ShapeError);
  auto bad = [](TrainingSamplerOptions opt, const char* frag) {
    try {
      ExtendedTimeSampler s(LinearKappa{}, opt);
      ADD_FAILURE() << frag;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(frag), std::string::npos) << e.what();
    }
  };
  TrainingSamplerOptions x;
  x.n_start = 0;
  bad(x, "n_start must be >= 1");
  x.n_start = 1;
  bad(x, "anchor_endpoints needs n_start >= 2");
  x.n_start = 3;
  x.tasks = TaskMixture{0, 0, 0, 0};
  bad(x, "sum to zero");
  x.tasks = TaskMixture{1, -1, 0, 0};
  bad(x, "must be finite and >= 0");
  x.tasks = TaskMixture{};
  x.interpolation_keyframes = 1;
  bad(x, ">= 2 key frames");
}

TEST(Batch, PackKeepsOrderAndOffsets) {
  TrainingSamplerOptions o;
  o.seed = 4;
  ExtendedTimeSampler sampler(LinearKappa{}, o);
  std::vector<TrainingSample<double>> samples;
  for (std::size_t L : {5u, 17u, 9u}) samples.push_back(sampler.sample<double>(ramp_video(L, 2), 2, L, static_cast<std::int64_t>(L)));
  auto b = pack(samples);
  ASSERT_EQ(b.samples(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(b.offsets[i + 1] - b.offsets[i], samples[i].visible());
    EXPECT_EQ(b.conditions[i], static_cast<std::int64_t>(samples[i].delays.size()));
    for (std::size_t r = 0; r < samples[i].visible(); ++r) {
      EXPECT_EQ(b.times[b.offsets[i] + r], samples[i].times[r]);
      EXPECT_EQ(b.inputs[(b.offsets[i] + r) * 2 + 1], samples[i].inputs[r * 2 + 1]);
    }
  }
  samples[1].dim = 3;
  EXPECT_THROW(pack(samples), ShapeError);
  EXPECT_THROW(pack(std::vector<TrainingSample<double>>{}), ShapeError);
}

// ---- Rate calibration -------------------------------------------------------------------------

namespace {
struct ConstantRateModel {
  double log_rate = 0.0;
  void evaluate(const ModelInput<HostFrames<float>>& /*in*/, ModelOutput<HostFrames<float>>& out) const {
    for (auto& x : out.velocity.values) x = 0.0f;
    for (auto& l : out.log_rate) l = log_rate;
  }
};
}  // namespace

// The length oracle is the exact conditional expectation of the missing frames given (n, s):
// over 4000 samples its Σλ matches the true remaining count on average (5 standard errors,
// about 0.25 frames), and a model compared with itself agrees exactly. A constant rate c has
// the closed-form NLL c − k̄·log c.
TEST(RateCalibration, OracleIsCalibratedAndConstantRateHasClosedFormNll) {
  const auto P = LengthDistribution::uniform({15, 20, 25, 30});
  std::vector<std::vector<float>> videos;
  for (std::size_t i = 0; i < 4000; ++i) videos.emplace_back(P.lengths()[i % 4], 0.0f);
  TrainingSamplerOptions o;
  o.seed = 4;
  ExtendedTimeSampler<LinearKappa> sampler(LinearKappa{}, o);
  LengthOracle<LinearKappa> oracle(P, LinearKappa{}, 3, true);
  const auto bins = rate_calibration(oracle, oracle, sampler, std::span<const std::vector<float>>(videos), 1, 5);
  ASSERT_EQ(bins.size(), 5u);
  double diff = 0, n = 0;
  for (const auto& b : bins) {
    ASSERT_GT(b.samples, 200u);
    EXPECT_EQ(b.model_missing, b.reference_missing);
    EXPECT_EQ(b.model_nll, b.reference_nll);
    diff += static_cast<double>(b.samples) * (b.true_missing - b.reference_missing);
    n += static_cast<double>(b.samples);
  }
  EXPECT_LT(n, 4000.0);  // samples with τ_g >= 1 are skipped
  EXPECT_NEAR(diff / n, 0.0, 0.25);
  ConstantRateModel constant{std::log(2.0)};
  const auto c = rate_calibration(constant, oracle, sampler, std::span<const std::vector<float>>(videos), 1, 5);
  for (const auto& b : c) {
    const double frames = b.model_missing / 2.0;  // rate-active frames per sample
    const double kbar = b.true_missing / frames;
    EXPECT_NEAR(b.model_nll, 2.0 - kbar * std::log(2.0), 1e-9);
    // The oracle's likelihood beats a constant guess wherever the count varies.
    EXPECT_LT(b.reference_nll, b.model_nll);
  }
}
