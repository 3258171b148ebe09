// The device backend of the DiT: buffers are thrust::device_vector, kernels are the model's own
// FLOWCEPTION_HOST_DEVICE functors run by thrust::for_each, and products go to cuBLASLt. The same
// header compiles two ways:
//   nvcc (THRUST_DEVICE_SYSTEM_CUDA, the default there): the CUDA DiT. Kernels and products run
//     in order on one stream (gpu::Context), the workspace buffers are allocated on the first
//     call and reused across calls and sampler steps.
//   g++ -DTHRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP with the toolkit's CCCL headers: the same
//     functors on the CPU through Thrust's OpenMP system, with CpuBackend's product in place of
//     cuBLASLt. This is how the device code is tested on machines without a GPU.
#pragma once

#include <thrust/copy.h>
#include <thrust/device_ptr.h>
#include <thrust/device_vector.h>
#include <thrust/execution_policy.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/functional.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/transform_reduce.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "flowception/core/errors.hpp"
#include "flowception/dit/backend.hpp"
#if THRUST_DEVICE_SYSTEM != THRUST_DEVICE_SYSTEM_CUDA
#include <unistd.h>  // sysconf: the OpenMP "device" is this machine's memory
#endif
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
#include "flowception/dit/cublaslt_gemm.hpp"
#endif

namespace flowception::dit {

namespace detail_thrust {
template <class T>
struct Square {
  FLOWCEPTION_HOST_DEVICE double operator()(T x) const { return static_cast<double>(x) * static_cast<double>(x); }
};
}  // namespace detail_thrust

/// The device backend: `thrust::device_vector` buffers, the model's functors run by
/// `thrust::for_each`, products through cuBLASLt (CUDA) or CpuBackend::gemm (Thrust's OpenMP
/// system). `docs/cuda.md` describes both builds.
struct ThrustBackend {
  /// The model's storage: device memory of Thrust's device system.
  template <class T>
  using buffer = thrust::device_vector<T>;
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
  static constexpr bool kHostMemory = false;  ///< Buffers are GPU memory: host code must not read them.
  /// The backend's name in messages (e.g. a model too large for the device): "cuda".
  static const char* name() { return "cuda"; }
  /// The execution policy of every kernel: Thrust's CUDA system on the gpu::Context stream.
  static auto policy() { return thrust::cuda::par.on(gpu::Context::get().stream); }
#else
  static constexpr bool kHostMemory = true;  ///< The OpenMP system's buffers are host memory.
  /// The backend's name in messages (e.g. a model too large for the device): "thrust-omp".
  static const char* name() { return "thrust-omp"; }
  /// The execution policy of every kernel: Thrust's device system (OpenMP).
  static auto policy() { return thrust::device; }
#endif
  static constexpr bool kEigenKernels = false;  ///< Always the functors, never the Eigen paths (as on a GPU).

  /// Raw pointer to the first element of a buffer, in the device system's memory.
  template <class T>
  static T* raw(thrust::device_vector<T>& b) { return thrust::raw_pointer_cast(b.data()); }
  /// Raw pointer to the first element of a buffer (read-only), in the device system's memory.
  template <class T>
  static const T* raw(const thrust::device_vector<T>& b) { return thrust::raw_pointer_cast(b.data()); }

  /// Copies n elements from host memory to dst in device memory (`thrust::copy`).
  template <class T>
  static void upload(const T* host, std::size_t n, T* dst) {
    thrust::copy(host, host + n, thrust::device_pointer_cast(dst));
  }
  /// Copies n elements from src in device memory to host memory (`thrust::copy`).
  template <class T>
  static void download(const T* src, std::size_t n, T* host) {
    thrust::copy(thrust::device_pointer_cast(src), thrust::device_pointer_cast(src) + n, host);
  }
  /// Sets p[0..n) to v, on the device.
  template <class T>
  static void fill(T* p, std::size_t n, T v) {
    thrust::fill_n(policy(), thrust::device_pointer_cast(p), n, v);
  }
  /// Σ p[i]² over [0, n) as a host double, reduced on the device (for gradient clipping).
  template <class T>
  static double sum_squares(const T* p, std::size_t n) {
    auto b = thrust::device_pointer_cast(p);
    return thrust::transform_reduce(policy(), b, b + n, detail_thrust::Square<T>{}, 0.0, thrust::plus<double>());
  }

  /// Calls f(i) for i in [0, n) through `thrust::for_each` (the minimum item count is ignored).
  /// f must be a `FLOWCEPTION_HOST_DEVICE` functor that does not depend on the order of calls.
  template <class F>
  static void parallel_for(std::ptrdiff_t n, const F& f, std::ptrdiff_t /*min_items*/ = 0) {
    if (n <= 0) return;
    thrust::for_each(policy(), thrust::counting_iterator<std::ptrdiff_t>(0), thrust::counting_iterator<std::ptrdiff_t>(n),
                     f);
  }

  /// C = alpha·op(A)·op(B) + beta·C, all row-major, op(X) = Xᵀ when the flag is set: gpu::gemm
  /// on the context's stream (CUDA), or CpuBackend::gemm (OpenMP system).
  template <class T>
  static void gemm(bool trans_a, bool trans_b, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, T alpha,
                   const T* a, std::ptrdiff_t lda, const T* b, std::ptrdiff_t ldb, T beta, T* c, std::ptrdiff_t ldc) {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
    gpu::gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
    CpuBackend::gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
  }

#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
  /// Y = X·W + bias in one cuBLASLt call (the BIAS epilogue); linear layers use it when present.
  static void gemm_bias(std::ptrdiff_t n, std::ptrdiff_t out, std::ptrdiff_t in, const float* x, const float* w,
                        const float* bias, float* y) {
    gpu::gemm(false, false, n, out, in, 1.0f, x, in, w, out, 0.0f, y, out, bias);
  }
  /// pre = X·W + bias and post = GELU(pre) in one call (GELU_AUX_BIAS); false when cuBLASLt's
  /// constraint on the layout (a leading dimension divisible by 8) rules it out.
  static bool gemm_bias_gelu(std::ptrdiff_t n, std::ptrdiff_t out, std::ptrdiff_t in, const float* x, const float* w,
                             const float* bias, float* pre, float* post) {
    if (out % 8 != 0) return false;
    gpu::gemm(false, false, n, out, in, 1.0f, x, in, w, out, 0.0f, post, out, bias, pre);
    return true;
  }
#endif

  /// Throws, naming the problem, when there is no device to run on (the CUDA system without a
  /// CUDA device or driver); on the OpenMP system the CPU is the device.
  static void require_device() {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
    int devices = 0;
    const cudaError_t e = cudaGetDeviceCount(&devices);
    detail::require<ConfigError>(e == cudaSuccess && devices > 0, "no CUDA device: cudaGetDeviceCount ",
                                 e == cudaSuccess ? std::string("found none")
                                                  : std::string("failed: ") + cudaGetErrorString(e));
#endif
  }

  /// Bytes of device memory free now (the DiT refuses a model that cannot fit before allocating);
  /// on the OpenMP system, the machine's physical memory.
  static std::size_t available_memory_bytes() {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
    std::size_t free = 0, total = 0;
    gpu::check(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
    return free;
#else
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page)
                                 : static_cast<std::size_t>(-1);
#endif
  }

  /// Waits until the context's stream has finished its work (CUDA); nothing on the OpenMP system.
  static void synchronize() {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
    gpu::check(cudaStreamSynchronize(gpu::Context::get().stream), "cudaStreamSynchronize");
#endif
  }
};

}  // namespace flowception::dit
