// A FrameAlgebra over Thrust device vectors: the sampler, the solvers and the baselines keep
// frames, velocities and noise in device memory, and only per-frame coefficients, row maps and
// stream ids (a few numbers per frame) travel to the device each call. Every loop is one
// thrust::for_each over elements with a FLOWCEPTION_HOST_DEVICE functor, so the same source runs
// on CUDA (nvcc) and on Thrust's OpenMP or C++ device systems (g++ with
// -DTHRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP), which is how it is tested without a GPU.
// Results equal HostAlgebra's bit for bit: each element is computed by the same expression.
#pragma once

#include <thrust/copy.h>
#include <thrust/device_vector.h>
#include <thrust/execution_policy.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/transform_reduce.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "flowception/algebra/device_stream.hpp"
#include "flowception/algebra/frame_algebra.hpp"
#include "flowception/core/errors.hpp"
#include "flowception/random/stream.hpp"

namespace flowception {

/// A packed sequence of frames in Thrust device memory, row-major [frames × dim].
template <class T>
struct ThrustFrames {
  thrust::device_vector<T> values;  ///< row-major, frames() × dim, in device memory
  std::size_t dim = 0;              ///< elements per frame (0 for an empty buffer)

  /// Number of frames: `values.size() / dim`, or 0 when `dim` is 0.
  std::size_t frames() const { return dim == 0 ? 0 : values.size() / dim; }
};

namespace detail::thrust_ops {

// One functor per operation; each handles element i of a [rows × d] range.
template <class T>
struct Axpy {
  T* y;
  const T* x;
  const double* a;
  std::size_t d;
  FLOWCEPTION_HOST_DEVICE void operator()(std::size_t i) const {
    const double c = a[i / d];
    if (c != 0.0) y[i] += static_cast<T>(c) * x[i];  // a zero leaves y_f, as in HostAlgebra
  }
};

template <class T>
struct Scale {
  T* y;
  const double* a;
  std::size_t d;
  FLOWCEPTION_HOST_DEVICE void operator()(std::size_t i) const { y[i] *= static_cast<T>(a[i / d]); }
};

template <class T>
struct Gather {
  T* y;
  const T* x;
  const std::int64_t* rows;
  std::size_t d;
  FLOWCEPTION_HOST_DEVICE void operator()(std::size_t i) const {
    const std::int64_t r = rows[i / d];
    if (r >= 0) y[i] = x[static_cast<std::size_t>(r) * d + i % d];
  }
};

template <class T>
struct Normal {
  T* y;
  const std::size_t* dst;
  const std::uint64_t* streams;
  std::uint64_t seed;
  std::size_t d;
  FLOWCEPTION_HOST_DEVICE void operator()(std::size_t i) const {
    const std::size_t k = i / d, e = i % d;
    y[dst[k] * d + e] = static_cast<T>(random::normal_at(seed, streams[k], e));
  }
};

template <class T>
struct Scatter {
  T* y;
  const T* src;
  const std::size_t* dst;
  std::size_t d;
  FLOWCEPTION_HOST_DEVICE void operator()(std::size_t i) const { y[dst[i / d] * d + i % d] = src[i]; }
};

// The index of element i if it is not finite, else the largest index: the minimum over all
// elements is the first non-finite one. (v − v is 0 for every finite v and NaN for ±inf and NaN;
// std::isfinite is not available on the device.)
template <class T>
struct NonFiniteIndex {
  const T* x;
  FLOWCEPTION_HOST_DEVICE std::size_t operator()(std::size_t i) const {
    const T v = x[i];
    return v - v == T(0) ? ~std::size_t{0} : i;
  }
};

struct Min {
  FLOWCEPTION_HOST_DEVICE std::size_t operator()(std::size_t a, std::size_t b) const { return a < b ? a : b; }
};

}  // namespace detail::thrust_ops

/// A `FrameAlgebra` over `ThrustFrames<T>`: one `thrust::for_each` per operation, results equal to
/// `HostAlgebra`'s bit for bit. It keeps device staging vectors for the per-frame coefficients, row
/// maps and stream ids, so its operations are non-const and one instance serves one caller at a time.
template <class T>
struct ThrustAlgebra {
  using value_type = T;           ///< element type of a frame
  using buffer = ThrustFrames<T>;  ///< frame storage in device memory

  /// Makes `y` hold `frames` × `dim` elements; contents unspecified.
  /// device_vector::resize keeps capacity, so a buffer reused across steps allocates only on growth.
  void resize(buffer& y, std::size_t frames, std::size_t dim) {
    y.dim = dim;
    y.values.resize(frames * dim);
  }
  /// Number of frames in `x`.
  std::size_t frames(const buffer& x) const { return x.frames(); }
  /// Elements per frame of `x`.
  std::size_t dim(const buffer& x) const { return x.dim; }

  /// y := x, resizing `y` (a device-to-device copy, in stream order).
  void copy(buffer& y, const buffer& x) {
    y.dim = x.dim;
    y.values.resize(x.values.size());
    thrust::copy(device::policy(), x.values.begin(), x.values.end(), y.values.begin());
  }

  /// y_f += a[f] · x_f for each frame f; a[f] == 0 leaves y_f untouched. Throws `ShapeError`
  /// unless `a.size()` equals the frame count of `y` and `x` has as many values as `y`.
  void axpy_frames(buffer& y, std::span<const double> a, const buffer& x) {
    check_rows(y, a.size(), "axpy_frames");
    detail::require<ShapeError>(x.values.size() == y.values.size(), "axpy_frames: x has ", x.values.size(),
                                " values, y has ", y.values.size());
    const double* c = stage(coeff_, a);
    for_each(y.values.size(), detail::thrust_ops::Axpy<T>{raw(y), raw(x), c, y.dim});
  }

  /// y_f *= a[f] for each frame f. Throws `ShapeError` unless `a.size()` equals the frame count of `y`.
  void scale_frames(buffer& y, std::span<const double> a) {
    check_rows(y, a.size(), "scale_frames");
    const double* c = stage(coeff_, a);
    for_each(y.values.size(), detail::thrust_ops::Scale<T>{raw(y), c, y.dim});
  }

  /// Resizes `y` to `rows.size()` frames and copies y_r := x_{rows[r]}; rows with rows[r] < 0 are
  /// left for the caller to fill. Throws `ShapeError` if `y` is `x` or a row is past the end of `x`.
  void gather_frames(buffer& y, const buffer& x, std::span<const std::int64_t> rows) {
    detail::require<ShapeError>(&y != &x, "gather_frames: y and x must be different buffers");
    const std::size_t d = x.dim;
    for (const std::int64_t r : rows)
      detail::require<ShapeError>(r < static_cast<std::int64_t>(x.frames()), "gather_frames: row ", r,
                                  " of a buffer with ", x.frames(), " frames");
    y.dim = d;
    y.values.resize(rows.size() * d);
    const std::int64_t* r = stage(rows_, rows);
    for_each(rows.size() * d, detail::thrust_ops::Gather<T>{raw(y), raw(x), r, d});
  }

  /// Row `dst_rows[i]` of `y` := standard-normal noise of stream `streams[i]`, element e being
  /// `random::normal_at(seed, streams[i], e)`. Throws `ShapeError` on a size mismatch or a row past the end.
  void fill_normal(buffer& y, std::span<const std::size_t> dst_rows, std::span<const std::uint64_t> streams,
                   std::uint64_t seed) {
    detail::require<ShapeError>(dst_rows.size() == streams.size(), "fill_normal: ", dst_rows.size(), " rows, ",
                                streams.size(), " streams");
    check_dst(y, dst_rows, "fill_normal");
    const std::size_t* dst = stage(dst_, dst_rows);
    const std::uint64_t* s = stage(streams_, streams);
    for_each(dst_rows.size() * y.dim, detail::thrust_ops::Normal<T>{raw(y), dst, s, seed, y.dim});
  }

  /// Row `dst_rows[i]` of `y` := row i of the row-major host span `host`. Throws `ShapeError` unless
  /// `host` holds exactly `dst_rows.size()` rows of `dim` values and every row is inside `y`.
  void upload_frames(buffer& y, std::span<const std::size_t> dst_rows, std::span<const T> host) {
    detail::require<ShapeError>(host.size() == dst_rows.size() * y.dim, "upload_frames: ", host.size(),
                                " values for ", dst_rows.size(), " frames of ", y.dim);
    check_dst(y, dst_rows, "upload_frames");
    const std::size_t* dst = stage(dst_, dst_rows);
    const T* src = stage(upload_, host);
    for_each(host.size(), detail::thrust_ops::Scatter<T>{raw(y), src, dst, y.dim});
  }

  /// Every frame of `x`, copied to the host row-major (the host waits for the stream).
  std::vector<T> download(const buffer& x) const {
    std::vector<T> out(x.values.size());
    device::copy_to_host(raw(x), out.size(), out.data());
    return out;
  }

  /// Index of the first frame of `x` holding a NaN or Inf, or `nullopt` (one reduction on the device).
  std::optional<std::size_t> first_nonfinite_frame(const buffer& x) const {
    constexpr std::size_t none = ~std::size_t{0};
    const std::size_t first = thrust::transform_reduce(
        device::policy(), thrust::counting_iterator<std::size_t>(0), thrust::counting_iterator<std::size_t>(x.values.size()),
        detail::thrust_ops::NonFiniteIndex<T>{raw(x)}, none, detail::thrust_ops::Min{});
    if (first == none) return std::nullopt;
    return first / x.dim;
  }

 private:
  // Per-call host data (coefficients, row maps, streams) is staged in device vectors that keep
  // their capacity, so a sampler step allocates nothing once the batch stops growing.
  thrust::device_vector<double> coeff_;
  thrust::device_vector<std::int64_t> rows_;
  thrust::device_vector<std::size_t> dst_;
  thrust::device_vector<std::uint64_t> streams_;
  thrust::device_vector<T> upload_;

  template <class U>
  static const U* stage(thrust::device_vector<U>& dev, std::span<const U> host) {
    dev.resize(host.size());
    device::copy_to_device(host.data(), host.size(), thrust::raw_pointer_cast(dev.data()));
    return thrust::raw_pointer_cast(dev.data());
  }
  static T* raw(buffer& b) { return thrust::raw_pointer_cast(b.values.data()); }
  static const T* raw(const buffer& b) { return thrust::raw_pointer_cast(b.values.data()); }
  template <class F>
  static void for_each(std::size_t n, F f) {
    if (n == 0) return;
    thrust::for_each(device::policy(), thrust::counting_iterator<std::size_t>(0), thrust::counting_iterator<std::size_t>(n), f);
  }
  static void check_rows(const buffer& y, std::size_t n, const char* op) {
    detail::require<ShapeError>(y.frames() == n, op, ": coefficient count ", n, " != frame count ", y.frames());
  }
  static void check_dst(const buffer& y, std::span<const std::size_t> dst, const char* op) {
    for (const std::size_t r : dst)
      detail::require<ShapeError>(r < y.frames(), op, ": row ", r, " of a buffer with ", y.frames(), " frames");
  }
};

static_assert(FrameAlgebra<ThrustAlgebra<float>>);
static_assert(FrameAlgebra<ThrustAlgebra<double>>);

}  // namespace flowception
