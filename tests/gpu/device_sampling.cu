// On a GPU: the coupled sampler and the full-sequence baseline with frames, velocities and noise
// in device memory (ThrustAlgebra, CUDA device system) give the host algebra's videos. Lengths,
// kinds and insertion steps are equal; frames agree to 1e-9 (double): the device's sin, cos and log
// in the Philox normal draws, and fused multiply-adds, may differ from the host's in the last bits.
// Without a CUDA device it prints "skipped: no CUDA device" and exits 77, which ctest reports as
// skipped (SKIP_RETURN_CODE), never as passed.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <thrust/copy.h>
#include <vector>

#include "flowception/algebra/thrust_algebra.hpp"
#include "flowception/baselines/baseline_sampler.hpp"
#include "flowception/oracles.hpp"
#include "flowception/sampler.hpp"
#include "support/on_device_frames.hpp"

using namespace flowception;

namespace {

static_assert(THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA, "this test runs the device code on a GPU");

using fc_test::OnDeviceFrames;

int failures = 0;

void compare(const SampleResult<double>& host, const SampleResult<double>& dev, const char* what) {
  if (host.videos.size() != dev.videos.size()) {
    std::printf("FAIL %s: %zu videos on the host, %zu on the device\n", what, host.videos.size(), dev.videos.size());
    ++failures;
    return;
  }
  double worst = 0;
  for (std::size_t v = 0; v < host.videos.size(); ++v) {
    const auto& h = host.videos[v];
    const auto& d = dev.videos[v];
    if (h.length() != d.length() || h.insertion_step != d.insertion_step || h.kinds != d.kinds) {
      std::printf("FAIL %s: video %zu has length %zu on the host, %zu on the device (or other insertions)\n", what, v,
                  h.length(), d.length());
      ++failures;
      return;
    }
    for (std::size_t i = 0; i < h.frames.size(); ++i) worst = std::fmax(worst, std::fabs(h.frames[i] - d.frames[i]));
  }
  if (!(worst <= 1e-9)) {
    std::printf("FAIL %s: frames differ by up to %g (tolerance 1e-9)\n", what, worst);
    ++failures;
    return;
  }
  std::printf("ok %s: %zu videos, same lengths and insertions, frames within %g\n", what, host.videos.size(), worst);
}

}  // namespace

int run_dit_parity();  // gpu/dit_parity.cu
#if defined(FLOWCEPTION_HAVE_NCCL)
int run_nccl_training(int* argc, char*** argv);  // gpu/nccl_training.cu
#endif

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("skipped: no CUDA device\n");
    return 77;
  }
  if (argc > 1 && std::string(argv[1]) == "dit") return run_dit_parity();
#if defined(FLOWCEPTION_HAVE_NCCL)
  if (argc > 1 && std::string(argv[1]) == "nccl") return run_nccl_training(&argc, &argv);
#endif
  const std::size_t D = 48;
  const auto P = LengthDistribution::uniform({6, 11, 17});
  LengthOracle<LinearKappa, GaussianContentOracle> oracle(P, LinearKappa{}, 2, true, TimeShift{},
                                                           GaussianContentOracle(0.3, 0.8));
  OnDeviceFrames<decltype(oracle), double> dev{oracle};
  std::vector<Prompt<double>> prompts;
  for (int i = 0; i < 48; ++i) prompts.push_back(Prompt<double>::unconditional(2));
  for (int i = 0; i < 16; ++i) prompts.push_back(Prompt<double>::image_to_video(fc_test::ramp<double>(D, 0.5 + i), 2));
  SamplerOptions o{TimeGrid::end_dense(60, 3.0)};
  o.frame_dim = D;
  o.seed = 21;
  compare(sample(oracle, LinearKappa{}, Heun{}, o, prompts),
          sample(dev, LinearKappa{}, Heun{}, o, prompts, ThrustAlgebra<double>{}), "coupled sampler, Heun");

  GaussianContentOracle content(-0.2, 0.6);
  OnDeviceFrames<GaussianContentOracle, double> dev_content{content};
  BaselineSamplerOptions b{TimeGrid::uniform(30)};
  b.frame_dim = D;
  b.seed = 4;
  const std::vector<Prompt<double>> full(8, Prompt<double>::unconditional(9));
  compare(sample_full_sequence(content, RungeKutta4{}, b, full),
          sample_full_sequence(dev_content, RungeKutta4{}, b, full, ThrustAlgebra<double>{}), "full sequence, RK4");
  return failures == 0 ? 0 : 1;
}
