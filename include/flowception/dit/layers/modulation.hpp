// adaLN-Zero pieces, applied per frame to all of that frame's tokens:
//   modulate:        y = x ⊙ (1 + scale_f) + shift_f
//   gated residual:  x += gate_f ⊙ h
// `token_frame[r]` is the frame of token row r; per-frame vectors are rows of a matrix with
// leading dimension `ld` (the adaLN output holds several of them side by side).
#pragma once

#include <cstddef>
#include <cstdint>

#include "flowception/dit/backend.hpp"

namespace flowception::dit::layers {

/// Row kernel of modulate_forward(): y[r] = x[r] ⊙ (1 + scale_f) + shift_f, f the frame of row r.
template <class T>
struct ModulateForward {
  const T* x;                       ///< Input token rows, n × d.
  const T* shift;                   ///< shift_f: row f, leading dimension ld.
  const T* scale;                   ///< scale_f: row f, leading dimension ld.
  std::ptrdiff_t ld;                ///< Leading dimension of shift and scale.
  const std::int32_t* token_frame;  ///< Frame of each token row.
  T* y;                             ///< Output token rows, n × d.
  std::ptrdiff_t d;                 ///< Token width.
  /// Modulates row r.
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t r) const {
    const T* sh = shift + token_frame[r] * ld;
    const T* sc = scale + token_frame[r] * ld;
    for (std::ptrdiff_t i = 0; i < d; ++i) y[r * d + i] = x[r * d + i] * (T(1) + sc[i]) + sh[i];
  }
};

/// y = x ⊙ (1 + scale_f) + shift_f over n token rows of width d, each with its frame's vectors.
template <class Backend, class T>
void modulate_forward(std::ptrdiff_t n, std::ptrdiff_t d, const T* x, const T* shift, const T* scale, std::ptrdiff_t ld,
                      const std::int32_t* token_frame, T* y) {
  Backend::parallel_for(n, ModulateForward<T>{x, shift, scale, ld, token_frame, y, d});
}

/// dx = dy ⊙ (1 + scale); dshift_f += Σ dy; dscale_f += Σ dy ⊙ x over the frame's tokens.
/// Frames own contiguous token ranges [frame_token_begin[f], frame_token_begin[f + 1]).
template <class T>
struct ModulateBackwardFrame {
  const T* x;                             ///< The forward input rows, n × d.
  const T* scale;                         ///< scale_f: row f, leading dimension ld.
  std::ptrdiff_t ld;                      ///< Leading dimension of scale, dshift and dscale.
  const std::int64_t* frame_token_begin;  ///< frames + 1 entries: frame f's first token row.
  const T* dy;                            ///< ∂L/∂y, n × d.
  T* dx;                                  ///< ∂L/∂x, n × d; overwritten.
  T* dshift;                              ///< ∂L/∂shift_f (row f, leading dimension ld); added to.
  T* dscale;                              ///< ∂L/∂scale_f (row f, leading dimension ld); added to.
  std::ptrdiff_t d;                       ///< Token width.
  /// Computes the gradients of frame f's tokens and vectors.
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t f) const {
    const T* sc = scale + f * ld;
    T* dsh = dshift + f * ld;
    T* dsc = dscale + f * ld;
    for (std::int64_t r = frame_token_begin[f]; r < frame_token_begin[f + 1]; ++r) {
      for (std::ptrdiff_t i = 0; i < d; ++i) {
        const T g = dy[r * d + i];
        dx[r * d + i] = g * (T(1) + sc[i]);
        dsh[i] += g;
        dsc[i] += g * x[r * d + i];
      }
    }
  }
};

/// Gradient of modulate_forward(), one work item per frame (see ModulateBackwardFrame).
template <class Backend, class T>
void modulate_backward(std::ptrdiff_t frames, std::ptrdiff_t d, const T* x, const T* scale, std::ptrdiff_t ld,
                       const std::int64_t* frame_token_begin, const T* dy, T* dx, T* dshift, T* dscale) {
  Backend::parallel_for(frames, ModulateBackwardFrame<T>{x, scale, ld, frame_token_begin, dy, dx, dshift, dscale, d});
}

/// Row kernel of gated_residual_forward(): x[r] += gate_f ⊙ h[r], f the frame of row r.
template <class T>
struct GatedResidualForward {
  const T* h;                       ///< Branch output (attention or MLP), n × d.
  const T* gate;                    ///< gate_f: row f, leading dimension ld.
  std::ptrdiff_t ld;                ///< Leading dimension of gate.
  const std::int32_t* token_frame;  ///< Frame of each token row.
  T* x;                             ///< Residual stream, n × d; added to.
  std::ptrdiff_t d;                 ///< Token width.
  /// Adds the gated branch to row r.
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t r) const {
    const T* g = gate + token_frame[r] * ld;
    for (std::ptrdiff_t i = 0; i < d; ++i) x[r * d + i] += g[i] * h[r * d + i];
  }
};

/// x += gate_f ⊙ h over n token rows of width d, each with its frame's gate.
template <class Backend, class T>
void gated_residual_forward(std::ptrdiff_t n, std::ptrdiff_t d, const T* h, const T* gate, std::ptrdiff_t ld,
                            const std::int32_t* token_frame, T* x) {
  Backend::parallel_for(n, GatedResidualForward<T>{h, gate, ld, token_frame, x, d});
}

/// Given dx (the residual stream gradient, passed through unchanged): dh = dx ⊙ gate_f and
/// dgate_f += Σ dx ⊙ h over the frame's tokens.
template <class T>
struct GatedResidualBackwardFrame {
  const T* h;                             ///< The forward branch output, n × d.
  const T* gate;                          ///< gate_f: row f, leading dimension ld.
  std::ptrdiff_t ld;                      ///< Leading dimension of gate and dgate.
  const std::int64_t* frame_token_begin;  ///< frames + 1 entries: frame f's first token row.
  const T* dx;                            ///< ∂L/∂x of the residual stream, n × d.
  T* dh;                                  ///< ∂L/∂h, n × d; overwritten.
  T* dgate;                               ///< ∂L/∂gate_f (row f, leading dimension ld); added to.
  std::ptrdiff_t d;                       ///< Token width.
  /// Computes the gradients of frame f's tokens and gate.
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t f) const {
    const T* g = gate + f * ld;
    T* dg = dgate + f * ld;
    for (std::int64_t r = frame_token_begin[f]; r < frame_token_begin[f + 1]; ++r) {
      for (std::ptrdiff_t i = 0; i < d; ++i) {
        dh[r * d + i] = dx[r * d + i] * g[i];
        dg[i] += dx[r * d + i] * h[r * d + i];
      }
    }
  }
};

/// Gradient of gated_residual_forward(), one work item per frame (see GatedResidualBackwardFrame).
template <class Backend, class T>
void gated_residual_backward(std::ptrdiff_t frames, std::ptrdiff_t d, const T* h, const T* gate, std::ptrdiff_t ld,
                             const std::int64_t* frame_token_begin, const T* dx, T* dh, T* dgate) {
  Backend::parallel_for(frames, GatedResidualBackwardFrame<T>{h, gate, ld, frame_token_begin, dx, dh, dgate, d});
}

}  // namespace flowception::dit::layers
