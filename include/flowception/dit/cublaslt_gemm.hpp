// The one piece of the CUDA DiT that never runs without a GPU: row-major products through
// cuBLASLt (nvcc builds with THRUST_DEVICE_SYSTEM_CUDA only). The Thrust-OpenMP build replaces it
// by CpuBackend::gemm; docs/cuda.md lists it as GPU-only code.
//
// Row-major to column-major by the transposition identity: a row-major r×c matrix with leading
// dimension ld is the column-major c×r matrix Xᵀ, so C = op(A)·op(B) is computed as the
// column-major product Cᵀ = op(B)ᵀ·op(A)ᵀ with the operands swapped and the same flags.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "flowception/core/errors.hpp"

namespace flowception::dit::cuda {

/// The precision of FP32 products. tf32: operands rounded to TF32 inside the tensor cores
/// (10-bit mantissa); results differ from FP32 by about 1e-3 relative (tests/gpu states it).
enum class MathMode { fp32, tf32 };

inline void check(cudaError_t e, const char* what) {
  detail::require<Error>(e == cudaSuccess, "CUDA: ", what, " failed: ", cudaGetErrorString(e));
}
inline void check(cublasStatus_t s, const char* what) {
  detail::require<Error>(s == CUBLAS_STATUS_SUCCESS, "cuBLASLt: ", what, " failed with status ", static_cast<int>(s));
}

/// One stream, one cuBLASLt handle and one workspace per process, created on first use and kept:
/// every kernel and product of the DiT runs on this stream, in order.
struct Context {
  cudaStream_t stream = nullptr;
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  std::size_t workspace_bytes = std::size_t(32) << 20;
  MathMode math = MathMode::fp32;

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
    if (workspace) cudaFree(workspace);
    if (handle) cublasLtDestroy(handle);
    if (stream) cudaStreamDestroy(stream);
  }
};

/// C = alpha·op(A)·op(B) + beta·C, all row-major, on the context's stream. `bias` (length n, may
/// be null) is added to every row by the BIAS epilogue: C = alpha·op(A)·op(B) + beta·C + bias.
template <class T>
void gemm(bool trans_a, bool trans_b, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, T alpha, const T* a,
          std::ptrdiff_t lda, const T* b, std::ptrdiff_t ldb, T beta, T* c, std::ptrdiff_t ldc,
          const T* bias = nullptr) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "cuBLASLt products in float or double");
  if (m == 0 || n == 0) return;
  Context& ctx = Context::get();
  constexpr cudaDataType_t type = std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_64F;
  const cublasComputeType_t compute =
      std::is_same_v<T, double> ? CUBLAS_COMPUTE_64F
                                : (ctx.math == MathMode::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F);
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
  check(cublasLtMatmulDescCreate(&desc, compute, type), "MatmulDescCreate");
  // Column-major Cᵀ (n×m) = op'(Bᵀ-view) · op'(Aᵀ-view): the first operand is b, the second a.
  const cublasOperation_t op_first = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)), "TRANSA");
  check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)), "TRANSB");
  if (bias) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;  // bias per row of Cᵀ = per column of C
    check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)), "EPILOGUE");
    check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)), "BIAS");
  }
  // Stored shapes (column-major rows × cols): b is (trans_b ? k×n : n×k), a is (trans_a ? m×k : k×m).
  const auto u = [](std::ptrdiff_t x) { return static_cast<std::uint64_t>(x); };
  check(cublasLtMatrixLayoutCreate(&la, type, trans_b ? u(k) : u(n), trans_b ? u(n) : u(k), ldb), "layout B");
  check(cublasLtMatrixLayoutCreate(&lb, type, trans_a ? u(m) : u(k), trans_a ? u(k) : u(m), lda), "layout A");
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
  check(cublasLtMatmul(ctx.handle, desc, &alpha, b, la, a, lb, &beta, c, lc, c, lc, &heuristic.algo, ctx.workspace,
                       ctx.workspace_bytes, ctx.stream),
        "Matmul");
}

}  // namespace flowception::dit::cuda
