// Tasks of §5 and the mixture training draws them from.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <string_view>
#include <vector>

#include "flowception/core/errors.hpp"
#include "flowception/core/frame_kind.hpp"
#include "flowception/random/stream.hpp"

namespace flowception {

/// The tasks of §5 that a training sample can be drawn for; each decides which data frames are
/// context (`mark_task_context`): none (unconditional), frame 0 (image_to_video), key frames
/// including the first and the last (interpolation), or a prefix (continuation). The values index
/// `TaskMixture::weights()`.
enum class Task : unsigned char { unconditional = 0, image_to_video = 1, interpolation = 2, continuation = 3 };

/// The task's name as written here ("unconditional", "image_to_video", ...); "unknown" for a value
/// outside the enumeration.
constexpr std::string_view to_string(Task t) {
  switch (t) {
    case Task::unconditional: return "unconditional";
    case Task::image_to_video: return "image_to_video";
    case Task::interpolation: return "interpolation";
    case Task::continuation: return "continuation";
  }
  return "unknown";
}

/// Relative weights of the tasks; normalised on use. Default: unconditional only.
struct TaskMixture {
  double unconditional = 1.0;   ///< weight of Task::unconditional (no context frame)
  double image_to_video = 0.0;  ///< weight of Task::image_to_video (frame 0 is context)
  double interpolation = 0.0;   ///< weight of Task::interpolation (key frames are context)
  double continuation = 0.0;    ///< weight of Task::continuation (a prefix is context)

  /// The four weights in the order of the Task values, not normalised.
  std::array<double, 4> weights() const { return {unconditional, image_to_video, interpolation, continuation}; }

  /// ConfigError naming the task unless every weight is finite and >= 0 and their sum is > 0.
  void validate() const {
    double sum = 0.0;
    constexpr const char* names[] = {"unconditional", "image_to_video", "interpolation", "continuation"};
    const auto w = weights();
    for (std::size_t i = 0; i < w.size(); ++i) {
      detail::require(std::isfinite(w[i]) && w[i] >= 0.0, "task mixture weight '", names[i],
                      "' must be finite and >= 0, got ", w[i]);
      sum += w[i];
    }
    detail::require(sum > 0.0, "task mixture weights sum to zero: no task can be drawn");
  }

  /// Draws a task with probability weight / sum of weights, from one uniform of `rng`.
  Task draw(random::Stream& rng) const {
    const auto w = weights();
    const double total = w[0] + w[1] + w[2] + w[3];
    double x = rng.uniform() * total;
    for (std::size_t i = 0; i < w.size(); ++i) {
      if (x < w[i]) return static_cast<Task>(i);
      x -= w[i];
    }
    for (std::size_t i = w.size(); i-- > 0;)
      if (w[i] > 0.0) return static_cast<Task>(i);
    return Task::unconditional;
  }
};

/// Marks the context frames of a task in `kinds` (one entry per data frame, L >= 1), as §5 says:
/// image-to-video: frame 0 active; interpolation: frame 0, frame L − 1 (passive) and up to
/// keyframes − 2 further frames drawn uniformly; continuation: a prefix of 1..L−1 frames drawn
/// uniformly, passive except its last (active). Unconditional marks nothing.
inline void mark_task_context(Task task, std::size_t L, std::size_t keyframes, random::Stream& rng,
                              std::vector<FrameKind>& kinds) {
  detail::require(L >= 1 && kinds.size() == L, "mark_task_context needs one kind per frame of a non-empty video");
  switch (task) {
    case Task::unconditional:
      return;
    case Task::image_to_video:
      kinds[0] = FrameKind::active_context;
      return;
    case Task::interpolation: {
      std::vector<std::uint8_t> key(L, 0);
      key[0] = 1;
      key[L - 1] = 1;
      std::size_t have = L == 1 ? 1 : 2;
      std::vector<std::size_t> pool;
      for (std::size_t i = 1; i + 1 < L; ++i) pool.push_back(i);
      for (std::size_t k = 0; have < keyframes && k < pool.size(); ++k, ++have) {
        const std::size_t j = k + static_cast<std::size_t>(rng.below(pool.size() - k));
        std::swap(pool[k], pool[j]);
        key[pool[k]] = 1;
      }
      for (std::size_t i = 0; i < L; ++i)
        if (key[i]) kinds[i] = FrameKind::active_context;
      kinds[L - 1] = FrameKind::passive_context;
      return;
    }
    case Task::continuation: {
      const std::size_t prefix = L <= 1 ? 1 : 1 + static_cast<std::size_t>(rng.below(L - 1));
      for (std::size_t i = 0; i + 1 < prefix; ++i) kinds[i] = FrameKind::passive_context;
      kinds[prefix - 1] = FrameKind::active_context;
      return;
    }
  }
}

}  // namespace flowception
