#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <vector>
#include <string>
#include <type_traits>

#include "support/expect_error.hpp"
#include "support/test_models.hpp"

using namespace flowception;
using fc_test::length_histogram;
using fc_test::TimeFunctionModel;
using fc_test::tv_noise_bound;

namespace {

SamplerOptions options(TimeGrid grid, std::size_t dim = 1, std::uint64_t seed = 1) {
  SamplerOptions o{std::move(grid)};
  o.frame_dim = dim;
  o.seed = seed;
  return o;
}

template <class T = float>
std::vector<Prompt<T>> unconditional(std::size_t videos, std::size_t n_start) {
  return std::vector<Prompt<T>>(videos, Prompt<T>::unconditional(n_start));
}

template <class Fn>
void expect_error_containing(Fn fn, const char* fragment) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one containing '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

}  // namespace

// ---- Length distribution against P(L) with the exact length oracle -------------------------

struct LengthCase {
  const char* kappa;
  bool anchored;
};

class LengthConvergence : public ::testing::TestWithParam<LengthCase> {};

template <class Kappa>
void check_length_convergence(Kappa kappa, bool anchored) {
  const auto P = LengthDistribution::uniform({15, 20, 25, 30});
  LengthOracle<Kappa> oracle(P, kappa, 3, anchored);
  const std::size_t M = 3000;
  auto run = [&](std::size_t N) {
    auto r = sample(oracle, kappa, Euler{}, options(TimeGrid::end_dense(N, 3.0), 1, 17), unconditional(M, 3));
    double mean = 0;
    for (const auto& v : r.videos) mean += static_cast<double>(v.length());
    return std::pair{total_variation(P, length_histogram(r)), mean / static_cast<double>(M)};
  };
  const auto [tv_coarse, mean_coarse] = run(8);
  const auto [tv_fine, mean_fine] = run(200);
  // Measured discretisation bias at N = 200 is <= 0.025 for these κ (oracle_lengths); the
  // sampling noise of a TV over 4 bins with M draws is bounded by tv_noise_bound (3 sigma).
  const double noise = tv_noise_bound(P, M);
  EXPECT_LT(tv_fine, 0.03 + noise) << kappa.name();
  EXPECT_GT(tv_coarse, tv_fine + 0.05) << kappa.name() << ": TV must fall as N grows";
  // Mean length: 5 sd of the sample mean (sd(L) = 5.59) plus the same bias allowance.
  EXPECT_NEAR(mean_fine, P.mean(), 0.3 + 5 * 5.59 / std::sqrt(static_cast<double>(M))) << kappa.name();
  (void)mean_coarse;
}

TEST_P(LengthConvergence, ConvergesToP) {
  const auto c = GetParam();
  const std::string k = c.kappa;
  if (k == "linear")
    check_length_convergence(LinearKappa{}, c.anchored);
  else if (k == "cubic")
    check_length_convergence(PolynomialKappa(3.0), c.anchored);
  else
    check_length_convergence(CosineKappa{}, c.anchored);
}

INSTANTIATE_TEST_SUITE_P(KappaAndAnchoring, LengthConvergence,
                         ::testing::Values(LengthCase{"linear", true}, LengthCase{"linear", false},
                                           LengthCase{"cubic", true}, LengthCase{"cubic", false},
                                           LengthCase{"cosine", true}, LengthCase{"cosine", false}),
                         [](const ::testing::TestParamInfo<LengthCase>& info) {
                           return std::string(info.param.kappa) + (info.param.anchored ? "_anchored" : "_unanchored");
                         });

// The reference figure of the issue: uniform grid, linear κ, anchored, Poisson: TV ≈ 0.21 at
// N = 100 and smaller at N = 400; an end-dense grid is below 0.05 at N = 100.
TEST(LengthOracleSampling, UniformGridReferenceFigures) {
  const auto P = LengthDistribution::uniform({15, 20, 25, 30});
  LengthOracle<LinearKappa> oracle(P, LinearKappa{}, 3, true);
  const std::size_t M = 3000;
  const double noise = tv_noise_bound(P, M);
  auto tv = [&](TimeGrid g) {
    return total_variation(P, length_histogram(sample(oracle, LinearKappa{}, Euler{}, options(std::move(g), 1, 3),
                                                      unconditional(M, 3))));
  };
  const double u100 = tv(TimeGrid::uniform(100));
  EXPECT_NEAR(u100, 0.21, 0.02 + noise);
  EXPECT_LT(tv(TimeGrid::end_dense(100, 3.0)), 0.05);
}

// ---- Content: the Gaussian oracle reproduces N(μ, σ²) in every frame ------------------------

TEST(GaussianOracleSampling, ReproducesMeanAndVarianceIncludingLateFrames) {
  const double mu = 0.7, sigma = 0.5;
  const std::size_t D = 16, N = 40;
  const auto P = LengthDistribution::uniform({8, 12});
  LengthOracle<LinearKappa, GaussianContentOracle> model(P, LinearKappa{}, 2, true, TimeShift{},
                                                          GaussianContentOracle(mu, sigma));
  auto o = options(TimeGrid::uniform(N), D, 5);
  auto r = sample(model, LinearKappa{}, RungeKutta4{}, o, unconditional<double>(300, 2));
  double sum = 0, sum2 = 0, lsum = 0, lsum2 = 0;
  std::size_t n = 0, late = 0;
  for (const auto& v : r.videos) {
    for (std::size_t f = 0; f < v.length(); ++f) {
      const bool is_late = v.insertion_step[f] > N / 2;
      for (std::size_t e = 0; e < D; ++e) {
        const double x = v.frames[f * D + e];
        sum += x;
        sum2 += x * x;
        ++n;
        if (is_late) {
          lsum += x;
          lsum2 += x * x;
          ++late;
        }
      }
    }
  }
  ASSERT_GT(late, 2000u);
  auto check = [&](double s, double s2, std::size_t k, const char* what) {
    const double m = s / k, var = s2 / k - m * m;
    // Elements are independent N(μ, σ²) up to the solver's error (RK4, with the default Euler
    // step on each frame's last step: ~1e-3 here): 5 sigma of mean and variance.
    EXPECT_NEAR(m, mu, 5 * sigma / std::sqrt(k)) << what;
    EXPECT_NEAR(var, sigma * sigma, 5 * sigma * sigma * std::sqrt(2.0 / k)) << what;
  };
  check(sum, sum2, n, "all frames");
  check(lsum, lsum2, late, "frames inserted after s = 1/2");
}

// ---- The final step: no stage at t = 1 ---------------------------------------------------------

// Data N(μ, σ²) with σ = 1e-3: nearly a point mass, whose exact velocity (μ − x)/(1 − t) is
// singular at t = 1; the oracle's velocity swings from about (μ − x)/(1 − t) to v(x, 1) = x over
// the last 1e-3 of time, which a trained model never sees (the velocity loss never trains t = 1).
// With the default Euler last step every frame lands within a few σ of μ; the plain Heun and RK4
// steps evaluate the model at t = 1 and miss by orders of magnitude more.
TEST(FinalStep, EulerLastStepOnNearSingularOracle) {
  const double mu = 0.4, sigma = 1e-3;
  const auto P = LengthDistribution::uniform({4});
  LengthOracle<LinearKappa, GaussianContentOracle> model(P, LinearKappa{}, 2, true, TimeShift{},
                                                          GaussianContentOracle(mu, sigma));
  auto worst_error = [&](auto stepper) {
    auto r = sample(model, LinearKappa{}, stepper, options(TimeGrid::uniform(20), 8, 3), unconditional<double>(20, 2));
    double worst = 0;
    for (const auto& v : r.videos)
      for (double x : v.frames) worst = std::max(worst, std::fabs(x - mu));
    return worst;
  };
  const double heun = worst_error(Heun{}), heun_full = worst_error(Heun{FinalStep::full});
  const double rk4 = worst_error(RungeKutta4{}), rk4_full = worst_error(RungeKutta4{FinalStep::full});
  const double euler = worst_error(Euler{});
  EXPECT_LT(heun, 6 * sigma) << heun;
  EXPECT_LT(rk4, 6 * sigma) << rk4;
  EXPECT_LT(euler, 6 * sigma) << euler;
  EXPECT_GT(heun_full, 10 * heun) << heun_full << " vs " << heun;
  EXPECT_GT(rk4_full, 10 * rk4) << rk4_full << " vs " << rk4;
}

// ---- Per-frame clocks: every frame integrates exactly its own [0, 1] -------------------------

template <class S>
class SamplerSolverTest : public ::testing::Test {};
using Steppers = ::testing::Types<Euler, Midpoint, Heun, RungeKutta4>;
TYPED_TEST_SUITE(SamplerSolverTest, Steppers);

// v = 3t²: every generated frame, inserted whenever, moves by ∫0^1 3t² dt = 1 (RK4 exactly; the
// others within their quadrature error on the grid's largest step), and no stage is ever
// evaluated at t > 1 (the test model fails the test otherwise). With the method's own last step
// (FinalStep::full) each solver keeps its accuracy; with the default Euler last step every
// solver is within Euler's bound (3h/2 on the largest model-time step h).
template <class S>
S with_final_step(FinalStep fs) {
  if constexpr (S::stages == 1) return S{};
  else return S{fs};
}

TYPED_TEST(SamplerSolverTest, EveryFrameMovesByExactlyOne) {
  for (FinalStep fs : {FinalStep::full, FinalStep::euler}) {
  SCOPED_TRACE(fs == FinalStep::full ? "full last step" : "Euler last step");
  TimeFunctionModel<double> model;
  model.f = [](double t) { return 3 * t * t; };
  model.log_rate_generated = std::log(0.8);
  const std::size_t N = 32;
  auto o = options(TimeGrid::end_dense(N, 2.0), 3, 9);
  o.shift = TimeShift(2.0);
  auto r = sample(model, LinearKappa{}, with_final_step<TypeParam>(fs), o, unconditional<double>(4, 2));
  double hmax = 0;
  for (std::size_t j = 0; j < N; ++j) hmax = std::max(hmax, o.grid[j + 1] - o.grid[j]);
  // In model time the largest step is at most 2·hmax for shift 2 (dt/du = s/(u + s(1−u))² <= s).
  const double h = 2 * hmax;
  const double tol = fs == FinalStep::euler || TypeParam::order == 1 ? 1.5 * h
                     : TypeParam::order == 4                          ? 1e-12
                                                                      : 0.5 * h * h + 1e-12;
  std::size_t late = 0;
  for (const auto& v : r.videos) {
    ASSERT_GT(v.length(), 2u);
    for (std::size_t f = 0; f < v.length(); ++f) {
      late += v.insertion_step[f] > 0;
      for (std::size_t e = 0; e < 3; ++e) {
        const double x0 = random::normal_at(o.seed, v.frame_ids[f], e);
        EXPECT_NEAR(v.frames[f * 3 + e] - x0, 1.0, tol) << "frame " << f << " inserted at " << v.insertion_step[f];
      }
    }
  }
  EXPECT_GT(late, 0u);
  EXPECT_LE(model.max_time_seen, 1.0);
  EXPECT_EQ(model.max_time_seen, 1.0);
  }
}

TEST(Sampler, ShiftIsAppliedOnceToModelTimes) {
  struct Recorder {
    std::vector<double> first_frame_times;
    void evaluate(const ModelInput<HostFrames<double>>& in, ModelOutput<HostFrames<double>>& out) {
      first_frame_times.push_back(in.times[0]);
      for (auto& x : out.velocity.values) x = 0;
      for (auto& l : out.log_rate) l = kZeroRateLogRate;
    }
  } model;
  auto o = options(TimeGrid::uniform(10));
  o.shift = TimeShift(3.0);
  auto r = sample(model, LinearKappa{}, Euler{}, o, unconditional<double>(1, 2));
  ASSERT_EQ(model.first_frame_times.size(), 10u);
  for (std::size_t m = 0; m < 10; ++m) EXPECT_DOUBLE_EQ(model.first_frame_times[m], o.shift(o.grid[m])) << m;
  EXPECT_EQ(r.steps, 10u);  // no insertions: the start frames finish at s = 1
}

// ---- Packed batches ---------------------------------------------------------------------------

TEST(Sampler, OneModelCallPerStageOnThePackedBatch) {
  TimeFunctionModel<float> model;
  model.log_rate_generated = std::log(0.5);
  auto o = options(TimeGrid::uniform(12), 2);
  auto r = sample(model, LinearKappa{}, RungeKutta4{}, o, unconditional(5, 2));
  EXPECT_EQ(r.model_calls, 4 * r.steps);
  EXPECT_EQ(model.calls, r.model_calls);
  EXPECT_EQ(model.batch_videos.front(), 5u);
  EXPECT_EQ(model.batch_frames.front(), 10u);
  for (const auto& v : r.videos) {
    EXPECT_EQ(v.nfe, 4 * v.trace.size());
    EXPECT_EQ(v.trace.back().nfe, v.nfe);
  }
}

TEST(Sampler, SliceOfBatchWithOffsetReproducesBits) {
  const auto P = LengthDistribution::uniform({6, 9});
  LengthOracle<LinearKappa, GaussianContentOracle> model(P, LinearKappa{}, 2, true, TimeShift{},
                                                          GaussianContentOracle(0.2, 0.9));
  auto o = options(TimeGrid::uniform(20), 4, 33);
  auto all = sample(model, LinearKappa{}, Heun{}, o, unconditional(4, 2));
  o.video_index_offset = 2;
  auto one = sample(model, LinearKappa{}, Heun{}, o, unconditional(1, 2));
  EXPECT_EQ(one.videos[0].frames, all.videos[2].frames);
  EXPECT_EQ(one.videos[0].frame_ids, all.videos[2].frame_ids);
}

// ---- Reproducibility and noise independence -------------------------------------------------

TEST(Sampler, SameSeedSameBitsOtherSeedOtherBits) {
  const auto P = LengthDistribution::uniform({5, 11});
  LengthOracle<CosineKappa, GaussianContentOracle> model(P, CosineKappa{}, 2, false, TimeShift{},
                                                          GaussianContentOracle(0.0, 2.0));
  auto run = [&](std::uint64_t seed) {
    return sample(model, CosineKappa{}, Midpoint{}, options(TimeGrid::uniform(16), 3, seed), unconditional(6, 2));
  };
  auto a = run(4), b = run(4), c = run(5);
  bool any_diff = false;
  for (std::size_t v = 0; v < 6; ++v) {
    EXPECT_EQ(a.videos[v].frames, b.videos[v].frames);
    EXPECT_EQ(a.videos[v].insertion_step, b.videos[v].insertion_step);
    any_diff |= a.videos[v].frames != c.videos[v].frames;
  }
  EXPECT_TRUE(any_diff);
}

// A frame's noise depends only on its identity: with zero velocity the final frames are their
// initial noise, and every frame equals normal_at(seed, id, ·) whatever else was inserted.
TEST(Sampler, InsertingFramesLeavesOtherFramesNoiseUnchanged) {
  auto run = [](double log_rate) {
    TimeFunctionModel<double> model;
    model.log_rate_generated = log_rate;
    return sample(model, LinearKappa{}, Euler{}, options(TimeGrid::uniform(10), 5, 8), unconditional<double>(3, 2));
  };
  auto few = run(std::log(0.5)), many = run(std::log(3.0));
  std::map<std::uint64_t, std::vector<double>> by_id;
  std::size_t shared = 0, total_few = 0, total_many = 0;
  for (const auto& r : {&few, &many}) {
    for (const auto& v : r->videos) {
      for (std::size_t f = 0; f < v.length(); ++f) {
        std::vector<double> x(v.frames.begin() + f * 5, v.frames.begin() + (f + 1) * 5);
        for (std::size_t e = 0; e < 5; ++e) EXPECT_EQ(x[e], random::normal_at(8, v.frame_ids[f], e));
        auto [it, inserted] = by_id.emplace(v.frame_ids[f], x);
        if (!inserted) {
          ++shared;
          EXPECT_EQ(it->second, x);
        }
        (r == &few ? total_few : total_many) += 1;
      }
    }
  }
  EXPECT_LT(total_few, total_many);
  EXPECT_GE(shared, 6u);  // the start frames at least
}

// ---- Context kinds: I2V, interpolation, continuation ------------------------------------------

TEST(Sampler, ImageToVideoKeepsTheImageBitIdentical) {
  TimeFunctionModel<float> model;
  model.f = [](double t) { return 1.0 - t; };
  model.log_rate_generated = std::log(1.5);
  model.log_rate_active = std::log(1.5);
  std::vector<float> image{0.125f, -3.5f, 7.0f};
  auto r = sample(model, LinearKappa{}, Heun{}, options(TimeGrid::uniform(16), 3),
                  std::vector<Prompt<float>>{Prompt<float>::image_to_video(image, 3)});
  const auto& v = r.videos[0];
  EXPECT_EQ(v.kinds[0], FrameKind::active_context);
  EXPECT_EQ(std::vector<float>(v.frames.begin(), v.frames.begin() + 3), image);
  for (std::size_t f = 1; f < v.length(); ++f) EXPECT_EQ(v.kinds[f], FrameKind::generated);
  EXPECT_GT(v.length(), 3u);
}

TEST(Sampler, InterpolationInsertsOnlyBetweenKeysAndKeepsThem) {
  TimeFunctionModel<float> model;
  model.f = [](double) { return 0.3; };
  model.log_rate_generated = std::log(0.7);
  model.log_rate_active = std::log(2.0);
  model.log_rate_passive = std::log(50.0);  // must be ignored: passive frames receive nothing
  std::vector<std::vector<float>> keys{{1.f, 1.f}, {2.f, 2.f}, {3.f, 3.f}};
  auto r = sample(model, LinearKappa{}, Euler{}, options(TimeGrid::uniform(20), 2, 3),
                  std::vector<Prompt<float>>(8, Prompt<float>::interpolation(keys)));
  for (const auto& v : r.videos) {
    std::vector<std::size_t> key_pos;
    for (std::size_t f = 0; f < v.length(); ++f)
      if (is_context(v.kinds[f])) key_pos.push_back(f);
    ASSERT_EQ(key_pos.size(), 3u);
    EXPECT_EQ(key_pos.front(), 0u);
    EXPECT_EQ(key_pos.back(), v.length() - 1);  // nothing after the passive last key
    EXPECT_EQ(v.kinds.back(), FrameKind::passive_context);
    for (std::size_t k = 0; k < 3; ++k)
      for (std::size_t e = 0; e < 2; ++e) EXPECT_EQ(v.frames[key_pos[k] * 2 + e], keys[k][e]);
    EXPECT_GT(v.length(), 3u);
  }
}

TEST(Sampler, ContinuationGrowsOnlyAfterTheActiveFrame) {
  TimeFunctionModel<float> model;
  model.log_rate_generated = std::log(0.5);
  model.log_rate_active = std::log(3.0);
  model.log_rate_passive = std::log(30.0);
  std::vector<std::vector<float>> given{{1.f}, {2.f}, {3.f}};
  auto r = sample(model, LinearKappa{}, Euler{}, options(TimeGrid::uniform(20)),
                  std::vector<Prompt<float>>(5, Prompt<float>::continuation(given)));
  for (const auto& v : r.videos) {
    EXPECT_EQ(v.kinds[0], FrameKind::passive_context);
    EXPECT_EQ(v.kinds[1], FrameKind::passive_context);
    EXPECT_EQ(v.kinds[2], FrameKind::active_context);
    EXPECT_EQ(v.frames[0], 1.f);
    EXPECT_EQ(v.frames[1], 2.f);
    EXPECT_EQ(v.frames[2], 3.f);
    EXPECT_GT(v.length(), 3u);
    for (std::size_t f = 3; f < v.length(); ++f) EXPECT_EQ(v.kinds[f], FrameKind::generated);
  }
}

// ---- Jump modes, insertion rules, caps, guidance ------------------------------------------------

TEST(Sampler, BernoulliInsertsAtMostOnePerGapPerStep) {
  TimeFunctionModel<float> model;
  model.log_rate_generated = std::log(4.0);
  auto o = options(TimeGrid::uniform(6));
  o.jump = JumpMode::bernoulli;
  auto r = sample(model, LinearKappa{}, Euler{}, o, unconditional(20, 2));
  for (const auto& v : r.videos) {
    std::size_t n = 2;
    for (const auto& t : v.trace) {
      EXPECT_LE(t.inserted, n);
      n = t.length;
    }
  }
  // Poisson with the same rates inserts more than one in some gap at some step.
  o.jump = JumpMode::poisson;
  auto p = sample(model, LinearKappa{}, Euler{}, o, unconditional(20, 2));
  bool more = false;
  for (const auto& v : p.videos) {
    std::size_t n = 2;
    for (const auto& t : v.trace) {
      more |= t.inserted > n;
      n = t.length;
    }
  }
  EXPECT_TRUE(more);
}

// Binomial jumps: with λ a whole number k, a gap gets at most k frames in a step, and exactly k
// when q = 1 (one-step grid); Poisson with the same rate gets more than k at times. With λ = 2.5
// the mean per gap and step is λ·q (5 sigma over 4000 gaps of a one-step grid).
TEST(Sampler, BinomialJumpsNeverExceedAWholeRate) {
  TimeFunctionModel<float> model;
  model.log_rate_generated = std::log(3.0);
  auto o = options(TimeGrid::uniform(1));  // q = 1 in the only insertion step
  o.max_frames = 1000;
  o.anchor_endpoints = false;
  o.jump = JumpMode::binomial;
  auto r = sample(model, LinearKappa{}, Euler{}, o, unconditional(200, 2));
  for (const auto& v : r.videos) EXPECT_EQ(v.length(), 2u + 2u * 3u);  // both gaps get exactly 3
  o.jump = JumpMode::poisson;
  auto p = sample(model, LinearKappa{}, Euler{}, o, unconditional(200, 2));
  bool other = false;
  for (const auto& v : p.videos) other |= v.length() != 8u;
  EXPECT_TRUE(other);
  // Mean λ·q for a fractional rate: 4000 gaps, λ = 2.5, q = 1: Binomial(3, 5/6), variance 5/12.
  model.log_rate_generated = std::log(2.5);
  o.jump = JumpMode::binomial;
  auto m = sample(model, LinearKappa{}, Euler{}, o, unconditional(2000, 2));
  double inserted = 0;
  for (const auto& v : m.videos) {
    inserted += static_cast<double>(v.length() - 2);
    EXPECT_LE(v.length(), 2u + 2u * 3u);
  }
  EXPECT_NEAR(inserted / 4000.0, 2.5, 5.0 * std::sqrt(5.0 / 12.0 / 4000.0));
}

TEST(Sampler, PrescribedRulesReachTheTargetLength) {
  TimeFunctionModel<float> model;
  for (auto rule : {InsertionRule::random_gap, InsertionRule::hierarchical, InsertionRule::left_to_right}) {
    auto o = options(TimeGrid::uniform(30));
    o.rule = rule;
    o.target_length = 17;
    auto r = sample(model, CosineKappa{}, Euler{}, o, unconditional(10, 3));
    for (const auto& v : r.videos) {
      EXPECT_EQ(v.length(), 17u);
      if (rule == InsertionRule::left_to_right) {
        // Anchored start frames sit at 0, 1 and 16; every new frame is appended after the last
        // new one, so insertion steps never decrease between the second and the last frame.
        EXPECT_EQ(v.insertion_step[16], 0u);
        for (std::size_t f = 3; f < 16; ++f) EXPECT_GE(v.insertion_step[f], v.insertion_step[f - 1]);
      }
    }
  }
  // Hierarchical from 2 anchored frames to 9: the first new frame takes the middle slot (4).
  auto o = options(TimeGrid::uniform(200));
  o.rule = InsertionRule::hierarchical;
  o.target_length = 9;
  auto r = sample(model, LinearKappa{}, Euler{}, o, unconditional(10, 2));
  for (const auto& v : r.videos) {
    ASSERT_EQ(v.length(), 9u);
    const auto first = *std::min_element(v.insertion_step.begin() + 1, v.insertion_step.end() - 1);
    EXPECT_EQ(v.insertion_step[4], first);
  }
}

TEST(Sampler, CapErrorAndTruncatePolicies) {
  TimeFunctionModel<float> model;
  model.log_rate_generated = std::log(20.0);
  auto o = options(TimeGrid::uniform(8));
  o.max_frames = 12;
  expect_error_containing([&] { sample(model, LinearKappa{}, Euler{}, o, unconditional(2, 2)); },
                          "max_frames exceeded");
  o.cap_policy = CapPolicy::truncate;
  auto r = sample(model, LinearKappa{}, Euler{}, o, unconditional(3, 2));
  for (const auto& v : r.videos) {
    EXPECT_EQ(v.length(), 12u);
    EXPECT_GT(v.refused_insertions, 0u);
    std::size_t refused = 0;
    for (const auto& t : v.trace) refused += t.refused;
    EXPECT_EQ(refused, v.refused_insertions);
  }
}

TEST(Sampler, GuidanceCombinesConditionalAndUnconditional) {
  // v_c = 2, v_u = −1 and ℓ_c = log 3, ℓ_u = log 1: with w = 1.5 every frame moves by
  // 1.5·2 − 0.5·(−1) = 3.5 and the rates are exp(1.5·log 3) = 3^1.5.
  struct Model {
    std::size_t calls = 0;
    void evaluate(const ModelInput<HostFrames<double>>& in, ModelOutput<HostFrames<double>>& out) {
      ++calls;
      EXPECT_EQ(in.videos() % 2, 0u);
      const std::size_t half = in.videos() / 2;
      for (std::size_t v = 0; v < in.videos(); ++v) {
        EXPECT_EQ(in.drop_condition[v], v >= half ? 1 : 0);
        EXPECT_EQ(in.conditions[v], 7);
        for (std::size_t f = in.offsets[v]; f < in.offsets[v + 1]; ++f) {
          for (auto& x : out.velocity.frame(f)) x = in.drop_condition[v] ? -1.0 : 2.0;
          out.log_rate[f] = in.drop_condition[v] ? 0.0 : std::log(3.0);
        }
      }
    }
  } model;
  auto o = options(TimeGrid::uniform(10), 2, 4);
  o.velocity_guidance = 1.5;
  o.insertion_guidance = 1.5;
  auto r = sample(model, LinearKappa{}, Euler{}, o,
                  std::vector<Prompt<double>>{Prompt<double>::unconditional(2, 7), Prompt<double>::unconditional(2, 7)});
  EXPECT_EQ(model.calls, r.model_calls);
  for (const auto& v : r.videos) {
    for (std::size_t f = 0; f < v.length(); ++f)
      for (std::size_t e = 0; e < 2; ++e)
        EXPECT_NEAR(v.frames[f * 2 + e] - random::normal_at(4, v.frame_ids[f], e), 3.5, 1e-12);
    EXPECT_NEAR(v.trace[0].expected_final_length, 2 + 2 * std::pow(3.0, 1.5), 1e-9);
  }
}

TEST(Sampler, SteppingObjectObserverAndTrace) {
  TimeFunctionModel<float> model;
  model.log_rate_generated = std::log(1.0);
  auto o = options(TimeGrid::uniform(10));
  CoupledSampler sampler(model, LinearKappa{}, Midpoint{}, o, unconditional(3, 2));
  std::size_t reports = 0, last_calls = 0;
  auto observer = [&](const StepReport& r) {
    EXPECT_EQ(r.step, reports);
    EXPECT_EQ(r.insertion_phase, r.step < 10);
    EXPECT_GT(r.model_calls, last_calls);
    last_calls = r.model_calls;
    ++reports;
  };
  EXPECT_DOUBLE_EQ(sampler.clock(), 0.0);
  while (!sampler.done()) sampler.step(observer);
  EXPECT_THROW(sampler.step(), ConfigError);
  const auto& res = sampler.result();
  EXPECT_EQ(reports, res.steps);
  EXPECT_LE(res.steps, 20u);
  for (const auto& v : res.videos) {
    std::size_t n = 2;
    for (const auto& t : v.trace) {
      EXPECT_EQ(t.length, n + t.inserted);
      n = t.length;
    }
    EXPECT_EQ(n, v.length());
    // The last frame to appear finishes exactly N steps later.
    const std::size_t latest = *std::max_element(v.insertion_step.begin(), v.insertion_step.end());
    EXPECT_EQ(v.trace.size(), std::max<std::size_t>(10, 10 + latest));
  }
  // init() restarts from the prompts and reproduces the run, reports included (the count of
  // finished videos starts again from 0).
  auto first = res.videos;
  std::vector<std::size_t> finished_first, finished_again;
  sampler.init();
  while (!sampler.done()) sampler.step([&](const StepReport& r) { finished_again.push_back(r.finished_videos); });
  for (std::size_t i = 0; i < first.size(); ++i) EXPECT_EQ(sampler.result().videos[i].frames, first[i].frames);
  sampler.init();
  while (!sampler.done()) sampler.step([&](const StepReport& r) { finished_first.push_back(r.finished_videos); });
  EXPECT_EQ(finished_again, finished_first);
  ASSERT_FALSE(finished_again.empty());
  EXPECT_EQ(finished_again.back(), first.size());
}

// ---- Bad input --------------------------------------------------------------------------------

TEST(SamplerErrors, Configuration) {
  TimeFunctionModel<float> model;
  expect_error_containing([] { TimeGrid::uniform(0); }, "zero steps");
  expect_error_containing([] { TimeGrid({0.0, 0.7, 0.3, 1.0}); }, "strictly increasing");
  expect_error_containing([] { Prompt<float>::unconditional(0); }, "n_start must be >= 1");
  auto o = options(TimeGrid::uniform(4));
  o.max_frames = 3;
  expect_error_containing([&] { sample(model, LinearKappa{}, Euler{}, o, unconditional(1, 4)); },
                          "more than max_frames");
  o = options(TimeGrid::uniform(4));
  o.frame_dim = 0;
  expect_error_containing([&] { sample(model, LinearKappa{}, Euler{}, o, unconditional(1, 2)); }, "frame_dim");
  o = options(TimeGrid::uniform(4), 3);
  expect_error_containing(
      [&] {
        sample(model, LinearKappa{}, Euler{}, o,
               std::vector<Prompt<float>>{Prompt<float>::image_to_video({1.f, 2.f}, 2)});
      },
      "frame-size mismatch");
  expect_error_containing(
      [&] {
        Prompt<float> p;
        p.frames.push_back({FrameKind::passive_context, {1.f, 2.f, 3.f}});
        sample(model, LinearKappa{}, Euler{}, o, std::vector<Prompt<float>>{p});
      },
      "only passive context");
  expect_error_containing([&] { sample(model, LinearKappa{}, Euler{}, o, std::vector<Prompt<float>>{}); },
                          "no prompts");
  o.rule = InsertionRule::hierarchical;
  expect_error_containing([&] { sample(model, LinearKappa{}, Euler{}, o, unconditional(1, 2)); }, "target_length");
  o.target_length = 1;
  expect_error_containing([&] { sample(model, LinearKappa{}, Euler{}, o, unconditional(1, 2)); },
                          "shorter than prompt");
  o = options(TimeGrid::uniform(4));
  o.velocity_guidance = NAN;
  expect_error_containing([&] { sample(model, LinearKappa{}, Euler{}, o, unconditional(1, 2)); }, "guidance");
  expect_error_containing([] { make_user_kappa([](double s) { return s * 0.5; }); }, "kappa(1) must be 1");
}

TEST(SamplerErrors, NonFiniteModelOutputs) {
  for (int which = 0; which < 4; ++which) {
    struct Bad {
      int which;
      std::size_t calls = 0;
      void evaluate(const ModelInput<HostFrames<float>>&, ModelOutput<HostFrames<float>>& out) {
        for (auto& x : out.velocity.values) x = 0.f;
        for (auto& l : out.log_rate) l = 0.0;
        if (++calls < 3) return;
        if (which == 0) out.velocity.values[1] = NAN;
        if (which == 1) out.velocity.values[0] = INFINITY;
        if (which == 2) out.log_rate[0] = NAN;
        if (which == 3) out.log_rate[1] = INFINITY;
      }
    } model{which};
    try {
      sample(model, LinearKappa{}, Euler{}, options(TimeGrid::uniform(8)), unconditional(1, 2));
      ADD_FAILURE() << "non-finite output " << which << " accepted";
    } catch (const ModelOutputError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(which < 2 ? "velocity" : "log-rate"), std::string::npos) << msg;
      EXPECT_NE(msg.find("non-finite"), std::string::npos) << msg;
      EXPECT_NE(msg.find("global step 2"), std::string::npos) << msg;
    }
  }
}

TEST(SamplerErrors, ModelThatResizesItsOutput) {
  struct Resizer {
    void evaluate(const ModelInput<HostFrames<float>>&, ModelOutput<HostFrames<float>>& out) {
      out.velocity.values.resize(1);
      out.velocity.dim = 1;
    }
  } model;
  expect_error_containing(
      [&] { sample(model, LinearKappa{}, Euler{}, options(TimeGrid::uniform(4), 2), unconditional(1, 2)); },
      "model returned a velocity of");
}

// Every named choice of the sampler and the solvers reads back its own name, and a name that is
// not one of them is a ConfigError that lists the accepted ones (no silent fallback).
TEST(Names, JumpRuleCapFinalStepAndSolverNamesRoundTripAndTyposAreRefused) {
  for (auto m : {JumpMode::poisson, JumpMode::bernoulli, JumpMode::binomial})
    EXPECT_EQ(jump_mode_from_name(jump_mode_name(m)), m);
  for (auto r : {InsertionRule::learned, InsertionRule::random_gap, InsertionRule::hierarchical,
                 InsertionRule::left_to_right})
    EXPECT_EQ(insertion_rule_from_name(insertion_rule_name(r)), r);
  for (auto p : {CapPolicy::error, CapPolicy::truncate}) EXPECT_EQ(cap_policy_from_name(cap_policy_name(p)), p);
  for (auto f : {FinalStep::euler, FinalStep::full}) EXPECT_EQ(final_step_from_name(final_step_name(f)), f);
  for (const char* name : kSolverNames) {
    std::string got;
    int stages = 0;
    with_solver_named(name, FinalStep::full, [&](const auto& s) {
      got = s.name();
      stages = std::decay_t<decltype(s)>::stages;
    });
    EXPECT_EQ(got, name);
    EXPECT_GT(stages, 0);
  }
  fc_test::expect_error<ConfigError>([] { jump_mode_from_name("poison"); },
                                     "jump mode 'poison' is not one of: poisson, bernoulli, binomial");
  fc_test::expect_error<ConfigError>([] { insertion_rule_from_name("random_gap"); },
                                     "insertion rule 'random_gap' is not one of: learned, random, hierarchical, left_to_right");
  fc_test::expect_error<ConfigError>([] { cap_policy_from_name("Truncate"); },
                                     "cap policy 'Truncate' is not one of: error, truncate");
  fc_test::expect_error<ConfigError>([] { final_step_from_name(""); }, "final step '' is not one of: euler, full");
  fc_test::expect_error<ConfigError>([] { with_solver_named("rk5", FinalStep::euler, [](const auto&) {}); },
                                     "solver 'rk5' is not one of: euler, midpoint, heun, rk4");
}
