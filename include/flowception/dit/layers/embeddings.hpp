// Input and conditioning embeddings of §6: patchify / un-patchify of C×H×W frames, the
// sinusoidal embedding of 1000·t, and table look-ups (kind, class) with scatter-add backward.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "flowception/dit/backend.hpp"

namespace flowception::dit::layers {

/// Patch geometry: patch (gy, gx) is token gy·gw + gx; inside it, element (c, py, px) is column
/// (c·p + py)·p + px.
struct PatchGeometry {
  std::ptrdiff_t channels;  ///< C
  std::ptrdiff_t height;    ///< H, pixels
  std::ptrdiff_t width;     ///< W, pixels
  std::ptrdiff_t patch;     ///< p: p×p patches (divides H and W)
  FLOWCEPTION_HOST_DEVICE std::ptrdiff_t gh() const { return height / patch; }  ///< Patch rows (H / p).
  FLOWCEPTION_HOST_DEVICE std::ptrdiff_t gw() const { return width / patch; }   ///< Patch columns (W / p).
  FLOWCEPTION_HOST_DEVICE std::ptrdiff_t tokens() const { return gh() * gw(); }  ///< Patch tokens per frame.
  /// Values per patch (C·p·p).
  FLOWCEPTION_HOST_DEVICE std::ptrdiff_t patch_dim() const { return channels * patch * patch; }
  /// Values per frame (C·H·W).
  FLOWCEPTION_HOST_DEVICE std::ptrdiff_t frame_dim() const { return channels * height * width; }
  /// Index in the frame of column `col` of patch token `tok`.
  FLOWCEPTION_HOST_DEVICE std::ptrdiff_t pixel(std::ptrdiff_t tok, std::ptrdiff_t col) const {
    const std::ptrdiff_t gy = tok / gw(), gx = tok % gw();
    const std::ptrdiff_t c = col / (patch * patch), py = (col / patch) % patch, px = col % patch;
    return (c * height + gy * patch + py) * width + gx * patch + px;
  }
};

/// frame (frame_dim values) → patches (tokens × patch_dim), row stride ld_out.
template <class T, class S>
FLOWCEPTION_HOST_DEVICE void patchify(const PatchGeometry& g, const S* frame, T* patches, std::ptrdiff_t ld_out) {
  for (std::ptrdiff_t t = 0; t < g.tokens(); ++t)
    for (std::ptrdiff_t c = 0; c < g.patch_dim(); ++c) patches[t * ld_out + c] = static_cast<T>(frame[g.pixel(t, c)]);
}

/// patches (tokens × patch_dim, row stride ld_in) → frame.
template <class T, class S>
FLOWCEPTION_HOST_DEVICE void unpatchify(const PatchGeometry& g, const T* patches, std::ptrdiff_t ld_in, S* frame) {
  for (std::ptrdiff_t t = 0; t < g.tokens(); ++t)
    for (std::ptrdiff_t c = 0; c < g.patch_dim(); ++c) frame[g.pixel(t, c)] = static_cast<S>(patches[t * ld_in + c]);
}

/// [cos(1000·t·ω_i), sin(1000·t·ω_i)], ω_i = 10000^(−i/half), i < half = dim/2.
template <class T>
void timestep_embedding(double t, std::ptrdiff_t dim, T* out) {
  const std::ptrdiff_t half = dim / 2;
  for (std::ptrdiff_t i = 0; i < half; ++i) {
    const double w = std::exp(-std::log(10000.0) * static_cast<double>(i) / static_cast<double>(half));
    const double a = 1000.0 * t * w;
    out[i] = static_cast<T>(std::cos(a));
    out[half + i] = static_cast<T>(std::sin(a));
  }
}

/// Row kernel of embedding_add(): out[r] += table[index[r]].
template <class T>
struct EmbeddingAddRow {
  const T* table;             ///< Embedding table, rows of width d.
  const std::int64_t* index;  ///< Table row of each output row.
  T* out;                     ///< Rows added to, width d.
  std::ptrdiff_t d;           ///< Row width.
  /// Adds the table row of row r.
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t r) const {
    for (std::ptrdiff_t i = 0; i < d; ++i) out[r * d + i] += table[index[r] * d + i];
  }
};

/// One column of the table gradient: rows may share an index, so each work item owns a column
/// and walks the rows in order (no atomics, the same sum order as a serial loop).
template <class T>
struct EmbeddingBackwardColumn {
  const std::int64_t* index;  ///< Table row of each of the n rows.
  const T* dout;              ///< ∂L/∂out, n × d.
  T* dtable;                  ///< Table gradient, rows of width d; added to.
  std::ptrdiff_t n;  ///< Rows of dout.
  std::ptrdiff_t d;  ///< Row width.
  /// Adds column i of every row of dout into its table row.
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t i) const {
    for (std::ptrdiff_t r = 0; r < n; ++r) dtable[index[r] * d + i] += dout[r * d + i];
  }
};

/// out[r] += table[index[r]] for r < n (rows of width d).
template <class Backend, class T>
void embedding_add(std::ptrdiff_t n, std::ptrdiff_t d, const T* table, const std::int64_t* index, T* out) {
  Backend::parallel_for(n, EmbeddingAddRow<T>{table, index, out, d});
}

/// dtable[index[r]] += dout[r].
template <class Backend, class T>
void embedding_backward(std::ptrdiff_t n, std::ptrdiff_t d, const std::int64_t* index, const T* dout, T* dtable) {
  Backend::parallel_for(d, EmbeddingBackwardColumn<T>{index, dout, dtable, n, d});
}

}  // namespace flowception::dit::layers
