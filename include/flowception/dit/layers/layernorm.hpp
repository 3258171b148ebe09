// LayerNorm without affine parameters (eps 1e-6): y = (x − mean)·rstd per row of width d.
// Backward: dx = rstd·(dy − mean(dy) − y·mean(dy ⊙ y)).
#pragma once

#include <cmath>
#include <cstddef>

#include "flowception/dit/backend.hpp"

namespace flowception::dit::layers {

/// ε added to the variance of a row (§6: eps 1e-6).
inline constexpr double kLayerNormEps = 1e-6;

/// Row kernel: normalises row r of x, y = (x − mean)·rstd with rstd = 1/√(var + ε), in double.
template <class T>
struct LayerNormForwardRow {
  const T* x;         ///< Input rows, n × d row-major.
  T* y;               ///< Normalised rows, n × d.
  T* rstd_out;        ///< 1/√(var + ε) per row, kept for backward.
  std::ptrdiff_t d;   ///< Row width.
  /// Normalises row r and stores its rstd.
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

/// Row kernel: dx = rstd·(dy − mean(dy) − y·mean(dy ⊙ y)) for row r, in double.
template <class T>
struct LayerNormBackwardRow {
  const T* y;        ///< The forward output (normalised rows), n × d.
  const T* rstd;     ///< The forward pass's rstd per row.
  const T* dy;       ///< ∂L/∂y, n × d.
  T* dx;             ///< ∂L/∂x, n × d.
  std::ptrdiff_t d;  ///< Row width.
  bool accumulate;   ///< Add into dx instead of overwriting it.
  /// Computes row r of dx.
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

/// LayerNorm without affine parameters over n rows of width d: y = normalised x, rstd per row.
template <class Backend, class T>
void layernorm_forward(std::ptrdiff_t n, std::ptrdiff_t d, const T* x, T* y, T* rstd) {
  Backend::parallel_for(n, LayerNormForwardRow<T>{x, y, rstd, d});
}

/// Gradient of layernorm_forward() into dx (overwritten, or added to when `accumulate`).
/// `y` is the forward output (the normalised rows).
template <class Backend, class T>
void layernorm_backward(std::ptrdiff_t n, std::ptrdiff_t d, const T* y, const T* rstd, const T* dy, T* dx,
                        bool accumulate = false) {
  Backend::parallel_for(n, LayerNormBackwardRow<T>{y, rstd, dy, dx, d, accumulate});
}

}  // namespace flowception::dit::layers
