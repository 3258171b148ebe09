// The one piece of the CUDA DiT that never runs without a GPU: row-major products through
// cuBLASLt (nvcc builds with THRUST_DEVICE_SYSTEM_CUDA only). Every argument it gives cuBLASLt
// comes from plan_product (dit/cublaslt_plan.hpp), which the CPU builds test; this file only
// turns a plan into calls, caches what it built, and falls back when a fused epilogue is refused.
// docs/cuda.md has the contract: each call, the documented precondition, and what ensures it.
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <thrust/device_ptr.h>
#include <thrust/transform.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <unordered_map>

#include "flowception/algebra/device_stream.hpp"
#include "flowception/core/errors.hpp"
#include "flowception/dit/cublaslt_plan.hpp"

namespace flowception::dit::gpu {

/// Thrust functor converting an FP32 operand to BF16 (round to nearest), for MathMode::bf16.
struct ToBf16 {
  /// x rounded to the nearest BF16 value.
  __host__ __device__ __nv_bfloat16 operator()(float x) const { return __float2bfloat16(x); }
};

/// Thrust functor scaling C by beta, for a product of depth 0 (C = beta·C).
template <class T>
struct ScaleBy {
  T beta;  ///< the factor
  /// beta·x (0 when beta is 0, as BLAS: C is not read).
  __host__ __device__ T operator()(T x) const { return beta == T(0) ? T(0) : beta * x; }
};

/// Throws flowception::Error naming `what` and the CUDA error string when e is not cudaSuccess.
inline void check(cudaError_t e, const char* what) { device::check(e, what); }
/// Throws flowception::Error naming `what` and the status code when s is not CUBLAS_STATUS_SUCCESS.
inline void check(cublasStatus_t s, const char* what) {
  detail::require<Error>(s == CUBLAS_STATUS_SUCCESS, "cuBLASLt: ", what, " failed with status ", static_cast<int>(s));
}

/// The cuBLASLt values of the plan's enumerations.
inline cudaDataType_t cuda_type(DataType t) {
  return t == DataType::f32 ? CUDA_R_32F : t == DataType::f64 ? CUDA_R_64F : CUDA_R_16BF;
}
inline cublasComputeType_t cuda_compute(ComputeType c) {  ///< cublasComputeType_t of a plan's compute type
  return c == ComputeType::f32 ? CUBLAS_COMPUTE_32F
                               : c == ComputeType::f32_fast_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_64F;
}
inline cublasOperation_t cuda_operation(Operation o) { return o == Operation::t ? CUBLAS_OP_T : CUBLAS_OP_N; }  ///< TRANSA/B
inline cublasLtEpilogue_t cuda_epilogue(Epilogue e) {  ///< CUBLASLT_MATMUL_DESC_EPILOGUE of a plan's epilogue
  return e == Epilogue::none ? CUBLASLT_EPILOGUE_DEFAULT
                             : e == Epilogue::bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
}

/// The descriptor, layouts and heuristic answer of one plan key, built once and kept.
struct CachedProduct {
  cublasLtMatmulDesc_t desc = nullptr;    ///< the operation descriptor (pointers set per call)
  cublasLtMatrixLayout_t la = nullptr;    ///< cuBLASLt's A
  cublasLtMatrixLayout_t lb = nullptr;    ///< cuBLASLt's B
  cublasLtMatrixLayout_t lc = nullptr;    ///< C and D
  cublasLtMatmulAlgo_t algo{};            ///< the heuristic's first algorithm
  bool has_algo = false;                  ///< false: the heuristic returned none
  bool not_supported = false;             ///< cublasLtMatmul returned NOT_SUPPORTED once: never retried
  CachedProduct() = default;
  CachedProduct(const CachedProduct&) = delete;
  CachedProduct& operator=(const CachedProduct&) = delete;
  ~CachedProduct() {
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

/// One cuBLASLt handle, one workspace and the cache of built products per process, created on
/// first use and kept. Products run on device::stream(), in order with every kernel of the DiT.
struct Context {
  cublasLtHandle_t handle = nullptr;                    ///< The cuBLASLt handle of every product.
  void* workspace = nullptr;                            ///< cuBLASLt workspace (cudaMalloc: 256-byte aligned).
  std::size_t workspace_bytes = std::size_t(32) << 20;  ///< Workspace size in bytes (32 MiB).
  MathMode math = MathMode::fp32;  ///< Precision of the FP32 products; set it before the products it should affect.
  void* bf16_scratch = nullptr;  ///< BF16 copies of the operands (cudaMalloc: 256-byte aligned; grows, never shrinks)
  std::size_t bf16_bytes = 0;    ///< Bytes allocated at bf16_scratch.
  cudaStream_t stream = nullptr;  ///< device::stream(), the stream of every product and kernel.

  /// The BF16 scratch, grown (freed and reallocated, not copied) to hold at least `elements` values.
  /// cudaFree waits for the device, so no queued product still reads the old scratch.
  __nv_bfloat16* bf16_operands(std::size_t elements) {
    const std::size_t bytes = elements * sizeof(__nv_bfloat16);
    if (bytes > bf16_bytes) {
      if (bf16_scratch) check(cudaFree(bf16_scratch), "cudaFree (BF16 operands)");
      bf16_scratch = nullptr;
      bf16_bytes = 0;
      check(cudaMalloc(&bf16_scratch, bytes), "cudaMalloc (BF16 operands)");
      bf16_bytes = bytes;
    }
    return static_cast<__nv_bfloat16*>(bf16_scratch);
  }

  /// The cached product of plan `p`: built (descriptor, layouts, preferences with the plan's
  /// alignments, heuristic) on the first call with its key.
  CachedProduct& cached(const ProductPlan& p) {
    const std::string key = p.key();
    auto it = cache_.find(key);
    if (it != cache_.end()) return *it->second;
    auto e = std::make_unique<CachedProduct>();
    check(cublasLtMatmulDescCreate(&e->desc, cuda_compute(p.compute), cuda_type(p.scale)), "MatmulDescCreate");
    const cublasOperation_t ta = cuda_operation(p.op_a), tb = cuda_operation(p.op_b);
    check(cublasLtMatmulDescSetAttribute(e->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)), "TRANSA");
    check(cublasLtMatmulDescSetAttribute(e->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)), "TRANSB");
    const cublasLtEpilogue_t epi = cuda_epilogue(p.epilogue);
    check(cublasLtMatmulDescSetAttribute(e->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)), "EPILOGUE");
    if (p.epilogue != Epilogue::none) set_pointers(*e, p);  // the heuristic reads their alignment
    if (p.epilogue == Epilogue::gelu_aux_bias)
      check(cublasLtMatmulDescSetAttribute(e->desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &p.aux_ld, sizeof(p.aux_ld)),
            "EPILOGUE_AUX_LD");
    const auto layout = [](cublasLtMatrixLayout_t* l, const MatrixLayout& m, const char* what) {
      check(cublasLtMatrixLayoutCreate(l, cuda_type(m.type), m.rows, m.cols, m.ld), what);
    };
    layout(&e->la, p.layout_a, "layout A");
    layout(&e->lb, p.layout_b, "layout B");
    layout(&e->lc, p.layout_c, "layout C");
    cublasLtMatmulPreference_t pref = nullptr;
    check(cublasLtMatmulPreferenceCreate(&pref), "PreferenceCreate");
    struct Release {
      cublasLtMatmulPreference_t p;
      ~Release() { cublasLtMatmulPreferenceDestroy(p); }
    } release{pref};
    const auto set_pref = [&](cublasLtMatmulPreferenceAttributes_t a, const auto& v, const char* what) {
      check(cublasLtMatmulPreferenceSetAttribute(pref, a, &v, sizeof(v)), what);
    };
    set_pref(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, workspace_bytes, "MAX_WORKSPACE_BYTES");
    set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, p.align_a, "MIN_ALIGNMENT_A_BYTES");
    set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, p.align_b, "MIN_ALIGNMENT_B_BYTES");
    set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, p.align_c, "MIN_ALIGNMENT_C_BYTES");
    set_pref(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, p.align_d, "MIN_ALIGNMENT_D_BYTES");
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t s =
        cublasLtMatmulAlgoGetHeuristic(handle, e->desc, e->la, e->lb, e->lc, e->lc, pref, 1, &result, &found);
    if (s != CUBLAS_STATUS_NOT_SUPPORTED) check(s, "AlgoGetHeuristic");  // NOT_SUPPORTED: no algorithm
    e->has_algo = s == CUBLAS_STATUS_SUCCESS && found > 0 && result.state == CUBLAS_STATUS_SUCCESS;
    if (e->has_algo) e->algo = result.algo;
    ProductCounters::get().count_descriptor_build();
    return *cache_.emplace(key, std::move(e)).first->second;
  }

  /// Sets the epilogue's pointers of plan `p` on a cached descriptor (they change from call to
  /// call; the key fixes their alignment, which is what the heuristic read).
  static void set_pointers(CachedProduct& e, const ProductPlan& p) {
    check(cublasLtMatmulDescSetAttribute(e.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof(p.bias)), "BIAS");
    if (p.epilogue == Epilogue::gelu_aux_bias)
      check(cublasLtMatmulDescSetAttribute(e.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &p.aux, sizeof(p.aux)),
            "EPILOGUE_AUX_POINTER");
  }

  /// The serialisation of every product (the cache and the descriptors' pointers are shared).
  std::mutex mutex;

  /// The process's context, created on the first call (handle, workspace) and kept.
  static Context& get() {
    static Context c;
    return c;
  }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

 private:
  std::unordered_map<std::string, std::unique_ptr<CachedProduct>> cache_;
  Context() : stream(device::stream()) {
    check(cublasLtCreate(&handle), "cublasLtCreate");
    check(cudaMalloc(&workspace, workspace_bytes), "cudaMalloc (cuBLASLt workspace)");
  }
  ~Context() {
    cache_.clear();
    if (bf16_scratch) cudaFree(bf16_scratch);
    if (workspace) cudaFree(workspace);
    if (handle) cublasLtDestroy(handle);
  }
};

/// Runs plan `p` (from plan_product of the same pointers) with alpha and beta. Returns false,
/// having written nothing, when the plan's fused epilogue cannot run (no algorithm, or
/// NOT_SUPPORTED): the caller then runs the plain product and the functors. A plain product
/// that cannot run is an Error naming its shape.
template <class T>
bool run_plan(const ProductPlan& p, T alpha, T beta) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "cuBLASLt products in float or double");
  if (p.empty) return true;
  Context& ctx = Context::get();
  T* c = static_cast<T*>(const_cast<void*>(p.ptr_c));
  if (p.zero_depth) {  // C = beta·C; cuBLASLt is not asked for a product of depth 0
    auto C = thrust::device_pointer_cast(c);
    const auto rows = static_cast<std::ptrdiff_t>(p.layout_c.cols), cols = static_cast<std::ptrdiff_t>(p.layout_c.rows);
    for (std::ptrdiff_t r = 0; r < rows; ++r)  // (row by row: ldc may exceed the row)
      thrust::transform(device::policy(), C + r * p.layout_c.ld, C + r * p.layout_c.ld + cols, C + r * p.layout_c.ld,
                        ScaleBy<T>{beta});
    ProductCounters::get().count(p);
    return p.epilogue == Epilogue::none;
  }
  std::lock_guard<std::mutex> lock(ctx.mutex);
  CachedProduct& e = ctx.cached(p);
  const bool fused = p.epilogue != Epilogue::none;
  if (fused && (!e.has_algo || e.not_supported)) {
    ProductCounters::get().count(p, e.has_algo ? Fallback::not_supported : Fallback::no_algorithm);
    return false;
  }
  detail::require<Error>(e.has_algo, "cuBLASLt: no algorithm for the product ", p.key(),
                         " (operations, layouts rows x cols / ld, compute, scale, epilogue, aux ld, alignments)");
  const void* op_a = p.ptr_a;
  const void* op_b = p.ptr_b;
  if constexpr (std::is_same_v<T, float>) {
    if (p.bf16) {  // both operands converted on the stream into the scratch (the plan's offsets)
      __nv_bfloat16* scratch = ctx.bf16_operands(p.bf16_scratch_elements);
      const auto src_b = thrust::device_pointer_cast(static_cast<const float*>(p.ptr_a));  // our b
      const auto src_a = thrust::device_pointer_cast(static_cast<const float*>(p.ptr_b));  // our a
      thrust::transform(device::policy(), src_a, src_a + static_cast<std::ptrdiff_t>(p.bf16_a_elements),
                        thrust::device_pointer_cast(scratch), ToBf16{});
      thrust::transform(device::policy(), src_b, src_b + static_cast<std::ptrdiff_t>(p.bf16_b_elements),
                        thrust::device_pointer_cast(scratch + p.bf16_b_offset), ToBf16{});
      op_b = scratch;
      op_a = scratch + p.bf16_b_offset;
    }
  }
  if (fused) Context::set_pointers(e, p);
  const cublasStatus_t s = cublasLtMatmul(ctx.handle, e.desc, &alpha, op_a, e.la, op_b, e.lb, &beta, c, e.lc, c, e.lc,
                                          &e.algo, ctx.workspace, ctx.workspace_bytes, ctx.stream);
  if (fused && s == CUBLAS_STATUS_NOT_SUPPORTED) {
    e.not_supported = true;
    ProductCounters::get().count(p, Fallback::not_supported);
    return false;
  }
  check(s, "Matmul");
  ProductCounters::get().count(p);
  return true;
}

/// C = alpha·op(A)·op(B) + beta·C, all row-major, on device::stream() (the plain product).
template <class T>
void gemm(bool trans_a, bool trans_b, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, T alpha, const T* a,
          std::ptrdiff_t lda, const T* b, std::ptrdiff_t ldb, T beta, T* c, std::ptrdiff_t ldc) {
  const ProductPlan p = plan_product({trans_a, trans_b, m, n, k, lda, ldb, ldc, a, b, c, nullptr, nullptr, sizeof(T),
                                      Context::get().math});
  ProductLog::record(p);
  run_plan(p, alpha, beta);
}

/// Y = X·W + bias (X: n×in, W: in×out, row-major), and with `pre` also post = GELU(pre) where
/// pre = X·W + bias (GELU_AUX_BIAS; `y` is then post), in one product. Returns false, having
/// written nothing, when the plan or cuBLASLt refuses the fused epilogue; ProductCounters says why.
template <class T>
bool gemm_epilogue(std::ptrdiff_t n, std::ptrdiff_t out, std::ptrdiff_t in, const T* x, const T* w, const T* bias, T* y,
                   T* pre = nullptr) {
  const ProductPlan p =
      plan_product({false, false, n, out, in, in, out, out, x, w, y, bias, pre, sizeof(T), Context::get().math});
  ProductLog::record(p);
  if (p.empty) return true;
  if (p.fallback != Fallback::none || p.zero_depth) {
    if (p.fallback != Fallback::none) ProductCounters::get().count(p);
    return false;
  }
  return run_plan(p, T(1), T(0));
}

}  // namespace flowception::dit::gpu
