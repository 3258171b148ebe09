// The reference algebra: frames in one contiguous std::vector<T>, row-major [frames × dim].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "flowception/algebra/frame_algebra.hpp"
#include "flowception/core/errors.hpp"
#include "flowception/random/stream.hpp"

namespace flowception {

/// A packed sequence of frames on the host.
template <class T>
struct HostFrames {
  std::vector<T> values;  ///< row-major, frames() × dim
  std::size_t dim = 0;    ///< elements per frame (0 for an empty buffer)

  /// Number of frames: `values.size() / dim`, or 0 when `dim` is 0.
  std::size_t frames() const { return dim == 0 ? 0 : values.size() / dim; }
  /// The `dim` elements of frame `f` (unchecked).
  std::span<T> frame(std::size_t f) { return {values.data() + f * dim, dim}; }
  /// The `dim` elements of frame `f`, read-only (unchecked).
  std::span<const T> frame(std::size_t f) const { return {values.data() + f * dim, dim}; }
};

/// The reference `FrameAlgebra`: frames in a `HostFrames<T>`, plain loops on the host. Zero
/// coefficients skip their frame, so context and finished frames stay bit-identical.
template <class T>
struct HostAlgebra {
  using value_type = T;         ///< element type of a frame
  using buffer = HostFrames<T>;  ///< frame storage

  /// Makes `y` hold `frames` × `dim` elements; contents unspecified.
  /// std::vector::resize keeps capacity, so a buffer reused across steps allocates only on growth.
  void resize(buffer& y, std::size_t frames, std::size_t dim) const {
    y.dim = dim;
    y.values.resize(frames * dim);
  }
  /// Number of frames in `x`.
  std::size_t frames(const buffer& x) const { return x.frames(); }
  /// Elements per frame of `x`.
  std::size_t dim(const buffer& x) const { return x.dim; }

  /// y := x, resizing `y`.
  void copy(buffer& y, const buffer& x) const {
    y.dim = x.dim;
    y.values.assign(x.values.begin(), x.values.end());
  }

  /// y_f += a[f] · x_f for each frame f; a[f] == 0 leaves y_f untouched. Throws `ShapeError`
  /// unless `a.size()` equals the frame count of `y`.
  void axpy_frames(buffer& y, std::span<const double> a, const buffer& x) const {
    check_rows(y, a.size(), "axpy_frames");
    const std::size_t d = y.dim;
    for (std::size_t f = 0; f < a.size(); ++f) {
      if (a[f] == 0.0) continue;
      const T c = static_cast<T>(a[f]);
      T* __restrict yf = y.values.data() + f * d;
      const T* __restrict xf = x.values.data() + f * d;
      for (std::size_t e = 0; e < d; ++e) yf[e] += c * xf[e];
    }
  }

  /// y_f *= a[f] for each frame f. Throws `ShapeError` unless `a.size()` equals the frame count of `y`.
  void scale_frames(buffer& y, std::span<const double> a) const {
    check_rows(y, a.size(), "scale_frames");
    const std::size_t d = y.dim;
    for (std::size_t f = 0; f < a.size(); ++f) {
      const T c = static_cast<T>(a[f]);
      T* yf = y.values.data() + f * d;
      for (std::size_t e = 0; e < d; ++e) yf[e] *= c;
    }
  }

  /// Resizes `y` to `rows.size()` frames and copies y_r := x_{rows[r]}; rows with rows[r] < 0 are
  /// left for the caller to fill. `y` and `x` must be distinct.
  void gather_frames(buffer& y, const buffer& x, std::span<const std::int64_t> rows) const {
    const std::size_t d = x.dim;
    y.dim = d;
    y.values.resize(rows.size() * d);
    for (std::size_t r = 0; r < rows.size(); ++r) {
      if (rows[r] < 0) continue;
      const T* src = x.values.data() + static_cast<std::size_t>(rows[r]) * d;
      std::copy(src, src + d, y.values.data() + r * d);
    }
  }

  /// Row `dst_rows[i]` of `y` := standard-normal noise of stream `streams[i]`, element e being
  /// `random::normal_at(seed, streams[i], e)`.
  void fill_normal(buffer& y, std::span<const std::size_t> dst_rows, std::span<const std::uint64_t> streams,
                   std::uint64_t seed) const {
    const std::size_t d = y.dim;
    for (std::size_t i = 0; i < dst_rows.size(); ++i) {
      T* yf = y.values.data() + dst_rows[i] * d;
      for (std::size_t e = 0; e < d; ++e) yf[e] = static_cast<T>(random::normal_at(seed, streams[i], e));
    }
  }

  /// Row `dst_rows[i]` of `y` := row i of the row-major `host` (which holds `dst_rows.size()` rows).
  void upload_frames(buffer& y, std::span<const std::size_t> dst_rows, std::span<const T> host) const {
    const std::size_t d = y.dim;
    for (std::size_t i = 0; i < dst_rows.size(); ++i)
      std::copy(host.begin() + static_cast<std::ptrdiff_t>(i * d), host.begin() + static_cast<std::ptrdiff_t>((i + 1) * d),
                y.values.begin() + static_cast<std::ptrdiff_t>(dst_rows[i] * d));
  }

  /// Every frame of `x`, row-major.
  std::vector<T> download(const buffer& x) const { return x.values; }

  /// Index of the first frame of `x` holding a NaN or Inf, or `nullopt`.
  std::optional<std::size_t> first_nonfinite_frame(const buffer& x) const {
    for (std::size_t i = 0; i < x.values.size(); ++i)
      if (!std::isfinite(x.values[i])) return i / x.dim;
    return std::nullopt;
  }

 private:
  static void check_rows(const buffer& y, std::size_t n, const char* op) {
    detail::require<ShapeError>(y.frames() == n, op, ": coefficient count ", n, " != frame count ", y.frames());
  }
};

static_assert(FrameAlgebra<HostAlgebra<float>>);
static_assert(FrameAlgebra<HostAlgebra<double>>);

}  // namespace flowception
