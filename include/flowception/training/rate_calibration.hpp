// Rate calibration: does a model's λ match the expected number of missing frames? On held-out
// training samples of the insertion phase (τ_g < 1, unconditional task), binned by τ_g, it
// compares the model's expected remaining frames Σλ, a reference model's (typically the
// content-free LengthOracle for the data's length law) and the true remaining count Σk, and the
// Poisson negative log-likelihoods of both (§3 step 7). A model that reads content can beat the
// content-free oracle's likelihood; one that matches it has learned the length law alone.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "flowception/algebra/host_algebra.hpp"
#include "flowception/core/errors.hpp"
#include "flowception/model/velocity_model.hpp"
#include "flowception/training/extended_time_sampler.hpp"

namespace flowception {

/// One bin of rate_calibration: the held-out samples whose τ_g fell in [tau_begin, tau_end).
struct RateCalibrationBin {
  /// Lower end of the bin's τ_g range.
  double tau_begin = 0, tau_end = 0;  ///< upper end of the bin's τ_g range (excluded)
  std::size_t samples = 0;       ///< held-out samples in the bin
  double model_missing = 0;      ///< mean over samples of Σλ over rate-active frames
  double reference_missing = 0;  ///< the same for the reference model
  double true_missing = 0;       ///< mean of Σk: the frames actually still missing
  double model_nll = 0;          ///< mean per rate-active frame of λ − k·log λ
  double reference_nll = 0;      ///< the same for the reference model
};

/// Rate calibration of `model` against `reference`, in `bins` equal bins of τ_g over [0, 1), on
/// unconditional samples drawn by `sampler`.
/// `videos` are data videos (L × dim values each, in the model's units); sample numbers start
/// at `first_sample` (pick numbers the training run never drew). Samples with τ_g >= 1 are skipped.
template <class Model, class Reference, KappaScheduler Kappa, TauDistribution Tau>
  requires VelocityModel<Model, HostFrames<float>> && VelocityModel<Reference, HostFrames<float>>
std::vector<RateCalibrationBin> rate_calibration(Model& model, Reference& reference,
                                                 const ExtendedTimeSampler<Kappa, Tau>& sampler,
                                                 std::span<const std::vector<float>> videos, std::size_t dim,
                                                 std::size_t bins = 10, std::uint64_t first_sample = 1'000'000'000ULL) {
  detail::require(bins >= 1, "rate calibration needs at least one bin");
  std::vector<RateCalibrationBin> out(bins);
  for (std::size_t b = 0; b < bins; ++b) {
    out[b].tau_begin = static_cast<double>(b) / static_cast<double>(bins);
    out[b].tau_end = static_cast<double>(b + 1) / static_cast<double>(bins);
  }
  const Task task = Task::unconditional;
  std::vector<std::size_t> rate_frames(bins, 0);
  ModelOutput<HostFrames<float>> mo, ro;
  for (std::size_t i = 0; i < videos.size(); ++i) {
    const auto s = sampler.template sample<float>(videos[i], dim, first_sample + i, kNoCondition, &task);
    if (s.tau_global >= 1.0) continue;
    const std::size_t n = s.visible();
    HostFrames<float> frames{s.inputs, dim};
    const std::vector<std::size_t> offsets{0, n};
    const std::vector<std::int64_t> conditions{kNoCondition};
    const std::vector<std::uint8_t> drop{0};
    const ModelInput<HostFrames<float>> in{frames, s.times, s.kinds, offsets, conditions, drop};
    for (auto* o : {&mo, &ro}) {
      o->velocity = HostFrames<float>{std::vector<float>(n * dim), dim};
      o->log_rate.assign(n, 0.0);
    }
    model.evaluate(in, mo);
    reference.evaluate(in, ro);
    auto& bin = out[std::min(bins - 1, static_cast<std::size_t>(s.tau_global * static_cast<double>(bins)))];
    const std::size_t b = static_cast<std::size_t>(&bin - out.data());
    ++bin.samples;
    for (std::size_t r = 0; r < n; ++r) {
      if (!s.rate_mask[r]) continue;
      detail::require<ModelOutputError>(std::isfinite(mo.log_rate[r]) && std::isfinite(ro.log_rate[r]),
                                        "rate calibration: non-finite log-rate at frame ", r, " of sample ", i);
      const double k = s.counts[r];
      bin.model_missing += std::exp(mo.log_rate[r]);
      bin.reference_missing += std::exp(ro.log_rate[r]);
      bin.true_missing += k;
      bin.model_nll += std::exp(mo.log_rate[r]) - k * mo.log_rate[r];
      bin.reference_nll += std::exp(ro.log_rate[r]) - k * ro.log_rate[r];
      ++rate_frames[b];
    }
  }
  for (std::size_t b = 0; b < bins; ++b) {
    auto& bin = out[b];
    if (bin.samples == 0) continue;
    const double ns = static_cast<double>(bin.samples);
    bin.model_missing /= ns;
    bin.reference_missing /= ns;
    bin.true_missing /= ns;
    if (rate_frames[b] > 0) {
      bin.model_nll /= static_cast<double>(rate_frames[b]);
      bin.reference_nll /= static_cast<double>(rate_frames[b]);
    }
  }
  return out;
}

}  // namespace flowception
