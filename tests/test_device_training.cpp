// Training and sampling the DiT on the device backend (ThrustBackend), run on the CPU through
// Thrust's OpenMP device system (label device_omp): a training step equals CpuBackend's within
// float tolerance, a device run resumed from a checkpoint equals the uninterrupted run bit for
// bit, checkpoints move between backends in both directions, sampling with the DiT through the
// device algebra gives the host's lengths and frames, and impossible settings are refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "flowception/algebra/thrust_algebra.hpp"
#include "flowception/dit/thrust_backend.hpp"
#include "flowception/sampler.hpp"
#include "flowception/train/trainer.hpp"
#include "support/colour_videos.hpp"
#include "support/expect_error.hpp"

using namespace flowception;
namespace fs = std::filesystem;
using dit::CpuBackend;
using dit::ThrustBackend;

namespace {

/// Videos of 2..5 frames of one random colour each (3×4×4).
struct ColourVideos : fc_test::ColourVideos {
  ColourVideos() : fc_test::ColourVideos{100, 4, 2, 4} {}
};

dit::DitConfig config() {
  dit::DitConfig c;
  c.channels = 3;
  c.height = 4;
  c.width = 4;
  c.patch = 2;
  c.depth = 2;
  c.width_hidden = 16;
  c.heads = 2;
  c.mlp_ratio = 2;
  c.frequency_dim = 16;
  c.num_classes = 2;
  c.name = "device-test";
  c.validate();
  return c;
}

train::TrainerOptions options() {
  train::TrainerOptions o;
  o.batch_videos = 4;
  o.lr = train::LrSchedule::constant(1e-3, 2);
  o.ema_decay = 0.9;
  o.seed = 3;
  return o;
}

ExtendedTimeSampler<LinearKappa> builder() {
  TrainingSamplerOptions s;
  s.n_start = 2;
  s.seed = 3;
  s.tasks = TaskMixture{1, 1, 1, 0};
  return ExtendedTimeSampler<LinearKappa>(LinearKappa{}, s);
}

template <class B>
using TrainerOn = train::Trainer<ColourVideos, ExtendedTimeSampler<LinearKappa>, B>;

fs::path temp_dir(const char* name) {
  auto d = fs::temp_directory_path() / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

}  // namespace

// The same three steps on both backends. The kernels differ only in summation order and in the
// GELU (Eigen's vectorised tanh on the CPU, std::tanh in the functor), so losses agree to 1e-5
// relative and weights, after three AdamW steps of size ~1e-3, to 2e-5.
TEST(DeviceTraining, StepsEqualCpuBackendWithinFloatTolerance) {
  ColourVideos data;
  dit::DiT<float, CpuBackend> cpu(config(), 1);
  dit::DiT<float, ThrustBackend> dev(config(), 1);
  ASSERT_EQ(cpu.host_parameters(), dev.host_parameters());  // the same initialisation, bit for bit
  TrainerOn<CpuBackend> tc(cpu, data, builder(), options());
  TrainerOn<ThrustBackend> td(dev, data, builder(), options());
  for (int k = 0; k < 3; ++k) {
    const auto a = tc.step(), b = td.step();
    EXPECT_EQ(a.frames, b.frames);
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_NEAR(a.loss, b.loss, 1e-5 * std::fabs(a.loss)) << "step " << k;
    EXPECT_NEAR(a.grad_norm, b.grad_norm, 1e-4 * a.grad_norm) << "step " << k;
    EXPECT_EQ(a.flops.total(), b.flops.total());
  }
  EXPECT_EQ(tc.steps_done(), td.steps_done());
  EXPECT_LT(max_abs_diff(cpu.host_parameters(), dev.host_parameters()), 2e-5);
  EXPECT_LT(max_abs_diff(tc.ema_parameters(), td.ema_parameters()), 2e-5);
  // The weights did move (a test of equality between two frozen models would pass trivially).
  dit::DiT<float, CpuBackend> init(config(), 1);
  EXPECT_GT(max_abs_diff(init.host_parameters(), dev.host_parameters()), 1e-4);
}

// Device state (weights, moments, EMA, counters) goes through the one checkpoint format and
// comes back exactly: a resumed device run equals the uninterrupted one bit for bit.
TEST(DeviceTraining, ResumedDeviceRunEqualsUninterruptedRun) {
  const auto dir = temp_dir("flowception_device_resume");
  ColourVideos data;
  dit::DiT<float, ThrustBackend> a(config(), 1), b(config(), 1);
  TrainerOn<ThrustBackend> ta(a, data, builder(), options());
  for (int k = 0; k < 4; ++k) ta.step();
  TrainerOn<ThrustBackend> tb(b, data, builder(), options());
  for (int k = 0; k < 2; ++k) tb.step();
  tb.save_checkpoint(dir / "half.safetensors");
  dit::DiT<float, ThrustBackend> c(config(), 99);
  TrainerOn<ThrustBackend> tc(c, data, builder(), options());
  tc.load_checkpoint(dir / "half.safetensors");
  EXPECT_EQ(tc.steps_done(), 2);
  for (int k = 0; k < 2; ++k) tc.step();
  EXPECT_EQ(a.host_parameters(), c.host_parameters());
  EXPECT_EQ(ta.ema_parameters(), tc.ema_parameters());
  EXPECT_EQ(ta.ema().update_count(), tc.ema().update_count());
  EXPECT_EQ(ta.ema().update_count(), 4);
}

// GPU → CPU: a device checkpoint loads on the CPU with the same weights (EMA and trained), and
// CPU → GPU: a CPU checkpoint resumes on the device and continues like the CPU run.
TEST(DeviceTraining, CheckpointsMoveBetweenBackendsInBothDirections) {
  const auto dir = temp_dir("flowception_device_checkpoints");
  ColourVideos data;
  dit::DiT<float, ThrustBackend> dev(config(), 1);
  TrainerOn<ThrustBackend> td(dev, data, builder(), options());
  for (int k = 0; k < 2; ++k) td.step();
  td.save_checkpoint(dir / "dev.safetensors");
  EXPECT_EQ(train::load_model<CpuBackend>(dir / "dev.safetensors", false).host_parameters(), dev.host_parameters());
  EXPECT_EQ(train::load_model<CpuBackend>(dir / "dev.safetensors", true).host_parameters(), td.ema_parameters());
  EXPECT_EQ(train::load_model<ThrustBackend>(dir / "dev.safetensors", true).host_parameters(), td.ema_parameters());

  dit::DiT<float, CpuBackend> cpu(config(), 1), cpu_back(config(), 1);
  TrainerOn<CpuBackend> tc(cpu, data, builder(), options());
  for (int k = 0; k < 2; ++k) tc.step();
  tc.save_checkpoint(dir / "cpu.safetensors");
  dit::DiT<float, ThrustBackend> resumed(config(), 5);
  TrainerOn<ThrustBackend> tr(resumed, data, builder(), options());
  tr.load_checkpoint(dir / "cpu.safetensors");
  EXPECT_EQ(resumed.host_parameters(), cpu.host_parameters());
  EXPECT_EQ(tr.ema_parameters(), tc.ema_parameters());
  for (int k = 0; k < 2; ++k) {
    const auto a = tc.step(), b = tr.step();
    EXPECT_NEAR(a.loss, b.loss, 1e-5 * std::fabs(a.loss));
  }
  EXPECT_LT(max_abs_diff(cpu.host_parameters(), resumed.host_parameters()), 2e-5);
  // And the device run's checkpoint loads back into a CPU trainer.
  tr.save_checkpoint(dir / "dev2.safetensors");
  TrainerOn<CpuBackend> tc2(cpu_back, data, builder(), options());
  tc2.load_checkpoint(dir / "dev2.safetensors");
  EXPECT_EQ(cpu_back.host_parameters(), resumed.host_parameters());
  EXPECT_EQ(tc2.steps_done(), 4);
}

// The losses run on the device (train/device_loss.hpp): a training step copies only the loss
// sums to the host, 32 bytes, where the host losses moved the velocities and log-rates down and
// their gradients up: 2·frames·(frame size + 1)·4 bytes.
TEST(DeviceTraining, AStepMovesOnlyScalarsToTheHost) {
  ColourVideos data;
  dit::DiT<float, ThrustBackend> dev(config(), 1);
  TrainerOn<ThrustBackend> t(dev, data, builder(), options());
  t.step();  // buffers allocated
  const auto before = device::transfer_counts();
  const auto s = t.step();
  const auto after = device::transfer_counts();
  const std::uint64_t down = after.to_host_bytes - before.to_host_bytes;
  const std::uint64_t copies = after.to_host_copies - before.to_host_copies;
  const double host_loss_bytes = 2.0 * static_cast<double>(s.frames) * (static_cast<double>(config().frame_dim()) + 1) * 4;
  std::printf("one step of %zu frames: %llu bytes in %llu copies to the host (the host losses moved %.0f bytes "
              "down and up); %llu bytes to the device\n",
              s.frames, static_cast<unsigned long long>(down), static_cast<unsigned long long>(copies), host_loss_bytes,
              static_cast<unsigned long long>(after.to_device_bytes - before.to_device_bytes));
  EXPECT_EQ(down, sizeof(train::device_kernels::LossSums));
  EXPECT_EQ(copies, 1u);
  EXPECT_GT(s.frames, 8u);
}

TEST(DeviceTraining, ImpossibleSettingsAreRefused) {
  ColourVideos data;
  dit::DiT<float, ThrustBackend> dev(config(), 1);
  auto o = options();
  o.replicas = 2;
  fc_test::expect_error<ConfigError>([&] { TrainerOn<ThrustBackend>(dev, data, builder(), o); }, "replicas must be 1");
  std::vector<float> wrong(dev.parameter_buffer_size() + 1);
  fc_test::expect_error<ShapeError>([&] { dev.set_parameters(wrong); }, "set_parameters");
  // A model whose weights and gradients alone exceed the device's memory (here the machine's
  // RAM: about 3.9·10¹⁰ parameters, 310 GB, within the configuration's limit of 2^36
  // parameters) is refused before anything is allocated.
  auto huge = config();
  huge.width_hidden = 16384;
  huge.heads = 64;
  huge.depth = 12;
  huge.name = "huge";
  huge.validate();
  fc_test::expect_error<ConfigError>([&] { dit::DiT<float, ThrustBackend> m(huge, 0); },
                                     "DiT 'huge' is too large for thrust-omp memory");
}

// The DiT samples with frames, velocities and noise on the device (ThrustAlgebra) and gives the
// host's videos: the same lengths and insertion steps, frames within 1e-9 (double precision; the
// GELU and summation orders differ in the last bits).
TEST(DeviceSampling, DitThroughTheDeviceAlgebraGivesTheHostVideos) {
  auto cfg = config();
  cfg.num_classes = 0;
  dit::DiT<double, CpuBackend> host(cfg, 4);
  dit::DiT<double, ThrustBackend> dev(cfg, 4);
  random::Stream rng(8, 8);
  auto w = host.host_parameters();
  for (auto& x : w) x = 0.2 * rng.normal();
  host.set_parameters(w);
  dev.set_parameters(w);
  SamplerOptions o{TimeGrid::uniform(8)};
  o.frame_dim = cfg.frame_dim();
  o.max_frames = 24;
  o.seed = 11;
  std::vector<Prompt<double>> prompts;
  for (int i = 0; i < 6; ++i) prompts.push_back(Prompt<double>::unconditional(2));
  prompts.push_back(Prompt<double>::image_to_video(std::vector<double>(cfg.frame_dim(), 0.3), 2));
  const auto h = sample(host, LinearKappa{}, Heun{}, o, prompts);
  const auto d = sample(dev, LinearKappa{}, Heun{}, o, prompts, ThrustAlgebra<double>{});
  ASSERT_EQ(h.videos.size(), d.videos.size());
  std::size_t longer = 0;
  for (std::size_t v = 0; v < h.videos.size(); ++v) {
    ASSERT_EQ(h.videos[v].length(), d.videos[v].length()) << "video " << v;
    EXPECT_EQ(h.videos[v].insertion_step, d.videos[v].insertion_step);
    longer += h.videos[v].length() > 2 ? 1 : 0;
    for (std::size_t i = 0; i < h.videos[v].frames.size(); ++i)
      ASSERT_NEAR(h.videos[v].frames[i], d.videos[v].frames[i], 1e-9) << "video " << v << " value " << i;
  }
  EXPECT_GT(longer, 0u);  // insertions happened, so the rate head's decisions were compared
}
