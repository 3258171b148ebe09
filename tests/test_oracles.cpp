#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "flowception/oracles.hpp"
#include "flowception/random/stream.hpp"

using namespace flowception;

// E[x1 − x0 | x_t] against least squares on simulated (x_t, x1 − x0) pairs: for jointly Gaussian
// variables the conditional mean is linear, so the regression recovers it.
TEST(GaussianOracle, VelocityIsTheConditionalMean) {
  const double mu = 0.7, sigma = 0.4;
  GaussianContentOracle oracle(mu, sigma);
  random::Stream rng(1, 2);
  for (double t : {0.1, 0.5, 0.9}) {
    const int n = 200000;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < n; ++i) {
      const double x0 = rng.normal(), x1 = mu + sigma * rng.normal();
      const double xt = t * x1 + (1 - t) * x0, y = x1 - x0;
      sx += xt;
      sy += y;
      sxx += xt * xt;
      sxy += xt * y;
    }
    const double slope = (sxy / n - sx / n * sy / n) / (sxx / n - sx / n * sx / n);
    const double intercept = sy / n - slope * sx / n;
    // Oracle as a line in x: v(x) = a + b·x.
    const double a = oracle.velocity(0.0, t), b = oracle.velocity(1.0, t) - a;
    EXPECT_NEAR(b, slope, 0.01) << "t=" << t;
    EXPECT_NEAR(a, intercept, 0.01) << "t=" << t;
  }
  // Endpoints: at t = 0 the velocity is μ − x (E[x1] − x0); at t = 1 it is x (x1 − E[x0]).
  EXPECT_DOUBLE_EQ(oracle.velocity(0.3, 0.0), mu - 0.3);
  EXPECT_DOUBLE_EQ(oracle.velocity(0.3, 1.0), 0.3);
  EXPECT_THROW(GaussianContentOracle(0.0, 0.0), ConfigError);
  EXPECT_THROW(GaussianContentOracle(NAN, 1.0), ConfigError);
}

TEST(LengthDistribution, NormalisesAndValidates) {
  LengthDistribution p({20, 15, 20}, {1, 2, 1});
  EXPECT_EQ(p.lengths(), (std::vector<std::size_t>{15, 20}));
  EXPECT_DOUBLE_EQ(p.probability(15), 0.5);
  EXPECT_DOUBLE_EQ(p.mean(), 17.5);
  EXPECT_THROW(LengthDistribution({}, {}), ConfigError);
  EXPECT_THROW(LengthDistribution({5}, {1, 2}), ConfigError);
  EXPECT_THROW(LengthDistribution({0}, {1}), ConfigError);
  EXPECT_THROW(LengthDistribution({5}, {-1}), ConfigError);
  EXPECT_THROW(LengthDistribution({5}, {0}), ConfigError);
  std::map<std::size_t, std::size_t> h{{15, 1}, {20, 1}};
  EXPECT_DOUBLE_EQ(total_variation(p, h), 0.0);
  h = {{30, 4}};
  EXPECT_DOUBLE_EQ(total_variation(p, h), 1.0);
}

TEST(LengthOracle, PosteriorLimits) {
  auto P = LengthDistribution::uniform({15, 20, 25, 30});
  LengthOracle<LinearKappa> oracle(P, LinearKappa{}, 3, true);
  // s = 0 with only the start frames: the prior.
  for (double p : oracle.posterior(3, 0.0)) EXPECT_DOUBLE_EQ(p, 0.25);
  EXPECT_NEAR(oracle.expected_missing_per_gap(3, 0.0), (22.5 - 3) / 2, 1e-12);
  // s = 1: everything inserted, so L = n.
  EXPECT_EQ(oracle.posterior(20, 1.0), (std::vector<double>{0, 1, 0, 0}));
  EXPECT_EQ(oracle.expected_missing_per_gap(20, 1.0), 0.0);
  // Impossible counts give zero.
  EXPECT_EQ(oracle.expected_missing_per_gap(31, 0.5), 0.0);
  EXPECT_EQ(oracle.expected_missing_per_gap(5, 0.0), 0.0);
  EXPECT_THROW(LengthOracle<LinearKappa>(LengthDistribution::uniform({2, 5}), LinearKappa{}, 3, true), ConfigError);
  EXPECT_THROW(LengthOracle<LinearKappa>(P, LinearKappa{}, 1, true), ConfigError);
}

// The oracle's per-gap expectation against a simulation of the forward process: draw L, the
// start frames and κ delays; at global time s keep the draws with n visible frames; average
// the missing frames per gap.
TEST(LengthOracle, MatchesForwardSimulation) {
  auto P = LengthDistribution({6, 9, 14}, {0.5, 0.3, 0.2});
  for (bool anchored : {true, false}) {
    PolynomialKappa kappa(2.0);
    const std::size_t n_start = 2;
    LengthOracle<PolynomialKappa> oracle(P, kappa, n_start, anchored);
    random::Stream rng(5, anchored ? 1 : 2);
    const double s = 0.55;
    std::map<std::size_t, std::pair<double, double>> acc;  // n → (sum of per-gap missing, count)
    const int draws = 300000;
    for (int i = 0; i < draws; ++i) {
      double x = rng.uniform();
      std::size_t L = 14;
      for (std::size_t j = 0; j < 3; ++j) {
        if (x < P.probabilities()[j]) {
          L = P.lengths()[j];
          break;
        }
        x -= P.probabilities()[j];
      }
      // Non-start frames are visible at s with probability κ(s), independently.
      std::size_t n = n_start;
      for (std::size_t f = n_start; f < L; ++f) n += rng.uniform() < kappa.kappa(s) ? 1 : 0;
      const double gaps = anchored ? static_cast<double>(n - 1) : static_cast<double>(n);
      auto& a = acc[n];
      a.first += static_cast<double>(L - n) / gaps;
      a.second += 1;
    }
    for (auto [n, a] : acc) {
      if (a.second < 3000) continue;
      const double est = a.first / a.second;
      EXPECT_NEAR(oracle.expected_missing_per_gap(n, s), est, 0.05 * std::max(1.0, est))
          << "anchored=" << anchored << " n=" << n << " draws=" << a.second;
    }
  }
}

TEST(LengthOracle, AsModelReadsClockThroughShift) {
  auto P = LengthDistribution::uniform({10, 20});
  TimeShift shift(3.0);
  LengthOracle<LinearKappa> plain(P, LinearKappa{}, 3, true);
  LengthOracle<LinearKappa> shifted(P, LinearKappa{}, 3, true, shift);
  HostFrames<double> x{std::vector<double>(5, 0.0), 1};
  const double s = 0.4;
  std::vector<double> t_plain(5, s), t_shift(5, shift(s));
  std::vector<FrameKind> kinds(5, FrameKind::generated);
  std::vector<std::size_t> offsets{0, 5};
  std::vector<std::int64_t> cond{kNoCondition};
  std::vector<std::uint8_t> drop{0};
  ModelOutput<HostFrames<double>> a, b;
  for (auto* o : {&a, &b}) {
    o->velocity = HostFrames<double>{std::vector<double>(5, 0.0), 1};
    o->log_rate.assign(5, 0.0);
  }
  plain.evaluate(ModelInput<HostFrames<double>>{x, t_plain, kinds, offsets, cond, drop}, a);
  shifted.evaluate(ModelInput<HostFrames<double>>{x, t_shift, kinds, offsets, cond, drop}, b);
  for (int f = 0; f < 4; ++f) {
    EXPECT_NEAR(a.log_rate[f], std::log(plain.expected_missing_per_gap(5, s)), 1e-12);
    EXPECT_NEAR(a.log_rate[f], b.log_rate[f], 1e-9);
  }
  EXPECT_EQ(a.log_rate[4], kZeroRateLogRate);  // anchored: the last frame's gap is empty
}
