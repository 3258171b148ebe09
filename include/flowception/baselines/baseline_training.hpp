// Training examples for the two baselines of method.md §7, in the same TrainingSample form as
// the extended-time path of §3 so one trainer, one packer and one loss serve all three methods:
//  - full-sequence: every frame of the video is visible and shares one time t ~ p(t) on [0, 1);
//    velocity loss on every generated frame, no rate loss;
//  - autoregressive: a target position k is drawn uniformly in [0, L); frames 0..k−1 are clean
//    (passive) context, frame k is noisy at t ~ p(t); velocity loss on frame k alone.
// Neither has a rate loss, so the model's rate head is simply not trained by them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "flowception/core/errors.hpp"
#include "flowception/core/frame_kind.hpp"
#include "flowception/random/stream.hpp"
#include "flowception/schedule/time_shift.hpp"
#include "flowception/training/extended_time_sampler.hpp"
#include "flowception/training/tasks.hpp"
#include "flowception/training/tau_distribution.hpp"

namespace flowception {

/// Options of the §7 baseline training-sample builders (`FullSequenceTrainingSampler`,
/// `AutoregressiveTrainingSampler`).
struct BaselineTrainingOptions {
  TimeShift shift{};                        ///< applied once: t = shift(t_raw)
  TaskMixture tasks{};                      ///< full-sequence only: context frames per §5
  std::size_t interpolation_keyframes = 2;  ///< full-sequence interpolation samples
  std::size_t max_time_resamples = 64;      ///< redraws of t >= 1 (no loss), then t = 0
  std::uint64_t seed = 0;                   ///< keys every random stream, together with the sample number

  /// Throws `ConfigError` unless interpolation_keyframes >= 2 and the task mixture is valid.
  void validate() const {
    detail::require(interpolation_keyframes >= 2, "interpolation needs >= 2 key frames, got ", interpolation_keyframes);
    tasks.validate();
  }
};

namespace detail {

/// t_raw ~ p on [0, 1): the τ-distribution with τ_max = 1, redrawn while it gives t >= 1.
template <class Tau>
double draw_baseline_time(const Tau& tau, const BaselineTrainingOptions& o, random::Stream& rng) {
  for (std::size_t k = 0; k <= o.max_time_resamples; ++k) {
    const double t = tau.sample(1.0, rng);
    detail::require(std::isfinite(t) && t >= 0.0, "time distribution returned ", t, " outside [0, 1)");
    if (t < 1.0) return t;
  }
  return 0.0;
}

/// Fills row r of `out` from data frame i: clean for context kinds, noisy at time t otherwise.
template <class T>
void fill_baseline_row(TrainingSample<T>& out, std::size_t r, std::size_t i, FrameKind kind, double t_raw,
                       const BaselineTrainingOptions& o, std::uint64_t base, std::span<const T> video) {
  out.source_index[r] = i;
  out.kinds[r] = kind;
  out.local_times[r] = is_context(kind) ? 1.0 : t_raw;
  const double t = is_context(kind) ? 1.0 : o.shift(t_raw);
  out.times[r] = t;
  out.counts[r] = 0.0;
  out.rate_mask[r] = 0;
  out.flow_mask[r] = is_context(kind) ? 0 : 1;
  write_training_row(video.data() + i * out.dim, out.dim, kind, t, o.seed, random::derive_stream(base, i),
                     out.inputs.data() + r * out.dim, out.targets.data() + r * out.dim);
}

template <class T>
void size_baseline_sample(TrainingSample<T>& out, std::size_t rows, std::size_t dim) {
  out.dim = dim;
  out.source_index.resize(rows);
  out.inputs.resize(rows * dim);
  out.targets.resize(rows * dim);
  out.times.resize(rows);
  out.local_times.resize(rows);
  out.kinds.resize(rows);
  out.counts.resize(rows);
  out.flow_mask.resize(rows);
  out.rate_mask.resize(rows);
}

}  // namespace detail

/// Full-sequence flow matching (§7): all L frames at one shared time.
template <TauDistribution Tau = UniformTau>
class FullSequenceTrainingSampler {
 public:
  /// `tau` draws the shared time (with τ_max = 1). Throws `ConfigError` if `opts` is invalid.
  explicit FullSequenceTrainingSampler(BaselineTrainingOptions opts = {}, Tau tau = {})
      : opts_(opts), tau_(std::move(tau)) {
    opts_.validate();
  }
  /// `"full_sequence"`, the method name written into checkpoints.
  static constexpr std::string_view method_name() { return "full_sequence"; }
  /// The options, as validated.
  const BaselineTrainingOptions& options() const { return opts_; }

  /// The example for sample number `sample_index` of `video` (L × `dim` values): every frame
  /// visible; the context frames of the task (drawn from the mixture unless `task` is given) clean,
  /// the others noisy at one shared time t in [0, 1) with a velocity loss; no rate loss. A pure
  /// function of (seed, `sample_index`, `video`). Throws `ShapeError` for a bad video.
  template <class T>
  TrainingSample<T> sample(std::span<const T> video, std::size_t dim, std::uint64_t sample_index,
                           std::int64_t condition = kNoCondition, const Task* task = nullptr) const {
    const std::size_t L = check_training_video(video, dim);
    const std::uint64_t base = random::derive_stream(random::derive_stream(opts_.seed, 0x66756c6cULL), sample_index);
    random::Stream rng(opts_.seed, base);
    TrainingSample<T> out;
    out.condition = condition;
    out.task = task ? *task : opts_.tasks.draw(rng);
    out.data_kinds.assign(L, FrameKind::generated);
    mark_task_context(out.task, L, opts_.interpolation_keyframes, rng, out.data_kinds);
    const double t = detail::draw_baseline_time(tau_, opts_, rng);
    out.tau_global = t;
    out.tau_max = 1.0;
    out.delays.assign(L, 0.0);
    detail::size_baseline_sample(out, L, dim);
    for (std::size_t i = 0; i < L; ++i) detail::fill_baseline_row(out, i, i, out.data_kinds[i], t, opts_, base, video);
    return out;
  }

 private:
  BaselineTrainingOptions opts_;
  Tau tau_;
};

/// Autoregressive (§7): a clean prefix 0..k−1 as context and frame k to denoise.
template <TauDistribution Tau = UniformTau>
class AutoregressiveTrainingSampler {
 public:
  /// `tau` draws the time of the target frame (with τ_max = 1). Throws `ConfigError` if `opts` is invalid.
  explicit AutoregressiveTrainingSampler(BaselineTrainingOptions opts = {}, Tau tau = {})
      : opts_(opts), tau_(std::move(tau)) {
    opts_.validate();
  }
  /// `"autoregressive"`, the method name written into checkpoints.
  static constexpr std::string_view method_name() { return "autoregressive"; }
  /// The options, as validated (`tasks` is not used).
  const BaselineTrainingOptions& options() const { return opts_; }

  /// `task` is accepted for interface symmetry; the autoregressive sample is always a prefix
  /// (frame 0 alone is unconditional generation, a longer prefix is continuation). The example
  /// has rows 0..k for k uniform in [0, L): a clean passive prefix and frame k noisy at t in [0, 1)
  /// with the only velocity loss. Throws `ShapeError` for a bad video.
  template <class T>
  TrainingSample<T> sample(std::span<const T> video, std::size_t dim, std::uint64_t sample_index,
                           std::int64_t condition = kNoCondition, const Task* = nullptr) const {
    const std::size_t L = check_training_video(video, dim);
    const std::uint64_t base = random::derive_stream(random::derive_stream(opts_.seed, 0x61727267ULL), sample_index);
    random::Stream rng(opts_.seed, base);
    TrainingSample<T> out;
    out.condition = condition;
    out.task = Task::continuation;
    const std::size_t k = static_cast<std::size_t>(rng.below(L));
    if (k == 0) out.task = Task::unconditional;
    const double t = detail::draw_baseline_time(tau_, opts_, rng);
    out.tau_global = t;
    out.tau_max = 1.0;
    out.delays.assign(L, 0.0);
    out.data_kinds.assign(L, FrameKind::generated);
    for (std::size_t i = 0; i < k; ++i) out.data_kinds[i] = FrameKind::passive_context;
    detail::size_baseline_sample(out, k + 1, dim);
    for (std::size_t i = 0; i <= k; ++i) detail::fill_baseline_row(out, i, i, out.data_kinds[i], t, opts_, base, video);
    return out;
  }

 private:
  BaselineTrainingOptions opts_;
  Tau tau_;
};

static_assert(TrainingSampleBuilder<FullSequenceTrainingSampler<>>);
static_assert(TrainingSampleBuilder<AutoregressiveTrainingSampler<>>);

}  // namespace flowception
