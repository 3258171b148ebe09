// One model evaluation on a packed batch as every sampler needs it (the coupled sampler of §4
// and the baselines of §7): optional classifier-free guidance through one doubled packed call
// (conditional videos 0..V−1, unconditional copies V..2V−1), checks of the output's shape and
// finiteness with errors that name the frame, and counts of calls and FLOPs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "flowception/algebra/frame_algebra.hpp"
#include "flowception/core/errors.hpp"
#include "flowception/core/frame_kind.hpp"
#include "flowception/model/flop_count.hpp"
#include "flowception/model/velocity_model.hpp"

namespace flowception {

/// Guidance weights: velocity v = w·v_c + (1 − w)·v_u, log-rate ℓ = g·ℓ_c + (1 − g)·ℓ_u (1 = off).
struct Guidance {
  double velocity = 1.0;   ///< w, the velocity guidance weight
  double insertion = 1.0;  ///< g, the log-rate (insertion) guidance weight
  /// True when either weight differs from 1, i.e. the call is doubled with unconditional copies.
  bool active() const { return velocity != 1.0 || insertion != 1.0; }
};

/// The packed batch a sampler hands to the model: n frames of V videos.
struct PackedView {
  std::span<const double> times;              ///< model time of each of the n rows
  std::span<const FrameKind> kinds;           ///< kind of each of the n rows
  std::span<const std::size_t> offsets;       ///< V + 1 entries
  std::span<const std::int64_t> conditions;   ///< V entries
};

/// One model evaluation on a packed batch as every sampler makes it (§4, §7): with guidance on, one
/// doubled call (conditional videos 0..V−1, then the same videos with `drop_condition` = 1) mixed
/// by the `Guidance` weights; checks of the output's shape and finiteness; counts of calls and
/// FLOPs. Keeps its scratch buffers across calls.
template <class Model, FrameAlgebra Algebra>
  requires VelocityModel<Model, typename Algebra::buffer>
class GuidedModelCall {
 public:
  using Buffer = typename Algebra::buffer;  ///< the algebra's frame storage

  /// The call as every sampler makes it: operator(), then the bookkeeping of `result` (a
  /// SampleResult): the calls and FLOPs so far, and one function evaluation for each video of `active`.
  template <class Result>
  void evaluate_for(Model& model, Algebra& alg, const Buffer& x, const PackedView& in, Guidance guidance,
                    std::size_t step, Buffer& v_out, std::vector<double>& logr_out, Result& result,
                    std::span<const std::size_t> active) {
    (*this)(model, alg, x, in, guidance, step, v_out, logr_out);
    result.model_calls = calls();
    result.flops = flops();
    for (std::size_t a : active) ++result.videos[a].nfe;
  }

  /// Evaluates the model on frames `x` (n rows), writing the guided velocity to `v_out` and the
  /// guided log-rates to `logr_out` (n entries). `step` only labels error messages. Throws
  /// `ModelOutputError` if the model changed the output's shape or returned a NaN or Inf.
  void operator()(Model& model, Algebra& alg, const Buffer& x, const PackedView& in, Guidance guidance,
                  std::size_t step, Buffer& v_out, std::vector<double>& logr_out) {
    const std::size_t n = in.times.size();
    const std::size_t V = in.offsets.size() - 1;
    const std::size_t D = alg.dim(x);
    const bool guided = guidance.active();
    const std::size_t rows = guided ? 2 * n : n;
    const Buffer* frames = &x;
    std::span<const double> times = in.times;
    std::span<const FrameKind> kinds = in.kinds;
    std::span<const std::size_t> offsets = in.offsets;
    std::span<const std::int64_t> conditions = in.conditions;
    drop_.assign(V, 0);
    if (guided) {
      rows_.resize(rows);
      for (std::size_t r = 0; r < rows; ++r) rows_[r] = static_cast<std::int64_t>(r % n);
      alg.gather_frames(g_x_, x, rows_);
      g_t_.assign(in.times.begin(), in.times.end());
      g_t_.insert(g_t_.end(), in.times.begin(), in.times.end());
      g_kind_.assign(in.kinds.begin(), in.kinds.end());
      g_kind_.insert(g_kind_.end(), in.kinds.begin(), in.kinds.end());
      g_off_.assign(in.offsets.begin(), in.offsets.end());
      for (std::size_t a = 1; a <= V; ++a) g_off_.push_back(n + in.offsets[a]);
      g_cond_.assign(in.conditions.begin(), in.conditions.end());
      g_cond_.insert(g_cond_.end(), in.conditions.begin(), in.conditions.end());
      drop_.assign(2 * V, 0);
      std::fill(drop_.begin() + static_cast<std::ptrdiff_t>(V), drop_.end(), 1);
      frames = &g_x_;
      times = g_t_;
      kinds = g_kind_;
      offsets = g_off_;
      conditions = g_cond_;
    }
    alg.resize(out_.velocity, rows, D);
    out_.log_rate.assign(rows, 0.0);
    ModelInput<Buffer> mi{*frames, times, kinds, offsets, conditions, std::span<const std::uint8_t>(drop_)};
    model.evaluate(mi, out_);
    ++calls_;
    flops_ += last_forward_flops(model);

    detail::require<ModelOutputError>(alg.frames(out_.velocity) == rows && alg.dim(out_.velocity) == D,
                                      "model returned a velocity of ", alg.frames(out_.velocity), " frames × ",
                                      alg.dim(out_.velocity), ", expected ", rows, " × ", D);
    detail::require<ModelOutputError>(out_.log_rate.size() == rows, "model returned ", out_.log_rate.size(),
                                      " log-rates, expected ", rows);
    if (auto bad = alg.first_nonfinite_frame(out_.velocity))
      detail::fail<ModelOutputError>("model returned a non-finite (NaN/Inf) velocity for packed frame ",
                                         *bad, " at global step ", step, " (model time ", times[*bad], ")");
    for (std::size_t r = 0; r < rows; ++r)
      if (!std::isfinite(out_.log_rate[r]))
        detail::fail<ModelOutputError>("model returned a non-finite (NaN/Inf) log-rate ",
                                           out_.log_rate[r], " for packed frame ", r, " at global step ", step);

    logr_out.resize(n);
    if (!guided) {
      std::swap(v_out, out_.velocity);
      std::copy(out_.log_rate.begin(), out_.log_rate.end(), logr_out.begin());
      return;
    }
    const double w = guidance.velocity, g = guidance.insertion;
    rows_.resize(n);
    for (std::size_t r = 0; r < n; ++r) rows_[r] = static_cast<std::int64_t>(r);
    alg.gather_frames(v_out, out_.velocity, rows_);
    for (std::size_t r = 0; r < n; ++r) rows_[r] = static_cast<std::int64_t>(n + r);
    alg.gather_frames(g_x_, out_.velocity, rows_);
    coeff_.assign(n, w);
    alg.scale_frames(v_out, coeff_);
    coeff_.assign(n, 1.0 - w);
    alg.axpy_frames(v_out, coeff_, g_x_);
    for (std::size_t r = 0; r < n; ++r) logr_out[r] = g * out_.log_rate[r] + (1.0 - g) * out_.log_rate[n + r];
  }

  /// Model calls made so far (a guided call counts once).
  std::size_t calls() const { return calls_; }
  /// FLOPs of every call so far (zero for models that do not report them).
  const FlopCount& flops() const { return flops_; }

 private:
  std::size_t calls_ = 0;
  FlopCount flops_;
  ModelOutput<Buffer> out_;
  Buffer g_x_;
  std::vector<double> g_t_, coeff_;
  std::vector<FrameKind> g_kind_;
  std::vector<std::size_t> g_off_;
  std::vector<std::int64_t> g_cond_, rows_;
  std::vector<std::uint8_t> drop_;
};

}  // namespace flowception
