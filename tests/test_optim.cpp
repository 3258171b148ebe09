// AdamW, gradient clipping, the learning-rate schedule and the EMA: values computed by hand from
// the update formulas, the properties that distinguish AdamW from Adam+L2, bit-exact resume
// through safetensors, and the rejection of bad hyper-parameters.
#include <gtest/gtest.h>

#include "support/expect_error.hpp"
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <source_location>
#include <string>
#include <vector>

#include "flowception/io/safetensors.hpp"
#include "flowception/train/optimizer.hpp"

namespace fs = std::filesystem;
using namespace flowception;
using train::AdamW;
using train::AdamWConfig;
using train::Ema;
using train::LrSchedule;

namespace {

using fc_test::expect_error;

bool same_bits(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace

// lr 0.1, β1 0.9, β2 0.999, ε 1e-8, no decay; p = (1, −2); gradients (0.5, −1), (0.25, 0.5), (−1, 0).
TEST(AdamW, FirstThreeStepsMatchHandComputedValues) {
  AdamWConfig cfg;
  cfg.lr = 0.1;
  AdamW opt(cfg);
  opt.add_param("p", 2);
  std::vector<float> p{1.0f, -2.0f};
  std::vector<float> g(2);
  std::vector<std::span<float>> params{p};
  auto step = [&](float g0, float g1) {
    g = {g0, g1};
    std::vector<std::span<const float>> grads{g};
    opt.step(params, grads);
  };

  // Step 1 (bias corrections 1 − 0.9 = 0.1 and 1 − 0.999 = 0.001):
  //   p0: m = 0.1·0.5 = 0.05, v = 0.001·0.25 = 2.5e-4; m̂ = 0.5, v̂ = 0.25;
  //       p = 1 − 0.1·0.5/(0.5 + 1e-8) = 1 − 0.099999998 = 0.900000002
  //   p1: m = −0.1, v = 1e-3; m̂ = −1, v̂ = 1;  p = −2 + 0.1·1/(1 + 1e-8) = −1.900000001
  step(0.5f, -1.0f);
  EXPECT_EQ(opt.step_count(), 1);
  EXPECT_NEAR(opt.m(0)[0], 0.05, 1e-8);
  EXPECT_NEAR(opt.v(0)[0], 2.5e-4, 1e-10);
  EXPECT_NEAR(opt.m(0)[1], -0.1, 1e-8);
  EXPECT_NEAR(opt.v(0)[1], 1e-3, 1e-10);
  EXPECT_NEAR(p[0], 0.900000002, 1e-7);
  EXPECT_NEAR(p[1], -1.900000001, 1e-7);

  // Step 2 (corrections 1 − 0.81 = 0.19 and 1 − 0.998001 = 0.001999):
  //   p0: m = 0.9·0.05 + 0.1·0.25 = 0.07, v = 0.999·2.5e-4 + 0.001·0.0625 = 3.1225e-4;
  //       m̂ = 0.07/0.19 = 0.368421053, v̂ = 3.1225e-4/0.001999 = 0.156203102, √v̂ = 0.395225382;
  //       Δ = 0.1·0.368421053/0.395225382 = 0.0932179615  →  p = 0.900000002 − 0.0932179615 = 0.806782040
  //   p1: m = −0.09 + 0.05 = −0.04, v = 0.999·1e-3 + 0.001·0.25 = 1.249e-3;
  //       m̂ = −0.210526316, v̂ = 0.624812406, √v̂ = 0.790450762;
  //       Δ = −0.0266337036  →  p = −1.900000001 + 0.0266337036 = −1.873366297
  step(0.25f, 0.5f);
  EXPECT_NEAR(opt.m(0)[0], 0.07, 1e-8);
  EXPECT_NEAR(opt.v(0)[0], 3.1225e-4, 1e-10);
  EXPECT_NEAR(opt.m(0)[1], -0.04, 1e-8);
  EXPECT_NEAR(opt.v(0)[1], 1.249e-3, 1e-10);
  EXPECT_NEAR(p[0], 0.806782040, 1e-6);
  EXPECT_NEAR(p[1], -1.873366297, 1e-6);

  // Step 3 (corrections 1 − 0.729 = 0.271 and 1 − 0.997002999 = 0.002997001):
  //   p0: m = 0.063 − 0.1 = −0.037, v = 0.999·3.1225e-4 + 0.001·1 = 1.31193775e-3;
  //       m̂ = −0.136531365, v̂ = 0.437750188, √v̂ = 0.661626774;  Δ = −0.0206357024  →  p = 0.827417743
  //   p1: m = −0.036 + 0 = −0.036, v = 0.999·1.249e-3 = 1.247751e-3;
  //       m̂ = −0.132841328, v̂ = 0.416333194, √v̂ = 0.645239636;  Δ = −0.0205879300  →  p = −1.852778367
  step(-1.0f, 0.0f);
  EXPECT_NEAR(opt.m(0)[0], -0.037, 1e-8);
  EXPECT_NEAR(opt.v(0)[0], 1.31193775e-3, 1e-10);
  EXPECT_NEAR(opt.m(0)[1], -0.036, 1e-8);
  EXPECT_NEAR(opt.v(0)[1], 1.247751e-3, 1e-10);
  EXPECT_NEAR(p[0], 0.827417743, 1e-6);
  EXPECT_NEAR(p[1], -1.852778367, 1e-6);
  EXPECT_EQ(opt.step_count(), 3);
}

// The object and the stateless per-buffer update are the same arithmetic, bit for bit.
TEST(AdamW, ObjectEqualsFreeFunction) {
  AdamWConfig cfg{0.01, 0.8, 0.99, 1e-6, 0.05};
  AdamW opt(cfg);
  opt.add_param("a", 3);
  opt.add_param("b", 2, /*weight_decay=*/false);
  std::vector<float> a{0.3f, -1.2f, 2.0f}, b{5.0f, -0.5f};
  std::vector<float> a2 = a, b2 = b, ma(3), va(3), mb(2), vb(2);
  for (int t = 1; t <= 5; ++t) {
    std::vector<float> ga{0.1f * t, -0.2f, 0.05f / t}, gb{1.0f / t, -3.0f};
    std::vector<std::span<float>> ps{a, b};
    std::vector<std::span<float>> gs{ga, gb};
    opt.step(ps, gs, 0.01 * t);
    train::adamw_update(a2, ga, ma, va, t, 0.01 * t, cfg, true);
    train::adamw_update(b2, gb, mb, vb, t, 0.01 * t, cfg, false);
  }
  EXPECT_TRUE(same_bits(a, a2));
  EXPECT_TRUE(same_bits(b, b2));
  EXPECT_TRUE(same_bits(opt.m(0), ma));
  EXPECT_TRUE(same_bits(opt.v(1), vb));
}

// Bias correction makes the first step ≈ lr whatever the gradient's scale (without it, Adam's first
// step would be lr·(1 − β1)/√(1 − β2) ≈ 3.16·lr).
TEST(AdamW, BiasCorrectionMakesTheFirstStepLr) {
  for (float g : {1e-3f, 1.0f, 1e3f, -7.0f}) {
    AdamWConfig cfg;
    cfg.lr = 0.01;
    AdamW opt(cfg);
    opt.add_param("x", 1);
    std::vector<float> x{0.0f}, gv{g};
    std::vector<std::span<float>> ps{x};
    std::vector<std::span<const float>> gs{gv};
    opt.step(ps, gs);
    // m̂ = g, v̂ = g², so Δ = −lr·g/(|g| + ε) = ∓0.01 up to the relative ε/|g|.
    const double step = -0.01 * g / (std::abs(static_cast<double>(g)) + 1e-8);
    EXPECT_NEAR(x[0], step, 3e-9) << "g = " << g;
    // Second step with the same gradient: m̂ = g, v̂ = g² again, so again the same Δ.
    opt.step(ps, gs);
    EXPECT_NEAR(x[0], 2 * step, 6e-9) << "g = " << g;
  }
}

TEST(AdamW, WeightDecayIsDecoupled) {
  // With zero gradients the moments stay zero, the adaptive term is 0/(0 + ε) = 0, and each step
  // only multiplies p by (1 − lr·λ) = 1 − 0.1·0.5 = 0.95: p = 2 · 0.95³ = 1.71475 after three steps.
  AdamWConfig cfg{0.1, 0.9, 0.999, 1e-8, 0.5};
  AdamW opt(cfg);
  opt.add_param("w", 2);
  opt.add_param("bias", 1, /*weight_decay=*/false);
  std::vector<float> w{2.0f, -4.0f}, b{3.0f}, gw(2, 0.0f), gb(1, 0.0f);
  std::vector<std::span<float>> ps{w, b};
  std::vector<std::span<const float>> gs{gw, gb};
  for (int i = 0; i < 3; ++i) opt.step(ps, gs);
  EXPECT_NEAR(w[0], 1.71475, 1e-6);
  EXPECT_NEAR(w[1], -3.4295, 1e-6);
  EXPECT_EQ(b[0], 3.0f) << "a tensor registered without decay does not shrink";

  // With a gradient, the decay is not rescaled by the adaptive denominator (as Adam + L2 would do):
  // the difference between a run with λ and one without, after one step, is exactly lr·λ·p0 = 0.1·0.5·2.
  for (float g : {1e-4f, 0.3f, 50.0f}) {
    AdamW with(AdamWConfig{0.1, 0.9, 0.999, 1e-8, 0.5}), without(AdamWConfig{0.1, 0.9, 0.999, 1e-8, 0.0});
    with.add_param("w", 1);
    without.add_param("w", 1);
    std::vector<float> p1{2.0f}, p2{2.0f}, gv{g};
    std::vector<std::span<float>> s1{p1}, s2{p2};
    std::vector<std::span<const float>> gg{gv};
    with.step(s1, gg);
    without.step(s2, gg);
    EXPECT_NEAR(p2[0] - p1[0], 0.1, 1e-6) << "g = " << g;
  }
}

TEST(AdamW, RejectsBadHyperParameters) {
  auto bad = [](AdamWConfig c, const std::string& what) {
    expect_error<ConfigError>([&] { AdamW opt(c); }, what);
    expect_error<ConfigError>([&] { c.validate(); }, what);
  };
  AdamWConfig c;
  c.lr = -0.1;
  bad(c, "lr must be finite and >= 0, got -0.1");
  c = {};
  c.lr = kNaN;
  bad(c, "lr must be finite and >= 0, got nan");
  c = {};
  c.lr = kInf;
  bad(c, "lr must be finite and >= 0, got inf");
  c = {};
  c.beta1 = 1.0;
  bad(c, "beta1 must be in [0, 1), got 1");
  c = {};
  c.beta1 = -0.5;
  bad(c, "beta1 must be in [0, 1), got -0.5");
  c = {};
  c.beta2 = 1.5;
  bad(c, "beta2 must be in [0, 1), got 1.5");
  c = {};
  c.beta2 = kNaN;
  bad(c, "beta2 must be in [0, 1), got nan");
  c = {};
  c.eps = 0.0;
  bad(c, "eps must be finite and > 0, got 0");
  c = {};
  c.eps = -1e-8;
  bad(c, "eps must be finite and > 0");
  c = {};
  c.weight_decay = -0.01;
  bad(c, "weight_decay must be finite and >= 0, got -0.01");
  c = {};
  c.weight_decay = kNaN;
  bad(c, "weight_decay must be finite and >= 0, got nan");

  AdamW opt;
  opt.add_param("w", 2);
  expect_error<ConfigError>([&] { opt.add_param("w", 3); }, "parameter name 'w' registered twice");
  expect_error<ConfigError>([&] { opt.add_param("", 3); }, "empty name");
  expect_error<ConfigError>([&] { opt.set_config(AdamWConfig{0.1, 1.0, 0.9, 1e-8, 0.0}); }, "beta1");
  std::vector<float> p(2), g(2), g3(3);
  std::vector<std::span<float>> ps{p};
  std::vector<std::span<const float>> gs{g}, gs3{g3};
  expect_error<ConfigError>([&] { opt.step(ps, gs, -1.0); }, "lr must be finite and >= 0, got -1");
  expect_error<ConfigError>([&] { opt.step(ps, gs, kNaN); }, "got nan");
  expect_error<ShapeError>([&] { opt.step(ps, gs3, 0.1); }, "gradient of 'w' has 3 values, the parameter has 2");
  const std::vector<std::span<float>> no_params;
  const std::vector<std::span<const float>> no_grads;
  expect_error<ShapeError>([&] { opt.step(no_params, no_grads, 0.1); }, "1 parameters registered");
  EXPECT_EQ(opt.step_count(), 0) << "failed steps change nothing";
  std::vector<float> m(2), v(2);
  expect_error<ConfigError>([&] { train::adamw_update(p, g, m, v, 0, 0.1, AdamWConfig{}); }, "step must be >= 1");
  expect_error<ShapeError>([&] { train::adamw_update(p, g3, m, v, 1, 0.1, AdamWConfig{}); }, "buffer sizes differ");
}

TEST(ClipGradNorm, ScalesToTheMaxNormExactly) {
  // Two buffers (3, 0) and (0, 4): global norm 5. Clipping to 1 scales by 1/5.
  std::vector<float> a{3.0f, 0.0f}, b{0.0f, 4.0f};
  std::vector<std::span<float>> grads{a, b};
  const double norm = train::clip_grad_norm(grads, 1.0);
  EXPECT_DOUBLE_EQ(norm, 5.0);
  EXPECT_FLOAT_EQ(a[0], 0.6f);
  EXPECT_EQ(a[1], 0.0f);
  EXPECT_FLOAT_EQ(b[1], 0.8f);
  std::vector<std::span<const float>> view{a, b};
  EXPECT_NEAR(train::global_grad_norm(view), 1.0, 1e-7);

  // A larger random-looking set: the clipped norm is the max norm to float precision.
  std::vector<float> x(1000), y(37);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)) * 3.0);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<float>(i) - 18.0f;
  std::vector<std::span<float>> g2{x, y};
  const double before = train::clip_grad_norm(g2, 2.5);
  EXPECT_GT(before, 2.5);
  std::vector<std::span<const float>> v2{x, y};
  EXPECT_NEAR(train::global_grad_norm(v2), 2.5, 2.5e-6);
}

TEST(ClipGradNorm, LeavesSmallGradientsAlone) {
  std::vector<float> a{0.3f, -0.4f}, b{0.0f};
  const std::vector<float> a0 = a, b0 = b;
  std::vector<std::span<float>> grads{a, b};
  EXPECT_NEAR(train::clip_grad_norm(grads, 1.0), 0.5, 1e-7);
  EXPECT_TRUE(same_bits(a, a0));
  EXPECT_TRUE(same_bits(b, b0));
  // A norm exactly at the bound is not touched either.
  std::vector<float> c{3.0f, 4.0f};
  std::vector<std::span<float>> gc{c};
  EXPECT_EQ(train::clip_grad_norm(gc, 5.0), 5.0);
  EXPECT_EQ(c[0], 3.0f);
  EXPECT_EQ(c[1], 4.0f);
  std::vector<std::span<float>> none;
  EXPECT_EQ(train::clip_grad_norm(none, 1.0), 0.0);
}

TEST(ClipGradNorm, NonFiniteGradientIsAnErrorNamingIt) {
  std::vector<float> a{1.0f, 2.0f}, b{0.0f, std::numeric_limits<float>::quiet_NaN(), 1.0f};
  std::vector<std::span<float>> grads{a, b};
  const std::vector<std::string> names{"blocks.0.attn.qkv", "blocks.1.mlp.fc1"};
  expect_error<ModelOutputError>([&] { train::clip_grad_norm(grads, 0.1, names); },
                                 "gradient 'blocks.1.mlp.fc1' has the non-finite value nan at element 1");
  EXPECT_EQ(a[0], 1.0f) << "nothing is scaled when a gradient is bad";
  expect_error<ModelOutputError>([&] { train::clip_grad_norm(grads, 0.1); }, "gradient buffer 1");
  b[1] = -std::numeric_limits<float>::infinity();
  expect_error<ModelOutputError>([&] { train::clip_grad_norm(grads, 0.1, names); }, "value -inf at element 1");
  b[1] = 0.0f;
  expect_error<ConfigError>([&] { train::clip_grad_norm(grads, 0.0); }, "max_norm must be finite and > 0, got 0");
  expect_error<ConfigError>([&] { train::clip_grad_norm(grads, -1.0); }, "got -1");
  expect_error<ConfigError>([&] { train::clip_grad_norm(grads, kNaN); }, "got nan");
  expect_error<ConfigError>([&] { train::clip_grad_norm(grads, kInf); }, "got inf");
  const std::vector<std::string> one{"x"};
  expect_error<ShapeError>([&] { train::clip_grad_norm(grads, 1.0, one); }, "1 names for 2 gradient buffers");
}

TEST(LrSchedule, WarmupThenConstant) {
  const auto s = LrSchedule::constant(1e-3, 10);
  EXPECT_DOUBLE_EQ(s(1), 1e-4);  // base · 1/10
  EXPECT_DOUBLE_EQ(s(5), 5e-4);
  EXPECT_DOUBLE_EQ(s(9), 9e-4);
  EXPECT_DOUBLE_EQ(s(10), 1e-3);  // end of warm-up: exactly base
  EXPECT_DOUBLE_EQ(s(11), 1e-3);
  EXPECT_DOUBLE_EQ(s(1000000), 1e-3);
  const auto none = LrSchedule::constant(0.5);
  EXPECT_EQ(none(1), 0.5);
  EXPECT_EQ(none(2), 0.5);
}

TEST(LrSchedule, WarmupThenCosine) {
  // base 1, min 0.1, warm-up 10, total 110: p = (k − 10)/100.
  const auto s = LrSchedule::cosine(1.0, 10, 110, 0.1);
  EXPECT_DOUBLE_EQ(s(1), 0.1);
  EXPECT_DOUBLE_EQ(s(10), 1.0);
  // k = 11: p = 0.01, lr = 0.1 + 0.9·(1 + cos(0.01π))/2 = 0.1 + 0.9·0.999753280 = 0.999777952
  EXPECT_NEAR(s(11), 0.99977795, 1e-8);
  EXPECT_NEAR(s(35), 0.1 + 0.9 * 0.5 * (1 + std::sqrt(0.5)), 1e-12);  // p = 1/4
  EXPECT_NEAR(s(60), 0.55, 1e-12);                                    // p = 1/2: midway
  EXPECT_NEAR(s(85), 0.1 + 0.9 * 0.5 * (1 - std::sqrt(0.5)), 1e-12);  // p = 3/4
  EXPECT_DOUBLE_EQ(s(110), 0.1);
  EXPECT_DOUBLE_EQ(s(111), 0.1);
  EXPECT_DOUBLE_EQ(s(10000), 0.1);
  for (int k = 11; k < 110; ++k) EXPECT_LE(s(k + 1), s(k)) << k;
  const auto nowarm = LrSchedule::cosine(2.0, 0, 4);
  EXPECT_NEAR(nowarm(1), 1.0 + std::sqrt(0.5), 1e-12);
  EXPECT_NEAR(nowarm(2), 1.0, 1e-12);
  EXPECT_EQ(nowarm(4), 0.0);
}

TEST(LrSchedule, WarmupStableDecay) {
  // base 1, min 0.1, warm-up 10, stable to 50, cosine to 0.1 at 150: p = (k − 50)/100.
  const auto s = LrSchedule::stable_decay(1.0, 10, 50, 150, 0.1);
  EXPECT_DOUBLE_EQ(s(5), 0.5);
  EXPECT_DOUBLE_EQ(s(10), 1.0);
  EXPECT_DOUBLE_EQ(s(50), 1.0);
  EXPECT_NEAR(s(75), 0.1 + 0.9 * 0.5 * (1 + std::sqrt(0.5)), 1e-12);  // p = 1/4
  EXPECT_NEAR(s(100), 0.55, 1e-12);
  EXPECT_DOUBLE_EQ(s(150), 0.1);
  EXPECT_DOUBLE_EQ(s(1000), 0.1);
  for (int k = 50; k < 150; ++k) EXPECT_LE(s(k + 1), s(k)) << k;
  // decay_start = warm-up: the cosine schedule.
  const auto c = LrSchedule::cosine(1.0, 10, 110, 0.1), d = LrSchedule::stable_decay(1.0, 10, 10, 110, 0.1);
  for (int k = 1; k <= 120; ++k) EXPECT_DOUBLE_EQ(c(k), d(k)) << k;
  expect_error<ConfigError>([] { LrSchedule::stable_decay(1.0, 10, 5, 100); }, "decay_start (5) must be in [warmup_steps = 10");
  expect_error<ConfigError>([] { LrSchedule::stable_decay(1.0, 10, 100, 100); }, "total_steps = 100)");
}

TEST(LrSchedule, RejectsBadParameters) {
  expect_error<ConfigError>([] { LrSchedule::constant(0.0); }, "base_lr must be finite and > 0, got 0");
  expect_error<ConfigError>([] { LrSchedule::constant(-1e-3); }, "base_lr must be finite and > 0, got -0.001");
  expect_error<ConfigError>([] { LrSchedule::constant(kNaN); }, "got nan");
  expect_error<ConfigError>([] { LrSchedule::constant(1e-3, -1); }, "warmup_steps must be >= 0, got -1");
  expect_error<ConfigError>([] { LrSchedule::cosine(1e-3, 10, 10); }, "total_steps (10) must exceed warmup_steps (10) for a decay");
  expect_error<ConfigError>([] { LrSchedule::cosine(1e-3, 0, 100, 2e-3); },
                            "min_lr must be in [0, base_lr = 0.001], got 0.002");
  expect_error<ConfigError>([] { LrSchedule::cosine(1e-3, 0, 100, -1.0); }, "min_lr");
  expect_error<ConfigError>([] { LrSchedule::cosine(1e-3, 0, 100, kNaN); }, "min_lr");
  const auto s = LrSchedule::constant(1e-3, 5);
  expect_error<ConfigError>([&] { (void)s(0); }, "step must be >= 1 (the first update is step 1), got 0");
  LrSchedule hand{1e-3, 5, LrSchedule::Decay::cosine, 3, 0.0};
  expect_error<ConfigError>([&] { (void)hand(4); }, "total_steps (3) must exceed warmup_steps (5)");
}

TEST(Ema, ValuesAndValidation) {
  Ema ema(0.9);
  std::vector<float> w{1.0f, 2.0f};
  ema.add_param("w", w);
  EXPECT_EQ(ema.shadow(0)[0], 1.0f);
  // Warm-up: update n+1 uses decay min(0.9, (1 + n)/(10 + n)).
  // Update 1 (decay 0.1) with (2, 2): 0.1·1 + 0.9·2 = 1.9, 0.1·2 + 0.9·2 = 2.
  EXPECT_DOUBLE_EQ(ema.effective_decay(), 0.1);
  w = {2.0f, 2.0f};
  std::vector<std::span<const float>> ws{w};
  ema.update(ws);
  EXPECT_NEAR(ema.shadow(0)[0], 1.9, 1e-6);
  EXPECT_NEAR(ema.shadow(0)[1], 2.0, 1e-6);
  // Update 2 (decay 2/11) with (4, 0): (2/11)·1.9 + (9/11)·4 = 3.6181818, (2/11)·2 = 0.3636364.
  EXPECT_DOUBLE_EQ(ema.effective_decay(), 2.0 / 11.0);
  w = {4.0f, 0.0f};
  ema.update(ws);
  EXPECT_NEAR(ema.shadow(0)[0], 3.6181818, 1e-6);
  EXPECT_NEAR(ema.shadow(0)[1], 0.3636364, 1e-6);
  EXPECT_EQ(ema.update_count(), 2);
  // From n = 80 on, (1 + n)/(10 + n) > 0.9: the configured decay applies.
  Ema late(0.9);
  late.add_param("x", std::vector<float>{0.0f});
  std::vector<float> one{1.0f};
  std::vector<std::span<const float>> os{one};
  for (int i = 0; i < 81; ++i) late.update(os);
  EXPECT_DOUBLE_EQ(late.effective_decay(), 0.9);
  // Decay 0 copies the weights.
  Ema copy(0.0);
  std::vector<float> u{5.0f};
  copy.add_param("u", std::vector<float>{0.0f});
  std::vector<std::span<const float>> us{u};
  copy.update(us);
  EXPECT_EQ(copy.shadow(0)[0], 5.0f);

  expect_error<ConfigError>([] { Ema e(1.0); }, "decay must be in [0, 1), got 1");
  expect_error<ConfigError>([] { Ema e(-0.1); }, "decay must be in [0, 1), got -0.10000000000000001");
  expect_error<ConfigError>([] { Ema e(kNaN); }, "got nan");
  expect_error<ConfigError>([&] { ema.add_param("w", w); }, "'w' registered twice");
  std::vector<float> three(3);
  std::vector<std::span<const float>> bad{three};
  expect_error<ShapeError>([&] { ema.update(bad); }, "tensor 'w' has 3 values, registered with 2");
}

// A small deterministic "training" problem: two parameter tensors, gradients that depend on the
// parameters and on the step, clipping, a warm-up + cosine schedule, AdamW with decay on one tensor
// and an EMA. Interrupting after `stop` steps, saving everything through safetensors, restoring into
// fresh objects and continuing must give exactly the bits of an uninterrupted run.
namespace {

struct Trainer {
  AdamWConfig cfg{3e-2, 0.9, 0.95, 1e-8, 0.1};
  LrSchedule schedule = LrSchedule::cosine(3e-2, 5, 40, 1e-3);
  AdamW opt{cfg};
  Ema ema{0.97};
  std::vector<float> w, b;
  std::int64_t global_step = 0;

  Trainer() {
    w.resize(64);
    b.resize(8);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(std::cos(1.3 * static_cast<double>(i)));
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = 0.1f * static_cast<float>(i);
    opt.add_param("w", w.size());
    opt.add_param("b", b.size(), /*weight_decay=*/false);
    ema.add_param("w", w);
    ema.add_param("b", b);
  }

  void run(int steps) {
    for (int s = 0; s < steps; ++s) {
      ++global_step;
      std::vector<float> gw(w.size()), gb(b.size());
      for (std::size_t i = 0; i < w.size(); ++i)
        gw[i] = 4.0f * (w[i] - 0.5f) +
                static_cast<float>(std::sin(0.7 * static_cast<double>(global_step) + static_cast<double>(i)));
      for (std::size_t i = 0; i < b.size(); ++i) gb[i] = b[i] * b[i] - 0.2f;
      std::vector<std::span<float>> grads{gw, gb};
      train::clip_grad_norm(grads, 1.0, std::vector<std::string>{"w", "b"});
      std::vector<std::span<float>> params{w, b};
      opt.step(params, grads, schedule(opt.step_count() + 1));
      std::vector<std::span<const float>> cur{w, b};
      ema.update(cur);
    }
  }

  void save(const fs::path& p) const {
    std::vector<io::Tensor> t = opt.state_tensors();
    for (auto& e : ema.state_tensors()) t.push_back(std::move(e));
    t.push_back(io::make_tensor("model.w", {8, 8}, w));
    t.push_back(io::make_tensor("model.b", {8}, b));
    auto meta = opt.metadata();
    for (const auto& [k, v] : ema.metadata()) meta[k] = v;
    meta["global_step"] = std::to_string(global_step);
    io::save_safetensors(p, t, meta);
  }

  void load(const fs::path& p) {
    const auto f = io::load_safetensors(p);
    w = io::read_f32(f, "model.w", {8, 8});
    b = io::read_f32(f, "model.b", {8});
    opt.set_config(train::config_from_metadata(f));
    opt.load_state(f);
    ema.load_state(f);
    global_step = f.metadata_i64("global_step");
  }
};

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("fc_optim_" + name + "_" + std::to_string(::getpid()) + ".safetensors");
}

}  // namespace

TEST(Resume, SaveRestoreContinueIsBitIdentical) {
  const int total = 40;
  Trainer straight;
  straight.run(total);

  for (int stop : {1, 5, 17, 39}) {
    SCOPED_TRACE(stop);
    const fs::path p = temp_file("resume");
    {
      Trainer first;
      first.run(stop);
      first.save(p);
    }
    Trainer second;  // fresh objects: initial weights, zero moments
    second.load(p);
    EXPECT_EQ(second.opt.step_count(), stop);
    EXPECT_EQ(second.ema.update_count(), stop);
    second.run(total - stop);
    fs::remove(p);
    EXPECT_TRUE(same_bits(second.w, straight.w));
    EXPECT_TRUE(same_bits(second.b, straight.b));
    EXPECT_TRUE(same_bits(second.ema.shadow(0), straight.ema.shadow(0)));
    EXPECT_TRUE(same_bits(second.ema.shadow(1), straight.ema.shadow(1)));
    EXPECT_TRUE(same_bits(second.opt.m(0), straight.opt.m(0)));
    EXPECT_TRUE(same_bits(second.opt.v(1), straight.opt.v(1)));
    EXPECT_EQ(second.opt.step_count(), total);
  }
  // The run did something: weights moved and the EMA lags behind them.
  Trainer init;
  EXPECT_FALSE(same_bits(straight.w, init.w));
  EXPECT_FALSE(same_bits(straight.ema.shadow(0), straight.w));
  // Two uninterrupted runs agree bit for bit (determinism).
  Trainer again;
  again.run(total);
  EXPECT_TRUE(same_bits(again.w, straight.w));
}

TEST(Resume, OptimizerStateSurvivesTheFileExactly) {
  Trainer t;
  t.run(7);
  const fs::path p = temp_file("state");
  t.save(p);
  const auto f = io::load_safetensors(p);
  fs::remove(p);
  EXPECT_EQ(io::read_i64(f, "optimizer.step", {})[0], 7);
  EXPECT_EQ(io::read_i64(f, "ema.updates", {})[0], 7);
  EXPECT_TRUE(same_bits(io::read_f32(f, "optimizer.m.w", {64}), t.opt.m(0)));
  EXPECT_TRUE(same_bits(io::read_f32(f, "optimizer.v.b", {8}), t.opt.v(1)));
  EXPECT_TRUE(same_bits(io::read_f32(f, "ema.w", {64}), t.ema.shadow(0)));
  const AdamWConfig c = train::config_from_metadata(f);
  EXPECT_EQ(c.lr, t.cfg.lr);
  EXPECT_EQ(c.beta2, t.cfg.beta2);
  EXPECT_EQ(c.eps, t.cfg.eps);
  EXPECT_EQ(c.weight_decay, t.cfg.weight_decay);
  EXPECT_EQ(f.metadata_f64("ema.decay"), 0.97);
}

TEST(Resume, LoadingMismatchedStateIsRejectedAndChangesNothing) {
  Trainer t;
  t.run(3);
  const fs::path p = temp_file("mismatch");
  t.save(p);
  const auto f = io::load_safetensors(p);
  fs::remove(p);

  // A model with a differently sized tensor.
  AdamW other(t.cfg);
  other.add_param("w", 63);
  other.add_param("b", 8);
  expect_error<ShapeError>([&] { other.load_state(f); }, "tensor 'optimizer.m.w' has shape [64] but [63] was expected");
  EXPECT_EQ(other.step_count(), 0);
  EXPECT_EQ(other.m(1)[0], 0.0f) << "nothing is loaded when one tensor is wrong";
  // A model with a tensor the checkpoint lacks.
  AdamW more(t.cfg);
  more.add_param("w", 64);
  more.add_param("b", 8);
  more.add_param("extra", 2);
  expect_error<IoError>([&] { more.load_state(f); }, "no tensor named 'optimizer.m.extra'");
  // A model lacking a tensor the checkpoint has.
  AdamW fewer(t.cfg);
  fewer.add_param("w", 64);
  expect_error<ShapeError>([&] { fewer.load_state(f); },
                           "'optimizer.m.b' is optimizer state of a parameter that is not registered");
  // A wrong prefix.
  AdamW same(t.cfg);
  same.add_param("w", 64);
  same.add_param("b", 8);
  expect_error<IoError>([&] { same.load_state(f, "opt."); }, "no tensor named 'opt.m.w'");
  Ema e(0.5);
  e.add_param("w", std::vector<float>(64));
  e.add_param("b", std::vector<float>(9));
  expect_error<ShapeError>([&] { e.load_state(f); }, "tensor 'ema.b' has shape [8] but [9] was expected");
  EXPECT_EQ(e.update_count(), 0);
}
