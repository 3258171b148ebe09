// What a sampled video starts from (§4 "Start", §5 tasks): an ordered list of initial frames,
// each either a generated noise frame or a given context frame, plus an optional condition.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "flowception/core/errors.hpp"
#include "flowception/core/frame_kind.hpp"

namespace flowception {

/// The start of one sampled video (§4, §5): its initial frames in order, each a generated noise
/// frame or a given context frame, and an optional condition. The sampler checks it: at least one
/// frame, context frames of exactly `frame_dim` finite values, generated frames without values, and
/// at least one frame that may receive insertions.
template <class T>
struct Prompt {
  /// One initial frame.
  struct Frame {
    FrameKind kind = FrameKind::generated;  ///< generated (drawn as noise) or a context kind
    std::vector<T> values;  ///< the clean frame for context kinds; empty for generated frames
  };
  std::vector<Frame> frames;              ///< the initial frames, in video order
  std::int64_t condition = kNoCondition;  ///< class condition, or `kNoCondition`

  /// Unconditional / class-conditional: n_start noise frames.
  static Prompt unconditional(std::size_t n_start, std::int64_t condition = kNoCondition) {
    detail::require(n_start >= 1, "n_start must be >= 1, got ", n_start);
    Prompt p;
    p.frames.resize(n_start);
    p.condition = condition;
    return p;
  }

  /// Image-to-video: the image is frame 0 (active context), n_start − 1 noise frames follow.
  static Prompt image_to_video(std::vector<T> image, std::size_t n_start, std::int64_t condition = kNoCondition) {
    detail::require(n_start >= 1, "n_start must be >= 1, got ", n_start);
    Prompt p;
    p.frames.push_back({FrameKind::active_context, std::move(image)});
    p.frames.resize(n_start);
    p.condition = condition;
    return p;
  }

  /// Interpolation: key frames, all active context except the last, which is passive.
  static Prompt interpolation(std::vector<std::vector<T>> keys, std::int64_t condition = kNoCondition) {
    detail::require(keys.size() >= 2, "interpolation needs at least 2 key frames, got ", keys.size());
    Prompt p;
    for (auto& k : keys) p.frames.push_back({FrameKind::active_context, std::move(k)});
    p.frames.back().kind = FrameKind::passive_context;
    p.condition = condition;
    return p;
  }

  /// Continuation: given frames passive except the last, which is active; optionally followed by
  /// `noise_frames` generated start frames.
  static Prompt continuation(std::vector<std::vector<T>> given, std::size_t noise_frames = 0,
                             std::int64_t condition = kNoCondition) {
    detail::require(!given.empty(), "continuation needs at least 1 given frame");
    Prompt p;
    for (auto& g : given) p.frames.push_back({FrameKind::passive_context, std::move(g)});
    p.frames.back().kind = FrameKind::active_context;
    p.frames.resize(p.frames.size() + noise_frames);
    p.condition = condition;
    return p;
  }
};

}  // namespace flowception
