// Test scaffolding for the device algebra: a host model (the oracles) on ThrustFrames, copying
// frames in and velocities out around each call. The CUDA DiT reads device frames itself.
#pragma once

#include <cmath>
#include <thrust/copy.h>
#include <vector>

#include "flowception/algebra/host_algebra.hpp"
#include "flowception/algebra/thrust_algebra.hpp"
#include "flowception/model/velocity_model.hpp"

namespace fc_test {

template <class M, class T>
struct OnDeviceFrames {
  M& model;
  void evaluate(const flowception::ModelInput<flowception::ThrustFrames<T>>& in,
                flowception::ModelOutput<flowception::ThrustFrames<T>>& out) {
    using flowception::HostFrames;
    HostFrames<T> frames{std::vector<T>(in.frames.values.size()), in.frames.dim};
    thrust::copy(in.frames.values.begin(), in.frames.values.end(), frames.values.begin());
    flowception::ModelInput<HostFrames<T>> hin{frames, in.times, in.kinds, in.offsets, in.conditions, in.drop_condition};
    flowception::ModelOutput<HostFrames<T>> hout{
        HostFrames<T>{std::vector<T>(out.velocity.values.size()), out.velocity.dim}, out.log_rate};
    model.evaluate(hin, hout);
    thrust::copy(hout.velocity.values.begin(), hout.velocity.values.end(), out.velocity.values.begin());
    out.log_rate = hout.log_rate;
  }
};

/// A smooth, deterministic frame of n values (context frames and test buffers).
template <class T>
std::vector<T> ramp(std::size_t n, double scale) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<T>(scale * std::sin(0.37 * static_cast<double>(i) + 0.1));
  return v;
}

}  // namespace fc_test
