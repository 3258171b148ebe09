// The algebra layer (after Boost.Odeint's algebra/operations split): every loop over frame
// elements lives here, so solvers and the sampler never touch element storage. A backend that
// keeps frames in Eigen or device memory implements this concept and the rest runs unchanged.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace flowception {

// clang-format off
/// Storage and per-frame arithmetic for a packed sequence of frames (rows of `dim` values).
template <class A>
concept FrameAlgebra = std::default_initializable<A> && requires(
    A& a, typename A::buffer& y, const typename A::buffer& x, std::size_t n,
    std::span<const double> coeff, std::span<const std::int64_t> rows,
    std::span<const std::size_t> dst_rows, std::span<const std::uint64_t> streams, std::uint64_t seed,
    std::span<const typename A::value_type> host) {
  typename A::value_type;
  typename A::buffer;
  a.resize(y, n, n);                       // y := uninitialised frames × dim
  { a.frames(x) } -> std::convertible_to<std::size_t>;
  { a.dim(x) }    -> std::convertible_to<std::size_t>;
  a.copy(y, x);                            // y := x (resizing y)
  a.axpy_frames(y, coeff, x);              // y_f += coeff[f] · x_f (coeff[f] == 0 leaves y_f)
  a.scale_frames(y, coeff);                // y_f *= coeff[f]
  a.gather_frames(y, x, rows);             // y_r := x_{rows[r]} for rows[r] >= 0; y resized to rows.size()
  a.fill_normal(y, dst_rows, streams, seed); // y_{dst_rows[i]} := N(0, I) of stream streams[i]
  a.upload_frames(y, dst_rows, host);      // y_{dst_rows[i]} := host row i
  { a.download(x) } -> std::convertible_to<std::vector<typename A::value_type>>;
  { a.first_nonfinite_frame(x) } -> std::convertible_to<std::optional<std::size_t>>;
};
// clang-format on

}  // namespace flowception
