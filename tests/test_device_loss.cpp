// The losses on the device (train/device_loss.hpp) against the host losses (flowception_loss), on
// the CPU backend and, as test_device_loss_thrust, on the device backend through Thrust's OpenMP
// system: on real training batches (the §3 builder on colour videos, every task), with and without
// the normalisation of a batch split across ranks, the gradients equal the host's bit for bit and
// the losses agree within 1e-12 relative (only the order of the double sums differs); empty masks
// give zero; a non-finite velocity or log-rate anywhere is a ModelOutputError naming the frame.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "flowception/train/device_loss.hpp"
#include "flowception/training.hpp"
#include "support/colour_videos.hpp"
#include "support/expect_error.hpp"
#if defined(FLOWCEPTION_TEST_THRUST_BACKEND)
#include "flowception/dit/thrust_backend.hpp"
using Backend = flowception::dit::ThrustBackend;
#else
#include "flowception/dit/backend.hpp"
using Backend = flowception::dit::CpuBackend;
#endif

using namespace flowception;

namespace {

TrainingBatch<float> batch(std::uint64_t seed, std::size_t videos) {
  fc_test::ColourVideos data{50, 4, 2, 5};
  TrainingSamplerOptions s;
  s.n_start = 2;
  s.seed = seed;
  s.tasks = TaskMixture{1, 1, 1, 1};
  ExtendedTimeSampler<LinearKappa> builder(LinearKappa{}, s);
  std::vector<TrainingSample<float>> samples;
  for (std::size_t i = 0; i < videos; ++i) {
    const auto v = data.video(i);
    samples.push_back(builder.sample<float>(v.frames, v.frame_size(), i, kNoCondition));
  }
  return pack(samples);
}

template <class T>
typename Backend::template buffer<T> up(const std::vector<T>& h) {
  typename Backend::template buffer<T> d(h.size());
  if (!h.empty()) Backend::upload(h.data(), h.size(), Backend::raw(d));
  return d;
}
template <class T>
std::vector<T> down(const T* p, std::size_t n) {
  std::vector<T> h(n);
  if (n) Backend::download(p, n, h.data());
  return h;
}

/// Random outputs for the batch: velocities near the targets, log-rates around 0.
void outputs(const TrainingBatch<float>& b, std::uint64_t seed, std::vector<float>& v, std::vector<float>& ell) {
  random::Stream rng(seed, 1);
  v.resize(b.inputs.size());
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = b.targets[i] + static_cast<float>(0.3 * rng.normal());
  ell.resize(b.rows());
  for (auto& x : ell) x = static_cast<float>(0.8 * rng.normal());
}

void compare(const TrainingBatch<float>& b, const std::vector<float>& v, const std::vector<float>& ell, double w,
             LossNormalisation norm) {
  const std::vector<double> ell_d(ell.begin(), ell.end());
  const LossResult<float> host = flowception_loss<float>(b, v, ell_d, w, norm);
  train::DeviceLoss<Backend> dev;
  const auto vd = up(v), ld = up(ell);
  const LossResult<float> got = dev.compute(b, Backend::raw(vd), Backend::raw(ld), w, norm);
  EXPECT_NEAR(got.velocity, host.velocity, 1e-12 * std::fabs(host.velocity) + 1e-300);
  EXPECT_NEAR(got.rate, host.rate, 1e-12 * std::fabs(host.rate) + 1e-300);
  EXPECT_NEAR(got.total, host.total, 1e-12 * std::fabs(host.total) + 1e-300);
  EXPECT_EQ(got.flowing_frames, host.flowing_frames);
  EXPECT_EQ(got.rate_frames, host.rate_frames);
  EXPECT_TRUE(got.grad_velocity.empty());  // the gradients stay on the device
  // Bit for bit: the host loss's expressions, and the cast the DiT's backward makes of ∂L/∂ℓ.
  EXPECT_EQ(down(dev.grad_velocity(), v.size()), host.grad_velocity);
  std::vector<float> host_dl(host.grad_log_rate.size());
  for (std::size_t r = 0; r < host_dl.size(); ++r) host_dl[r] = static_cast<float>(host.grad_log_rate[r]);
  EXPECT_EQ(down(dev.grad_log_rate(), ell.size()), host_dl);
}

}  // namespace

TEST(DeviceLoss, EqualsTheHostLossOnTrainingBatches) {
  for (std::uint64_t seed : {1, 2, 3}) {
    const auto b = batch(seed, 9);
    ASSERT_GT(b.rows(), 10u);
    std::vector<float> v, ell;
    outputs(b, seed, v, ell);
    for (double w : {1.0, 0.25}) compare(b, v, ell, w, {});
  }
}

TEST(DeviceLoss, EqualsTheHostLossWithTheWholeBatchsDenominators) {
  const auto b = batch(4, 5);
  std::vector<float> v, ell;
  outputs(b, 4, v, ell);
  std::size_t flowing = 0, rated = 0;
  for (auto m : b.flow_mask) flowing += m;
  for (auto m : b.rate_mask) rated += m;
  compare(b, v, ell, 1.0, {flowing * 3, rated * 2});
}

TEST(DeviceLoss, EmptyMasksGiveZeroLossesAndGradients) {
  auto b = batch(5, 3);
  std::fill(b.flow_mask.begin(), b.flow_mask.end(), 0);
  std::fill(b.rate_mask.begin(), b.rate_mask.end(), 0);
  std::vector<float> v, ell;
  outputs(b, 5, v, ell);
  compare(b, v, ell, 1.0, {});
  train::DeviceLoss<Backend> dev;
  const auto vd = up(v), ld = up(ell);
  const auto r = dev.compute(b, Backend::raw(vd), Backend::raw(ld));
  EXPECT_EQ(r.total, 0.0);
  for (float g : down(dev.grad_velocity(), v.size())) EXPECT_EQ(g, 0.0f);
}

TEST(DeviceLoss, NonFiniteOutputsAreNamed) {
  const auto b = batch(6, 4);
  std::vector<float> v, ell;
  outputs(b, 6, v, ell);
  train::DeviceLoss<Backend> dev;
  {
    auto bad = v;
    bad[b.dim * 2 + 5] = std::numeric_limits<float>::quiet_NaN();
    bad[b.dim * 3 + 1] = std::numeric_limits<float>::infinity();
    const auto vd = up(bad), ld = up(ell);
    fc_test::expect_error<ModelOutputError>([&] { dev.compute(b, Backend::raw(vd), Backend::raw(ld)); },
                                            "non-finite velocity nan at frame 2, element 5");
  }
  {
    auto bad = ell;
    bad[b.rows() - 1] = -std::numeric_limits<float>::infinity();
    const auto vd = up(v), ld = up(bad);
    fc_test::expect_error<ModelOutputError>([&] { dev.compute(b, Backend::raw(vd), Backend::raw(ld)); },
                                            "non-finite log-rate -inf at frame " + std::to_string(b.rows() - 1));
  }
  const auto vd = up(v), ld = up(ell);
  fc_test::expect_error<ConfigError>([&] { dev.compute(b, Backend::raw(vd), Backend::raw(ld), -1.0); },
                                     "rate loss weight");
  fc_test::expect_error<ConfigError>([&] { dev.compute(b, Backend::raw(vd), Backend::raw(ld), 1.0, {1, 0}); },
                                     "loss normalisation");
}
