// Multi-head softmax attention over a packed batch, without ever forming a T×T matrix: query
// rows are processed in tiles of at most kTileRows tokens, each against its own contiguous key
// range (its video, or the frames within ±window of the tile's frame); consecutive frames with
// the same key range share a tile, so products stay large enough to run near GEMM speed. The forward pass keeps
// the log-sum-exp of every (row, head) so the backward pass recomputes probabilities tile by
// tile (as in FlashAttention).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include <Eigen/Core>

#include "flowception/dit/backend.hpp"

namespace flowception::dit::layers {

inline constexpr std::ptrdiff_t kTileRows = 64;

/// A block of query rows and the key rows it may attend to.
struct AttentionTile {
  std::ptrdiff_t q_begin, q_end, k_begin, k_end;
};

/// q, k, v live in one qkv matrix [n × 3·width]: q at column 0, k at width, v at 2·width; head h
/// uses columns h·d .. (h+1)·d of each. out: [n × width]; lse: [n × heads].
template <class T>
struct AttentionShape {
  std::ptrdiff_t n, width, heads, head_dim;
  T scale() const { return static_cast<T>(1.0 / std::sqrt(static_cast<double>(head_dim))); }
};

namespace detail_attention {
template <class T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using CMap = Eigen::Map<const Mat<T>, 0, Eigen::OuterStride<>>;
template <class T>
using MMap = Eigen::Map<Mat<T>, 0, Eigen::OuterStride<>>;
}  // namespace detail_attention

template <class Backend, class T>
void attention_forward(const AttentionShape<T>& sh, const std::vector<AttentionTile>& tiles, const T* qkv, T* out,
                       T* lse) {
  using namespace detail_attention;
  const std::ptrdiff_t ld = 3 * sh.width, d = sh.head_dim, H = sh.heads;
  const T scale = sh.scale();
  const auto items = static_cast<std::ptrdiff_t>(tiles.size()) * H;
  Backend::parallel_for(items, [&](std::ptrdiff_t item) {
    const AttentionTile& t = tiles[static_cast<std::size_t>(item / H)];
    const std::ptrdiff_t h = item % H;
    const std::ptrdiff_t rows = t.q_end - t.q_begin, keys = t.k_end - t.k_begin;
    thread_local Mat<T> S;
    S.resize(rows, keys);
    CMap<T> Q(qkv + t.q_begin * ld + h * d, rows, d, Eigen::OuterStride<>(ld));
    CMap<T> K(qkv + t.k_begin * ld + sh.width + h * d, keys, d, Eigen::OuterStride<>(ld));
    CMap<T> V(qkv + t.k_begin * ld + 2 * sh.width + h * d, keys, d, Eigen::OuterStride<>(ld));
    // The scale is applied inside the exponential: a scaled product expression would make Eigen
    // evaluate the product into a temporary and copy it.
    S.noalias() = Q * K.transpose();
    thread_local Eigen::Array<T, Eigen::Dynamic, 1> inv;
    inv.resize(rows);
    for (std::ptrdiff_t r = 0; r < rows; ++r) {
      const T m = S.row(r).maxCoeff() * scale;  // scale > 0: the maximum of the scaled row
      S.row(r) = (S.row(r).array() * scale - m).exp();
      const T l = S.row(r).sum();
      inv[r] = T(1) / l;
      lse[(t.q_begin + r) * H + h] = m + std::log(l);
    }
    // Normalise the (rows × d) output rather than the (rows × keys) probabilities.
    MMap<T> O(out + t.q_begin * sh.width + h * d, rows, d, Eigen::OuterStride<>(sh.width));
    O.noalias() = S * V;
    O.array().colwise() *= inv;
  }, 2);
}

/// dqkv (same layout as qkv) is overwritten. `out` and `lse` are the forward results.
template <class Backend, class T>
void attention_backward(const AttentionShape<T>& sh, const std::vector<AttentionTile>& tiles, const T* qkv,
                        const T* out, const T* lse, const T* dout, T* dqkv) {
  using namespace detail_attention;
  const std::ptrdiff_t ld = 3 * sh.width, d = sh.head_dim, H = sh.heads;
  const T scale = sh.scale();
  // Zero dK and dV (accumulated across tiles); dQ rows are written once per tile.
  Backend::parallel_for(sh.n, [=](std::ptrdiff_t r) {
    std::fill(dqkv + r * ld + sh.width, dqkv + (r + 1) * ld, T(0));
  });
  // One head per work item: tiles of a head share dK/dV rows, heads own disjoint columns.
  Backend::parallel_for(H, [&](std::ptrdiff_t h) {
    Mat<T> P, dP;
    for (const AttentionTile& t : tiles) {
      const std::ptrdiff_t rows = t.q_end - t.q_begin, keys = t.k_end - t.k_begin;
      CMap<T> Q(qkv + t.q_begin * ld + h * d, rows, d, Eigen::OuterStride<>(ld));
      CMap<T> K(qkv + t.k_begin * ld + sh.width + h * d, keys, d, Eigen::OuterStride<>(ld));
      CMap<T> V(qkv + t.k_begin * ld + 2 * sh.width + h * d, keys, d, Eigen::OuterStride<>(ld));
      CMap<T> O(out + t.q_begin * sh.width + h * d, rows, d, Eigen::OuterStride<>(sh.width));
      CMap<T> dO(dout + t.q_begin * sh.width + h * d, rows, d, Eigen::OuterStride<>(sh.width));
      MMap<T> dQ(dqkv + t.q_begin * ld + h * d, rows, d, Eigen::OuterStride<>(ld));
      MMap<T> dK(dqkv + t.k_begin * ld + sh.width + h * d, keys, d, Eigen::OuterStride<>(ld));
      MMap<T> dV(dqkv + t.k_begin * ld + 2 * sh.width + h * d, keys, d, Eigen::OuterStride<>(ld));
      P.resize(rows, keys);
      P.noalias() = Q * K.transpose();
      for (std::ptrdiff_t r = 0; r < rows; ++r)
        P.row(r) = (P.row(r).array() * scale - lse[(t.q_begin + r) * H + h]).exp();
      dV.noalias() += P.transpose() * dO;
      dP.resize(rows, keys);
      dP.noalias() = dO * V.transpose();
      for (std::ptrdiff_t r = 0; r < rows; ++r) {
        const T D = dO.row(r).dot(O.row(r));
        dP.row(r) = (P.row(r).array() * (dP.row(r).array() - D)) * scale;  // dS, times the scale of QKᵀ
      }
      dQ.noalias() = dP * K;
      dK.noalias() += dP.transpose() * Q;
    }
  }, 2);
}

}  // namespace flowception::dit::layers
