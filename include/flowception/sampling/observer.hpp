// Per-step reports of the sampler (§4 result trace) and the observer concept. The library never
// prints: progress bars, logs and traces are observers supplied by the caller.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

namespace flowception {

/// One video's record for one global step.
struct StepTrace {
  std::size_t step = 0;              ///< global step index m (0 .. 2N−1)
  /// extended global clock before the step, in [0, 2] (the baselines: the round's clock, in [0, 1])
  double s = 0.0, s_next = 0.0;      ///< extended global clock after the step
  std::size_t length = 0;            ///< frames after this step's insertions
  double expected_final_length = 0;  ///< n + Σλ_i over gaps that may receive insertions (before the jump)
  std::size_t inserted = 0;          ///< frames inserted in this step
  std::size_t refused = 0;           ///< insertions refused by the length cap (truncate policy)
  std::size_t nfe = 0;               ///< model evaluations of this video so far
};

/// One video's part in a `StepReport`: which video, and its record for the step.
struct VideoStepReport {
  std::size_t video = 0;  ///< index of the video in the sampled batch
  StepTrace trace;        ///< the video's record for this step (also appended to `SampledVideo::trace`)
};

/// What an observer receives after every global step. It and the span `videos` are valid only
/// during the call: copy what you keep.
struct StepReport {
  std::size_t step = 0;                   ///< global step index m (0 .. 2N−1; the baselines count on across rounds)
  /// extended global clock before the step, in [0, 2] (the baselines: the round's clock, in [0, 1])
  double s = 0.0, s_next = 0.0;           ///< extended global clock after the step
  bool insertion_phase = true;            ///< s < 1: this step could insert frames
  std::span<const VideoStepReport> videos;  ///< videos that took part in this step
  std::size_t model_calls = 0;            ///< model calls so far (one per solver stage)
  std::size_t finished_videos = 0;        ///< videos finished so far, this step's included
};

/// A callable the sampler invokes with a `StepReport` after every global step; it must not re-enter
/// the sampler's step(). See `docs/concepts.md`.
template <class O>
concept SamplerObserver = std::invocable<O&, const StepReport&>;

/// The default observer: ignores every report.
struct NullObserver {
  /// Does nothing.
  void operator()(const StepReport&) const {}
};
static_assert(SamplerObserver<NullObserver>);

}  // namespace flowception
