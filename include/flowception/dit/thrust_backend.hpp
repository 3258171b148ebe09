// The device backend of the DiT: buffers are thrust::device_vector, kernels are the model's own
// FLOWCEPTION_HOST_DEVICE functors run by thrust::for_each, and products go to cuBLASLt. The same
// header compiles two ways:
//   nvcc (THRUST_DEVICE_SYSTEM_CUDA, the default there): the CUDA DiT. Kernels and products run
//     in order on one stream (device::stream()) under thrust::cuda::par_nosync, so the host waits
//     only where it reads a result (docs/cuda.md lists those places); the workspace buffers are
//     allocated on the first call and reused across calls and sampler steps.
//   g++ -DTHRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP with the toolkit's CCCL headers: the same
//     functors on the CPU through Thrust's OpenMP system. Every product is planned exactly as on
//     the GPU (dit/cublaslt_plan.hpp: the same fused-or-fallback decisions, recorded by
//     gpu::ProductLog and counted) and computed by CpuBackend's product. This is how the device
//     code, and every argument it would give cuBLASLt, are tested on machines without a GPU.
#pragma once

#include <thrust/copy.h>
#include <thrust/device_malloc_allocator.h>
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
#include <cstdlib>
#include <new>
#include <string>

#include "flowception/algebra/device_stream.hpp"
#include "flowception/core/errors.hpp"
#include "flowception/dit/backend.hpp"
#include "flowception/dit/cublaslt_plan.hpp"
#include "flowception/dit/layers/activations.hpp"
#include "flowception/dit/layers/linear.hpp"
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

#if THRUST_DEVICE_SYSTEM != THRUST_DEVICE_SYSTEM_CUDA
/// Allocations of the OpenMP "device" (host memory) on kBufferAlignment-byte boundaries, as
/// cudaMalloc's are on a GPU, so that the CPU build of the device code sees the same alignments.
template <class T>
struct AlignedDeviceAllocator : thrust::device_malloc_allocator<T> {
  using base = thrust::device_malloc_allocator<T>;  ///< Thrust's allocator, whose pointer type we keep
  using pointer = typename base::pointer;           ///< thrust::device_ptr<T>
  using size_type = typename base::size_type;       ///< std::size_t
  /// The same allocator for another element type.
  template <class U>
  struct rebind {
    using other = AlignedDeviceAllocator<U>;  ///< the rebound allocator
  };
  AlignedDeviceAllocator() = default;
  /// Stateless: any two compare equal.
  template <class U>
  AlignedDeviceAllocator(const AlignedDeviceAllocator<U>&) {}
  /// n values on a kBufferAlignment-byte boundary (std::bad_alloc when the memory is not there).
  pointer allocate(size_type n) {
    const std::size_t bytes = (n * sizeof(T) + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
    void* p = std::aligned_alloc(kBufferAlignment, bytes == 0 ? kBufferAlignment : bytes);
    if (!p) throw std::bad_alloc();
    return pointer(static_cast<T*>(p));
  }
  /// Frees what allocate returned.
  void deallocate(pointer p, size_type) { std::free(thrust::raw_pointer_cast(p)); }
  /// Stateless allocators are interchangeable.
  bool operator==(const AlignedDeviceAllocator&) const { return true; }
  bool operator!=(const AlignedDeviceAllocator&) const { return false; }  ///< never different
};
#endif
}  // namespace detail_thrust

/// The device backend: `thrust::device_vector` buffers, the model's functors run by
/// `thrust::for_each`, products through cuBLASLt (CUDA) or CpuBackend::gemm (Thrust's OpenMP
/// system), each planned by gpu::plan_product. `docs/cuda.md` describes both builds.
struct ThrustBackend {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
  /// The model's storage: device memory. cudaMalloc returns addresses aligned to at least 256
  /// bytes (CUDA programming guide), so every buffer starts on kBufferAlignment.
  template <class T>
  using buffer = thrust::device_vector<T>;
  static constexpr bool kHostMemory = false;  ///< Buffers are GPU memory: host code must not read them.
  /// The backend's name in messages (e.g. a model too large for the device): "cuda".
  static const char* name() { return "cuda"; }
#else
  /// The model's storage: the OpenMP system's memory, on kBufferAlignment-byte boundaries.
  template <class T>
  using buffer = thrust::device_vector<T, detail_thrust::AlignedDeviceAllocator<T>>;
  static constexpr bool kHostMemory = true;  ///< The OpenMP system's buffers are host memory.
  /// The backend's name in messages (e.g. a model too large for the device): "thrust-omp".
  static const char* name() { return "thrust-omp"; }
#endif
  /// The execution policy of every kernel: device::policy() (par_nosync on the stream, on CUDA).
  static auto policy() { return device::policy(); }
  static constexpr bool kEigenKernels = false;  ///< Always the functors, never the Eigen paths (as on a GPU).
  static constexpr bool kFusedEpilogues = true;  ///< gemm_bias and gemm_bias_gelu (cuBLASLt's epilogues, planned on OpenMP).
  static constexpr bool kReportsMemory = true;   ///< available_memory_bytes(): the device's free memory.

  /// Raw pointer to the first element of a buffer, in the device system's memory.
  template <class T, class A>
  static T* raw(thrust::device_vector<T, A>& b) { return thrust::raw_pointer_cast(b.data()); }
  /// Raw pointer to the first element of a buffer (read-only), in the device system's memory.
  template <class T, class A>
  static const T* raw(const thrust::device_vector<T, A>& b) { return thrust::raw_pointer_cast(b.data()); }

  /// Copies n elements from host memory to dst in device memory, in stream order.
  template <class T>
  static void upload(const T* host, std::size_t n, T* dst) { device::copy_to_device(host, n, dst); }
  /// Copies n elements from src in device memory to host memory once the stream reaches it (the
  /// host waits: a synchronisation point).
  template <class T>
  static void download(const T* src, std::size_t n, T* host) { device::copy_to_host(src, n, host); }
  /// Sets p[0..n) to v, on the device.
  template <class T>
  static void fill(T* p, std::size_t n, T v) {
    if (n > 0) thrust::fill_n(policy(), thrust::device_pointer_cast(p), n, v);
  }
  /// Σ p[i]² over [0, n) as a host double, reduced on the device (for gradient clipping); the
  /// host waits for the result.
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
  /// on the stream (CUDA), or the same plan recorded and CpuBackend::gemm (OpenMP system).
  template <class T>
  static void gemm(bool trans_a, bool trans_b, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, T alpha,
                   const T* a, std::ptrdiff_t lda, const T* b, std::ptrdiff_t ldb, T beta, T* c, std::ptrdiff_t ldc) {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
    gpu::gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
    const gpu::ProductPlan p = gpu::plan_product({trans_a, trans_b, m, n, k, lda, ldb, ldc, a, b, c, nullptr, nullptr,
                                                  sizeof(T), math()});
    gpu::ProductLog::record(p);
    if (!p.empty) gpu::ProductCounters::get().count(p);
    CpuBackend::gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
  }

  /// Y = X·W + bias in one product with the BIAS epilogue (linear layers use it when present).
  /// Returns false, having written nothing, when the epilogue is refused (a bias pointer not
  /// 16-byte aligned; on a GPU also no algorithm or NOT_SUPPORTED): the layer then runs the
  /// plain product and the bias functor. On the OpenMP system the same decision is planned,
  /// recorded and counted, and the product computed as the layer's fallback would.
  template <class T>
  static bool gemm_bias(std::ptrdiff_t n, std::ptrdiff_t out, std::ptrdiff_t in, const T* x, const T* w, const T* bias,
                        T* y) {
    return fused_linear(n, out, in, x, w, bias, y, static_cast<T*>(nullptr));
  }
  /// pre = X·W + bias and post = GELU(pre) in one product (GELU_AUX_BIAS); false, having written
  /// nothing, when the epilogue is refused (also when cuBLASLt's rule on the auxiliary leading
  /// dimension, a multiple of 8, rules it out).
  template <class T>
  static bool gemm_bias_gelu(std::ptrdiff_t n, std::ptrdiff_t out, std::ptrdiff_t in, const T* x, const T* w,
                             const T* bias, T* pre, T* post) {
    return fused_linear(n, out, in, x, w, bias, post, pre);
  }

  /// The precision of float products (gpu::Context's on CUDA; FP32 on the OpenMP system).
  static gpu::MathMode math() {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
    return gpu::Context::get().math;
#else
    return gpu::MathMode::fp32;
#endif
  }

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

  /// Waits until the stream has finished its work (CUDA); nothing on the OpenMP system.
  static void synchronize() { device::synchronize(); }

 private:
  template <class T>
  static bool fused_linear(std::ptrdiff_t n, std::ptrdiff_t out, std::ptrdiff_t in, const T* x, const T* w,
                           const T* bias, T* y, T* pre) {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
    return gpu::gemm_epilogue(n, out, in, x, w, bias, y, pre);
#else
    const gpu::ProductPlan p =
        gpu::plan_product({false, false, n, out, in, in, out, out, x, w, y, bias, pre, sizeof(T), math()});
    gpu::ProductLog::record(p);
    if (p.empty) return true;
    if (p.fallback != gpu::Fallback::none || p.zero_depth) {
      if (p.fallback != gpu::Fallback::none) gpu::ProductCounters::get().count(p);
      return false;
    }
    gpu::ProductCounters::get().count(p);
    // What the epilogue computes, in the order of the layer's own fallback (the same bits).
    T* biased = pre ? pre : y;
    parallel_for(n, layers::BroadcastBiasRow<T>{bias, biased, out});
    CpuBackend::gemm(false, false, n, out, in, T(1), x, in, w, out, T(1), biased, out);
    if (pre) parallel_for(n * out, layers::ActivationForward<layers::GeluTanh<T>, T>{pre, y});
    return true;
#endif
  }
};

static_assert(DitBackend<ThrustBackend>);

}  // namespace flowception::dit
