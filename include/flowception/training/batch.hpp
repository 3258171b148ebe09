// Packing variable-length training samples into one batch with per-sample offsets (§3).
// Nothing is padded: sample b owns rows [offsets[b], offsets[b+1]).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "flowception/core/errors.hpp"
#include "flowception/core/frame_kind.hpp"
#include "flowception/training/extended_time_sampler.hpp"

namespace flowception {

template <class T>
struct TrainingBatch {
  std::size_t dim = 0;
  std::vector<std::size_t> offsets{0};  ///< samples() + 1 entries
  std::vector<std::int64_t> conditions;
  std::vector<T> inputs, targets;       ///< rows × dim
  std::vector<double> times, counts;
  std::vector<FrameKind> kinds;
  std::vector<std::uint8_t> flow_mask, rate_mask;

  std::size_t samples() const { return offsets.size() - 1; }
  std::size_t rows() const { return times.size(); }
};

/// Concatenates samples in order. All samples must share the frame size.
template <class T>
TrainingBatch<T> pack(std::span<const TrainingSample<T>> samples) {
  TrainingBatch<T> b;
  detail::require<ShapeError>(!samples.empty(), "cannot pack an empty list of training samples");
  b.dim = samples.front().dim;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    detail::require<ShapeError>(s.dim == b.dim, "training sample ", i, " has frame size ", s.dim, ", expected ", b.dim);
    b.inputs.insert(b.inputs.end(), s.inputs.begin(), s.inputs.end());
    b.targets.insert(b.targets.end(), s.targets.begin(), s.targets.end());
    b.times.insert(b.times.end(), s.times.begin(), s.times.end());
    b.counts.insert(b.counts.end(), s.counts.begin(), s.counts.end());
    b.kinds.insert(b.kinds.end(), s.kinds.begin(), s.kinds.end());
    b.flow_mask.insert(b.flow_mask.end(), s.flow_mask.begin(), s.flow_mask.end());
    b.rate_mask.insert(b.rate_mask.end(), s.rate_mask.begin(), s.rate_mask.end());
    b.conditions.push_back(s.condition);
    b.offsets.push_back(b.times.size());
  }
  return b;
}

template <class T>
TrainingBatch<T> pack(const std::vector<TrainingSample<T>>& samples) {
  return pack(std::span<const TrainingSample<T>>(samples));
}

}  // namespace flowception
