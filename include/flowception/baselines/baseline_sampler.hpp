// The two baselines of method.md §7, sampled in the same framework as Flowception so that their
// costs and results compare like for like (same models, solvers, grids, algebra and noise):
//  - full-sequence flow matching: a fixed number of frames share one time and flow from noise
//    to data in N steps;
//  - autoregressive: frames are produced left to right, each denoised fully (N steps) while
//    every earlier frame is clean context. Whether the context attends causally or
//    bidirectionally is a property of the model (the DiT's `causal` flag), not of the sampler.
// Both are one engine: each "round" denoises the flowing frames of every video over the grid;
// full-sequence sampling is one round, autoregressive sampling one round per generated frame.
// Videos are packed and evaluated together, one model call per solver stage.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "flowception/algebra/frame_algebra.hpp"
#include "flowception/algebra/host_algebra.hpp"
#include "flowception/core/errors.hpp"
#include "flowception/core/frame_kind.hpp"
#include "flowception/model/velocity_model.hpp"
#include "flowception/random/stream.hpp"
#include "flowception/sampling/coupled_sampler.hpp"
#include "flowception/sampling/guided_model_call.hpp"
#include "flowception/sampling/observer.hpp"
#include "flowception/sampling/prompt.hpp"
#include "flowception/schedule/time_grid.hpp"
#include "flowception/schedule/time_shift.hpp"
#include "flowception/solver/runge_kutta.hpp"

namespace flowception {

/// Which §7 baseline a `BaselineSampler` runs.
enum class BaselineMethod : unsigned char {
  full_sequence,   ///< every generated frame flows at once with one shared time
  autoregressive,  ///< one frame at a time, left to right, earlier frames as clean context
};

/// `"full_sequence"` or `"autoregressive"`.
constexpr std::string_view to_string(BaselineMethod m) {
  return m == BaselineMethod::full_sequence ? "full_sequence" : "autoregressive";
}

/// Settings of a `BaselineSampler` run. Only `grid` has no default; `frame_dim` must be set.
struct BaselineSamplerOptions {
  TimeGrid grid;                   ///< the denoising grid on [0,1] of each round; always explicit
  std::size_t frame_dim = 0;       ///< D, values per frame
  TimeShift shift{};               ///< model time t = shift(u)
  double velocity_guidance = 1.0;  ///< w in v = w·v_c + (1 − w)·v_u (1 = off)
  std::size_t max_frames = 4096;   ///< per video; a longer requested video is an error
  std::uint64_t seed = 0;          ///< Philox key of every noise draw
  /// Prompt v draws its noise as video number video_index_offset + v (see SamplerOptions).
  std::uint64_t video_index_offset = 0;

  /// Throws `ShapeError` if `frame_dim` is 0, `ConfigError` if `max_frames` is 0 or the velocity
  /// guidance weight is not finite.
  void validate() const {
    detail::require<ShapeError>(frame_dim >= 1, "frame_dim must be >= 1, got ", frame_dim);
    detail::require(max_frames >= 1, "max_frames must be >= 1, got ", max_frames);
    detail::require(std::isfinite(velocity_guidance), "velocity guidance must be finite, got ", velocity_guidance);
  }
};

namespace detail {
inline constexpr std::uint64_t kBaselineTag = 0x626173656c696e65ULL;  // "baseline"
}  // namespace detail

/// The stepping object for both baselines: step() until done(), then result().
///  - full_sequence: each prompt is the whole video; its generated frames are noise that flows,
///    its context frames (e.g. the image of image-to-video) stay clean. lengths must be empty.
///  - autoregressive: each prompt holds only context frames (possibly none); lengths[v] is the
///    final length of video v, so lengths[v] − (context frames) frames are generated.
template <class Model, class Stepper, FrameAlgebra Algebra = HostAlgebra<float>>
  requires VelocityModel<Model, typename Algebra::buffer> && PerFrameStepper<Stepper, Algebra>
class BaselineSampler {
 public:
  using T = typename Algebra::value_type;  ///< element type of a frame
  using Buffer = typename Algebra::buffer;  ///< the algebra's frame storage

  /// Keeps a reference to `model`, which must outlive the sampler, validates `opts`, `lengths`
  /// and every prompt (see the class comment; a video may not exceed `max_frames`), and starts
  /// (init()). Throws `ConfigError` or `ShapeError` otherwise.
  BaselineSampler(Model& model, BaselineMethod method, Stepper stepper, BaselineSamplerOptions opts,
                  std::vector<Prompt<T>> prompts, std::vector<std::size_t> lengths = {}, Algebra alg = {})
      : model_(&model),
        method_(method),
        stepper_(std::move(stepper)),
        opts_(std::move(opts)),
        prompts_(std::move(prompts)),
        lengths_(std::move(lengths)),
        alg_(std::move(alg)) {
    opts_.validate();
    detail::require(!prompts_.empty(), "no prompts: nothing to sample");
    if (method_ == BaselineMethod::full_sequence)
      detail::require(lengths_.empty(), "full-sequence sampling takes its lengths from the prompts; got ",
                      lengths_.size(), " separate lengths");
    else
      detail::require(lengths_.size() == prompts_.size(), "autoregressive sampling needs one length per prompt: ",
                      prompts_.size(), " prompts, ", lengths_.size(), " lengths");
    for (std::size_t v = 0; v < prompts_.size(); ++v) validate_prompt(v);
    init();
  }

  /// (Re)starts from the prompts: noise for the flowing frames (autoregressive: one new frame per
  /// video), the context frames clean, round 0.
  void init() {
    result_ = SampleResult<T>{};
    result_.videos.resize(prompts_.size());
    call_ = {};
    m_ = 0;
    finished_ = 0;
    std::vector<std::size_t> noise_rows, ctx_rows;
    std::vector<std::uint64_t> noise_ids;
    std::vector<T> ctx_values;
    rows_.clear();
    offsets_.assign(1, 0);
    active_.clear();
    conditions_.clear();
    for (std::size_t v = 0; v < prompts_.size(); ++v) {
      const auto& p = prompts_[v];
      const std::uint64_t stream = random::derive_stream(detail::kBaselineTag, opts_.video_index_offset + v);
      for (std::size_t k = 0; k < p.frames.size(); ++k) {
        const Row r{p.frames[k].kind, 0, random::derive_stream(stream, k), p.frames[k].kind == FrameKind::generated};
        if (r.flowing) {
          noise_rows.push_back(rows_.size());
          noise_ids.push_back(r.id);
        } else {
          ctx_rows.push_back(rows_.size());
          ctx_values.insert(ctx_values.end(), p.frames[k].values.begin(), p.frames[k].values.end());
        }
        rows_.push_back(r);
      }
      if (method_ == BaselineMethod::autoregressive) {  // the first frame to generate
        noise_rows.push_back(rows_.size());
        rows_.push_back({FrameKind::generated, 0, random::derive_stream(stream, p.frames.size()), true});
        noise_ids.push_back(rows_.back().id);
      }
      offsets_.push_back(rows_.size());
      active_.push_back(v);
      conditions_.push_back(p.condition);
      result_.videos[v].dim = opts_.frame_dim;
    }
    alg_.resize(x_, rows_.size(), opts_.frame_dim);
    alg_.fill_normal(x_, noise_rows, noise_ids, opts_.seed);
    alg_.upload_frames(x_, ctx_rows, std::span<const T>(ctx_values));
  }

  /// True once every video has finished.
  bool done() const { return active_.empty(); }
  /// Steps taken so far over all rounds (N per round).
  std::size_t step_index() const { return m_; }
  /// The sampled videos. Complete once done(); before that, only finished videos are filled.
  const SampleResult<T>& result() const { return result_; }
  /// Moves the result out; the sampler's result is unspecified afterwards.
  SampleResult<T> take_result() { return std::move(result_); }

  /// One step without an observer.
  void step() { step(NullObserver{}); }

  /// One step j → j + 1 of the current round's grid for every flowing frame; after the round's
  /// last step, complete videos finish and each other video gets a new noise frame. Then
  /// `observer(report)`, with s and s_next the round's clocks in [0, 1] and `insertion_phase`
  /// false. Throws `ConfigError` if called once done(), `ModelOutputError` for a bad model output.
  template <SamplerObserver Observer>
  void step(Observer&& observer) {
    detail::require(!done(), "step() called after sampling finished");
    const std::size_t N = opts_.grid.steps();
    const std::size_t j = m_ % N;  // step inside the current round
    const std::size_t n = rows_.size();
    t0_.resize(n);
    t1_.resize(n);
    kinds_.resize(n);
    for (std::size_t f = 0; f < n; ++f) {
      const Row& r = rows_[f];
      // Autoregressive: every earlier frame, given or generated, is clean passive context, as in
      // its training samples. Full-sequence: the prompt's context frames keep their kinds (§5).
      kinds_[f] = r.flowing ? FrameKind::generated
                            : (method_ == BaselineMethod::autoregressive ? FrameKind::passive_context : r.kind);
      t0_[f] = r.flowing ? opts_.shift(opts_.grid[j]) : 1.0;
      t1_[f] = r.flowing ? opts_.shift(opts_.grid[j + 1]) : 1.0;
    }
    evaluate(x_, t0_, k1_);
    auto system = [this](const Buffer& x, std::span<const double> t, Buffer& v) { evaluate(x, t, v); };
    stepper_.step(system, alg_, x_, std::span<const double>(t0_), std::span<const double>(t1_), k1_, ws_);

    reports_.clear();
    for (std::size_t a = 0; a < active_.size(); ++a) {
      VideoStepReport r;
      r.video = active_[a];
      r.trace.step = m_;
      r.trace.s = opts_.grid[j];
      r.trace.s_next = opts_.grid[j + 1];
      r.trace.length = offsets_[a + 1] - offsets_[a];
      r.trace.expected_final_length = static_cast<double>(final_length(active_[a]));
      r.trace.nfe = result_.videos[active_[a]].nfe;
      result_.videos[active_[a]].trace.push_back(r.trace);
      reports_.push_back(r);
    }
    ++m_;
    result_.steps = m_;
    if (j + 1 == N) end_round();

    StepReport report;
    report.step = m_ - 1;
    report.s = opts_.grid[j];
    report.s_next = opts_.grid[j + 1];
    report.insertion_phase = false;
    report.videos = reports_;
    report.model_calls = result_.model_calls;
    report.finished_videos = finished_;
    observer(report);
  }

 private:
  struct Row {
    FrameKind kind;      ///< kind in the result (generated frames stay `generated`)
    std::size_t round;   ///< round in which the frame was generated (its "insertion step")
    std::uint64_t id;    ///< noise stream
    bool flowing;        ///< denoised in the current round
  };

  std::size_t final_length(std::size_t v) const {
    return method_ == BaselineMethod::full_sequence ? prompts_[v].frames.size() : lengths_[v];
  }

  void validate_prompt(std::size_t v) const {
    const auto& p = prompts_[v];
    std::size_t generated = 0;
    for (std::size_t k = 0; k < p.frames.size(); ++k) {
      const auto& fr = p.frames[k];
      if (fr.kind == FrameKind::generated) {
        ++generated;
        detail::require<ShapeError>(fr.values.empty(), "prompt ", v, " frame ", k,
                                    " is generated but carries values (only context frames do)");
        continue;
      }
      detail::require<ShapeError>(fr.values.size() == opts_.frame_dim, "frame-size mismatch: prompt ", v,
                                  " context frame ", k, " has ", fr.values.size(), " values, frame_dim is ",
                                  opts_.frame_dim);
      for (std::size_t e = 0; e < fr.values.size(); ++e)
        detail::require<ShapeError>(std::isfinite(static_cast<double>(fr.values[e])), "prompt ", v, " context frame ",
                                    k, " has a non-finite value at element ", e);
    }
    if (method_ == BaselineMethod::full_sequence) {
      detail::require(generated >= 1, "full-sequence prompt ", v, " has no generated frame: nothing to sample");
      detail::require(p.frames.size() <= opts_.max_frames, "full-sequence prompt ", v, " has ", p.frames.size(),
                      " frames, more than max_frames = ", opts_.max_frames);
    } else {
      detail::require(generated == 0, "autoregressive prompt ", v, " holds ", generated,
                      " generated frames; it takes only the context frames that come first");
      detail::require(lengths_[v] > p.frames.size(), "autoregressive length ", lengths_[v], " of video ", v,
                      " leaves nothing to generate after its ", p.frames.size(), " context frames");
      detail::require(lengths_[v] <= opts_.max_frames, "autoregressive length ", lengths_[v], " of video ", v,
                      " exceeds max_frames = ", opts_.max_frames);
    }
  }

  /// The flowing frames are clean: finish videos that are complete, give the others a new frame.
  void end_round() {
    std::vector<std::int64_t> gather;
    std::vector<Row> next_rows;
    std::vector<std::size_t> next_offsets{0}, next_active, noise_rows;
    std::vector<std::int64_t> next_conditions;
    std::vector<std::uint64_t> noise_ids;
    const std::size_t round = m_ / opts_.grid.steps();
    for (std::size_t a = 0; a < active_.size(); ++a) {
      const std::size_t v = active_[a], b = offsets_[a], e = offsets_[a + 1];
      for (std::size_t f = b; f < e; ++f) rows_[f].flowing = false;
      if (e - b >= final_length(v)) {
        finish_video(v, b, e);
        continue;
      }
      for (std::size_t f = b; f < e; ++f) {
        gather.push_back(static_cast<std::int64_t>(f));
        next_rows.push_back(rows_[f]);
      }
      const std::uint64_t stream = random::derive_stream(detail::kBaselineTag, opts_.video_index_offset + v);
      noise_rows.push_back(next_rows.size());
      noise_ids.push_back(random::derive_stream(stream, e - b));
      next_rows.push_back({FrameKind::generated, round, noise_ids.back(), true});
      gather.push_back(-1);
      next_offsets.push_back(next_rows.size());
      next_active.push_back(v);
      next_conditions.push_back(conditions_[a]);
    }
    alg_.gather_frames(scratch_, x_, gather);
    alg_.fill_normal(scratch_, noise_rows, noise_ids, opts_.seed);
    std::swap(x_, scratch_);
    rows_ = std::move(next_rows);
    offsets_ = std::move(next_offsets);
    active_ = std::move(next_active);
    conditions_ = std::move(next_conditions);
  }

  void finish_video(std::size_t v, std::size_t b, std::size_t e) {
    auto& video = result_.videos[v];
    std::vector<std::int64_t> rows;
    for (std::size_t f = b; f < e; ++f) {
      rows.push_back(static_cast<std::int64_t>(f));
      video.kinds.push_back(rows_[f].kind);
      video.insertion_step.push_back(rows_[f].round);
      video.frame_ids.push_back(rows_[f].id);
    }
    alg_.gather_frames(scratch2_, x_, rows);
    video.frames = alg_.download(scratch2_);
    ++finished_;
  }

  void evaluate(const Buffer& x, std::span<const double> t, Buffer& v_out) {
    call_.evaluate_for(*model_, alg_, x, PackedView{t, kinds_, offsets_, conditions_},
                       Guidance{opts_.velocity_guidance, 1.0}, m_, v_out, log_rate_, result_, active_);
  }

  Model* model_;
  BaselineMethod method_;
  Stepper stepper_;
  BaselineSamplerOptions opts_;
  std::vector<Prompt<T>> prompts_;
  std::vector<std::size_t> lengths_;
  Algebra alg_;

  Buffer x_, k1_, scratch_, scratch2_;
  std::vector<Row> rows_;
  std::vector<FrameKind> kinds_;
  std::vector<std::size_t> offsets_, active_;
  std::vector<std::int64_t> conditions_;
  std::size_t m_ = 0, finished_ = 0;
  SampleResult<T> result_;
  GuidedModelCall<Model, Algebra> call_;
  StepperWorkspace<Algebra> ws_;
  std::vector<double> t0_, t1_, log_rate_;
  std::vector<VideoStepReport> reports_;
};

/// Full-sequence flow matching (§7): each prompt is the whole video (generated frames flow from
/// noise with one shared time; context frames stay clean), N = opts.grid.steps() steps.
template <class Model, class Stepper, FrameAlgebra Algebra, SamplerObserver Observer = NullObserver>
  requires VelocityModel<Model, typename Algebra::buffer> && PerFrameStepper<Stepper, Algebra>
SampleResult<typename Algebra::value_type> sample_full_sequence(Model& model, Stepper stepper,
                                                                BaselineSamplerOptions opts,
                                                                std::vector<Prompt<typename Algebra::value_type>> prompts,
                                                                Algebra alg, Observer observer = {}) {
  BaselineSampler<Model, Stepper, Algebra> s(model, BaselineMethod::full_sequence, std::move(stepper), std::move(opts),
                                             std::move(prompts), {}, std::move(alg));
  while (!s.done()) s.step(observer);
  return s.take_result();
}

/// `sample_full_sequence` on the host algebra (frames as std::vector of T).
template <class Model, class Stepper, class T, SamplerObserver Observer = NullObserver>
  requires VelocityModel<Model, HostFrames<T>> && PerFrameStepper<Stepper, HostAlgebra<T>>
SampleResult<T> sample_full_sequence(Model& model, Stepper stepper, BaselineSamplerOptions opts,
                                     std::vector<Prompt<T>> prompts, Observer observer = {}) {
  return sample_full_sequence(model, std::move(stepper), std::move(opts), std::move(prompts), HostAlgebra<T>{},
                              std::move(observer));
}

/// Autoregressive generation (§7): video v grows from its prompt's context frames to lengths[v]
/// frames, each new frame denoised fully (N steps) with all earlier frames as clean context.
template <class Model, class Stepper, FrameAlgebra Algebra, SamplerObserver Observer = NullObserver>
  requires VelocityModel<Model, typename Algebra::buffer> && PerFrameStepper<Stepper, Algebra>
SampleResult<typename Algebra::value_type> sample_autoregressive(
    Model& model, Stepper stepper, BaselineSamplerOptions opts,
    std::vector<Prompt<typename Algebra::value_type>> prompts, std::vector<std::size_t> lengths, Algebra alg,
    Observer observer = {}) {
  BaselineSampler<Model, Stepper, Algebra> s(model, BaselineMethod::autoregressive, std::move(stepper),
                                             std::move(opts), std::move(prompts), std::move(lengths), std::move(alg));
  while (!s.done()) s.step(observer);
  return s.take_result();
}

/// `sample_autoregressive` on the host algebra (frames as std::vector of T).
template <class Model, class Stepper, class T, SamplerObserver Observer = NullObserver>
  requires VelocityModel<Model, HostFrames<T>> && PerFrameStepper<Stepper, HostAlgebra<T>>
SampleResult<T> sample_autoregressive(Model& model, Stepper stepper, BaselineSamplerOptions opts,
                                      std::vector<Prompt<T>> prompts, std::vector<std::size_t> lengths,
                                      Observer observer = {}) {
  return sample_autoregressive(model, std::move(stepper), std::move(opts), std::move(prompts), std::move(lengths),
                               HostAlgebra<T>{}, std::move(observer));
}

}  // namespace flowception
