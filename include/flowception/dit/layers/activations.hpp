// Element-wise activations as functors (callable on host and device): GELU with the tanh
// approximation, and SiLU. Backward functors take the forward input.
#pragma once

#include <cmath>
#include <cstddef>

#include "flowception/dit/backend.hpp"

namespace flowception::dit::layers {

template <class T>
struct GeluTanh {
  static constexpr double k = 0.7978845608028654;  // sqrt(2/pi)
  static constexpr double c = 0.044715;
  FLOWCEPTION_HOST_DEVICE static T value(T x) {
    const double u = static_cast<double>(x);
    return static_cast<T>(0.5 * u * (1.0 + std::tanh(k * (u + c * u * u * u))));
  }
  FLOWCEPTION_HOST_DEVICE static T derivative(T x) {
    const double u = static_cast<double>(x);
    const double th = std::tanh(k * (u + c * u * u * u));
    return static_cast<T>(0.5 * (1.0 + th) + 0.5 * u * (1.0 - th * th) * k * (1.0 + 3.0 * c * u * u));
  }
};

template <class T>
struct Silu {
  FLOWCEPTION_HOST_DEVICE static T value(T x) {
    const double u = static_cast<double>(x);
    return static_cast<T>(u / (1.0 + std::exp(-u)));
  }
  FLOWCEPTION_HOST_DEVICE static T derivative(T x) {
    const double u = static_cast<double>(x);
    const double s = 1.0 / (1.0 + std::exp(-u));
    return static_cast<T>(s * (1.0 + u * (1.0 - s)));
  }
};

template <class Act, class T>
struct ActivationForward {
  const T* x;
  T* y;
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t i) const { y[i] = Act::value(x[i]); }
};

template <class Act, class T>
struct ActivationBackward {
  const T* x;
  const T* dy;
  T* dx;
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t i) const { dx[i] = dy[i] * Act::derivative(x[i]); }
};

template <class Backend, template <class> class Act, class T>
void activation_forward(std::ptrdiff_t n, const T* x, T* y) {
  Backend::parallel_for(n, ActivationForward<Act<T>, T>{x, y});
}
template <class Backend, template <class> class Act, class T>
void activation_backward(std::ptrdiff_t n, const T* x, const T* dy, T* dx) {
  Backend::parallel_for(n, ActivationBackward<Act<T>, T>{x, dy, dx});
}

}  // namespace flowception::dit::layers
