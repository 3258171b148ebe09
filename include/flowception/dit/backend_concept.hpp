// The DitBackend concept: what the DiT (dit/model.hpp), its layers and the trainer require of a
// compute backend, and its two named optional capabilities. `docs/concepts.md` has the table.
//
// A backend B provides (`buf` a B::buffer<float>, p a float* and q a const float* in B's memory,
// h a host float*, n a std::size_t, f a functor f(std::ptrdiff_t)):
//   B::buffer<T>                     resizable storage: buf.resize(n), buf.size(), buf.capacity()
//   B::raw(buf)                      T* to the first element, in B's memory
//   B::gemm(ta, tb, m, n, k, α, a, lda, b, ldb, β, c, ldc)   row-major C = α·op(A)·op(B) + β·C
//   B::parallel_for(n, f)            f(i) for i in [0, n), in any order
//   B::upload(h, n, p), B::download(q, n, h)   copies between host memory and B's memory
//   B::fill(p, n, v)                 p[0..n) = v
//   B::sum_squares(q, n)             Σ q[i]² as a host double
//   B::kHostMemory                   true when B's pointers are host pointers
//   B::kEigenKernels                 true when the Eigen paths (attention tiles, GELU, bias sums)
//                                    replace the functors
//   B::name()                        "cpu", "thrust-omp", "cuda"
// and two optional capabilities, each declared by a flag, so that a backend that claims one and
// misspells a function fails this concept instead of silently taking the slow path:
//   B::kFusedEpilogues  B::gemm_bias(n, out, in, x, w, bias, y) -> bool and
//                       B::gemm_bias_gelu(n, out, in, x, w, bias, pre, post) -> bool: the linear
//                       layer's bias (and GELU) in the product; false when refused (the layer then
//                       runs the plain product and the functors)
//   B::kReportsMemory   B::available_memory_bytes() -> std::size_t: the DiT refuses a model whose
//                       weights and gradients do not fit, before allocating
#pragma once

#include <concepts>
#include <cstddef>

namespace flowception::dit {

namespace detail_backend {
/// A functor f(std::ptrdiff_t) for the concept's parallel_for requirement.
struct IndexFunctor {
  void operator()(std::ptrdiff_t) const {}
};
}  // namespace detail_backend

/// The fused-epilogue capability (`kFusedEpilogues`): gemm_bias and gemm_bias_gelu, each
/// returning whether it ran.
template <class B>
concept FusedEpilogueBackend = requires(std::ptrdiff_t n, const float* x, const float* w, const float* bias, float* y,
                                        float* pre) {
  { B::gemm_bias(n, n, n, x, w, bias, y) } -> std::same_as<bool>;
  { B::gemm_bias_gelu(n, n, n, x, w, bias, pre, y) } -> std::same_as<bool>;
};

/// The memory-report capability (`kReportsMemory`): the backend's free memory in bytes.
template <class B>
concept MemoryReportingBackend = requires {
  { B::available_memory_bytes() } -> std::convertible_to<std::size_t>;
};

/// A compute backend of the DiT (see the file comment for the valid expressions).
template <class B>
concept DitBackend =
    requires(typename B::template buffer<float>& buf, const typename B::template buffer<float>& cbuf, float* p,
             const float* q, float* h, std::size_t n, std::ptrdiff_t m, detail_backend::IndexFunctor f) {
      buf.resize(n);
      { buf.size() } -> std::convertible_to<std::size_t>;
      { buf.capacity() } -> std::convertible_to<std::size_t>;
      { B::raw(buf) } -> std::same_as<float*>;
      { B::raw(cbuf) } -> std::same_as<const float*>;
      B::gemm(false, false, m, m, m, 1.0f, q, m, q, m, 0.0f, p, m);
      B::parallel_for(m, f);
      B::upload(q, n, p);
      B::download(q, n, h);
      B::fill(p, n, 1.0f);
      { B::sum_squares(q, n) } -> std::same_as<double>;
      { B::kHostMemory } -> std::convertible_to<bool>;
      { B::kEigenKernels } -> std::convertible_to<bool>;
      { B::kFusedEpilogues } -> std::convertible_to<bool>;
      { B::kReportsMemory } -> std::convertible_to<bool>;
      { B::name() } -> std::convertible_to<const char*>;
    } &&
    (!B::kFusedEpilogues || FusedEpilogueBackend<B>) && (!B::kReportsMemory || MemoryReportingBackend<B>);

}  // namespace flowception::dit
