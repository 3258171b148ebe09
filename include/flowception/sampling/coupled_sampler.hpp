// The coupled ODE–jump sampler of §4. A batch of videos is sampled at once: their frames sit
// in one packed buffer (video v owns rows [offsets[v], offsets[v+1])), the model is called once
// per solver stage on that batch, and each video grows to its own length and leaves the batch
// when its last frame reaches clock 1.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flowception/algebra/frame_algebra.hpp"
#include "flowception/algebra/host_algebra.hpp"
#include "flowception/core/errors.hpp"
#include "flowception/core/frame_kind.hpp"
#include "flowception/model/flop_count.hpp"
#include "flowception/model/velocity_model.hpp"
#include "flowception/random/stream.hpp"
#include "flowception/sampling/guided_model_call.hpp"
#include "flowception/sampling/observer.hpp"
#include "flowception/sampling/prompt.hpp"
#include "flowception/schedule/kappa.hpp"
#include "flowception/schedule/time_grid.hpp"
#include "flowception/schedule/time_shift.hpp"
#include "flowception/solver/runge_kutta.hpp"

namespace flowception {

/// How the number of new frames in a gap is drawn (§4 step 3).
enum class JumpMode : unsigned char {
  poisson,    ///< Poisson(λ·q) new frames (default)
  bernoulli,  ///< at most one, with probability 1 − exp(−λ·q) (the reference's behaviour)
  /// Binomial(⌈λ⌉, λ·q/⌈λ⌉) new frames: the mean λ·q of the Poisson draw, and, when λ is a whole
  /// number k (a model certain of the count), the exact law Binomial(k, q) of k missing frames
  /// that each appear with probability q. Poisson(k·q) can put more than k frames into one gap
  /// in a step when q is large, as it is in the last steps under a back-loaded κ.
  binomial,
};

/// Where new frames go (§4 "Insertion rules"); all but `learned` need a target length.
enum class InsertionRule : unsigned char {
  learned,        ///< per gap from the model's rate λ_i (default)
  random_gap,     ///< a uniformly chosen gap that still misses frames, at a random place in it
  hierarchical,   ///< the middle of the widest remaining span
  left_to_right,  ///< right after the last frame
};

/// What happens when insertions would take a video past `max_frames`.
enum class CapPolicy : unsigned char {
  error,     ///< throw LengthCapError (default)
  truncate,  ///< keep frames up to the cap; refused insertions are counted in the result
};

namespace detail {
/// The value named `name` among `names` (parallel to `values`), else a ConfigError that names
/// `what` and lists the accepted names.
template <class E, std::size_t N>
E enum_from_name(std::string_view name, const char* what, const std::array<const char*, N>& names,
                 const std::array<E, N>& values) {
  std::string list;
  for (std::size_t i = 0; i < N; ++i) {
    if (name == names[i]) return values[i];
    list += (i ? ", " : "") + std::string(names[i]);
  }
  fail<ConfigError>(what, " '", name, "' is not one of: ", list);
}
inline constexpr std::array<const char*, 3> kJumpModeNames{"poisson", "bernoulli", "binomial"};
inline constexpr std::array<JumpMode, 3> kJumpModes{JumpMode::poisson, JumpMode::bernoulli, JumpMode::binomial};
inline constexpr std::array<const char*, 4> kInsertionRuleNames{"learned", "random", "hierarchical", "left_to_right"};
inline constexpr std::array<InsertionRule, 4> kInsertionRules{InsertionRule::learned, InsertionRule::random_gap,
                                                              InsertionRule::hierarchical, InsertionRule::left_to_right};
inline constexpr std::array<const char*, 2> kCapPolicyNames{"error", "truncate"};
inline constexpr std::array<CapPolicy, 2> kCapPolicies{CapPolicy::error, CapPolicy::truncate};
}  // namespace detail

/// The name of a jump mode: "poisson", "bernoulli" or "binomial" (what jump_mode_from_name reads).
inline const char* jump_mode_name(JumpMode m) { return detail::kJumpModeNames[static_cast<std::size_t>(m)]; }
/// The jump mode named `name`; ConfigError listing the names for any other.
inline JumpMode jump_mode_from_name(std::string_view name) {
  return detail::enum_from_name(name, "jump mode", detail::kJumpModeNames, detail::kJumpModes);
}
/// The name of an insertion rule: "learned", "random", "hierarchical" or "left_to_right".
inline const char* insertion_rule_name(InsertionRule r) {
  return detail::kInsertionRuleNames[static_cast<std::size_t>(r)];
}
/// The insertion rule named `name`; ConfigError listing the names for any other.
inline InsertionRule insertion_rule_from_name(std::string_view name) {
  return detail::enum_from_name(name, "insertion rule", detail::kInsertionRuleNames, detail::kInsertionRules);
}
/// The name of a cap policy: "error" or "truncate".
inline const char* cap_policy_name(CapPolicy p) { return detail::kCapPolicyNames[static_cast<std::size_t>(p)]; }
/// The cap policy named `name`; ConfigError listing the names for any other.
inline CapPolicy cap_policy_from_name(std::string_view name) {
  return detail::enum_from_name(name, "cap policy", detail::kCapPolicyNames, detail::kCapPolicies);
}

/// Settings of a `CoupledSampler` run (§4). Only `grid` has no default; `frame_dim` must be set.
struct SamplerOptions {
  TimeGrid grid;                 ///< the insertion-phase grid on [0,1]; always explicit
  std::size_t frame_dim = 0;     ///< D, values per frame
  TimeShift shift{};             ///< model time t = shift(u)
  JumpMode jump = JumpMode::poisson;            ///< how the count of new frames per gap is drawn
  InsertionRule rule = InsertionRule::learned;  ///< where new frames go
  std::size_t target_length = 0;   ///< prescribed rules only: final length of every video
  bool anchor_endpoints = true;    ///< prescribed rules: a generated last start frame ends the video
  double velocity_guidance = 1.0;  ///< w in v = w·v_c + (1 − w)·v_u (1 = off)
  double insertion_guidance = 1.0; ///< g in ℓ = g·ℓ_c + (1 − g)·ℓ_u (1 = off)
  std::size_t max_frames = 4096;   ///< per video
  CapPolicy cap_policy = CapPolicy::error;  ///< what an insertion past `max_frames` does
  std::uint64_t seed = 0;                   ///< Philox key of every noise and jump draw
  /// Prompt v draws its noise as video number video_index_offset + v, so a slice of a larger
  /// batch sampled on its own (with the slice's offset) reproduces the same bits.
  std::uint64_t video_index_offset = 0;

  /// True when either guidance weight differs from 1 (each model call is then doubled).
  bool guided() const { return velocity_guidance != 1.0 || insertion_guidance != 1.0; }

  /// Throws `ShapeError` if `frame_dim` is 0, `ConfigError` if `max_frames` is 0, a guidance
  /// weight is not finite, or a prescribed rule lacks a `target_length` in [1, max_frames].
  void validate() const {
    detail::require<ShapeError>(frame_dim >= 1, "frame_dim must be >= 1, got ", frame_dim);
    detail::require(max_frames >= 1, "max_frames must be >= 1, got ", max_frames);
    detail::require(std::isfinite(velocity_guidance), "velocity guidance must be finite, got ", velocity_guidance);
    detail::require(std::isfinite(insertion_guidance), "insertion guidance must be finite, got ", insertion_guidance);
    if (rule != InsertionRule::learned) {
      detail::require(target_length >= 1, "insertion rule other than 'learned' needs target_length >= 1");
      detail::require(target_length <= max_frames, "target_length ", target_length, " exceeds max_frames ", max_frames);
    }
  }
};

/// One sampled video.
template <class T>
struct SampledVideo {
  std::size_t dim = 0;                     ///< D, values per frame
  std::vector<T> frames;                   ///< length() × dim, row-major
  std::vector<FrameKind> kinds;            ///< kind of each frame, in video order
  std::vector<std::size_t> insertion_step; ///< grid index at which the frame appeared (0 = initial)
  std::vector<std::uint64_t> frame_ids;    ///< the frame's noise stream id
  std::vector<StepTrace> trace;            ///< one entry per global step the video took part in
  std::size_t nfe = 0;                     ///< model evaluations that included this video
  std::size_t refused_insertions = 0;      ///< insertions refused by the cap (truncate policy)

  /// Number of frames of the final video, context frames included.
  std::size_t length() const { return kinds.size(); }
};

/// The result of a sampling run: one video per prompt, plus the run's cost.
template <class T>
struct SampleResult {
  std::vector<SampledVideo<T>> videos;  ///< one per prompt, in prompt order
  std::size_t model_calls = 0;  ///< calls of model.evaluate (one per solver stage)
  std::size_t steps = 0;        ///< global steps taken (at most 2N)
  FlopCount flops;              ///< summed over model calls (zero for models that do not report FLOPs)
};

namespace detail {
inline constexpr std::uint64_t kPromptTag = 0x70726f6d7074ULL;  // "prompt"
inline constexpr std::uint64_t kJumpTag = 0x6a756d70ULL;        // "jump"
inline constexpr std::uint64_t kRuleTag = 0x72756c65ULL;        // "rule"
}  // namespace detail

/// The stepping object: construct (or init()), then step() until done(), then result().
template <class Model, KappaScheduler Kappa, class Stepper, FrameAlgebra Algebra = HostAlgebra<float>>
  requires VelocityModel<Model, typename Algebra::buffer> && PerFrameStepper<Stepper, Algebra>
class CoupledSampler {
 public:
  using T = typename Algebra::value_type;  ///< element type of a frame
  using Buffer = typename Algebra::buffer;  ///< the algebra's frame storage

  /// Keeps a reference to `model`, which must outlive the sampler, validates `opts` and every
  /// prompt, and starts (init()). Throws `ConfigError` or `ShapeError` on bad options, no prompts,
  /// or a bad prompt (see `Prompt`; more frames than `max_frames`; fewer than `target_length` under
  /// a prescribed rule).
  CoupledSampler(Model& model, Kappa kappa, Stepper stepper, SamplerOptions opts, std::vector<Prompt<T>> prompts,
                 Algebra alg = {})
      : model_(&model),
        kappa_(std::move(kappa)),
        stepper_(std::move(stepper)),
        opts_(std::move(opts)),
        prompts_(std::move(prompts)),
        alg_(std::move(alg)) {
    opts_.validate();
    detail::require(!prompts_.empty(), "no prompts: nothing to sample");
    for (std::size_t v = 0; v < prompts_.size(); ++v) validate_prompt(v);
    init();
  }

  /// (Re)starts from the prompts: initial noise and context frames at clock 0.
  void init() {
    const std::size_t D = opts_.frame_dim;
    result_ = SampleResult<T>{};
    finished_ = 0;
    result_.videos.resize(prompts_.size());
    call_ = {};
    m_ = 0;
    kind_.clear();
    ins_.clear();
    id_.clear();
    quota_.clear();
    offsets_.assign(1, 0);
    active_.clear();
    conditions_.clear();
    std::vector<std::size_t> noise_rows, ctx_rows;
    std::vector<std::uint64_t> noise_ids;
    std::vector<T> ctx_values;
    for (std::size_t v = 0; v < prompts_.size(); ++v) {
      const auto& p = prompts_[v];
      const std::uint64_t video_stream = random::derive_stream(detail::kPromptTag, opts_.video_index_offset + v);
      for (std::size_t k = 0; k < p.frames.size(); ++k) {
        const std::size_t row = kind_.size();
        kind_.push_back(p.frames[k].kind);
        ins_.push_back(0);
        id_.push_back(random::derive_stream(video_stream, k));
        quota_.push_back(0);
        if (p.frames[k].kind == FrameKind::generated) {
          noise_rows.push_back(row);
          noise_ids.push_back(id_.back());
        } else {
          ctx_rows.push_back(row);
          ctx_values.insert(ctx_values.end(), p.frames[k].values.begin(), p.frames[k].values.end());
        }
      }
      if (opts_.rule != InsertionRule::learned) assign_quotas(offsets_.back(), kind_.size());
      offsets_.push_back(kind_.size());
      active_.push_back(v);
      conditions_.push_back(p.condition);
      result_.videos[v].dim = D;
    }
    alg_.resize(x_, kind_.size(), D);
    alg_.fill_normal(x_, noise_rows, noise_ids, opts_.seed);
    alg_.upload_frames(x_, ctx_rows, std::span<const T>(ctx_values));
  }

  /// True once every video has finished.
  bool done() const { return active_.empty(); }
  /// Global steps taken so far, m (at most 2N).
  std::size_t step_index() const { return m_; }
  /// The extended global clock now (in [0, 2]).
  double clock() const { return opts_.grid.extended(std::min(m_, 2 * opts_.grid.steps())); }
  /// Videos not yet finished.
  std::size_t active_videos() const { return active_.size(); }
  /// Frames of the unfinished videos, packed.
  std::size_t total_frames() const { return kind_.size(); }
  /// The packed frames of the unfinished videos now.
  const Buffer& state() const { return x_; }
  /// The options, as validated.
  const SamplerOptions& options() const { return opts_; }

  /// One global step without an observer.
  void step() { step(NullObserver{}); }

  /// One global step m → m + 1 (§4): the ODE step of every frame, then, in the insertion phase,
  /// the jump, then the retirement of videos whose frames all reached clock 1; finally
  /// `observer(report)`. Throws `ConfigError` if called once done(), `ModelOutputError` for a bad
  /// model output, and `LengthCapError` under `CapPolicy::error` when a video would pass `max_frames`.
  template <SamplerObserver Observer>
  void step(Observer&& observer) {
    detail::require(!done(), "step() called after sampling finished");
    const std::size_t N = opts_.grid.steps();
    const std::size_t n = kind_.size();
    const std::size_t m = m_;

    // Clocks and model times of every frame at the two ends of the step (§4 steps 1-2).
    t0_.resize(n);
    t1_.resize(n);
    for (std::size_t f = 0; f < n; ++f) {
      if (is_context(kind_[f])) {
        t0_[f] = t1_[f] = 1.0;
        continue;
      }
      t0_[f] = opts_.shift(frame_clock(f, m));
      t1_[f] = opts_.shift(frame_clock(f, m + 1));
    }

    // Stage 1 on the current sequence gives k1 and the rates used by the jump.
    evaluate(x_, std::span<const double>(t0_), k1_, log_rate_);
    auto system = [this](const Buffer& x, std::span<const double> t, Buffer& v) { evaluate(x, t, v, stage_log_rate_); };
    stepper_.step(system, alg_, x_, std::span<const double>(t0_), std::span<const double>(t1_), k1_, ws_);

    // Expected final lengths from the (guided) rates before the jump.
    reports_.clear();
    for (std::size_t a = 0; a < active_.size(); ++a) {
      VideoStepReport r;
      r.video = active_[a];
      r.trace.step = m;
      r.trace.s = opts_.grid.extended(m);
      r.trace.s_next = opts_.grid.extended(m + 1);
      double expected = static_cast<double>(offsets_[a + 1] - offsets_[a]);
      for (std::size_t f = offsets_[a]; f < offsets_[a + 1]; ++f)
        if (receives_insertions(kind_[f])) expected += std::exp(log_rate_[f]);
      r.trace.expected_final_length = expected;
      reports_.push_back(r);
    }

    // Jump (§4 step 3) and retirement of finished videos, as one rebuild of the packed state.
    plan_.clear();
    bool changed = false;
    const double q = m < N ? jump_probability(kappa_, opts_.grid[m], opts_.grid[m + 1]) : 0.0;
    std::vector<std::size_t> next_active;
    std::vector<std::int64_t> next_conditions;
    std::vector<std::size_t> next_offsets{0};
    for (std::size_t a = 0; a < active_.size(); ++a) {
      const std::size_t begin = plan_.size();
      if (m < N) {
        if (opts_.rule == InsertionRule::learned)
          plan_learned(a, q, m, reports_[a].trace);
        else
          plan_prescribed(a, q, m, reports_[a].trace);
      } else {
        for (std::size_t f = offsets_[a]; f < offsets_[a + 1]; ++f) plan_.push_back(existing(f));
      }
      const std::size_t len = plan_.size() - begin;
      reports_[a].trace.length = len;
      changed |= reports_[a].trace.inserted > 0;
      auto& video = result_.videos[active_[a]];
      video.refused_insertions += reports_[a].trace.refused;
      reports_[a].trace.nfe = video.nfe;
      video.trace.push_back(reports_[a].trace);
      if (video_finished(begin, plan_.size(), m + 1)) {
        finish_video(active_[a], begin, plan_.size());
        plan_.resize(begin);
        changed = true;
        ++finished_;
        continue;
      }
      next_active.push_back(active_[a]);
      next_conditions.push_back(conditions_[a]);
      next_offsets.push_back(plan_.size());
    }
    if (changed) rebuild();
    active_ = std::move(next_active);
    conditions_ = std::move(next_conditions);
    offsets_ = std::move(next_offsets);
    m_ = m + 1;
    result_.steps = m_;

    StepReport report;
    report.step = m;
    report.s = opts_.grid.extended(m);
    report.s_next = opts_.grid.extended(m + 1);
    report.insertion_phase = m < N;
    report.videos = reports_;
    report.model_calls = result_.model_calls;
    report.finished_videos = finished_;
    observer(report);
  }

  /// The sampled videos. Complete once done(); before that, only finished videos are filled.
  const SampleResult<T>& result() const { return result_; }
  /// Moves the result out; the sampler's result is unspecified afterwards.
  SampleResult<T> take_result() { return std::move(result_); }

 private:
  struct Entry {
    std::int64_t src;  ///< row in the current state, or −1 for a new noise frame
    FrameKind kind;
    std::size_t ins;
    std::uint64_t id;
    std::size_t quota;
  };

  Entry existing(std::size_t f) const {
    return {static_cast<std::int64_t>(f), kind_[f], ins_[f], id_[f], quota_[f]};
  }

  /// Clock u of frame f at global step m: 0 when inserted, exactly 1 from step N + ins on.
  double frame_clock(std::size_t f, std::size_t m) const {
    const std::size_t N = opts_.grid.steps();
    const std::size_t j = ins_[f];
    if (m >= N + j) return 1.0;
    const double u = opts_.grid.extended(m) - opts_.grid[j];
    return u <= 0.0 ? 0.0 : (u >= 1.0 ? std::nextafter(1.0, 0.0) : u);
  }

  bool video_finished(std::size_t begin, std::size_t end, std::size_t next_m) const {
    const std::size_t N = opts_.grid.steps();
    if (next_m < N) return false;
    for (std::size_t e = begin; e < end; ++e)
      if (plan_[e].kind == FrameKind::generated && next_m < N + plan_[e].ins) return false;
    return true;
  }

  void validate_prompt(std::size_t v) const {
    const auto& p = prompts_[v];
    detail::require(!p.frames.empty(), "prompt ", v, " has no frames (n_start must be >= 1)");
    detail::require(p.frames.size() <= opts_.max_frames, "prompt ", v, " starts with ", p.frames.size(),
                    " frames, more than max_frames = ", opts_.max_frames);
    bool can_grow = false;
    for (std::size_t k = 0; k < p.frames.size(); ++k) {
      const auto& fr = p.frames[k];
      if (fr.kind == FrameKind::generated) {
        detail::require<ShapeError>(fr.values.empty(), "prompt ", v, " frame ", k,
                                    " is generated but carries values (only context frames do)");
      } else {
        detail::require<ShapeError>(fr.values.size() == opts_.frame_dim, "frame-size mismatch: prompt ", v,
                                    " context frame ", k, " has ", fr.values.size(), " values, frame_dim is ",
                                    opts_.frame_dim);
        for (std::size_t e = 0; e < fr.values.size(); ++e)
          detail::require<ShapeError>(std::isfinite(static_cast<double>(fr.values[e])), "prompt ", v,
                                      " context frame ", k, " has a non-finite value at element ", e);
      }
      can_grow |= receives_insertions(fr.kind);
    }
    detail::require(can_grow, "prompt ", v, " has only passive context frames: nothing can flow or be inserted");
    if (opts_.rule != InsertionRule::learned)
      detail::require(opts_.target_length >= p.frames.size(), "target_length ", opts_.target_length,
                      " is shorter than prompt ", v, "'s ", p.frames.size(), " initial frames");
  }

  /// Prescribed rules: the missing frames M = target − n spread over the gaps that may grow.
  void assign_quotas(std::size_t begin, std::size_t end) {
    const std::size_t n = end - begin;
    std::size_t missing = opts_.target_length - n;
    std::vector<std::size_t> gaps;
    for (std::size_t f = begin; f < end; ++f)
      if (receives_insertions(kind_[f])) gaps.push_back(f);
    const bool drop_trailing = opts_.anchor_endpoints && kind_[end - 1] == FrameKind::generated && gaps.size() > 1;
    if (drop_trailing) gaps.pop_back();
    if (opts_.rule == InsertionRule::left_to_right) {
      quota_[gaps.back()] = missing;
      return;
    }
    for (std::size_t g = 0; g < gaps.size(); ++g)
      quota_[gaps[g]] = missing / gaps.size() + (g < missing % gaps.size() ? 1 : 0);
  }

  /// Learned rule: gap i gets Poisson(λ_i·q) (or Bernoulli) new frames, right of frame i.
  void plan_learned(std::size_t a, double q, std::size_t m, StepTrace& trace) {
    const std::size_t n = offsets_[a + 1] - offsets_[a];
    std::size_t room = opts_.max_frames > n ? opts_.max_frames - n : 0;
    for (std::size_t f = offsets_[a]; f < offsets_[a + 1]; ++f) {
      plan_.push_back(existing(f));
      if (!receives_insertions(kind_[f]) || q <= 0.0) continue;
      const double lambda = std::exp(log_rate_[f]);
      const double mean = lambda * q;
      detail::require<ModelOutputError>(std::isfinite(mean), "absurd insertion rate: log-rate ", log_rate_[f],
                                        " at frame ", f - offsets_[a], " of video ", active_[a], " gives rate ", lambda);
      random::Stream rng(opts_.seed, random::derive_stream(random::derive_stream(id_[f], detail::kJumpTag), m));
      double k = 0.0;
      if (opts_.jump == JumpMode::poisson) {
        k = rng.poisson(mean);
      } else if (opts_.jump == JumpMode::binomial) {
        // A rate within rounding of a whole number is that number (exp(log 3) is not exactly 3).
        // Rates above 4096 frames are far beyond any cap; there the binomial is its Poisson limit.
        const double nearest = std::round(lambda);
        const double trials = std::fabs(lambda - nearest) <= 1e-9 * std::max(1.0, lambda) ? nearest : std::ceil(lambda);
        k = trials > 4096.0 ? rng.poisson(mean)
            : trials == 0.0 ? 0.0
                            : static_cast<double>(rng.binomial(static_cast<std::uint64_t>(trials), std::min(1.0, mean / trials)));
      } else {
        k = rng.uniform() < -std::expm1(-mean) ? 1.0 : 0.0;
      }
      if (k == 0.0) continue;
      if (static_cast<double>(room) < k) {
        const double total = static_cast<double>(n) + static_cast<double>(trace.inserted) + k;
        if (opts_.cap_policy == CapPolicy::error)
          detail::fail<LengthCapError>("max_frames exceeded: video ", active_[a], " would grow to at least ",
                                           total, " frames at step ", m, ", above max_frames = ", opts_.max_frames);
        trace.refused += static_cast<std::size_t>(std::min(k - static_cast<double>(room), 1e18));
        k = static_cast<double>(room);
      }
      const auto count = static_cast<std::size_t>(k);
      room -= count;
      trace.inserted += count;
      const std::uint64_t parent = random::derive_stream(id_[f], m + 1);
      for (std::size_t c = 0; c < count; ++c)
        plan_.push_back({-1, FrameKind::generated, m + 1, random::derive_stream(parent, c), 0});
    }
  }

  /// Prescribed rules: Binomial(M, q) of the M missing frames appear, each placed by the rule.
  void plan_prescribed(std::size_t a, double q, std::size_t m, StepTrace& trace) {
    const std::size_t begin = plan_.size();
    std::size_t missing = 0;
    for (std::size_t f = offsets_[a]; f < offsets_[a + 1]; ++f) {
      plan_.push_back(existing(f));
      missing += quota_[f];
    }
    random::Stream rng(opts_.seed, random::derive_stream(random::derive_stream(detail::kRuleTag, opts_.video_index_offset + active_[a]), m));
    std::size_t count = static_cast<std::size_t>(rng.binomial(missing, q));
    const std::size_t n = offsets_[a + 1] - offsets_[a];
    const std::size_t room = opts_.max_frames > n ? opts_.max_frames - n : 0;
    if (count > room) {
      if (opts_.cap_policy == CapPolicy::error)
        detail::fail<LengthCapError>("max_frames exceeded: video ", active_[a], " would grow to ",
                                         n + count, " frames at step ", m, ", above max_frames = ", opts_.max_frames);
      trace.refused += count - room;
      count = room;
    }
    std::vector<std::size_t> children;  // per plan entry: children created this step
    for (std::size_t c = 0; c < count; ++c) {
      // Candidate gaps: frames that may receive insertions and still own missing slots.
      std::size_t pick = plan_.size();
      std::size_t candidates = 0;
      for (std::size_t e = begin; e < plan_.size(); ++e) {
        if (!receives_insertions(plan_[e].kind) || plan_[e].quota == 0) continue;
        ++candidates;
        if (opts_.rule == InsertionRule::hierarchical) {
          if (pick == plan_.size() || plan_[e].quota > plan_[pick].quota) pick = e;
        } else if (opts_.rule == InsertionRule::left_to_right) {
          pick = e;  // the rightmost
        }
      }
      if (candidates == 0) break;
      std::size_t left = 0;  // missing slots that stay left of the new frame
      if (opts_.rule == InsertionRule::random_gap) {
        std::size_t target = static_cast<std::size_t>(rng.below(candidates));
        for (std::size_t e = begin; e < plan_.size(); ++e) {
          if (!receives_insertions(plan_[e].kind) || plan_[e].quota == 0) continue;
          if (target-- == 0) {
            pick = e;
            break;
          }
        }
        left = static_cast<std::size_t>(rng.below(plan_[pick].quota));
      } else if (opts_.rule == InsertionRule::hierarchical) {
        left = (plan_[pick].quota - 1) / 2;
      }
      // The new frame takes slot `left` of the parent's missing span: it sits right of the
      // parent in the sequence, `left` slots stay missing before it, quota − 1 − left after it.
      Entry& parent = plan_[pick];
      const std::size_t right = parent.quota - 1 - left;
      parent.quota = left;
      children.resize(plan_.size(), 0);
      const std::uint64_t id =
          random::derive_stream(random::derive_stream(parent.id, m + 1), children[pick]++);
      plan_.insert(plan_.begin() + static_cast<std::ptrdiff_t>(pick) + 1,
                   Entry{-1, FrameKind::generated, m + 1, id, right});
      children.insert(children.begin() + static_cast<std::ptrdiff_t>(pick) + 1, 0);
      ++trace.inserted;
    }
  }

  /// Replaces the packed state by the plan: kept rows gathered, new rows drawn as noise.
  void rebuild() {
    const std::size_t n = plan_.size();
    rows_.resize(n);
    new_rows_.clear();
    new_ids_.clear();
    kind_.resize(n);
    ins_.resize(n);
    id_.resize(n);
    quota_.resize(n);
    for (std::size_t r = 0; r < n; ++r) {
      const Entry& e = plan_[r];
      rows_[r] = e.src;
      kind_[r] = e.kind;
      ins_[r] = e.ins;
      id_[r] = e.id;
      quota_[r] = e.quota;
      if (e.src < 0) {
        new_rows_.push_back(r);
        new_ids_.push_back(e.id);
      }
    }
    alg_.gather_frames(scratch_, x_, rows_);
    alg_.fill_normal(scratch_, new_rows_, new_ids_, opts_.seed);
    std::swap(x_, scratch_);
  }

  void finish_video(std::size_t v, std::size_t begin, std::size_t end) {
    auto& video = result_.videos[v];
    std::vector<std::int64_t> rows;
    for (std::size_t e = begin; e < end; ++e) {
      rows.push_back(plan_[e].src);
      video.kinds.push_back(plan_[e].kind);
      video.insertion_step.push_back(plan_[e].ins);
      video.frame_ids.push_back(plan_[e].id);
    }
    alg_.gather_frames(scratch_, x_, rows);
    video.frames = alg_.download(scratch_);
  }

  /// One guided or unguided model call; writes v and ℓ, counts NFE and FLOPs.
  void evaluate(const Buffer& x, std::span<const double> t, Buffer& v_out, std::vector<double>& logr_out) {
    call_.evaluate_for(*model_, alg_, x, PackedView{t, kind_, offsets_, conditions_},
                       Guidance{opts_.velocity_guidance, opts_.insertion_guidance}, m_, v_out, logr_out, result_, active_);
  }

  Model* model_;
  Kappa kappa_;
  Stepper stepper_;
  SamplerOptions opts_;
  std::vector<Prompt<T>> prompts_;
  Algebra alg_;

  // Packed state of the active videos.
  Buffer x_;
  std::vector<FrameKind> kind_;
  std::vector<std::size_t> ins_;
  std::vector<std::uint64_t> id_;
  std::vector<std::size_t> quota_;
  std::vector<std::size_t> offsets_;
  std::vector<std::size_t> active_;
  std::vector<std::int64_t> conditions_;
  std::size_t m_ = 0;
  std::size_t finished_ = 0;
  SampleResult<T> result_;

  // Workspaces reused across steps.
  GuidedModelCall<Model, Algebra> call_;
  Buffer k1_, scratch_;
  StepperWorkspace<Algebra> ws_;
  std::vector<double> t0_, t1_, log_rate_, stage_log_rate_;
  std::vector<std::int64_t> rows_;
  std::vector<std::size_t> new_rows_;
  std::vector<std::uint64_t> new_ids_;
  std::vector<Entry> plan_;
  std::vector<VideoStepReport> reports_;
};

/// Without an algebra argument the sampler uses `HostAlgebra<T>`, T taken from the prompts.
template <class M, class K, class S, class T>
CoupledSampler(M&, K, S, SamplerOptions, std::vector<Prompt<T>>) -> CoupledSampler<M, K, S, HostAlgebra<T>>;

/// One call: samples every prompt to completion and returns the result.
template <class Model, KappaScheduler Kappa, class Stepper, FrameAlgebra Algebra, SamplerObserver Observer = NullObserver>
  requires VelocityModel<Model, typename Algebra::buffer> && PerFrameStepper<Stepper, Algebra>
SampleResult<typename Algebra::value_type> sample(Model& model, Kappa kappa, Stepper stepper, SamplerOptions opts,
                                                  std::vector<Prompt<typename Algebra::value_type>> prompts,
                                                  Algebra alg, Observer observer = {}) {
  CoupledSampler<Model, Kappa, Stepper, Algebra> s(model, std::move(kappa), std::move(stepper), std::move(opts),
                                                   std::move(prompts), std::move(alg));
  while (!s.done()) s.step(observer);
  return s.take_result();
}

/// One call on the host algebra (frames as std::vector<T>).
template <class Model, KappaScheduler Kappa, class Stepper, class T, SamplerObserver Observer = NullObserver>
  requires VelocityModel<Model, HostFrames<T>> && PerFrameStepper<Stepper, HostAlgebra<T>>
SampleResult<T> sample(Model& model, Kappa kappa, Stepper stepper, SamplerOptions opts, std::vector<Prompt<T>> prompts,
                       Observer observer = {}) {
  return sample(model, std::move(kappa), std::move(stepper), std::move(opts), std::move(prompts), HostAlgebra<T>{},
                std::move(observer));
}
}  // namespace flowception
