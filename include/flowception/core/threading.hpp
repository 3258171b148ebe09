// Running independent pieces of work on OpenMP threads, with exceptions carried out.
#pragma once

#include <cstddef>
#include <exception>
#include <vector>

namespace flowception::threading {

/// f(i) for i in [0, n): on OpenMP threads when `parallel`, else in order. An exception thrown by
/// any call is rethrown here, after the loop (none escapes a parallel region).
template <class F>
void parallel_or_serial(std::size_t n, bool parallel, const F& f) {
  std::vector<std::exception_ptr> errors(n);
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) if (parallel && n > 1)
#endif
  for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) {
    try {
      f(static_cast<std::size_t>(i));
    } catch (...) {
      errors[static_cast<std::size_t>(i)] = std::current_exception();
    }
  }
  (void)parallel;
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace flowception::threading
