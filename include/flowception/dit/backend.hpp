// The compute backend of the DiT. The model source is written once against this interface:
// matrix products go to `gemm`, and every per-element or per-row kernel is a plain functor
// `f(i)` handed to `parallel_for`, so a CUDA backend can launch the same functors on the
// device (they carry FLOWCEPTION_HOST_DEVICE) without a second model.
#pragma once

#include <cstddef>
#include <cstdint>

#include <Eigen/Core>
#if defined(_OPENMP)
#include <omp.h>
#endif

#include "flowception/random/philox.hpp"  // FLOWCEPTION_HOST_DEVICE

namespace flowception::dit {

/// Row-major matrix view: rows × cols with leading dimension ld (elements between rows).
template <class T>
struct MatrixRef {
  T* data;
  std::ptrdiff_t rows, cols, ld;
};

/// The CPU backend: Eigen for products (multi-threaded through OpenMP), OpenMP loops for kernels.
struct CpuBackend {
  /// C = alpha·op(A)·op(B) + beta·C, all row-major. op(X) = Xᵀ when the flag is set.
  template <class T>
  static void gemm(bool trans_a, bool trans_b, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, T alpha,
                   const T* a, std::ptrdiff_t lda, const T* b, std::ptrdiff_t ldb, T beta, T* c, std::ptrdiff_t ldc) {
    using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using Stride = Eigen::OuterStride<>;
    Eigen::Map<Mat, 0, Stride> C(c, m, n, Stride(ldc));
    auto run = [&](const auto& A, const auto& B) {
      if (beta == T(0))
        C.noalias() = alpha * (A * B);
      else {
        if (beta != T(1)) C *= beta;
        C.noalias() += alpha * (A * B);
      }
    };
    Eigen::Map<const Mat, 0, Stride> A(a, trans_a ? k : m, trans_a ? m : k, Stride(lda));
    Eigen::Map<const Mat, 0, Stride> B(b, trans_b ? n : k, trans_b ? k : n, Stride(ldb));
    if (!trans_a && !trans_b) run(A, B);
    else if (trans_a && !trans_b) run(A.transpose(), B);
    else if (!trans_a && trans_b) run(A, B.transpose());
    else run(A.transpose(), B.transpose());
  }

  /// Calls f(i) for i in [0, n), in parallel when there are at least `min_items` items (cheap
  /// items are not worth a fork). f must not depend on the order of calls. Small loops run
  /// serially with no OpenMP construct at all: an inactive `if(false)` region would make a
  /// nested Eigen product start a fresh thread team on every call.
  template <class F>
  static void parallel_for(std::ptrdiff_t n, const F& f, std::ptrdiff_t min_items = 64) {
#if defined(_OPENMP)
    if (n >= min_items && n > 1 && !omp_in_parallel() && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(static)
      for (std::ptrdiff_t i = 0; i < n; ++i) f(i);
      return;
    }
#endif
    for (std::ptrdiff_t i = 0; i < n; ++i) f(i);
  }

  static int threads() {
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
  }
};

}  // namespace flowception::dit
