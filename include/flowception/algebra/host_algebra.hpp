// The reference algebra: frames in one contiguous std::vector<T>, row-major [frames × dim].
#pragma once

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
  std::size_t dim = 0;

  std::size_t frames() const { return dim == 0 ? 0 : values.size() / dim; }
  std::span<T> frame(std::size_t f) { return {values.data() + f * dim, dim}; }
  std::span<const T> frame(std::size_t f) const { return {values.data() + f * dim, dim}; }
};

template <class T>
struct HostAlgebra {
  using value_type = T;
  using buffer = HostFrames<T>;

  // std::vector::resize keeps capacity, so a buffer reused across steps allocates only on growth.
  void resize(buffer& y, std::size_t frames, std::size_t dim) const {
    y.dim = dim;
    y.values.resize(frames * dim);
  }
  std::size_t frames(const buffer& x) const { return x.frames(); }
  std::size_t dim(const buffer& x) const { return x.dim; }

  void copy(buffer& y, const buffer& x) const {
    y.dim = x.dim;
    y.values.assign(x.values.begin(), x.values.end());
  }

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

  void scale_frames(buffer& y, std::span<const double> a) const {
    check_rows(y, a.size(), "scale_frames");
    const std::size_t d = y.dim;
    for (std::size_t f = 0; f < a.size(); ++f) {
      const T c = static_cast<T>(a[f]);
      T* yf = y.values.data() + f * d;
      for (std::size_t e = 0; e < d; ++e) yf[e] *= c;
    }
  }

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

  void fill_normal(buffer& y, std::span<const std::size_t> dst_rows, std::span<const std::uint64_t> streams,
                   std::uint64_t seed) const {
    const std::size_t d = y.dim;
    for (std::size_t i = 0; i < dst_rows.size(); ++i) {
      T* yf = y.values.data() + dst_rows[i] * d;
      for (std::size_t e = 0; e < d; ++e) yf[e] = static_cast<T>(random::normal_at(seed, streams[i], e));
    }
  }

  void upload_frames(buffer& y, std::span<const std::size_t> dst_rows, std::span<const T> host) const {
    const std::size_t d = y.dim;
    for (std::size_t i = 0; i < dst_rows.size(); ++i)
      std::copy(host.begin() + static_cast<std::ptrdiff_t>(i * d), host.begin() + static_cast<std::ptrdiff_t>((i + 1) * d),
                y.values.begin() + static_cast<std::ptrdiff_t>(dst_rows[i] * d));
  }

  std::vector<T> download(const buffer& x) const { return x.values; }

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
