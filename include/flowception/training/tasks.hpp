// Tasks of §5 and the mixture training draws them from.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <string_view>

#include "flowception/core/errors.hpp"
#include "flowception/random/stream.hpp"

namespace flowception {

enum class Task : unsigned char { unconditional = 0, image_to_video = 1, interpolation = 2, continuation = 3 };

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
  double unconditional = 1.0;
  double image_to_video = 0.0;
  double interpolation = 0.0;
  double continuation = 0.0;

  std::array<double, 4> weights() const { return {unconditional, image_to_video, interpolation, continuation}; }

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

}  // namespace flowception
