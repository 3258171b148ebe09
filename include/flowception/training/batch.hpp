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

/// Training samples packed row after row (§3 Batches): the per-row fields of TrainingSample
/// concatenated in sample order, with no padding.
template <class T>
struct TrainingBatch {
  std::size_t dim = 0;                  ///< D: values per frame, shared by every sample
  std::vector<std::size_t> offsets{0};  ///< samples() + 1 entries
  std::vector<std::int64_t> conditions; ///< one per sample: class label or kNoCondition
  /// Noisy model inputs X, rows × dim.
  std::vector<T> inputs, targets;       ///< velocity targets x1 − ε, rows × dim
  /// Model time t_i of each row.
  std::vector<double> times, counts;    ///< count target k_i of each row
  std::vector<FrameKind> kinds;         ///< frame kind of each row
  /// 1 where the row carries the velocity loss.
  std::vector<std::uint8_t> flow_mask, rate_mask;  ///< 1 where the row carries the rate loss

  /// Number of samples packed.
  std::size_t samples() const { return offsets.size() - 1; }
  /// Number of rows (visible frames) over all samples.
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

/// The same, for a std::vector of samples.
template <class T>
TrainingBatch<T> pack(const std::vector<TrainingSample<T>>& samples) {
  return pack(std::span<const TrainingSample<T>>(samples));
}

}  // namespace flowception
