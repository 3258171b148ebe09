// Multi-head softmax attention over a packed batch, without ever forming a T×T matrix: query
// rows are processed in tiles of at most kTileRows tokens, each against its own contiguous key
// range (its video, or the frames within ±window of the tile's frame); consecutive frames with
// the same key range share a tile, so products stay large enough to run near GEMM speed. The forward pass keeps
// the log-sum-exp of every (row, head) so the backward pass recomputes probabilities tile by
// tile (as in FlashAttention).
//
// Device backends use the row kernels below instead: one work item per (query row, head) with an
// online softmax over the row's key range (running maximum and sum, output rescaled as the
// maximum grows), so no score matrix exists at all; the backward pass recomputes probabilities
// from the kept log-sum-exp, one item per (query row, head) for dQ and one per (key row, head)
// for dK and dV (each key's queries form a contiguous range under the packing, window and causal
// masks). The same functors run on the CPU, which is how they are tested against the reference.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "flowception/dit/backend.hpp"
#include "flowception/dit/layout.hpp"

namespace flowception::dit::layers {

// kTileRows and AttentionTile are declared in dit/layout.hpp (the workspace counts the tiles).

/// q, k, v live in one qkv matrix [n × 3·width]: q at column 0, k at width, v at 2·width; head h
/// uses columns h·d .. (h+1)·d of each. out: [n × width]; lse: [n × heads].
template <class T>
struct AttentionShape {
  std::ptrdiff_t n;         ///< Token rows.
  std::ptrdiff_t width;     ///< Width of q, k, v and out (heads·head_dim).
  std::ptrdiff_t heads;     ///< Attention heads.
  std::ptrdiff_t head_dim;  ///< Columns per head.
  /// The softmax scale 1/√head_dim applied to QKᵀ.
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

/// Tiled forward pass (backends with kEigenKernels): out = softmax(scale·QKᵀ)·V per head over each
/// tile's keys, with lse[r·heads + h] the log-sum-exp of the scaled scores of row r, head h.
/// One work item per (tile, head); the tiles' query rows must cover [0, n) once.
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

/// Row kernels. key_range[2r], key_range[2r + 1]: the keys of query row r; query_range likewise
/// for the queries that attend to key row r.
///
/// The forward row kernel: item = r·heads + h computes row r of head h of out with an online
/// softmax over the row's key range, and its log-sum-exp. The range must not be empty.
template <class T>
struct AttentionForwardRow {
  const T* qkv;                   ///< q, k, v: [n × 3·width].
  T* out;                         ///< Attention output, [n × width].
  T* lse;                         ///< Log-sum-exp of the scaled scores, [n × heads].
  const std::int64_t* key_range;  ///< [begin, end) of the keys of each query row (2 values a row).
  std::ptrdiff_t width;           ///< Width of q, k, v and out.
  std::ptrdiff_t heads;           ///< Attention heads.
  std::ptrdiff_t head_dim;        ///< Columns per head.
  T scale;                        ///< Softmax scale (1/√head_dim).
  /// Computes row r = item / heads, head h = item mod heads.
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t item) const {
    const std::ptrdiff_t r = item / heads, h = item % heads, ld = 3 * width, d = head_dim;
    const T* q = qkv + r * ld + h * d;
    T* o = out + r * width + h * d;
    for (std::ptrdiff_t i = 0; i < d; ++i) o[i] = T(0);
    T m = T(0), l = T(0);
    bool first = true;
    for (std::int64_t k = key_range[2 * r]; k < key_range[2 * r + 1]; ++k) {
      const T* kk = qkv + k * ld + width + h * d;
      const T* vv = qkv + k * ld + 2 * width + h * d;
      T s = T(0);
      for (std::ptrdiff_t i = 0; i < d; ++i) s += q[i] * kk[i];
      s *= scale;
      if (first || s > m) {  // a new maximum: rescale what was accumulated under the old one
        const T c = first ? T(0) : std::exp(m - s);
        l *= c;
        for (std::ptrdiff_t i = 0; i < d; ++i) o[i] *= c;
        m = s;
        first = false;
      }
      const T p = std::exp(s - m);
      l += p;
      for (std::ptrdiff_t i = 0; i < d; ++i) o[i] += p * vv[i];
    }
    const T inv = T(1) / l;
    for (std::ptrdiff_t i = 0; i < d; ++i) o[i] *= inv;
    lse[r * heads + h] = m + std::log(l);
  }
};

/// delta[r, h] = dO_r · O_r (the row term of the softmax backward).
template <class T>
struct AttentionRowDelta {
  const T* out;    ///< The forward output, [n × width].
  const T* dout;   ///< ∂L/∂out, [n × width].
  T* delta;        ///< Output, [n × heads].
  std::ptrdiff_t width;     ///< Width of out.
  std::ptrdiff_t heads;     ///< Attention heads.
  std::ptrdiff_t head_dim;  ///< Columns per head.
  /// Computes delta for row r = item / heads, head h = item mod heads.
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t item) const {
    const std::ptrdiff_t r = item / heads, h = item % heads;
    const T* o = out + r * width + h * head_dim;
    const T* g = dout + r * width + h * head_dim;
    T s = T(0);
    for (std::ptrdiff_t i = 0; i < head_dim; ++i) s += g[i] * o[i];
    delta[item] = s;
  }
};

/// dQ_r = Σ_k dS_rk·K_k with dS = P ⊙ (dO·Vᵀ − delta)·scale.
template <class T>
struct AttentionBackwardQuery {
  const T* qkv;                   ///< The forward q, k, v, [n × 3·width].
  const T* lse;                   ///< The forward log-sum-exp, [n × heads].
  const T* dout;                  ///< ∂L/∂out, [n × width].
  const T* delta;                 ///< AttentionRowDelta's output, [n × heads].
  T* dqkv;                        ///< Gradient, layout of qkv; the dQ columns are overwritten.
  const std::int64_t* key_range;  ///< [begin, end) of the keys of each query row.
  std::ptrdiff_t width;           ///< Width of q, k, v and out.
  std::ptrdiff_t heads;           ///< Attention heads.
  std::ptrdiff_t head_dim;        ///< Columns per head.
  T scale;                        ///< Softmax scale (1/√head_dim).
  /// Computes dQ of row r = item / heads, head h = item mod heads.
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t item) const {
    const std::ptrdiff_t r = item / heads, h = item % heads, ld = 3 * width, d = head_dim;
    const T* q = qkv + r * ld + h * d;
    const T* g = dout + r * width + h * d;
    T* dq = dqkv + r * ld + h * d;
    for (std::ptrdiff_t i = 0; i < d; ++i) dq[i] = T(0);
    for (std::int64_t k = key_range[2 * r]; k < key_range[2 * r + 1]; ++k) {
      const T* kk = qkv + k * ld + width + h * d;
      const T* vv = qkv + k * ld + 2 * width + h * d;
      T s = T(0), dp = T(0);
      for (std::ptrdiff_t i = 0; i < d; ++i) {
        s += q[i] * kk[i];
        dp += g[i] * vv[i];
      }
      const T ds = std::exp(s * scale - lse[r * heads + h]) * (dp - delta[item]) * scale;
      for (std::ptrdiff_t i = 0; i < d; ++i) dq[i] += ds * kk[i];
    }
  }
};

/// dK_k = Σ_q dS_qk·Q_q and dV_k = Σ_q P_qk·dO_q over the queries that attend to key row k.
template <class T>
struct AttentionBackwardKey {
  const T* qkv;                     ///< The forward q, k, v, [n × 3·width].
  const T* lse;                     ///< The forward log-sum-exp, [n × heads].
  const T* dout;                    ///< ∂L/∂out, [n × width].
  const T* delta;                   ///< AttentionRowDelta's output, [n × heads].
  T* dqkv;                          ///< Gradient, layout of qkv; the dK and dV columns are overwritten.
  const std::int64_t* query_range;  ///< [begin, end) of the queries that attend to each key row.
  std::ptrdiff_t width;             ///< Width of q, k, v and out.
  std::ptrdiff_t heads;             ///< Attention heads.
  std::ptrdiff_t head_dim;          ///< Columns per head.
  T scale;                          ///< Softmax scale (1/√head_dim).
  /// Computes dK and dV of key row k = item / heads, head h = item mod heads.
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t item) const {
    const std::ptrdiff_t k = item / heads, h = item % heads, ld = 3 * width, d = head_dim;
    const T* kk = qkv + k * ld + width + h * d;
    const T* vv = qkv + k * ld + 2 * width + h * d;
    T* dk = dqkv + k * ld + width + h * d;
    T* dv = dqkv + k * ld + 2 * width + h * d;
    for (std::ptrdiff_t i = 0; i < d; ++i) dk[i] = dv[i] = T(0);
    for (std::int64_t r = query_range[2 * k]; r < query_range[2 * k + 1]; ++r) {
      const T* q = qkv + r * ld + h * d;
      const T* g = dout + r * width + h * d;
      T s = T(0), dp = T(0);
      for (std::ptrdiff_t i = 0; i < d; ++i) {
        s += q[i] * kk[i];
        dp += g[i] * vv[i];
      }
      const T p = std::exp(s * scale - lse[r * heads + h]);
      const T ds = p * (dp - delta[r * heads + h]) * scale;
      for (std::ptrdiff_t i = 0; i < d; ++i) {
        dv[i] += p * g[i];
        dk[i] += ds * q[i];
      }
    }
  }
};

/// Forward pass by row kernels (device backends): AttentionForwardRow over every (row, head).
template <class Backend, class T>
void attention_forward_rows(const AttentionShape<T>& sh, const std::int64_t* key_range, const T* qkv, T* out, T* lse) {
  Backend::parallel_for(sh.n * sh.heads,
                        AttentionForwardRow<T>{qkv, out, lse, key_range, sh.width, sh.heads, sh.head_dim, sh.scale()});
}

/// Backward pass by row kernels: delta, then dQ per (query row, head), then dK and dV per (key
/// row, head); dqkv is overwritten. delta: scratch of n × heads values.
template <class Backend, class T>
void attention_backward_rows(const AttentionShape<T>& sh, const std::int64_t* key_range,
                             const std::int64_t* query_range, const T* qkv, const T* out, const T* lse, const T* dout,
                             T* dqkv, T* delta) {
  const std::ptrdiff_t items = sh.n * sh.heads;
  Backend::parallel_for(items, AttentionRowDelta<T>{out, dout, delta, sh.width, sh.heads, sh.head_dim});
  Backend::parallel_for(items, AttentionBackwardQuery<T>{qkv, lse, dout, delta, dqkv, key_range, sh.width, sh.heads,
                                                         sh.head_dim, sh.scale()});
  Backend::parallel_for(items, AttentionBackwardKey<T>{qkv, lse, dout, delta, dqkv, query_range, sh.width, sh.heads,
                                                       sh.head_dim, sh.scale()});
}

/// What the model calls: Eigen tiles where the backend has them, row kernels on devices.
template <class Backend, class T>
void attention_forward(const AttentionShape<T>& sh, const std::vector<AttentionTile>& tiles,
                       const std::int64_t* key_range, const T* qkv, T* out, T* lse) {
  if constexpr (Backend::kEigenKernels)
    attention_forward<Backend>(sh, tiles, qkv, out, lse);
  else
    attention_forward_rows<Backend>(sh, key_range, qkv, out, lse);
}

/// What the model calls for backward: the Eigen tiles where the backend has them (delta unused),
/// the row kernels on devices. dqkv is overwritten.
template <class Backend, class T>
void attention_backward(const AttentionShape<T>& sh, const std::vector<AttentionTile>& tiles,
                        const std::int64_t* key_range, const std::int64_t* query_range, const T* qkv, const T* out,
                        const T* lse, const T* dout, T* dqkv, T* delta) {
  if constexpr (Backend::kEigenKernels)
    attention_backward<Backend>(sh, tiles, qkv, out, lse, dout, dqkv);
  else
    attention_backward_rows<Backend>(sh, key_range, query_range, qkv, out, lse, dout, dqkv, delta);
}

}  // namespace flowception::dit::layers
