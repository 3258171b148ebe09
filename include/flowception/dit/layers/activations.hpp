// Element-wise activations as functors (callable on host and device): GELU with the tanh
// approximation, and SiLU. Backward functors take the forward input.
#pragma once

#include <cmath>
#include <cstddef>

#include "flowception/dit/backend.hpp"

namespace flowception::dit::layers {

// Computed in the scalar type itself (float tanh/exp are several times cheaper than double).
template <class T>
struct GeluTanh {
  static constexpr T k = T(0.7978845608028654);  // sqrt(2/pi)
  static constexpr T c = T(0.044715);
  FLOWCEPTION_HOST_DEVICE static T value(T u) { return T(0.5) * u * (T(1) + std::tanh(k * (u + c * u * u * u))); }
  FLOWCEPTION_HOST_DEVICE static T derivative(T u) {
    const T th = std::tanh(k * (u + c * u * u * u));
    return T(0.5) * (T(1) + th) + T(0.5) * u * (T(1) - th * th) * k * (T(1) + T(3) * c * u * u);
  }
};

template <class T>
struct Silu {
  FLOWCEPTION_HOST_DEVICE static T value(T u) { return u / (T(1) + std::exp(-u)); }
  FLOWCEPTION_HOST_DEVICE static T derivative(T u) {
    const T s = T(1) / (T(1) + std::exp(-u));
    return s * (T(1) + u * (T(1) - s));
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
