// 3-D rotary positions (RoPE) over (frame index, patch row, patch column). A head's d dims are
// split into three even sections, one per axis; within section a, the pair (2i, 2i+1) rotates by
// angle pos_a · base^(−2i/d_a). Rotations are orthogonal, so the backward pass rotates the
// gradient by the opposite angle. Shifting every frame index by a constant multiplies all
// query–key products of a head by rotations that cancel, so attention is translation-invariant.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <vector>

#include "flowception/dit/backend.hpp"

namespace flowception::dit::layers {

/// Fills cos and sin ([tokens, pairs] row-major) for one token per entry of `pos` (frame, row,
/// column positions): axis a gets axis_dims[a] dimensions (even), and its pair i rotates by
/// pos[a]·base^(−2i/axis_dims[a]). Pairs are ordered frame axis, then rows, then columns. Returns
/// the pairs per token.
template <class T>
std::ptrdiff_t build_rope_table(const std::vector<std::array<double, 3>>& pos, std::array<std::size_t, 3> axis_dims,
                                double base, std::vector<T>& cos, std::vector<T>& sin) {
  const auto pairs = static_cast<std::ptrdiff_t>((axis_dims[0] + axis_dims[1] + axis_dims[2]) / 2);
  const std::size_t n = pos.size();
  cos.resize(n * static_cast<std::size_t>(pairs));
  sin.resize(n * static_cast<std::size_t>(pairs));
  for (std::size_t r = 0; r < n; ++r) {
    std::size_t p = 0;
    for (int a = 0; a < 3; ++a) {
      const std::size_t half = axis_dims[a] / 2;
      for (std::size_t i = 0; i < half; ++i, ++p) {
        const double freq = std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(axis_dims[a]));
        const double angle = pos[r][a] * freq;
        cos[r * static_cast<std::size_t>(pairs) + p] = static_cast<T>(std::cos(angle));
        sin[r * static_cast<std::size_t>(pairs) + p] = static_cast<T>(std::sin(angle));
      }
    }
  }
  return pairs;
}

/// cos/sin of every (token, pair): `pairs` = head_dim/2 columns per token.
template <class T>
struct RopeTable {
  std::vector<T> cos;  ///< cos of each angle, tokens × pairs row-major.
  std::vector<T> sin;  ///< sin of each angle, tokens × pairs.
  std::ptrdiff_t pairs = 0;  ///< Rotary pairs per head (head_dim/2).

  /// Fills the table for one token per entry of `pos` (frame, row, column positions): axis a gets
  /// axis_dims[a] dimensions (even), and its pair i rotates by pos[a]·base^(−2i/axis_dims[a]).
  /// Pairs are ordered frame axis, then rows, then columns.
  void build(const std::vector<std::array<double, 3>>& pos, std::array<std::size_t, 3> axis_dims, double base) {
    pairs = build_rope_table(pos, axis_dims, base, cos, sin);
  }
};

/// Row kernel of rope_apply(): rotates every pair (2p, 2p+1) of each head in row r of x.
template <class T>
struct RopeRow {
  const T* c;  ///< cos table, rows × pairs.
  const T* s;  ///< sin table, rows × pairs.
  T* x;        ///< Rows rotated in place.
  std::ptrdiff_t heads;  ///< Head vectors per row.
  std::ptrdiff_t pairs;  ///< Pairs per head.
  std::ptrdiff_t ld;     ///< Leading dimension of x.
  std::ptrdiff_t col0;   ///< Column of the first head.
  T sign;      ///< +1 rotates by the angle (forward), −1 by the opposite angle (backward).
  /// Rotates the heads of row r.
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t r) const {
    for (std::ptrdiff_t h = 0; h < heads; ++h) {
      T* v = x + r * ld + col0 + h * 2 * pairs;
      for (std::ptrdiff_t p = 0; p < pairs; ++p) {
        const T cs = c[r * pairs + p], sn = sign * s[r * pairs + p];
        const T a = v[2 * p], b = v[2 * p + 1];
        v[2 * p] = a * cs - b * sn;
        v[2 * p + 1] = a * sn + b * cs;
      }
    }
  }
};

/// Rotates, in place, the pairs of `heads` head vectors of width 2·pairs that start at column
/// `col0` of each row of x (leading dimension ld). direction +1: forward, −1: backward.
/// cos/sin: the table's values, in the backend's memory.
template <class Backend, class T>
void rope_apply(std::ptrdiff_t n, std::ptrdiff_t heads, const T* cos, const T* sin, std::ptrdiff_t pairs, T* x,
                std::ptrdiff_t ld, std::ptrdiff_t col0, int direction) {
  Backend::parallel_for(n, RopeRow<T>{cos, sin, x, heads, pairs, ld, col0, direction > 0 ? T(1) : T(-1)});
}

/// The same, reading a host table (backends with host memory).
template <class Backend, class T>
void rope_apply(std::ptrdiff_t n, std::ptrdiff_t heads, const RopeTable<T>& table, T* x, std::ptrdiff_t ld,
                std::ptrdiff_t col0, int direction) {
  rope_apply<Backend>(n, heads, table.cos.data(), table.sin.data(), table.pairs, x, ld, col0, direction);
}

}  // namespace flowception::dit::layers
