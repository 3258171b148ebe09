// A DiT backend that claims fused epilogues but misspells gemm_bias must not compile: without the
// concept the layers would silently take the slow path.
#include <flowception/dit/backend_concept.hpp>

#include <cstddef>
#include <vector>

struct Backend {
  template <class T>
  using buffer = std::vector<T>;
  static constexpr bool kHostMemory = true;
  static constexpr bool kEigenKernels = false;
  static constexpr bool kFusedEpilogues = true;
  static constexpr bool kReportsMemory = false;
  static const char* name() { return "test"; }
  template <class T>
  static T* raw(std::vector<T>& b) { return b.data(); }
  template <class T>
  static const T* raw(const std::vector<T>& b) { return b.data(); }
  static void gemm(bool, bool, std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, float, const float*, std::ptrdiff_t,
                   const float*, std::ptrdiff_t, float, float*, std::ptrdiff_t) {}
  template <class F>
  static void parallel_for(std::ptrdiff_t n, const F& f) { for (std::ptrdiff_t i = 0; i < n; ++i) f(i); }
  static void upload(const float*, std::size_t, float*) {}
  static void download(const float*, std::size_t, float*) {}
  static void fill(float*, std::size_t, float) {}
  static double sum_squares(const float*, std::size_t) { return 0; }
#ifdef FLOWCEPTION_CONTROL
  static bool gemm_bias(std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, const float*, const float*, const float*, float*) {
    return false;
  }
#else
  static bool gemm_bais(std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, const float*, const float*, const float*, float*) {
    return false;
  }
#endif
  static bool gemm_bias_gelu(std::ptrdiff_t, std::ptrdiff_t, std::ptrdiff_t, const float*, const float*, const float*,
                             float*, float*) {
    return false;
  }
};

static_assert(flowception::dit::DitBackend<Backend>, "the backend must satisfy DitBackend");
int main() {}
