// The one piece of the CUDA DiT that never runs without a GPU: row-major products through
// cuBLASLt (nvcc builds with THRUST_DEVICE_SYSTEM_CUDA only). The Thrust-OpenMP build replaces it
// by CpuBackend::gemm; docs/cuda.md lists it as GPU-only code.
//
// Row-major to column-major by the transposition identity: a row-major r×c matrix with leading
// dimension ld is the column-major c×r matrix Xᵀ, so C = op(A)·op(B) is computed as the
// column-major product Cᵀ = op(B)ᵀ·op(A)ᵀ with the operands swapped and the same flags.
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <thrust/device_ptr.h>
#include <thrust/execution_policy.h>
#include <thrust/transform.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "flowception/core/errors.hpp"

namespace flowception::dit::gpu {

/// The precision of FP32 products (weights, activations and sums stay FP32 throughout):
///   tf32: operands rounded to TF32 inside the tensor cores (10-bit mantissa);
///   bf16: operands converted to BF16 (8-bit mantissa) before the product, FP32 accumulation.
/// tests/gpu/dit_parity.cu states the tolerance of each against FP32.
enum class MathMode { fp32, tf32, bf16 };

/// Thrust functor converting an FP32 operand to BF16 (round to nearest), for MathMode::bf16.
struct ToBf16 {
  /// x rounded to the nearest BF16 value.
  __host__ __device__ __nv_bfloat16 operator()(float x) const { return __float2bfloat16(x); }
};

/// Throws flowception::Error naming `what` and the CUDA error string when e is not cudaSuccess.
inline void check(cudaError_t e, const char* what) {
  detail::require<Error>(e == cudaSuccess, "CUDA: ", what, " failed: ", cudaGetErrorString(e));
}
/// Throws flowception::Error naming `what` and the status code when s is not CUBLAS_STATUS_SUCCESS.
inline void check(cublasStatus_t s, const char* what) {
  detail::require<Error>(s == CUBLAS_STATUS_SUCCESS, "cuBLASLt: ", what, " failed with status ", static_cast<int>(s));
}

/// One stream, one cuBLASLt handle and one workspace per process, created on first use and kept:
/// every kernel and product of the DiT runs on this stream, in order.
struct Context {
  cudaStream_t stream = nullptr;                        ///< The stream every DiT kernel and product runs on (blocking).
  cublasLtHandle_t handle = nullptr;                    ///< The cuBLASLt handle of every product.
  void* workspace = nullptr;                            ///< cuBLASLt workspace, device memory of workspace_bytes.
  std::size_t workspace_bytes = std::size_t(32) << 20;  ///< Workspace size in bytes (32 MiB).
  MathMode math = MathMode::fp32;  ///< Precision of the FP32 products; set it before the products it should affect.
  void* bf16_scratch = nullptr;  ///< BF16 copies of the operands (grows, never shrinks)
  std::size_t bf16_bytes = 0;    ///< Bytes allocated at bf16_scratch.

  /// The BF16 scratch, grown (freed and reallocated, not copied) to hold at least `elements` values.
  __nv_bfloat16* bf16_operands(std::size_t elements) {
    const std::size_t bytes = elements * sizeof(__nv_bfloat16);
    if (bytes > bf16_bytes) {
      if (bf16_scratch) check(cudaFree(bf16_scratch), "cudaFree (BF16 operands)");
      bf16_scratch = nullptr;
      check(cudaMalloc(&bf16_scratch, bytes), "cudaMalloc (BF16 operands)");
      bf16_bytes = bytes;
    }
    return static_cast<__nv_bfloat16*>(bf16_scratch);
  }

  /// The process's context, created on the first call (stream, handle, workspace) and kept.
  static Context& get() {
    static Context c;
    return c;
  }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

 private:
  Context() {
    // A blocking stream: Thrust's copies and allocations on the legacy default stream order with it.
    check(cudaStreamCreate(&stream), "cudaStreamCreate");
    check(cublasLtCreate(&handle), "cublasLtCreate");
    check(cudaMalloc(&workspace, workspace_bytes), "cudaMalloc (cuBLASLt workspace)");
  }
  ~Context() {
    if (bf16_scratch) cudaFree(bf16_scratch);
    if (workspace) cudaFree(workspace);
    if (handle) cublasLtDestroy(handle);
    if (stream) cudaStreamDestroy(stream);
  }
};

/// C = alpha·op(A)·op(B) + beta·C, all row-major, on the context's stream. `bias` (length n, may
/// be null) is added to every row by the BIAS epilogue: C = alpha·op(A)·op(B) + beta·C + bias.
/// With `gelu_pre` as well (GELU_AUX_BIAS epilogue): gelu_pre = the biased product (kept for the
/// backward pass, leading dimension ldc, which cuBLASLt wants a multiple of 8) and C = GELU of
/// it, cuBLASLt's tanh form (tests/gpu/dit_parity.cu checks it against layers::GeluTanh).
template <class T>
void gemm(bool trans_a, bool trans_b, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, T alpha, const T* a,
          std::ptrdiff_t lda, const T* b, std::ptrdiff_t ldb, T beta, T* c, std::ptrdiff_t ldc,
          const T* bias = nullptr, T* gelu_pre = nullptr) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "cuBLASLt products in float or double");
  if (m == 0 || n == 0) return;
  Context& ctx = Context::get();
  constexpr cudaDataType_t type = std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_64F;
  const cublasComputeType_t compute =
      std::is_same_v<T, double> ? CUBLAS_COMPUTE_64F
                                : (ctx.math == MathMode::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F);
  // BF16: both operands converted (one pass each, on the stream) into the scratch, C stays FP32.
  const bool bf16 = std::is_same_v<T, float> && ctx.math == MathMode::bf16;
  const cudaDataType_t operand_type = bf16 ? CUDA_R_16BF : type;
  const void* op_a = a;
  const void* op_b = b;
  if constexpr (std::is_same_v<T, float>) {
    if (bf16) {
      const std::size_t na = static_cast<std::size_t>(((trans_a ? k : m) - 1) * lda + (trans_a ? m : k));
      const std::size_t nb = static_cast<std::size_t>(((trans_b ? n : k) - 1) * ldb + (trans_b ? k : n));
      __nv_bfloat16* scratch = ctx.bf16_operands(na + nb);
      const auto policy = thrust::cuda::par.on(ctx.stream);
      thrust::transform(policy, thrust::device_pointer_cast(a), thrust::device_pointer_cast(a) + na,
                        thrust::device_pointer_cast(scratch), ToBf16{});
      thrust::transform(policy, thrust::device_pointer_cast(b), thrust::device_pointer_cast(b) + nb,
                        thrust::device_pointer_cast(scratch + na), ToBf16{});
      op_a = scratch;
      op_b = scratch + na;
    }
  }
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  struct Release {  // frees the descriptors on every path, including a throw
    cublasLtMatmulDesc_t& d;
    cublasLtMatrixLayout_t &a, &b, &c;
    cublasLtMatmulPreference_t& p;
    ~Release() {
      if (p) cublasLtMatmulPreferenceDestroy(p);
      if (c) cublasLtMatrixLayoutDestroy(c);
      if (b) cublasLtMatrixLayoutDestroy(b);
      if (a) cublasLtMatrixLayoutDestroy(a);
      if (d) cublasLtMatmulDescDestroy(d);
    }
  } release{desc, la, lb, lc, pref};
  check(cublasLtMatmulDescCreate(&desc, compute, type), "MatmulDescCreate");  // scale type: T
  // Column-major Cᵀ (n×m) = op'(Bᵀ-view) · op'(Aᵀ-view): the first operand is b, the second a.
  const cublasOperation_t op_first = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)), "TRANSA");
  check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)), "TRANSB");
  detail::require<Error>(!gelu_pre || bias, "cuBLASLt: the GELU epilogue is used with a bias");
  if (bias) {
    // Bias per row of Cᵀ = per column of C.
    const cublasLtEpilogue_t epi = gelu_pre ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_BIAS;
    check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)), "EPILOGUE");
    check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)), "BIAS");
  }
  if (gelu_pre) {
    const std::int64_t aux_ld = ldc;
    check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &gelu_pre, sizeof(gelu_pre)),
          "EPILOGUE_AUX_POINTER");
    check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof(aux_ld)),
          "EPILOGUE_AUX_LD");
  }
  // Stored shapes (column-major rows × cols): b is (trans_b ? k×n : n×k), a is (trans_a ? m×k : k×m).
  const auto u = [](std::ptrdiff_t x) { return static_cast<std::uint64_t>(x); };
  check(cublasLtMatrixLayoutCreate(&la, operand_type, trans_b ? u(k) : u(n), trans_b ? u(n) : u(k), ldb), "layout B");
  check(cublasLtMatrixLayoutCreate(&lb, operand_type, trans_a ? u(m) : u(k), trans_a ? u(k) : u(m), lda), "layout A");
  check(cublasLtMatrixLayoutCreate(&lc, type, u(n), u(m), ldc), "layout C");
  check(cublasLtMatmulPreferenceCreate(&pref), "PreferenceCreate");
  check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ctx.workspace_bytes,
                                             sizeof(ctx.workspace_bytes)),
        "workspace preference");
  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  check(cublasLtMatmulAlgoGetHeuristic(ctx.handle, desc, la, lb, lc, lc, pref, 1, &heuristic, &found),
        "AlgoGetHeuristic");
  detail::require<Error>(found > 0, "cuBLASLt: no algorithm for a ", m, "x", n, "x", k, " product");
  check(cublasLtMatmul(ctx.handle, desc, &alpha, op_b, la, op_a, lb, &beta, c, lc, c, lc, &heuristic.algo, ctx.workspace,
                       ctx.workspace_bytes, ctx.stream),
        "Matmul");
}

}  // namespace flowception::dit::gpu
