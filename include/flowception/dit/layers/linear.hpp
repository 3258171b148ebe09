// Linear layer Y = X·W + b over rows of X (X: n × in, W: in × out, row-major).
// Backward: dX = dY·Wᵀ, dW += Xᵀ·dY, db += column sums of dY.
#pragma once

#include <cstddef>

#include <Eigen/Core>

#include "flowception/dit/backend.hpp"
#include "flowception/dit/layers/activations.hpp"

namespace flowception::dit::layers {

/// Row kernel: writes the bias into row r of y (the product is then added with beta = 1).
template <class T>
struct BroadcastBiasRow {
  const T* b;          ///< Bias, out values.
  T* y;                ///< Output, n × out row-major.
  std::ptrdiff_t out;  ///< Output width.
  /// Sets row r of y to b.
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t r) const {
    for (std::ptrdiff_t c = 0; c < out; ++c) y[r * out + c] = b[c];
  }
};

/// db[c] += Σ_r dy[r][c], rows in order (the same sums as the Eigen row-by-row path).
template <class T>
struct BiasGradientColumn {
  const T* dy;  ///< ∂L/∂Y, n × out row-major.
  T* db;        ///< Bias gradient, out values; added to.
  std::ptrdiff_t n;    ///< Rows of dy.
  std::ptrdiff_t out;  ///< Columns of dy.
  /// Adds column c of dy into db[c].
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t c) const {
    T acc = db[c];
    for (std::ptrdiff_t r = 0; r < n; ++r) acc += dy[r * out + c];
    db[c] = acc;
  }
};

/// Y = X·W + b (X: n × in, W: in × out, Y: n × out, row-major, backend memory); b may be null
/// (no bias). Uses the backend's bias epilogue (gemm_bias) where it has one and it accepts the
/// product; otherwise the bias functor and the plain product.
template <class Backend, class T>
void linear_forward(std::ptrdiff_t n, std::ptrdiff_t in, std::ptrdiff_t out, const T* x, const T* w, const T* b, T* y) {
  if (b) {
    if constexpr (Backend::kFusedEpilogues) {
      if (Backend::gemm_bias(n, out, in, x, w, b, y)) return;  // the bias epilogue of the product
    }
    Backend::parallel_for(n, BroadcastBiasRow<T>{b, y, out});
    Backend::gemm(false, false, n, out, in, T(1), x, in, w, out, T(1), y, out);
  } else {
    Backend::gemm(false, false, n, out, in, T(1), x, in, w, out, T(0), y, out);
  }
}

/// pre = X·W + b and post = GELU(pre) (the first MLP layer): one product with a GELU epilogue
/// where the backend has one, else the linear layer and then the activation functor.
template <class Backend, class T>
void linear_gelu_forward(std::ptrdiff_t n, std::ptrdiff_t in, std::ptrdiff_t out, const T* x, const T* w, const T* b,
                         T* pre, T* post) {
  if constexpr (Backend::kFusedEpilogues) {
    if (Backend::gemm_bias_gelu(n, out, in, x, w, b, pre, post)) return;
  }
  linear_forward<Backend>(n, in, out, x, w, b, pre);
  activation_forward<Backend, GeluTanh>(n * out, pre, post);
}

/// dX = dY·Wᵀ, dW += Xᵀ·dY, db += column sums of dY; a null dx, dw or db skips that gradient.
/// dx is overwritten when accumulate_dx is false, else added to; dw and db always accumulate.
template <class Backend, class T>
void linear_backward(std::ptrdiff_t n, std::ptrdiff_t in, std::ptrdiff_t out, const T* x, const T* w, const T* dy,
                     T* dx, T* dw, T* db, bool accumulate_dx = false) {
  if (dx) Backend::gemm(false, true, n, in, out, T(1), dy, out, w, out, accumulate_dx ? T(1) : T(0), dx, in);
  if (dw) Backend::gemm(true, false, in, out, n, T(1), x, in, dy, out, T(1), dw, out);
  if (!db) return;
  if constexpr (Backend::kEigenKernels) {
    // Row by row, vectorised across columns (a column-by-column sum strides through memory).
    using Row = Eigen::Array<T, 1, Eigen::Dynamic>;
    Eigen::Map<Row> acc(db, out);
    for (std::ptrdiff_t r = 0; r < n; ++r) acc += Eigen::Map<const Row>(dy + r * out, out);
  } else {
    Backend::parallel_for(out, BiasGradientColumn<T>{dy, db, n, out});
  }
}

}  // namespace flowception::dit::layers
