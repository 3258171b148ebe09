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

template <class T>
struct ModulateForward {
  const T* x;
  const T* shift;
  const T* scale;
  std::ptrdiff_t ld;
  const std::int32_t* token_frame;
  T* y;
  std::ptrdiff_t d;
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t r) const {
    const T* sh = shift + token_frame[r] * ld;
    const T* sc = scale + token_frame[r] * ld;
    for (std::ptrdiff_t i = 0; i < d; ++i) y[r * d + i] = x[r * d + i] * (T(1) + sc[i]) + sh[i];
  }
};

template <class Backend, class T>
void modulate_forward(std::ptrdiff_t n, std::ptrdiff_t d, const T* x, const T* shift, const T* scale, std::ptrdiff_t ld,
                      const std::int32_t* token_frame, T* y) {
  Backend::parallel_for(n, ModulateForward<T>{x, shift, scale, ld, token_frame, y, d});
}

/// dx = dy ⊙ (1 + scale); dshift_f += Σ dy; dscale_f += Σ dy ⊙ x over the frame's tokens.
/// Frames own contiguous token ranges [frame_token_begin[f], frame_token_begin[f + 1]).
template <class T>
struct ModulateBackwardFrame {
  const T* x;
  const T* scale;
  std::ptrdiff_t ld;
  const std::int64_t* frame_token_begin;
  const T* dy;
  T* dx;
  T* dshift;
  T* dscale;
  std::ptrdiff_t d;
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

template <class Backend, class T>
void modulate_backward(std::ptrdiff_t frames, std::ptrdiff_t d, const T* x, const T* scale, std::ptrdiff_t ld,
                       const std::int64_t* frame_token_begin, const T* dy, T* dx, T* dshift, T* dscale) {
  Backend::parallel_for(frames, ModulateBackwardFrame<T>{x, scale, ld, frame_token_begin, dy, dx, dshift, dscale, d});
}

template <class T>
struct GatedResidualForward {
  const T* h;
  const T* gate;
  std::ptrdiff_t ld;
  const std::int32_t* token_frame;
  T* x;
  std::ptrdiff_t d;
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t r) const {
    const T* g = gate + token_frame[r] * ld;
    for (std::ptrdiff_t i = 0; i < d; ++i) x[r * d + i] += g[i] * h[r * d + i];
  }
};

template <class Backend, class T>
void gated_residual_forward(std::ptrdiff_t n, std::ptrdiff_t d, const T* h, const T* gate, std::ptrdiff_t ld,
                            const std::int32_t* token_frame, T* x) {
  Backend::parallel_for(n, GatedResidualForward<T>{h, gate, ld, token_frame, x, d});
}

/// Given dx (the residual stream gradient, passed through unchanged): dh = dx ⊙ gate_f and
/// dgate_f += Σ dx ⊙ h over the frame's tokens.
template <class T>
struct GatedResidualBackwardFrame {
  const T* h;
  const T* gate;
  std::ptrdiff_t ld;
  const std::int64_t* frame_token_begin;
  const T* dx;
  T* dh;
  T* dgate;
  std::ptrdiff_t d;
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

template <class Backend, class T>
void gated_residual_backward(std::ptrdiff_t frames, std::ptrdiff_t d, const T* h, const T* gate, std::ptrdiff_t ld,
                             const std::int64_t* frame_token_begin, const T* dx, T* dh, T* dgate) {
  Backend::parallel_for(frames, GatedResidualBackwardFrame<T>{h, gate, ld, frame_token_begin, dx, dh, dgate, d});
}

}  // namespace flowception::dit::layers
