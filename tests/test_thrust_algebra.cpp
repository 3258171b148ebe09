// ThrustAlgebra, the device FrameAlgebra, run on the CPU through Thrust's OpenMP device system
// (built by g++ with -DTHRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP and the CUDA toolkit's CCCL
// headers; the same source is what nvcc compiles for a GPU). Each operation equals HostAlgebra's bit
// for bit; the coupled sampler and the baselines give the same lengths, insertion steps and frames
// through either algebra; and the oracle tests of the host algebra pass through the device one.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <thrust/copy.h>
#include <vector>

#include "flowception/algebra/host_algebra.hpp"
#include "flowception/algebra/thrust_algebra.hpp"
#include "flowception/baselines/baseline_sampler.hpp"
#include "flowception/oracles.hpp"
#include "flowception/sampler.hpp"
#include "support/on_device_frames.hpp"

using namespace flowception;

namespace {

static_assert(THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_OMP, "this suite runs the device code on the CPU");

using fc_test::OnDeviceFrames;
using fc_test::ramp;

// The same frames in both algebras.
template <class T>
struct Pair {
  HostAlgebra<T> ha;
  ThrustAlgebra<T> ta;
  HostFrames<T> h;
  ThrustFrames<T> d;
  Pair(std::size_t frames, std::size_t dim, double scale) {
    ha.resize(h, frames, dim);
    h.values = ramp<T>(frames * dim, scale);
    ta.resize(d, frames, dim);
    thrust::copy(h.values.begin(), h.values.end(), d.values.begin());
  }
  void expect_equal(const char* what) const {
    ASSERT_EQ(ta.frames(d), ha.frames(h)) << what;
    ASSERT_EQ(ta.dim(d), ha.dim(h)) << what;
    const std::vector<T> got = ta.download(d);
    ASSERT_EQ(got.size(), h.values.size()) << what;
    for (std::size_t i = 0; i < got.size(); ++i)
      ASSERT_EQ(got[i], h.values[i]) << what << ": element " << i;  // bit for bit: the same expression
  }
};

}  // namespace

TEST(ThrustAlgebra, EveryOperationEqualsHostAlgebra) {
  const std::size_t F = 7, D = 13;
  Pair<float> p(F, D, 1.5);
  p.expect_equal("upload");

  Pair<float> q(F, D, -0.75);
  const std::vector<double> a{0.5, 0.0, -1.25, 3.0, 0.0, 1e-3, -2.0};
  p.ha.axpy_frames(p.h, a, q.h);
  p.ta.axpy_frames(p.d, a, q.d);
  p.expect_equal("axpy_frames");

  const std::vector<double> s{2.0, -0.5, 0.0, 1.0, 7.25, -3.0, 0.125};
  p.ha.scale_frames(p.h, s);
  p.ta.scale_frames(p.d, s);
  p.expect_equal("scale_frames");

  HostFrames<float> hc;
  ThrustFrames<float> dc;
  p.ha.copy(hc, p.h);
  p.ta.copy(dc, p.d);
  ASSERT_EQ(p.ta.download(dc), hc.values);

  // Gather to 9 rows, two of them left as they were (row −1).
  const std::vector<std::int64_t> rows{6, 0, -1, 3, 3, 5, -1, 1, 2};
  Pair<float> g(rows.size(), D, 0.25);  // the rows −1 keep these values in both
  g.ha.gather_frames(g.h, p.h, rows);
  g.ta.gather_frames(g.d, p.d, rows);
  g.expect_equal("gather_frames");

  // Noise into rows 1, 4 and 8 from three streams: the same Philox values on both.
  const std::vector<std::size_t> dst{1, 4, 8};
  const std::vector<std::uint64_t> streams{11, 2, 987654321};
  g.ha.fill_normal(g.h, dst, streams, 42);
  g.ta.fill_normal(g.d, dst, streams, 42);
  g.expect_equal("fill_normal");

  const std::vector<std::size_t> up{0, 7};
  const std::vector<float> host = ramp<float>(2 * D, 9.0);
  g.ha.upload_frames(g.h, up, host);
  g.ta.upload_frames(g.d, up, host);
  g.expect_equal("upload_frames");
}

TEST(ThrustAlgebra, DoublePrecisionAndAZeroCoefficientLeavesNonFiniteFramesAlone) {
  Pair<double> p(3, 5, 1.0);
  Pair<double> x(3, 5, 2.0);
  // Frame 1 of x is NaN and its coefficient is 0: y_1 must stay finite, as in HostAlgebra.
  std::vector<double> bad = x.h.values;
  for (std::size_t e = 5; e < 10; ++e) bad[e] = std::numeric_limits<double>::quiet_NaN();
  x.h.values = bad;
  thrust::copy(bad.begin(), bad.end(), x.d.values.begin());
  const std::vector<double> a{1.0, 0.0, -1.0};
  p.ha.axpy_frames(p.h, a, x.h);
  p.ta.axpy_frames(p.d, a, x.d);
  p.expect_equal("axpy with a NaN frame under a zero coefficient");
  EXPECT_FALSE(p.ta.first_nonfinite_frame(p.d).has_value());
  EXPECT_EQ(p.ta.first_nonfinite_frame(x.d), std::optional<std::size_t>(1));
}

TEST(ThrustAlgebra, FindsTheFirstNonFiniteFrame) {
  for (const float v : {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                        std::numeric_limits<float>::quiet_NaN()}) {
    Pair<float> p(5, 4, 1.0);
    EXPECT_FALSE(p.ta.first_nonfinite_frame(p.d).has_value());
    p.d.values[4 * 3 + 2] = v;
    p.d.values[4 * 4 + 0] = v;
    p.h.values[4 * 3 + 2] = v;
    p.h.values[4 * 4 + 0] = v;
    EXPECT_EQ(p.ta.first_nonfinite_frame(p.d), std::optional<std::size_t>(3)) << v;
    EXPECT_EQ(p.ta.first_nonfinite_frame(p.d), p.ha.first_nonfinite_frame(p.h)) << v;
  }
  Pair<float> big(2, 3, 1.0);
  big.d.values[5] = std::numeric_limits<float>::max();  // finite, however large
  EXPECT_FALSE(big.ta.first_nonfinite_frame(big.d).has_value());
}

TEST(ThrustAlgebra, BadShapesAreErrorsThatNameTheOperation) {
  Pair<float> p(4, 3, 1.0);
  Pair<float> small(2, 3, 1.0);
  const std::vector<double> three{1, 2, 3};
  auto expect = [](auto fn, const char* fragment) {
    try {
      fn();
      ADD_FAILURE() << "no error; expected one containing '" << fragment << "'";
    } catch (const ShapeError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect([&] { p.ta.axpy_frames(p.d, three, p.d); }, "axpy_frames: coefficient count 3 != frame count 4");
  const std::vector<double> four{1, 2, 3, 4};
  expect([&] { p.ta.axpy_frames(p.d, four, small.d); }, "axpy_frames: x has 6 values, y has 12");
  expect([&] { p.ta.scale_frames(p.d, three); }, "scale_frames: coefficient count 3");
  const std::vector<std::int64_t> rows{0, 4};
  expect([&] { p.ta.gather_frames(small.d, p.d, rows); }, "gather_frames: row 4 of a buffer with 4 frames");
  expect([&] { p.ta.gather_frames(p.d, p.d, std::vector<std::int64_t>{0}); }, "different buffers");
  const std::vector<std::size_t> dst{4};
  const std::vector<std::uint64_t> one{1}, two{1, 2};
  expect([&] { p.ta.fill_normal(p.d, dst, one, 1); }, "fill_normal: row 4 of a buffer with 4 frames");
  expect([&] { p.ta.fill_normal(p.d, std::vector<std::size_t>{0}, two, 1); }, "fill_normal: 1 rows, 2 streams");
  expect([&] { p.ta.upload_frames(p.d, std::vector<std::size_t>{0}, std::vector<float>(2)); },
         "upload_frames: 2 values for 1 frames of 3");
}

// ---- The samplers through the device algebra ------------------------------------------------

namespace {

template <class T>
void expect_same_videos(const SampleResult<T>& host, const SampleResult<T>& dev) {
  ASSERT_EQ(host.videos.size(), dev.videos.size());
  for (std::size_t v = 0; v < host.videos.size(); ++v) {
    ASSERT_EQ(host.videos[v].length(), dev.videos[v].length()) << "video " << v;
    EXPECT_EQ(host.videos[v].insertion_step, dev.videos[v].insertion_step) << "video " << v;
    EXPECT_EQ(host.videos[v].kinds, dev.videos[v].kinds) << "video " << v;
    ASSERT_EQ(host.videos[v].frames, dev.videos[v].frames) << "video " << v;  // bit for bit
  }
}

SamplerOptions options(TimeGrid grid, std::size_t dim, std::uint64_t seed) {
  SamplerOptions o{std::move(grid)};
  o.frame_dim = dim;
  o.seed = seed;
  return o;
}

}  // namespace

TEST(ThrustAlgebraSampling, CoupledSamplerGivesTheHostAlgebrasVideosWithAndWithoutContext) {
  const std::size_t D = 6;
  const auto P = LengthDistribution::uniform({5, 9, 14});
  LengthOracle<LinearKappa, GaussianContentOracle> oracle(P, LinearKappa{}, 2, true, TimeShift{},
                                                           GaussianContentOracle(0.3, 0.8));
  OnDeviceFrames<decltype(oracle), double> dev{oracle};
  std::vector<Prompt<double>> prompts;
  for (int i = 0; i < 12; ++i) prompts.push_back(Prompt<double>::unconditional(2));
  for (int i = 0; i < 6; ++i) prompts.push_back(Prompt<double>::image_to_video(ramp<double>(D, 0.5 + i), 2));
  for (int i = 0; i < 6; ++i)
    prompts.push_back(Prompt<double>::continuation({ramp<double>(D, 1.0), ramp<double>(D, -1.0 - i)}, 2));
  for (const bool heun : {false, true}) {
    auto o = options(TimeGrid::end_dense(40, 3.0), D, 9);
    SampleResult<double> h, d;
    if (heun) {
      h = sample(oracle, LinearKappa{}, Heun{}, o, prompts);
      d = sample(dev, LinearKappa{}, Heun{}, o, prompts, ThrustAlgebra<double>{});
    } else {
      h = sample(oracle, LinearKappa{}, RungeKutta4{}, o, prompts);
      d = sample(dev, LinearKappa{}, RungeKutta4{}, o, prompts, ThrustAlgebra<double>{});
    }
    SCOPED_TRACE(heun ? "Heun" : "RK4");
    expect_same_videos(h, d);
  }
}

TEST(ThrustAlgebraSampling, BaselinesGiveTheHostAlgebrasVideos) {
  const std::size_t D = 4;
  GaussianContentOracle oracle(-0.2, 0.6);
  OnDeviceFrames<GaussianContentOracle, float> dev{oracle};
  BaselineSamplerOptions o{TimeGrid::uniform(20)};
  o.frame_dim = D;
  o.seed = 5;
  std::vector<Prompt<float>> full;
  for (int i = 0; i < 5; ++i) full.push_back(Prompt<float>::unconditional(6 + i));
  expect_same_videos(sample_full_sequence(oracle, Heun{}, o, full),
                     sample_full_sequence(dev, Heun{}, o, full, ThrustAlgebra<float>{}));
  std::vector<Prompt<float>> ar(4, Prompt<float>{});
  const std::vector<std::size_t> lengths{3, 5, 2, 4};
  expect_same_videos(sample_autoregressive(oracle, Euler{}, o, ar, lengths),
                     sample_autoregressive(dev, Euler{}, o, ar, lengths, ThrustAlgebra<float>{}));
}

// The host algebra's oracle tests, through the device algebra (tolerances as in test_sampler).
TEST(ThrustAlgebraSampling, LengthOracleLawOnTheEndDenseGrid) {
  const auto P = LengthDistribution::uniform({15, 20, 25, 30});
  LengthOracle<LinearKappa> oracle(P, LinearKappa{}, 3, true);
  OnDeviceFrames<decltype(oracle), float> dev{oracle};
  const std::vector<Prompt<float>> prompts(4000, Prompt<float>::unconditional(3));
  const auto r = sample(dev, LinearKappa{}, Euler{}, options(TimeGrid::end_dense(100, 3.0), 1, 3), prompts,
                        ThrustAlgebra<float>{});
  std::map<std::size_t, std::size_t> lengths;
  for (const auto& v : r.videos) ++lengths[v.length()];
  // Exact sampler: TV 0.023 at N = 100 (README); 4000 draws add about 0.02 of sampling noise.
  EXPECT_LT(total_variation(P, lengths), 0.05);
}

TEST(ThrustAlgebraSampling, GaussianOracleMeanAndVariance) {
  const double mu = 0.7, sigma = 0.5;
  const std::size_t D = 16;
  const auto P = LengthDistribution::uniform({8, 12});
  LengthOracle<LinearKappa, GaussianContentOracle> oracle(P, LinearKappa{}, 2, true, TimeShift{},
                                                           GaussianContentOracle(mu, sigma));
  OnDeviceFrames<decltype(oracle), double> dev{oracle};
  const std::vector<Prompt<double>> prompts(300, Prompt<double>::unconditional(2));
  const auto r = sample(dev, LinearKappa{}, RungeKutta4{}, options(TimeGrid::uniform(40), D, 5), prompts,
                        ThrustAlgebra<double>{});
  double s = 0, s2 = 0;
  std::size_t n = 0;
  for (const auto& v : r.videos)
    for (const double x : v.frames) {
      s += x;
      s2 += x * x;
      ++n;
    }
  ASSERT_GT(n, 20000u);
  const double m = s / n, var = s2 / n - m * m;
  // Independent N(μ, σ²) elements up to the solver's error (~1e-3): 5 sigma of mean and variance.
  EXPECT_NEAR(m, mu, 5 * sigma / std::sqrt(static_cast<double>(n)));
  EXPECT_NEAR(var, sigma * sigma, 5 * sigma * sigma * std::sqrt(2.0 / n));
}
