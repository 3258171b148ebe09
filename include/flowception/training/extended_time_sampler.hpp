// The extended-time training path of §3: start frames, κ delays, global time τ_g, visibility,
// per-frame times with one shift, noisy inputs, O(L) count targets and the loss masks, for any
// task of §5. Pure function of (seed, sample index): the same arguments give the same bits.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <concepts>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <string_view>
#include <vector>

#include "flowception/core/errors.hpp"
#include "flowception/core/frame_kind.hpp"
#include "flowception/random/stream.hpp"
#include "flowception/schedule/kappa.hpp"
#include "flowception/schedule/time_shift.hpp"
#include "flowception/training/tasks.hpp"
#include "flowception/training/tau_distribution.hpp"

namespace flowception {

/// Options of ExtendedTimeSampler: the start set, the time shift, the task mixture and the seed
/// (§3 steps 1–4, §5).
struct TrainingSamplerOptions {
  std::size_t n_start = 3;               ///< frames present from the start (frame 0 always)
  bool anchor_endpoints = true;          ///< the last frame is a start frame
  TimeShift shift{};                     ///< applied once: t = shift(clip(τ_i, 0, 1))
  TaskMixture tasks{};                   ///< drawn per sample
  std::size_t interpolation_keyframes = 2;  ///< key frames for interpolation (first and last included)
  std::size_t max_tau_resamples = 64;    ///< then fall back to τ_g = 0
  std::uint64_t seed = 0;                ///< keys every random stream, together with the sample number

  /// ConfigError unless n_start >= 1 (>= 2 with anchor_endpoints), interpolation_keyframes >= 2
  /// and the task mixture is valid.
  void validate() const {
    detail::require(n_start >= 1, "n_start must be >= 1, got ", n_start);
    detail::require(!anchor_endpoints || n_start >= 2, "anchor_endpoints needs n_start >= 2 (frame 0 and the last ",
                    "frame are both start frames), got n_start = ", n_start);
    detail::require(interpolation_keyframes >= 2, "interpolation needs >= 2 key frames, got ", interpolation_keyframes);
    tasks.validate();
  }
};

/// One training example: the visible frames of one video at one global time.
template <class T>
struct TrainingSample {
  std::size_t dim = 0;                    ///< D: values per frame
  Task task = Task::unconditional;        ///< the task the sample was drawn for (§5)
  std::int64_t condition = kNoCondition;  ///< class label for the model, or kNoCondition
  double tau_global = 0.0;  ///< τ_g
  double tau_max = 1.0;     ///< max_i u_i + 1
  std::size_t tau_resamples = 0;  ///< redraws of τ_g because no frame had a loss
  bool tau_fallback = false;      ///< τ_g = 0 was used after max_tau_resamples redraws

  std::vector<double> delays;            ///< u_i for every data frame (L entries)
  std::vector<FrameKind> data_kinds;     ///< kind of every data frame (L entries)
  std::vector<std::size_t> source_index; ///< data index of each visible frame (ordered)

  // Per visible frame (rows = source_index.size()):
  std::vector<T> inputs;    ///< X_i = t_i·x1_i + (1 − t_i)·ε_i (context frames clean)
  std::vector<T> targets;   ///< x1_i − ε_i (velocity target; meaningful where flow_mask)
  std::vector<double> times;            ///< t_i = shift(clip(τ_i, 0, 1)); 1 for context
  std::vector<double> local_times;      ///< τ_i = τ_g − u_i (unclipped, before shift)
  std::vector<FrameKind> kinds;         ///< kind of each visible frame (context frames per the task)
  std::vector<double> counts;           ///< k_i: invisible frames between i and the next visible one
  std::vector<std::uint8_t> flow_mask;  ///< visible generated frames with τ_i < 1
  std::vector<std::uint8_t> rate_mask;  ///< insert-capable frames not finished

  /// Number of visible frames: the rows of inputs, times, counts and the masks.
  std::size_t visible() const { return source_index.size(); }
};

/// Checks a data video handed to a training-sample builder; returns its number of frames.
template <class T>
std::size_t check_training_video(std::span<const T> video, std::size_t dim) {
  detail::require<ShapeError>(dim >= 1, "frame size must be >= 1, got ", dim);
  detail::require<ShapeError>(!video.empty(), "empty video (0 frames) given to the training sampler");
  detail::require<ShapeError>(video.size() % dim == 0, "video has ", video.size(),
                              " values, not a whole number of frames of size ", dim);
  for (std::size_t i = 0; i < video.size(); ++i)
    detail::require<ShapeError>(std::isfinite(static_cast<double>(video[i])), "video has a non-finite value at frame ",
                                i / dim, ", element ", i % dim);
  return video.size() / dim;
}

/// One visible row of a training sample (§3 step 5): a context frame is copied clean (target
/// unused, 0); a generated frame becomes x_t = t·x1 + (1 − t)·ε with target x1 − ε, ε drawn
/// from the row's own noise stream so every row's noise is independent of the others.
template <class T>
void write_training_row(const T* x1, std::size_t dim, FrameKind kind, double t, std::uint64_t seed,
                        std::uint64_t noise_stream, T* x, T* target) {
  for (std::size_t e = 0; e < dim; ++e) {
    if (is_context(kind)) {
      x[e] = x1[e];
      target[e] = T(0);
      continue;
    }
    const double eps = random::normal_at(seed, noise_stream, e);
    x[e] = static_cast<T>(t * static_cast<double>(x1[e]) + (1.0 - t) * eps);
    target[e] = static_cast<T>(static_cast<double>(x1[e]) - eps);
  }
}

// clang-format off
/// Builds one training example from one data video; the trainer is generic over it so the
/// Flowception sampler and the §7 baselines train through the same loop.
/// | expression                                   | meaning                                     |
/// | `b.template sample<float>(video, dim, i, c)` | TrainingSample<float> for sample number i   |
/// | `b.method_name()`                            | "flowception", "full_sequence", ...          |
template <class B>
concept TrainingSampleBuilder = std::copy_constructible<B> && requires(
    const B& b, std::span<const float> video, std::size_t dim, std::uint64_t i, std::int64_t c) {
  { b.template sample<float>(video, dim, i, c) } -> std::same_as<TrainingSample<float>>;
  { b.method_name() } -> std::convertible_to<std::string_view>;
};
// clang-format on

/// Flowception's training-sample builder (§3): from one data video, the frames visible at a
/// global extended time τ_g, with their noisy inputs, velocity and count targets and loss masks.
/// `Kappa` draws the insertion delays (§2), `Tau` the global time.
template <KappaScheduler Kappa, TauDistribution Tau = UniformTau>
class ExtendedTimeSampler {
 public:
  /// ConfigError when `opts` is invalid (TrainingSamplerOptions::validate).
  ExtendedTimeSampler(Kappa kappa, TrainingSamplerOptions opts, Tau tau = {})
      : kappa_(std::move(kappa)), opts_(opts), tau_(std::move(tau)) {
    opts_.validate();
  }

  /// The options given to the constructor.
  const TrainingSamplerOptions& options() const { return opts_; }
  /// The scheduler whose inverse turns uniforms into delays u_i = κ⁻¹(U_i).
  const Kappa& kappa() const { return kappa_; }
  /// "flowception": the method name that checkpoints record and check on resume.
  static constexpr std::string_view method_name() { return "flowception"; }

  /// Builds the sample for data video `video` (L × dim, row-major), using random streams
  /// derived from (seed, sample_index). `task` overrides the mixture when given.
  template <class T>
  TrainingSample<T> sample(std::span<const T> video, std::size_t dim, std::uint64_t sample_index,
                           std::int64_t condition = kNoCondition, const Task* task = nullptr) const {
    const std::size_t L = check_training_video(video, dim);
    const std::uint64_t base = random::derive_stream(random::derive_stream(opts_.seed, 0x7261696eULL), sample_index);
    random::Stream rng(opts_.seed, base);

    TrainingSample<T> out;
    out.dim = dim;
    out.condition = condition;
    out.task = task ? *task : opts_.tasks.draw(rng);

    // 1. Kinds and start set (delay 0).
    out.data_kinds.assign(L, FrameKind::generated);
    std::vector<std::uint8_t> start(L, 0);
    assign_task_frames(out.task, L, rng, out.data_kinds, start);

    // 2. Delays.
    out.delays.assign(L, 0.0);
    double max_delay = 0.0;
    for (std::size_t i = 0; i < L; ++i) {
      if (start[i] || is_context(out.data_kinds[i])) continue;
      out.delays[i] = kappa_.inverse(rng.uniform());
      max_delay = std::max(max_delay, out.delays[i]);
    }
    out.tau_max = max_delay + 1.0;

    // 3. Global time, redrawn while it leaves no frame with a loss.
    double tau_g = tau_.sample(out.tau_max, rng);
    while (!has_loss(out, tau_g)) {
      if (out.tau_resamples == opts_.max_tau_resamples) {
        tau_g = 0.0;
        out.tau_fallback = true;
        break;
      }
      ++out.tau_resamples;
      tau_g = tau_.sample(out.tau_max, rng);
    }
    out.tau_global = tau_g;

    // 4-6. Visible frames, times, noisy inputs, targets and counts in one O(L·D) pass.
    for (std::size_t i = 0; i < L; ++i)
      if (is_visible(out, i, tau_g)) out.source_index.push_back(i);
    const std::size_t n = out.source_index.size();
    out.inputs.resize(n * dim);
    out.targets.resize(n * dim);
    out.times.resize(n);
    out.local_times.resize(n);
    out.kinds.resize(n);
    out.counts.assign(n, 0.0);
    out.flow_mask.assign(n, 0);
    out.rate_mask.assign(n, 0);
    for (std::size_t r = 0; r < n; ++r) {
      const std::size_t i = out.source_index[r];
      const FrameKind kind = out.data_kinds[i];
      const double tau_i = tau_g - out.delays[i];
      out.kinds[r] = kind;
      out.local_times[r] = tau_i;
      const double t = is_context(kind) ? 1.0 : opts_.shift(std::clamp(tau_i, 0.0, 1.0));
      out.times[r] = t;
      write_training_row(video.data() + i * dim, dim, kind, t, opts_.seed, random::derive_stream(base, i),
                         out.inputs.data() + r * dim, out.targets.data() + r * dim);
      out.flow_mask[r] = flows(kind, tau_i) ? 1 : 0;
      out.rate_mask[r] = rate_active(kind, tau_i, tau_g) ? 1 : 0;
      // k_r: data frames strictly between this visible frame and the next visible one
      // (all remaining frames for the last visible frame).
      const std::size_t next = r + 1 < n ? out.source_index[r + 1] : L;
      out.counts[r] = static_cast<double>(next - i - 1);
    }
    return out;
  }

 private:
  static bool flows(FrameKind k, double tau_i) { return k == FrameKind::generated && tau_i >= 0.0 && tau_i < 1.0; }
  static bool rate_active(FrameKind k, double tau_i, double tau_g) {
    if (k == FrameKind::generated) return tau_i >= 0.0 && tau_i < 1.0;
    if (k == FrameKind::active_context) return tau_g < 1.0;
    return false;
  }
  template <class S>
  static bool is_visible(const S& s, std::size_t i, double tau_g) {
    return is_context(s.data_kinds[i]) || tau_g - s.delays[i] >= 0.0;
  }

  template <class S>
  static bool has_loss(const S& s, double tau_g) {
    for (std::size_t i = 0; i < s.delays.size(); ++i) {
      if (!is_visible(s, i, tau_g)) continue;
      const double tau_i = tau_g - s.delays[i];
      if (flows(s.data_kinds[i], tau_i) || rate_active(s.data_kinds[i], tau_i, tau_g)) return true;
    }
    return false;
  }

  /// Marks context kinds and start frames for the task (§3 step 1, §5).
  void assign_task_frames(Task task, std::size_t L, random::Stream& rng, std::vector<FrameKind>& kinds,
                          std::vector<std::uint8_t>& start) const {
    auto choose_rest = [&](std::size_t wanted, std::size_t first_free) {
      // Uniform without replacement among frames in [first_free, L) not yet chosen (partial Fisher–Yates).
      std::vector<std::size_t> pool;
      for (std::size_t i = first_free; i < L; ++i)
        if (!start[i] && !is_context(kinds[i])) pool.push_back(i);
      for (std::size_t k = 0; k < wanted && k < pool.size(); ++k) {
        const std::size_t j = k + static_cast<std::size_t>(rng.below(pool.size() - k));
        std::swap(pool[k], pool[j]);
        start[pool[k]] = 1;
      }
    };
    switch (task) {
      case Task::unconditional: {
        if (L <= opts_.n_start) {
          std::fill(start.begin(), start.end(), 1);
          return;
        }
        start[0] = 1;
        std::size_t have = 1;
        if (opts_.anchor_endpoints) {
          start[L - 1] = 1;
          ++have;
        }
        choose_rest(opts_.n_start - have, 1);
        return;
      }
      case Task::image_to_video: {
        kinds[0] = FrameKind::active_context;
        const std::size_t wanted = opts_.n_start - 1;  // generated start frames besides the image
        if (L - 1 <= wanted) {
          std::fill(start.begin() + 1, start.end(), 1);
          return;
        }
        std::size_t have = 0;
        if (opts_.anchor_endpoints && wanted >= 1) {
          start[L - 1] = 1;
          ++have;
        }
        choose_rest(wanted - have, 1);
        return;
      }
      case Task::interpolation:
      case Task::continuation:
        mark_task_context(task, L, opts_.interpolation_keyframes, rng, kinds);
        return;
    }
  }

  Kappa kappa_;
  TrainingSamplerOptions opts_;
  Tau tau_;
};

static_assert(TrainingSampleBuilder<ExtendedTimeSampler<LinearKappa>>);

}  // namespace flowception
