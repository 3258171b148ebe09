// The §7 baselines: full-sequence and autoregressive sampling reproduce the Gaussian oracle's
// N(μ, σ²), show the model exactly the times and kinds the method prescribes, count NFE and
// FLOPs, are reproducible, and reject bad input; their training samples have the stated form.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "flowception/baselines.hpp"
#include "flowception/oracles.hpp"
#include "support/expect_error.hpp"
#include "support/test_models.hpp"

using namespace flowception;

namespace {

BaselineSamplerOptions options(TimeGrid grid, std::size_t D, std::uint64_t seed = 1) {
  BaselineSamplerOptions o{std::move(grid)};
  o.frame_dim = D;
  o.seed = seed;
  return o;
}

/// Mean and variance of every element of the generated frames, against N(μ, σ²): 5 sigma.
void expect_gaussian(const SampleResult<double>& r, double mu, double sigma, const char* what) {
  double s = 0, s2 = 0;
  std::size_t k = 0;
  for (const auto& v : r.videos)
    for (std::size_t f = 0; f < v.length(); ++f) {
      if (v.kinds[f] != FrameKind::generated) continue;
      for (std::size_t e = 0; e < v.dim; ++e) {
        const double x = v.frames[f * v.dim + e];
        s += x;
        s2 += x * x;
        ++k;
      }
    }
  ASSERT_GT(k, 5000u) << what;
  const double m = s / static_cast<double>(k), var = s2 / static_cast<double>(k) - m * m;
  EXPECT_NEAR(m, mu, 5 * sigma / std::sqrt(static_cast<double>(k))) << what;
  EXPECT_NEAR(var, sigma * sigma, 5 * sigma * sigma * std::sqrt(2.0 / static_cast<double>(k))) << what;
}

/// Records what each call showed the model: (time, kind) per frame per video.
struct RecordingModel {
  struct Call {
    std::vector<std::size_t> offsets;
    std::vector<double> times;
    std::vector<FrameKind> kinds;
  };
  std::vector<Call> calls;
  void evaluate(const ModelInput<HostFrames<double>>& in, ModelOutput<HostFrames<double>>& out) {
    calls.push_back({{in.offsets.begin(), in.offsets.end()}, {in.times.begin(), in.times.end()},
                     {in.kinds.begin(), in.kinds.end()}});
    for (std::size_t f = 0; f < in.total_frames(); ++f) {
      for (auto& x : out.velocity.frame(f)) x = 1.0;  // moves every flowing frame by exactly 1
      out.log_rate[f] = 0.0;
    }
  }
};

/// Reports 100 "FLOPs" of attention and 10 of the rest per frame of each call.
struct FlopModel {
  std::size_t frames = 0;
  void evaluate(const ModelInput<HostFrames<double>>& in, ModelOutput<HostFrames<double>>& out) {
    frames = in.total_frames();
    for (std::size_t f = 0; f < frames; ++f) {
      for (auto& x : out.velocity.frame(f)) x = 0.0;
      out.log_rate[f] = 0.0;
    }
  }
  FlopCount forward_flops() const { return {100.0 * frames, 10.0 * frames}; }
};

std::vector<double> constant_frame(std::size_t D, double value) { return std::vector<double>(D, value); }

// Braced lists do not deduce the frame type: these spell it for the tests.
using Prompts = std::vector<Prompt<double>>;
using Lengths = std::vector<std::size_t>;
template <class M, class S>
SampleResult<double> ar(M& model, S stepper, BaselineSamplerOptions o, Prompts p, Lengths l) {
  return sample_autoregressive(model, stepper, std::move(o), std::move(p), std::move(l));
}
template <class M, class S>
SampleResult<double> fs(M& model, S stepper, BaselineSamplerOptions o, Prompts p) {
  return sample_full_sequence(model, stepper, std::move(o), std::move(p));
}

}  // namespace

TEST(FullSequence, GaussianOracleReproducesMeanAndVariance) {
  const double mu = 0.7, sigma = 0.5;
  GaussianContentOracle model(mu, sigma);
  std::vector<Prompt<double>> prompts(200, Prompt<double>::unconditional(6));
  auto r = fs(model, RungeKutta4{}, options(TimeGrid::uniform(30), 8), prompts);
  ASSERT_EQ(r.videos.size(), 200u);
  for (const auto& v : r.videos) EXPECT_EQ(v.length(), 6u);
  expect_gaussian(r, mu, sigma, "full-sequence, RK4");
  // Image-to-video: the image stays as given, the other frames are N(μ, σ²).
  std::vector<Prompt<double>> i2v(200, Prompt<double>::image_to_video(constant_frame(8, 3.0), 6));
  auto ri = fs(model, Heun{}, options(TimeGrid::uniform(40), 8, 2), i2v);
  for (const auto& v : ri.videos) {
    EXPECT_EQ(v.kinds[0], FrameKind::active_context);
    for (std::size_t e = 0; e < 8; ++e) ASSERT_EQ(v.frames[e], 3.0);
  }
  expect_gaussian(ri, mu, sigma, "full-sequence image-to-video, Heun");
}

TEST(Autoregressive, GaussianOracleReproducesMeanAndVariance) {
  const double mu = -0.3, sigma = 1.5;
  GaussianContentOracle model(mu, sigma);
  std::vector<Prompt<double>> prompts(150, Prompt<double>{});
  std::vector<std::size_t> lengths;
  for (std::size_t v = 0; v < prompts.size(); ++v) lengths.push_back(3 + v % 5);  // 3..7 frames
  auto r = ar(model, RungeKutta4{}, options(TimeGrid::uniform(30), 8), prompts, lengths);
  for (std::size_t v = 0; v < r.videos.size(); ++v) ASSERT_EQ(r.videos[v].length(), lengths[v]);
  expect_gaussian(r, mu, sigma, "autoregressive, RK4");
  // Continuation from two given frames.
  std::vector<Prompt<double>> cont(150, Prompt<double>::continuation({constant_frame(8, 1.0), constant_frame(8, 2.0)}));
  auto rc = ar(model, Midpoint{}, options(TimeGrid::uniform(60), 8, 3), cont,
                                  std::vector<std::size_t>(150, 7));
  for (const auto& v : rc.videos) {
    ASSERT_EQ(v.length(), 7u);
    EXPECT_EQ(v.frames[0], 1.0);
    EXPECT_EQ(v.frames[8], 2.0);
  }
  expect_gaussian(rc, mu, sigma, "autoregressive continuation, midpoint");
}

// Full-sequence: every generated frame shares the grid's time; N calls of an Euler solver.
TEST(FullSequence, ModelSeesOneSharedTimeAndContextAtOne) {
  RecordingModel model;
  const auto grid = TimeGrid::end_dense(5, 2.0);
  std::vector<Prompt<double>> prompts{Prompt<double>::image_to_video(constant_frame(2, 0.0), 4),
                                      Prompt<double>::unconditional(2)};
  auto o = options(grid, 2);
  o.shift = TimeShift{3.0};
  auto r = fs(model, Euler{}, o, prompts);
  ASSERT_EQ(model.calls.size(), 5u);
  EXPECT_EQ(r.model_calls, 5u);
  EXPECT_EQ(r.steps, 5u);
  for (std::size_t j = 0; j < 5; ++j) {
    const auto& c = model.calls[j];
    ASSERT_EQ(c.offsets, (std::vector<std::size_t>{0, 4, 6}));
    for (std::size_t f = 0; f < 6; ++f) {
      if (f == 0) {
        EXPECT_EQ(c.kinds[f], FrameKind::active_context);
        EXPECT_EQ(c.times[f], 1.0);
      } else {
        EXPECT_EQ(c.kinds[f], FrameKind::generated);
        EXPECT_DOUBLE_EQ(c.times[f], o.shift(grid[j]));
      }
    }
  }
  for (const auto& v : r.videos) {
    EXPECT_EQ(v.nfe, 5u);
    EXPECT_EQ(v.trace.size(), 5u);
  }
}

// Autoregressive: one flowing frame per video per round, every earlier frame passive at t = 1.
TEST(Autoregressive, ModelSeesCleanPrefixAndOneFlowingFrame) {
  RecordingModel model;
  const std::size_t N = 3;
  std::vector<Prompt<double>> prompts{Prompt<double>::image_to_video(constant_frame(2, 5.0), 1), Prompt<double>{}};
  auto r = ar(model, Heun{}, options(TimeGrid::uniform(N), 2), prompts, {3, 2});
  // Video 0 generates 2 frames, video 1 generates 2: 2 rounds × N steps × 2 stages.
  EXPECT_EQ(model.calls.size(), 2 * N * 2);
  EXPECT_EQ(r.steps, 2 * N);
  for (const auto& c : model.calls) {
    for (std::size_t v = 0; v + 1 < c.offsets.size(); ++v) {
      const std::size_t b = c.offsets[v], e = c.offsets[v + 1];
      for (std::size_t f = b; f + 1 < e; ++f) {
        EXPECT_EQ(c.kinds[f], FrameKind::passive_context);
        EXPECT_EQ(c.times[f], 1.0);
      }
      EXPECT_EQ(c.kinds[e - 1], FrameKind::generated);
      EXPECT_LE(c.times[e - 1], 1.0);
    }
  }
  EXPECT_EQ(model.calls.front().offsets, (std::vector<std::size_t>{0, 2, 3}));
  EXPECT_EQ(model.calls.back().offsets, (std::vector<std::size_t>{0, 3, 5}));
  ASSERT_EQ(r.videos[0].length(), 3u);
  EXPECT_EQ(r.videos[0].kinds[0], FrameKind::active_context);  // the result keeps the prompt's kind
  EXPECT_EQ(r.videos[0].insertion_step, (std::vector<std::size_t>{0, 0, 1}));
  EXPECT_EQ(r.videos[1].insertion_step, (std::vector<std::size_t>{0, 1}));
  for (const auto& v : r.videos) EXPECT_EQ(v.nfe, 2 * N * 2);
  for (std::size_t e = 0; e < 2; ++e) EXPECT_EQ(r.videos[0].frames[e], 5.0);  // the given image is untouched
}

TEST(Baselines, FlopsAreSummedOverModelCalls) {
  FlopModel model;
  // Full-sequence: 2 videos of 4 frames, Euler, 5 steps: 5 calls of 8 frames.
  auto fsr = fs(model, Euler{}, options(TimeGrid::uniform(5), 3),
                                 std::vector<Prompt<double>>(2, Prompt<double>::unconditional(4)));
  EXPECT_DOUBLE_EQ(fsr.flops.attention, 5 * 8 * 100.0);
  EXPECT_DOUBLE_EQ(fsr.flops.other, 5 * 8 * 10.0);
  // Autoregressive: one video of 3 frames, Euler, 2 steps: rounds of 1, 2, 3 frames.
  auto arr = ar(model, Euler{}, options(TimeGrid::uniform(2), 3), {Prompt<double>{}}, {3});
  EXPECT_DOUBLE_EQ(arr.flops.total(), 2 * (1 + 2 + 3) * 110.0);
  // Flowception's coupled sampler sums them the same way: prescribed rule, no insertions.
  SamplerOptions so{TimeGrid::uniform(4)};
  so.frame_dim = 3;
  so.rule = InsertionRule::left_to_right;
  so.target_length = 2;
  auto fc = sample(model, LinearKappa{}, Euler{}, so, std::vector<Prompt<double>>{Prompt<double>::unconditional(2)});
  EXPECT_EQ(fc.model_calls, 4u);
  EXPECT_DOUBLE_EQ(fc.flops.total(), 4 * 2 * 110.0);
}

TEST(Baselines, SameSeedSameBitsAndSlicesReproduce) {
  GaussianContentOracle model(0.1, 0.8);
  auto o = options(TimeGrid::uniform(4), 5, 9);
  std::vector<Prompt<double>> p(3, Prompt<double>{});
  auto a = ar(model, Heun{}, o, p, {2, 3, 4});
  auto b = ar(model, Heun{}, o, p, {2, 3, 4});
  for (std::size_t v = 0; v < 3; ++v) EXPECT_EQ(a.videos[v].frames, b.videos[v].frames);
  auto slice_o = o;
  slice_o.video_index_offset = 2;
  auto s = ar(model, Heun{}, slice_o, {Prompt<double>{}}, {4});
  EXPECT_EQ(s.videos[0].frames, a.videos[2].frames);
  auto f1 = fs(model, Euler{}, o, std::vector<Prompt<double>>(2, Prompt<double>::unconditional(3)));
  auto f2 = fs(model, Euler{}, slice_o, std::vector<Prompt<double>>(1, Prompt<double>::unconditional(3)));
  EXPECT_NE(f1.videos[0].frames, f1.videos[1].frames);
  auto o1 = o;
  o1.video_index_offset = 1;
  auto f3 = fs(model, Euler{}, o1, std::vector<Prompt<double>>(1, Prompt<double>::unconditional(3)));
  EXPECT_EQ(f3.videos[0].frames, f1.videos[1].frames);
  EXPECT_NE(f2.videos[0].frames, f1.videos[0].frames);
}

TEST(Baselines, BadInputIsRejectedWithItsReason) {
  GaussianContentOracle model;
  auto o = options(TimeGrid::uniform(2), 4);
  using P = Prompt<double>;
  fc_test::expect_error<ConfigError>([&] { ar(model, Euler{}, o, {P::unconditional(1)}, {3}); },
                                     "holds 1 generated frames");
  fc_test::expect_error<ConfigError>([&] { ar(model, Euler{}, o, {P{}, P{}}, {3}); },
                                     "one length per prompt");
  fc_test::expect_error<ConfigError>(
      [&] { ar(model, Euler{}, o, {P::continuation({constant_frame(4, 0), constant_frame(4, 0)})}, {2}); },
      "leaves nothing to generate");
  auto capped = o;
  capped.max_frames = 5;
  fc_test::expect_error<ConfigError>([&] { ar(model, Euler{}, capped, {P{}}, {6}); },
                                     "exceeds max_frames");
  fc_test::expect_error<ConfigError>([&] { fs(model, Euler{}, capped, {P::unconditional(6)}); },
                                     "more than max_frames");
  fc_test::expect_error<ConfigError>(
      [&] { fs(model, Euler{}, o, {P::interpolation({constant_frame(4, 0), constant_frame(4, 0)})}); },
      "no generated frame");
  fc_test::expect_error<ShapeError>(
      [&] { fs(model, Euler{}, o, {P::image_to_video(constant_frame(3, 0), 3)}); },
      "frame-size mismatch");
  auto nan_image = constant_frame(4, 0);
  nan_image[2] = std::nan("");
  fc_test::expect_error<ShapeError>([&] { fs(model, Euler{}, o, {P::image_to_video(nan_image, 3)}); },
                                    "non-finite value at element 2");
  fc_test::expect_error<ConfigError>([&] { fs(model, Euler{}, o, {}); }, "no prompts");
  fc_test::TimeFunctionModel<double> bad;
  bad.f = [](double) { return std::nan(""); };
  fc_test::expect_error<ModelOutputError>([&] { fs(bad, Euler{}, o, {P::unconditional(2)}); },
                                          "non-finite (NaN/Inf) velocity");
}

// ---- Training samples ---------------------------------------------------------------------

namespace {
std::vector<float> ramp_video(std::size_t L, std::size_t D) {
  std::vector<float> v(L * D);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(0.01 * static_cast<double>(i));
  return v;
}
}  // namespace

TEST(BaselineTraining, FullSequenceSampleSharesOneTimeOverEveryFrame) {
  const std::size_t L = 7, D = 3;
  const auto video = ramp_video(L, D);
  BaselineTrainingOptions o;
  o.tasks = TaskMixture{1, 1, 0, 0};
  FullSequenceTrainingSampler<> b(o);
  std::map<Task, int> tasks;
  for (std::uint64_t i = 0; i < 200; ++i) {
    const auto s = b.sample<float>(video, D, i);
    ++tasks[s.task];
    ASSERT_EQ(s.visible(), L);
    ASSERT_GE(s.tau_global, 0.0);
    ASSERT_LT(s.tau_global, 1.0);
    for (std::size_t r = 0; r < L; ++r) {
      EXPECT_EQ(s.source_index[r], r);
      EXPECT_EQ(s.rate_mask[r], 0);
      const bool ctx = s.task == Task::image_to_video && r == 0;
      EXPECT_EQ(s.kinds[r], ctx ? FrameKind::active_context : FrameKind::generated);
      EXPECT_EQ(s.flow_mask[r], ctx ? 0 : 1);
      EXPECT_EQ(s.times[r], ctx ? 1.0 : s.tau_global);
      for (std::size_t e = 0; e < D; ++e) {
        const double x = s.inputs[r * D + e], x1 = video[r * D + e];
        // x_t + (1 − t)(x1 − ε) = x1 on the rectified-flow line.
        if (!ctx) EXPECT_NEAR(x + (1.0 - s.times[r]) * s.targets[r * D + e], x1, 1e-5);
        else EXPECT_EQ(x, x1);
      }
    }
    const auto again = b.sample<float>(video, D, i);
    EXPECT_EQ(again.inputs, s.inputs);
  }
  EXPECT_GT(tasks[Task::image_to_video], 60);
  EXPECT_GT(tasks[Task::unconditional], 60);
}

// The target position k is uniform on {0..L−1}: chi-square over 4000 draws, 6 degrees of
// freedom, below 22.5 (p = 0.001).
TEST(BaselineTraining, AutoregressiveSampleIsACleanPrefixAndOneNoisyFrame) {
  const std::size_t L = 7, D = 2;
  const auto video = ramp_video(L, D);
  AutoregressiveTrainingSampler<> b;
  std::vector<int> count(L, 0);
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const auto s = b.sample<float>(video, D, static_cast<std::uint64_t>(i));
    const std::size_t k = s.visible() - 1;
    ASSERT_LT(k, L);
    ++count[k];
    for (std::size_t r = 0; r < k; ++r) {
      EXPECT_EQ(s.kinds[r], FrameKind::passive_context);
      EXPECT_EQ(s.times[r], 1.0);
      EXPECT_EQ(s.flow_mask[r], 0);
      EXPECT_EQ(s.inputs[r * D], video[r * D]);
    }
    EXPECT_EQ(s.kinds[k], FrameKind::generated);
    EXPECT_EQ(s.flow_mask[k], 1);
    EXPECT_LT(s.times[k], 1.0);
    for (std::size_t r = 0; r <= k; ++r) EXPECT_EQ(s.rate_mask[r], 0);
  }
  double chi2 = 0;
  for (int c : count) chi2 += (c - n / 7.0) * (c - n / 7.0) / (n / 7.0);
  EXPECT_LT(chi2, 22.5);
}

TEST(BaselineTraining, PackAndLossWorkWithoutRateTerms) {
  const std::size_t D = 2;
  FullSequenceTrainingSampler<> fsb;
  AutoregressiveTrainingSampler<> arb;
  std::vector<TrainingSample<float>> s{fsb.sample<float>(ramp_video(4, D), D, 0), arb.sample<float>(ramp_video(5, D), D, 1)};
  const auto batch = pack(s);
  std::vector<float> v(batch.inputs.size(), 0.0f);
  std::vector<double> l(batch.rows(), 0.0);
  const auto loss = flowception_loss<float>(batch, v, l, 1.0);
  EXPECT_EQ(loss.rate, 0.0);
  EXPECT_EQ(loss.rate_frames, 0u);
  EXPECT_EQ(loss.flowing_frames, 4u + 1u);
  EXPECT_GT(loss.velocity, 0.0);
  for (double g : loss.grad_log_rate) EXPECT_EQ(g, 0.0);
  fc_test::expect_error<ShapeError>([&] { fsb.sample<float>(std::vector<float>{}, D, 0); }, "empty video");
  fc_test::expect_error<ShapeError>([&] { arb.sample<float>(std::vector<float>{1, 2, 3}, D, 0); }, "whole number");
}
