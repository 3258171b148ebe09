// Element-wise activations as functors (callable on host and device): GELU with the tanh
// approximation, and SiLU. Backward functors take the forward input.
#pragma once

#include <cmath>
#include <algorithm>
#include <cstddef>
#include <type_traits>

#include <Eigen/Core>

#include "flowception/dit/backend.hpp"

namespace flowception::dit::layers {

/// GELU in its tanh form, 0.5·u·(1 + tanh(k·(u + c·u³))), the MLP activation of §6.
/// Computed in the scalar type itself (float tanh/exp are several times cheaper than double).
template <class T>
struct GeluTanh {
  static constexpr T k = T(0.7978845608028654);  ///< sqrt(2/pi)
  static constexpr T c = T(0.044715);            ///< Coefficient of the cubic term.
  /// GELU(u) = 0.5·u·(1 + tanh(k·(u + c·u³))).
  FLOWCEPTION_HOST_DEVICE static T value(T u) { return T(0.5) * u * (T(1) + std::tanh(k * (u + c * u * u * u))); }
  /// dGELU/du at u (the exact derivative of the tanh form).
  FLOWCEPTION_HOST_DEVICE static T derivative(T u) {
    const T th = std::tanh(k * (u + c * u * u * u));
    return T(0.5) * (T(1) + th) + T(0.5) * u * (T(1) - th * th) * k * (T(1) + T(3) * c * u * u);
  }
};

/// SiLU, u·σ(u): the activation of the time MLP, of the conditioning fed to adaLN and of the rate head.
template <class T>
struct Silu {
  /// SiLU(u) = u / (1 + e^(−u)).
  FLOWCEPTION_HOST_DEVICE static T value(T u) { return u / (T(1) + std::exp(-u)); }
  /// dSiLU/du = σ(u)·(1 + u·(1 − σ(u))).
  FLOWCEPTION_HOST_DEVICE static T derivative(T u) {
    const T s = T(1) / (T(1) + std::exp(-u));
    return s * (T(1) + u * (T(1) - s));
  }
};

/// Element kernel y[i] = Act::value(x[i]) (Act: GeluTanh or Silu of T).
template <class Act, class T>
struct ActivationForward {
  const T* x;  ///< Input, one value per item.
  T* y;        ///< Output, one value per item.
  /// Applies the activation to element i.
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t i) const { y[i] = Act::value(x[i]); }
};

/// Element kernel dx[i] = dy[i]·Act'(x[i]), from the forward input x.
template <class Act, class T>
struct ActivationBackward {
  const T* x;   ///< The forward input (pre-activation).
  const T* dy;  ///< ∂L/∂y.
  T* dx;        ///< ∂L/∂x, overwritten.
  /// Computes dx[i].
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t i) const { dx[i] = dy[i] * Act::derivative(x[i]); }
};

namespace detail_act {
inline constexpr std::ptrdiff_t kChunk = 4096;

/// GELU on the CPU with Eigen's vectorised tanh (the scalar libm tanh costs ~20 ns an element,
/// which made the MLP activations a quarter of a training step).
template <class T>
void gelu_forward_eigen(std::ptrdiff_t n, const T* x, T* y) {
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  CpuBackend::parallel_for((n + kChunk - 1) / kChunk, [=](std::ptrdiff_t c) {
    const std::ptrdiff_t b = c * kChunk, len = std::min(kChunk, n - b);
    Eigen::Map<const A> u(x + b, len);
    const T k = GeluTanh<T>::k, cc = GeluTanh<T>::c;
    Eigen::Map<A>(y + b, len) = T(0.5) * u * (T(1) + (k * (u + cc * u.cube())).tanh());
  }, 2);
}
template <class T>
void gelu_backward_eigen(std::ptrdiff_t n, const T* x, const T* dy, T* dx) {
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  CpuBackend::parallel_for((n + kChunk - 1) / kChunk, [=](std::ptrdiff_t c) {
    const std::ptrdiff_t b = c * kChunk, len = std::min(kChunk, n - b);
    Eigen::Map<const A> u(x + b, len), g(dy + b, len);
    const T k = GeluTanh<T>::k, cc = GeluTanh<T>::c;
    const A th = (k * (u + cc * u.cube())).tanh();
    Eigen::Map<A>(dx + b, len) =
        g * (T(0.5) * (T(1) + th) + T(0.5) * u * (T(1) - th.square()) * k * (T(1) + T(3) * cc * u.square()));
  }, 2);
}
}  // namespace detail_act

/// y = Act(x) over n elements in the backend's memory; GELU takes the vectorised Eigen path on
/// backends with kEigenKernels.
template <class Backend, template <class> class Act, class T>
void activation_forward(std::ptrdiff_t n, const T* x, T* y) {
  if constexpr (Backend::kEigenKernels && std::is_same_v<Act<T>, GeluTanh<T>>)
    detail_act::gelu_forward_eigen(n, x, y);
  else
    Backend::parallel_for(n, ActivationForward<Act<T>, T>{x, y});
}
/// dx = dy ⊙ Act'(x) over n elements (dx overwritten), x being the forward input.
template <class Backend, template <class> class Act, class T>
void activation_backward(std::ptrdiff_t n, const T* x, const T* dy, T* dx) {
  if constexpr (Backend::kEigenKernels && std::is_same_v<Act<T>, GeluTanh<T>>)
    detail_act::gelu_backward_eigen(n, x, dy, dx);
  else
    Backend::parallel_for(n, ActivationBackward<Act<T>, T>{x, dy, dx});
}

}  // namespace flowception::dit::layers
