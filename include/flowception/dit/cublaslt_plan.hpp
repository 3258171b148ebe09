// What the CUDA DiT gives cuBLASLt for one product, computed by a pure function (no CUDA headers)
// so that every rule it relies on is tested on machines without a GPU:
//   plan_product(ProductArgs) -> ProductPlan   shapes, pointers and precision in; the values of
//                                              every descriptor, layout and preference out.
// dit/cublaslt_gemm.hpp turns a plan into cuBLASLt calls on a GPU; dit/thrust_backend.hpp on
// Thrust's OpenMP system plans every product the same way, records the plans (ProductLog) and
// computes them on the CPU, so the tests check the arguments of every product of a forward,
// backward and training step against the documentation (tests/test_cublaslt_plan.cpp).
//
// The row-major identity. The DiT's matrices are row-major; cuBLASLt's are column-major. A
// row-major r×c matrix with leading dimension ld is, in memory, the column-major c×r matrix Xᵀ
// with the same ld. So C = op(A)·op(B) (row-major, m×n) is computed as the column-major product
//   Cᵀ (n×m) = op(B)ᵀ·op(A)ᵀ:
// cuBLASLt's first operand is b, stored (trans_b ? k×n : n×k) column-major, with op = trans_b;
// its second is a, stored (trans_a ? m×k : k×m), with op = trans_a; its C and D are c, stored
// n×m with ld = ldc. cublasLtMatrixLayoutCreate requires ld >= rows of each stored matrix.
//
// Alignment. cuBLASLt's heuristic assumes 256-byte-aligned A, B, C and D unless told otherwise
// (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*_BYTES, default 256), and an algorithm's alignment covers
// the pointer and the leading dimension. The plan states, for each matrix, the largest power of
// two up to 256 that divides both its address and its leading dimension in bytes: the truth,
// whatever the caller passes. The epilogue's bias and auxiliary pointers are not covered by those
// preferences: a fused epilogue is planned only when they are 16-byte aligned and the auxiliary
// leading dimension is a multiple of 8 (CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD); otherwise the
// plan says so (`fallback`) and the caller runs the plain product and the bias/GELU functors.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "flowception/core/errors.hpp"

namespace flowception::dit::gpu {

/// The precision of FP32 products (weights, activations and sums stay FP32 throughout):
///   fp32: FP32 operands and accumulation;
///   tf32: operands rounded to TF32 inside the tensor cores (10-bit mantissa);
///   bf16: operands converted to BF16 (8-bit mantissa) before the product, FP32 accumulation.
/// tests/gpu/dit_parity.cu states the tolerance of each against FP32.
enum class MathMode { fp32, tf32, bf16 };

/// Element types of the matrices (cudaDataType_t: CUDA_R_32F, CUDA_R_64F, CUDA_R_16BF).
enum class DataType { f32, f64, bf16 };
/// Compute types (cublasComputeType_t: CUBLAS_COMPUTE_32F, _32F_FAST_TF32, _64F).
enum class ComputeType { f32, f32_fast_tf32, f64 };
/// cuBLASLt's operation on an operand (cublasOperation_t: CUBLAS_OP_N, CUBLAS_OP_T).
enum class Operation { n, t };
/// The product's epilogue (cublasLtEpilogue_t: DEFAULT, BIAS, GELU_AUX_BIAS).
enum class Epilogue { none, bias, gelu_aux_bias };
/// Why a product asked with a bias (or bias and GELU) runs as a plain product followed by the
/// bias and GELU functors. The first three are decided by the plan; the last two happen on a GPU.
enum class Fallback {
  none,            ///< fused as asked (or no epilogue was asked)
  bias_alignment,  ///< the bias pointer is not 16-byte aligned
  aux_alignment,   ///< the GELU input (auxiliary) pointer is not 16-byte aligned
  aux_ld,          ///< the auxiliary leading dimension is not a multiple of 8
  no_algorithm,    ///< cublasLtMatmulAlgoGetHeuristic returned no algorithm for the fused product
  not_supported,   ///< cublasLtMatmul returned CUBLAS_STATUS_NOT_SUPPORTED for the fused product
};
/// The name of a fallback reason, as reported in run.json and by the benchmarks.
inline const char* fallback_name(Fallback f) {
  switch (f) {
    case Fallback::none: return "none";
    case Fallback::bias_alignment: return "bias_alignment";
    case Fallback::aux_alignment: return "aux_alignment";
    case Fallback::aux_ld: return "aux_ld";
    case Fallback::no_algorithm: return "no_algorithm";
    case Fallback::not_supported: return "not_supported";
  }
  return "?";
}

/// The largest alignment, in bytes, that cuBLASLt is told about or that the plan relies on.
inline constexpr std::uint32_t kMaxAlignment = 256;
/// The alignment a fused epilogue needs of its bias and auxiliary pointers (bytes).
inline constexpr std::uint32_t kEpilogueAlignment = 16;
/// Where the second BF16 operand starts in the scratch: a multiple of this many bytes.
inline constexpr std::size_t kScratchAlignment = 256;

/// The largest power of two, at most kMaxAlignment, that divides `address` (bytes; 0 is fully aligned).
inline std::uint32_t pointer_alignment(std::uintptr_t address) {
  std::uint32_t a = kMaxAlignment;
  while (a > 1 && address % a != 0) a /= 2;
  return a;
}
/// pointer_alignment of a pointer.
inline std::uint32_t pointer_alignment(const void* p) { return pointer_alignment(reinterpret_cast<std::uintptr_t>(p)); }

/// What the DiT asks for: C = alpha·op(A)·op(B) + beta·C, row-major, op(X) = Xᵀ when the flag is
/// set; optionally + bias (length n, added to every row) and GELU (C = GELU(pre), pre = the biased
/// product, kept in `aux` with leading dimension ldc).
struct ProductArgs {
  bool trans_a = false;  ///< op(A) = Aᵀ
  bool trans_b = false;  ///< op(B) = Bᵀ
  std::int64_t m = 0;    ///< rows of C
  std::int64_t n = 0;    ///< columns of C
  std::int64_t k = 0;    ///< the inner dimension
  std::int64_t lda = 0;  ///< leading dimension of A (elements between rows)
  std::int64_t ldb = 0;  ///< leading dimension of B
  std::int64_t ldc = 0;  ///< leading dimension of C (and of aux)
  const void* a = nullptr;     ///< A
  const void* b = nullptr;     ///< B
  const void* c = nullptr;     ///< C (also the output D: in place)
  const void* bias = nullptr;  ///< bias vector of n values, or null
  const void* aux = nullptr;   ///< GELU input kept for backward, or null (then no GELU)
  std::size_t element_bytes = 4;  ///< 4 (float) or 8 (double)
  MathMode math = MathMode::fp32;  ///< precision of float products
};

/// One matrix as cuBLASLt sees it (cublasLtMatrixLayoutCreate's arguments), column-major.
struct MatrixLayout {
  DataType type = DataType::f32;  ///< element type
  std::uint64_t rows = 0;         ///< rows of the stored column-major matrix
  std::uint64_t cols = 0;         ///< columns
  std::int64_t ld = 0;            ///< leading dimension, elements (>= rows)
};

/// Every argument the wrapper gives cuBLASLt for one product (see the file comment).
struct ProductPlan {
  bool empty = false;       ///< m or n is 0: nothing to do
  bool zero_depth = false;  ///< k is 0: C = beta·C (+ bias, GELU); no product is run
  Operation op_a = Operation::n;  ///< TRANSA: the operation on cuBLASLt's A (our b)
  Operation op_b = Operation::n;  ///< TRANSB: the operation on cuBLASLt's B (our a)
  MatrixLayout layout_a;  ///< cuBLASLt's A: our B
  MatrixLayout layout_b;  ///< cuBLASLt's B: our A
  MatrixLayout layout_c;  ///< cuBLASLt's C and D: our C
  const void* ptr_a = nullptr;  ///< cuBLASLt's A pointer (our b, or its BF16 copy in the scratch)
  const void* ptr_b = nullptr;  ///< cuBLASLt's B pointer (our a, or its BF16 copy)
  const void* ptr_c = nullptr;  ///< C and D
  ComputeType compute = ComputeType::f32;  ///< the compute type
  DataType scale = DataType::f32;          ///< the scale type (alpha, beta): the type of C
  Epilogue epilogue = Epilogue::none;      ///< the epilogue given to cuBLASLt
  const void* bias = nullptr;              ///< BIAS_POINTER (with an epilogue)
  const void* aux = nullptr;               ///< EPILOGUE_AUX_POINTER (GELU_AUX_BIAS)
  std::int64_t aux_ld = 0;                 ///< EPILOGUE_AUX_LD (GELU_AUX_BIAS)
  /// MIN_ALIGNMENT_A_BYTES: the largest power of two up to 256 dividing cuBLASLt's A address and
  /// its leading dimension in bytes (likewise for B, C and D; C and D are one buffer).
  std::uint32_t align_a = kMaxAlignment;
  std::uint32_t align_b = kMaxAlignment;  ///< MIN_ALIGNMENT_B_BYTES
  std::uint32_t align_c = kMaxAlignment;  ///< MIN_ALIGNMENT_C_BYTES
  std::uint32_t align_d = kMaxAlignment;  ///< MIN_ALIGNMENT_D_BYTES (equal to align_c: D is C)
  std::uint32_t align_bias = kMaxAlignment;  ///< alignment of the bias pointer (bytes)
  std::uint32_t align_aux = kMaxAlignment;   ///< alignment of the auxiliary pointer (bytes)
  /// The epilogue asked for but not planned (the caller runs the plain product and the functors).
  Fallback fallback = Fallback::none;
  bool asked_bias = false;  ///< the caller asked for a bias
  bool asked_gelu = false;  ///< the caller asked for bias + GELU
  /// BF16: both operands are converted into one scratch buffer; our A's copy starts at element 0
  /// (a_elements values), our B's at element b_offset (a multiple of kScratchAlignment bytes).
  bool bf16 = false;
  std::size_t bf16_a_elements = 0;  ///< values of our A's span (op(A) rows/cols with lda)
  std::size_t bf16_b_elements = 0;  ///< values of our B's span
  std::size_t bf16_b_offset = 0;    ///< first element of our B's copy in the scratch
  std::size_t bf16_scratch_elements = 0;  ///< scratch size needed, elements of 2 bytes

  /// A text key of everything a cached descriptor, layout set and heuristic answer depend on
  /// (shapes, operations, types, epilogue, aux ld, and every alignment): two plans with the same
  /// key may share them, whatever their pointers.
  std::string key() const;
};

namespace plan_detail {
/// The alignment of a matrix at `address` with leading dimension `ld` of `element_bytes` each.
inline std::uint32_t matrix_alignment(std::uintptr_t address, std::int64_t ld, std::size_t element_bytes) {
  const std::uint32_t ap = pointer_alignment(address);
  const std::uint32_t al = pointer_alignment(static_cast<std::uintptr_t>(ld) * element_bytes);
  return ap < al ? ap : al;
}
/// Elements spanned by a row-major rows×cols matrix with leading dimension ld (rows, cols >= 1).
inline std::size_t span_elements(std::int64_t rows, std::int64_t cols, std::int64_t ld) {
  return static_cast<std::size_t>((rows - 1) * ld + cols);
}
inline int code(DataType t) { return static_cast<int>(t); }
}  // namespace plan_detail

inline std::string ProductPlan::key() const {
  const auto lay = [](const MatrixLayout& l) {
    return detail::cat(plan_detail::code(l.type), ":", l.rows, "x", l.cols, "/", l.ld);
  };
  return detail::cat(static_cast<int>(op_a), static_cast<int>(op_b), " ", lay(layout_a), " ", lay(layout_b), " ",
                     lay(layout_c), " c", static_cast<int>(compute), " s", plan_detail::code(scale), " e",
                     static_cast<int>(epilogue), " x", aux_ld, " al", align_a, ",", align_b, ",", align_c, ",", align_d,
                     ",", align_bias, ",", align_aux);
}

/// The plan of one product (see the file comment). ShapeError for negative sizes, a leading
/// dimension smaller than its row, a GELU without a bias, or an element size other than 4 or 8.
inline ProductPlan plan_product(const ProductArgs& q) {
  detail::require<ShapeError>(q.m >= 0 && q.n >= 0 && q.k >= 0, "cuBLASLt plan: negative size ", q.m, "x", q.n, "x", q.k);
  detail::require<ShapeError>(q.element_bytes == 4 || q.element_bytes == 8, "cuBLASLt plan: elements of ",
                              q.element_bytes, " bytes (float or double only)");
  detail::require<ShapeError>(!q.aux || q.bias, "cuBLASLt plan: the GELU epilogue is used with a bias");
  ProductPlan p;
  p.asked_bias = q.bias != nullptr;
  p.asked_gelu = q.aux != nullptr;
  p.empty = q.m == 0 || q.n == 0;
  p.zero_depth = q.k == 0;
  if (p.empty) return p;
  // Row-major leading dimensions: at least the row length of each stored matrix.
  const std::int64_t a_cols = q.trans_a ? q.m : q.k, b_cols = q.trans_b ? q.k : q.n;
  detail::require<ShapeError>(q.lda >= std::max<std::int64_t>(a_cols, 1) && q.ldb >= std::max<std::int64_t>(b_cols, 1) &&
                                  q.ldc >= q.n,
                              "cuBLASLt plan: a leading dimension is smaller than its row (lda ", q.lda, " < ", a_cols,
                              ", ldb ", q.ldb, " < ", b_cols, " or ldc ", q.ldc, " < ", q.n, ")");
  const bool is_double = q.element_bytes == 8;
  const DataType type = is_double ? DataType::f64 : DataType::f32;
  p.bf16 = !is_double && q.math == MathMode::bf16 && !p.zero_depth;
  const DataType operand_type = p.bf16 ? DataType::bf16 : type;
  p.compute = is_double ? ComputeType::f64 : (q.math == MathMode::tf32 ? ComputeType::f32_fast_tf32 : ComputeType::f32);
  p.scale = type;
  // The identity: cuBLASLt's A is our b with our trans_b, its B is our a with our trans_a.
  p.op_a = q.trans_b ? Operation::t : Operation::n;
  p.op_b = q.trans_a ? Operation::t : Operation::n;
  const auto u = [](std::int64_t x) { return static_cast<std::uint64_t>(x); };
  p.layout_a = {operand_type, q.trans_b ? u(q.k) : u(q.n), q.trans_b ? u(q.n) : u(q.k), q.ldb};
  p.layout_b = {operand_type, q.trans_a ? u(q.m) : u(q.k), q.trans_a ? u(q.k) : u(q.m), q.lda};
  p.layout_c = {type, u(q.n), u(q.m), q.ldc};
  p.ptr_a = q.b;
  p.ptr_b = q.a;
  p.ptr_c = q.c;
  if (p.bf16) {
    p.bf16_a_elements = plan_detail::span_elements(q.trans_a ? q.k : q.m, q.trans_a ? q.m : q.k, q.lda);
    p.bf16_b_elements = plan_detail::span_elements(q.trans_b ? q.n : q.k, q.trans_b ? q.k : q.n, q.ldb);
    constexpr std::size_t per = kScratchAlignment / 2;  // BF16 values per alignment unit
    p.bf16_b_offset = (p.bf16_a_elements + per - 1) / per * per;
    p.bf16_scratch_elements = p.bf16_b_offset + p.bf16_b_elements;
    // cuBLASLt reads the copies: our A's at the start of the scratch (cudaMalloc'd, 256-byte
    // aligned), our B's at bf16_b_offset; their leading dimensions are ours, in 2-byte elements.
    p.align_a = plan_detail::matrix_alignment(p.bf16_b_offset * 2, q.ldb, 2);
    p.align_b = plan_detail::matrix_alignment(0, q.lda, 2);
  } else {
    p.align_a = plan_detail::matrix_alignment(reinterpret_cast<std::uintptr_t>(q.b), q.ldb, q.element_bytes);
    p.align_b = plan_detail::matrix_alignment(reinterpret_cast<std::uintptr_t>(q.a), q.lda, q.element_bytes);
  }
  p.align_c = p.align_d = plan_detail::matrix_alignment(reinterpret_cast<std::uintptr_t>(q.c), q.ldc, q.element_bytes);
  if (q.bias) {
    p.align_bias = pointer_alignment(q.bias);
    if (q.aux) p.align_aux = pointer_alignment(q.aux);
    if (p.align_bias < kEpilogueAlignment) p.fallback = Fallback::bias_alignment;
    else if (q.aux && p.align_aux < kEpilogueAlignment) p.fallback = Fallback::aux_alignment;
    else if (q.aux && q.ldc % 8 != 0) p.fallback = Fallback::aux_ld;
    if (p.fallback == Fallback::none && !p.zero_depth) {
      p.epilogue = q.aux ? Epilogue::gelu_aux_bias : Epilogue::bias;
      p.bias = q.bias;
      p.aux = q.aux;
      p.aux_ld = q.aux ? q.ldc : 0;
    }
  }
  return p;
}

/// Counts of products by outcome, process-wide: what run.json and the GPU benchmark report.
struct ProductCounts {
  std::uint64_t products = 0;     ///< products planned (every call with m, n > 0)
  std::uint64_t fused_bias = 0;   ///< run with the BIAS epilogue
  std::uint64_t fused_gelu = 0;   ///< run with the GELU_AUX_BIAS epilogue
  /// Products asked with a bias (and GELU) that ran as a plain product and the functors because
  /// the bias pointer was not 16-byte aligned (the other reasons below).
  std::uint64_t fallback_bias_alignment = 0;
  std::uint64_t fallback_aux_alignment = 0;  ///< ... the GELU input pointer was not 16-byte aligned
  std::uint64_t fallback_aux_ld = 0;         ///< ... the auxiliary leading dimension was not a multiple of 8
  std::uint64_t fallback_no_algorithm = 0;   ///< ... the heuristic returned no algorithm (GPU)
  std::uint64_t fallback_not_supported = 0;  ///< ... cublasLtMatmul returned NOT_SUPPORTED (GPU)
  std::uint64_t descriptor_builds = 0;  ///< descriptors built and heuristics asked (cache misses; GPU only)
  /// Every fallback, whatever the reason.
  std::uint64_t fallbacks() const {
    return fallback_bias_alignment + fallback_aux_alignment + fallback_aux_ld + fallback_no_algorithm +
           fallback_not_supported;
  }
};

/// The process-wide counters behind product_counts(): updated by every planned product.
class ProductCounters {
 public:
  /// The one instance.
  static ProductCounters& get() {
    static ProductCounters c;
    return c;
  }
  /// Counts one product of plan `p` and, for a fallback decided later (on a GPU), its reason.
  void count(const ProductPlan& p, Fallback runtime = Fallback::none) {
    ++products_;
    const Fallback f = p.fallback != Fallback::none ? p.fallback : runtime;
    if (f == Fallback::none) {
      if (p.epilogue == Epilogue::bias) ++fused_bias_;
      if (p.epilogue == Epilogue::gelu_aux_bias) ++fused_gelu_;
    } else {
      ++fallback_[static_cast<int>(f)];
    }
  }
  /// One descriptor build (a cache miss of the GPU wrapper).
  void count_descriptor_build() { ++builds_; }
  /// A snapshot.
  ProductCounts snapshot() const {
    ProductCounts c;
    c.products = products_;
    c.fused_bias = fused_bias_;
    c.fused_gelu = fused_gelu_;
    c.fallback_bias_alignment = fallback_[static_cast<int>(Fallback::bias_alignment)];
    c.fallback_aux_alignment = fallback_[static_cast<int>(Fallback::aux_alignment)];
    c.fallback_aux_ld = fallback_[static_cast<int>(Fallback::aux_ld)];
    c.fallback_no_algorithm = fallback_[static_cast<int>(Fallback::no_algorithm)];
    c.fallback_not_supported = fallback_[static_cast<int>(Fallback::not_supported)];
    c.descriptor_builds = builds_;
    return c;
  }
  /// Sets every count to zero.
  void reset() {
    products_ = fused_bias_ = fused_gelu_ = builds_ = 0;
    for (auto& f : fallback_) f = 0;
  }

 private:
  ProductCounters() = default;
  std::atomic<std::uint64_t> products_{0}, fused_bias_{0}, fused_gelu_{0}, builds_{0};
  std::atomic<std::uint64_t> fallback_[6] = {};
};
/// The counts of every product planned in this process so far.
inline ProductCounts product_counts() { return ProductCounters::get().snapshot(); }

/// Records the plan of every product while it is active (tests): one active log at a time, any
/// number of threads adding.
class ProductLog {
 public:
  /// Starts recording into this log; ConfigError when another log is recording.
  ProductLog() {
    ProductLog* none = nullptr;
    detail::require<ConfigError>(active().compare_exchange_strong(none, this), "a ProductLog is already recording");
  }
  ~ProductLog() { active().store(nullptr); }
  ProductLog(const ProductLog&) = delete;
  ProductLog& operator=(const ProductLog&) = delete;

  /// The plans recorded so far, in call order.
  std::vector<ProductPlan> plans() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return plans_;
  }
  /// Adds `p` to the active log, if any (called by every planned product).
  static void record(const ProductPlan& p) {
    if (ProductLog* log = active().load()) {
      std::lock_guard<std::mutex> lock(log->mutex_);
      log->plans_.push_back(p);
    }
  }

 private:
  static std::atomic<ProductLog*>& active() {
    static std::atomic<ProductLog*> a{nullptr};
    return a;
  }
  mutable std::mutex mutex_;
  std::vector<ProductPlan> plans_;
};

}  // namespace flowception::dit::gpu
