// The velocity-model interface of §1: (frames, model times, kinds, condition, drop flag) →
// (velocity, log-rate), over a packed batch of variable-length videos.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "flowception/core/frame_kind.hpp"

namespace flowception {

/// What a model sees. Video v occupies rows [offsets[v], offsets[v+1]) of `frames`; positions
/// inside a video are ordinal (row − offsets[v]). The global clock is never given (§1).
template <class Buffer>
struct ModelInput {
  const Buffer& frames;                          ///< [n_total × D]
  std::span<const double> times;                 ///< model time t per frame, in [0, 1]
  std::span<const FrameKind> kinds;              ///< per frame
  std::span<const std::size_t> offsets;          ///< n_videos + 1 entries, offsets[0] = 0
  std::span<const std::int64_t> conditions;      ///< per video; kNoCondition when unconditional
  std::span<const std::uint8_t> drop_condition;  ///< per video; 1 = evaluate as unconditional (CFG)

  /// Number of videos: `offsets.size() - 1` (0 for empty offsets).
  std::size_t videos() const { return offsets.empty() ? 0 : offsets.size() - 1; }
  /// Number of packed rows over all videos (`times.size()`).
  std::size_t total_frames() const { return times.size(); }
};

/// What a model writes. The caller sizes both to the input (velocity like `frames`, log_rate
/// one per frame) before the call; the model fills every entry and must not resize them.
template <class Buffer>
struct ModelOutput {
  Buffer velocity;               ///< [n_total × D], v ≈ E[x1 − x0 | x_t]
  std::vector<double> log_rate;  ///< ℓ per frame; λ = exp(ℓ) = expected missing frames to its right
};

// clang-format off
/// A velocity model over frames stored in `Buffer`.
template <class M, class Buffer>
concept VelocityModel = requires(M& m, const ModelInput<Buffer>& in, ModelOutput<Buffer>& out) {
  m.evaluate(in, out);
};
// clang-format on

}  // namespace flowception
