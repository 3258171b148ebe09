#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "flowception/training.hpp"

using namespace flowception;

namespace {

TrainingBatch<double> make_batch() {
  TrainingSamplerOptions o;
  o.seed = 21;
  o.tasks = TaskMixture{1, 1, 1, 1};
  ExtendedTimeSampler sampler(LinearKappa{}, o);
  std::vector<TrainingSample<double>> s;
  for (std::size_t i = 0; i < 6; ++i) {
    std::vector<double> video((8 + i) * 3);
    for (std::size_t j = 0; j < video.size(); ++j) video[j] = std::sin(0.3 * static_cast<double>(j + i));
    s.push_back(sampler.sample<double>(video, 3, i));
  }
  return pack(s);
}

}  // namespace

TEST(Losses, GradientsMatchCentralFiniteDifferences) {
  auto batch = make_batch();
  ASSERT_GT(batch.rows(), 10u);
  std::vector<double> v(batch.inputs.size()), l(batch.rows());
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::cos(0.7 * static_cast<double>(i));
  for (std::size_t r = 0; r < l.size(); ++r) l[r] = 0.5 * std::sin(static_cast<double>(r)) + 0.3;
  const double w = 0.7;
  auto res = flowception_loss<double>(batch, v, l, w);
  EXPECT_GT(res.flowing_frames, 0u);
  EXPECT_GT(res.rate_frames, 0u);
  EXPECT_NEAR(res.total, res.velocity + w * res.rate, 1e-15);
  const double h = 1e-6;
  for (std::size_t i = 0; i < v.size(); i += 3) {
    auto vp = v, vm = v;
    vp[i] += h;
    vm[i] -= h;
    const double fd = (flowception_loss<double>(batch, vp, l, w).total - flowception_loss<double>(batch, vm, l, w).total) / (2 * h);
    EXPECT_NEAR(res.grad_velocity[i], fd, 1e-7) << i;
  }
  for (std::size_t r = 0; r < l.size(); ++r) {
    auto lp = l, lm = l;
    lp[r] += h;
    lm[r] -= h;
    const double fd = (flowception_loss<double>(batch, v, lp, w).total - flowception_loss<double>(batch, v, lm, w).total) / (2 * h);
    EXPECT_NEAR(res.grad_log_rate[r], fd, 1e-7) << r;
    if (!batch.rate_mask[r]) {
      EXPECT_EQ(res.grad_log_rate[r], 0.0);
    }
  }
}

TEST(Losses, VelocityLossIsMeanSquaredErrorOverFlowingFrames) {
  auto batch = make_batch();
  std::vector<double> v = batch.targets;
  std::vector<double> l(batch.rows(), 0.0);
  EXPECT_EQ(flowception_loss<double>(batch, v, l).velocity, 0.0);
  // Perturb every element of every frame by 0.5: loss = 0.25 regardless of D and masks.
  for (auto& x : v) x += 0.5;
  EXPECT_NEAR(flowception_loss<double>(batch, v, l).velocity, 0.25, 1e-12);
}

// The Poisson term over frames with counts k_i is minimised by exp(ℓ) = mean count.
TEST(Losses, PoissonTermMinimisedAtMeanCount) {
  const std::vector<double> counts{0, 3, 1, 4, 2};
  const std::vector<std::uint8_t> mask(5, 1);
  auto f = [&](double ell) {
    std::vector<double> l(5, ell);
    return rate_loss(l, counts, mask, {});
  };
  const double best = std::log(2.0);  // mean count
  for (double d : {-0.3, -0.01, 0.01, 0.3}) EXPECT_GT(f(best + d), f(best));
  std::vector<double> grad(5, 0.0);
  std::vector<double> l(5, best);
  rate_loss(l, counts, mask, grad);
  double g = 0;
  for (double x : grad) g += x;
  EXPECT_NEAR(g, 0.0, 1e-14);  // stationary for a shared ℓ
  // Stable for extreme finite ℓ.
  std::vector<double> extreme{-700.0, -700.0, -700.0, -700.0, -700.0};
  EXPECT_TRUE(std::isfinite(rate_loss(extreme, counts, mask, {})));
}

TEST(Losses, EmptyMasksGiveZero) {
  TrainingBatch<double> b;
  b.dim = 1;
  b.inputs = b.targets = {1.0, 2.0};
  b.times = {0.5, 0.5};
  b.counts = {1, 1};
  b.kinds = {FrameKind::generated, FrameKind::generated};
  b.flow_mask = b.rate_mask = {0, 0};
  b.offsets = {0, 2};
  std::vector<double> v{5.0, 5.0}, l{1.0, 1.0};
  auto r = flowception_loss<double>(b, v, l);
  EXPECT_EQ(r.total, 0.0);
  EXPECT_EQ(r.grad_velocity, (std::vector<double>{0, 0}));
}

TEST(Losses, BadInputs) {
  auto batch = make_batch();
  std::vector<double> v(batch.inputs.size(), 0.0), l(batch.rows(), 0.0);
  std::vector<double> short_v(v.size() - 1);
  EXPECT_THROW(flowception_loss<double>(batch, short_v, l), ShapeError);
  std::vector<double> short_l(l.size() + 1);
  EXPECT_THROW(flowception_loss<double>(batch, v, short_l), ShapeError);
  auto vn = v;
  vn[3] = NAN;
  EXPECT_THROW(flowception_loss<double>(batch, vn, l), ModelOutputError);
  auto ln = l;
  ln[1] = INFINITY;
  EXPECT_THROW(flowception_loss<double>(batch, v, ln), ModelOutputError);
  EXPECT_THROW(flowception_loss<double>(batch, v, l, -1.0), ConfigError);
}
