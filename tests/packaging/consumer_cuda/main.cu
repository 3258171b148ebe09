// Compiles the coupled sampler on the device algebra with nvcc against the installed package.
// Without a CUDA device it only says so: this test is about compiling and linking.
#include <cuda_runtime.h>

#include <cstdio>
#include <flowception/algebra/thrust_algebra.hpp>
#include <flowception/oracles.hpp>
#include <flowception/sampler.hpp>

namespace fc = flowception;

// A constant velocity field with a fixed log-rate, written for device frames.
struct Drift {
  void evaluate(const fc::ModelInput<fc::ThrustFrames<float>>& in, fc::ModelOutput<fc::ThrustFrames<float>>& out) {
    thrust::fill(out.velocity.values.begin(), out.velocity.values.end(), 1.0f);
    for (std::size_t f = 0; f < in.total_frames(); ++f) out.log_rate[f] = -3.0;
  }
};

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("consumer_cuda: compiled and linked; no CUDA device, so nothing ran on one\n");
    return 0;
  }
  Drift model;
  fc::SamplerOptions o{fc::TimeGrid::end_dense(20, 3.0)};
  o.frame_dim = 4;
  auto r = fc::sample(model, fc::LinearKappa{}, fc::Heun{}, o,
                      std::vector<fc::Prompt<float>>(3, fc::Prompt<float>::unconditional(2)), fc::ThrustAlgebra<float>{});
  std::printf("consumer_cuda: %zu videos sampled on the device\n", r.videos.size());
  return r.videos.size() == 3 ? 0 : 1;
}
