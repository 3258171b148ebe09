// LayerNorm without affine parameters (eps 1e-6): y = (x − mean)·rstd per row of width d.
// Backward: dx = rstd·(dy − mean(dy) − y·mean(dy ⊙ y)).
#pragma once

#include <cmath>
#include <cstddef>

#include "flowception/dit/backend.hpp"

namespace flowception::dit::layers {

inline constexpr double kLayerNormEps = 1e-6;

template <class T>
struct LayerNormForwardRow {
  const T* x;
  T* y;
  T* rstd_out;
  std::ptrdiff_t d;
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t r) const {
    const T* xr = x + r * d;
    T* yr = y + r * d;
    double mean = 0;
    for (std::ptrdiff_t i = 0; i < d; ++i) mean += static_cast<double>(xr[i]);
    mean /= static_cast<double>(d);
    double var = 0;
    for (std::ptrdiff_t i = 0; i < d; ++i) {
      const double c = static_cast<double>(xr[i]) - mean;
      var += c * c;
    }
    var /= static_cast<double>(d);
    const double rstd = 1.0 / std::sqrt(var + kLayerNormEps);
    for (std::ptrdiff_t i = 0; i < d; ++i) yr[i] = static_cast<T>((static_cast<double>(xr[i]) - mean) * rstd);
    rstd_out[r] = static_cast<T>(rstd);
  }
};

template <class T>
struct LayerNormBackwardRow {
  const T* y;
  const T* rstd;
  const T* dy;
  T* dx;
  std::ptrdiff_t d;
  bool accumulate;
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t r) const {
    const T* yr = y + r * d;
    const T* g = dy + r * d;
    T* out = dx + r * d;
    double mg = 0, mgy = 0;
    for (std::ptrdiff_t i = 0; i < d; ++i) {
      mg += static_cast<double>(g[i]);
      mgy += static_cast<double>(g[i]) * static_cast<double>(yr[i]);
    }
    mg /= static_cast<double>(d);
    mgy /= static_cast<double>(d);
    const double s = static_cast<double>(rstd[r]);
    for (std::ptrdiff_t i = 0; i < d; ++i) {
      const T v = static_cast<T>(s * (static_cast<double>(g[i]) - mg - static_cast<double>(yr[i]) * mgy));
      out[i] = accumulate ? out[i] + v : v;
    }
  }
};

template <class Backend, class T>
void layernorm_forward(std::ptrdiff_t n, std::ptrdiff_t d, const T* x, T* y, T* rstd) {
  Backend::parallel_for(n, LayerNormForwardRow<T>{x, y, rstd, d});
}

/// `y` is the forward output (the normalised rows).
template <class Backend, class T>
void layernorm_backward(std::ptrdiff_t n, std::ptrdiff_t d, const T* y, const T* rstd, const T* dy, T* dx,
                        bool accumulate = false) {
  Backend::parallel_for(n, LayerNormBackwardRow<T>{y, rstd, dy, dx, d, accumulate});
}

}  // namespace flowception::dit::layers
