// The CPU backend of the DiT, and the backend interface the model is written against (the
// DitBackend concept, dit/backend_concept.hpp). The model source is written once against it:
// products go to `gemm`, every per-element or per-row kernel is a plain functor `f(i)` handed to
// `parallel_for`, and the model's buffers are the backend's `buffer<T>`, so a device backend
// (dit/thrust_backend.hpp) runs the same functors (they carry FLOWCEPTION_HOST_DEVICE) on device
// memory without a second model.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#include <Eigen/Core>
#if defined(_OPENMP)
#include <omp.h>
#endif

#include "flowception/dit/backend_concept.hpp"
#include "flowception/dit/layout.hpp"      // kBufferAlignment
#include "flowception/random/philox.hpp"  // FLOWCEPTION_HOST_DEVICE

namespace flowception::dit {

/// A std::allocator that places every allocation on a kBufferAlignment-byte boundary (the CPU
/// backend's buffers, so that host and device layouts agree).
template <class T>
struct AlignedAllocator {
  using value_type = T;  ///< The element type.
  AlignedAllocator() = default;
  /// Stateless: converts from an allocator of any other type.
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) noexcept {}
  /// n values on a kBufferAlignment-byte boundary; std::bad_alloc when the memory is not there.
  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T) - kBufferAlignment) throw std::bad_alloc();
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kBufferAlignment}));
  }
  /// Frees what allocate returned.
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{kBufferAlignment}); }
  /// Stateless allocators are interchangeable.
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const noexcept { return true; }
};

/// Row-major matrix view: rows × cols with leading dimension ld (elements between rows).
template <class T>
struct MatrixRef {
  T* data;  ///< First element (row 0, column 0).
  std::ptrdiff_t rows;  ///< Row count.
  std::ptrdiff_t cols;  ///< Column count.
  std::ptrdiff_t ld;    ///< Leading dimension: elements between the starts of consecutive rows.
};

/// The CPU backend: Eigen for products (multi-threaded through OpenMP), OpenMP loops for kernels.
struct CpuBackend {
  /// The model's storage: host memory, on kBufferAlignment-byte boundaries.
  template <class T>
  using buffer = std::vector<T, AlignedAllocator<T>>;
  static constexpr bool kHostMemory = true;    ///< Buffers are host memory, so Eigen may read them.
  /// Use the hand-vectorised Eigen paths (attention tiles, GELU, bias sums).
  static constexpr bool kEigenKernels = true;
  static constexpr bool kFusedEpilogues = false;  ///< No gemm_bias: the bias functor and a product.
  static constexpr bool kReportsMemory = false;   ///< The CLI's memory plans bound host memory instead.
  /// The backend's name in messages (e.g. a refused replica count): "cpu".
  static const char* name() { return "cpu"; }

  /// Pointer to the first element of a buffer.
  template <class T, class A>
  static T* raw(std::vector<T, A>& b) { return b.data(); }
  /// Pointer to the first element of a buffer (read-only).
  template <class T, class A>
  static const T* raw(const std::vector<T, A>& b) { return b.data(); }
  /// Copies n elements from host memory to dst (a plain copy: both are host memory here).
  template <class T>
  static void upload(const T* host, std::size_t n, T* dst) { std::copy_n(host, n, dst); }
  /// Copies n elements from src to host memory (a plain copy: both are host memory here).
  template <class T>
  static void download(const T* src, std::size_t n, T* host) { std::copy_n(src, n, host); }
  /// Sets p[0..n) to v.
  template <class T>
  static void fill(T* p, std::size_t n, T v) { std::fill_n(p, n, v); }
  /// Σ p[i]² over [0, n), summed serially in double (for gradient clipping).
  template <class T>
  static double sum_squares(const T* p, std::size_t n) {
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(p[i]) * static_cast<double>(p[i]);
    return s;
  }

  /// C = alpha·op(A)·op(B) + beta·C, all row-major. op(X) = Xᵀ when the flag is set.
  ///
  /// Every element gets the same bits whatever the other rows are and however many threads
  /// run: a frame's outputs then depend neither on the other videos of a batch nor on the
  /// thread count, which is what makes sampling a slice of the videos (chunks, MPI ranks)
  /// reproduce one whole run bit for bit. Eigen computes a row-major C as the column-major Cᵀ,
  /// so our rows are its right-hand panels of `nr` and our columns its left-hand panels of `mr`.
  /// Two things would break row independence: rows left over after the last full panel go
  /// through kernels that sum in another order (so they get a zero-padded panel of their own),
  /// and Eigen's own threading blocks the depth differently from its serial code (so threads
  /// here each run a serial product, on whole row panels, or on column blocks of whole `mr`
  /// panels when there are too few rows).
  template <class T>
  static void gemm(bool trans_a, bool trans_b, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, T alpha,
                   const T* a, std::ptrdiff_t lda, const T* b, std::ptrdiff_t ldb, T beta, T* c, std::ptrdiff_t ldc) {
    if (m <= 0 || n <= 0) return;
    constexpr std::ptrdiff_t mr = Eigen::internal::gebp_traits<T, T>::nr;  // (our rows: Eigen's nr)
    const std::ptrdiff_t m0 = m - m % mr, rest = m - m0;
    if (m0 > 0) gemm_threads(trans_a, trans_b, m0, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    if (rest == 0) return;
    thread_local std::vector<T> pa, pc;  // the left-over rows of op(A) and C, padded to mr rows
    pa.assign(static_cast<std::size_t>(mr * std::max<std::ptrdiff_t>(k, 1)), T(0));
    pc.assign(static_cast<std::size_t>(mr * n), T(0));
    for (std::ptrdiff_t r = 0; r < rest; ++r) {
      if (trans_a)
        for (std::ptrdiff_t q = 0; q < k; ++q) pa[static_cast<std::size_t>(r * k + q)] = a[q * lda + m0 + r];
      else
        std::copy_n(a + (m0 + r) * lda, k, pa.data() + r * k);
      if (beta != T(0)) std::copy_n(c + (m0 + r) * ldc, n, pc.data() + r * n);
    }
    gemm_threads(false, trans_b, mr, n, k, alpha, pa.data(), std::max<std::ptrdiff_t>(k, 1), b, ldb, beta, pc.data(), n);
    for (std::ptrdiff_t r = 0; r < rest; ++r) std::copy_n(pc.data() + r * n, n, c + (m0 + r) * ldc);
  }

 private:
  /// m is a multiple of Eigen's nr. One serial Eigen product per thread: inside an active
  /// parallel region Eigen never starts threads of its own, so it always uses its serial blocking.
  template <class T>
  static void gemm_threads(bool trans_a, bool trans_b, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, T alpha,
                           const T* a, std::ptrdiff_t lda, const T* b, std::ptrdiff_t ldb, T beta, T* c,
                           std::ptrdiff_t ldc) {
#if defined(_OPENMP)
    const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    // Below 2·50000 multiply-adds Eigen's serial code runs (its own threading threshold), and a
    // thread team would cost more than the product.
    const double work = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
    if (threads > 1 && work >= 2 * kMinWorkPerThread) {
      // Row units of Eigen's nr rows, column units of its mr columns (see gemm).
      constexpr std::ptrdiff_t mr = Eigen::internal::gebp_traits<T, T>::nr, nr = Eigen::internal::gebp_traits<T, T>::mr;
      const std::ptrdiff_t panels = m / mr, col_blocks = (n + nr - 1) / nr;
      const bool by_rows = panels >= threads || panels >= col_blocks;
      const std::ptrdiff_t units = by_rows ? panels : col_blocks;
      const std::ptrdiff_t by_work = static_cast<std::ptrdiff_t>(work / kMinWorkPerThread);
      const std::ptrdiff_t parts = std::max<std::ptrdiff_t>(2, std::min<std::ptrdiff_t>({threads, units, by_work}));
#pragma omp parallel num_threads(static_cast<int>(parts))
      {
        const std::ptrdiff_t p = omp_get_thread_num(), np = omp_get_num_threads();
        const std::ptrdiff_t u0 = units * p / np, u1 = units * (p + 1) / np;
        if (u1 > u0) {
          if (by_rows) {
            const T* ap = trans_a ? a + u0 * mr : a + u0 * mr * lda;
            gemm_any(trans_a, trans_b, (u1 - u0) * mr, n, k, alpha, ap, lda, b, ldb, beta, c + u0 * mr * ldc, ldc);
          } else {
            const std::ptrdiff_t j0 = u0 * nr, j1 = std::min(n, u1 * nr);
            const T* bp = trans_b ? b + j0 * ldb : b + j0;
            gemm_any(trans_a, trans_b, m, j1 - j0, k, alpha, a, lda, bp, ldb, beta, c + j0, ldc);
          }
        }
      }
      return;
    }
#endif
    gemm_any(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  static constexpr double kMinWorkPerThread = 50000;  // Eigen's kMinTaskSize (Parallelizer.h)
  template <class T>
  static void gemm_any(bool trans_a, bool trans_b, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, T alpha,
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

 public:

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
#else
    (void)min_items;  // (a build without OpenMP, e.g. nvcc's host pass)
#endif
    for (std::ptrdiff_t i = 0; i < n; ++i) f(i);
  }

  /// The OpenMP threads a parallel loop may use (omp_get_max_threads()); 1 without OpenMP.
  static int threads() {
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
  }
};

static_assert(DitBackend<CpuBackend>);

}  // namespace flowception::dit
