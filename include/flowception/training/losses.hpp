// The two losses of §3 step 7 with their gradients with respect to the model outputs, so any
// model with a backward pass can be trained:
//   velocity  = mean over flowing frames of ‖V_i − (x1_i − ε_i)‖² / D
//   rate      = mean over rate frames of exp(ℓ_i) − k_i·ℓ_i   (Poisson NLL in log space)
//   total     = velocity + w·rate
// The rate term is minimised at exp(ℓ) = E[k | X, t]; it never takes a log of λ, so any finite
// ℓ is safe. A batch without flowing (or rate) frames contributes 0 and a zero gradient.
#pragma once

#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "flowception/core/errors.hpp"
#include "flowception/training/batch.hpp"

namespace flowception {

/// The denominators of the two means. A batch split across model replicas or processes (data
/// parallelism) passes the counts of the whole batch, so that the partial losses and gradients of
/// the parts add up to those of the whole. Zero: this batch's own count.
struct LossNormalisation {
  std::size_t flowing_frames = 0;  ///< flowing frames of the whole batch: the velocity mean's denominator
  std::size_t rate_frames = 0;     ///< rate frames of the whole batch: the rate mean's denominator
};

/// The losses of one packed batch (or of one part of a larger batch) and their gradients with
/// respect to the model outputs.
template <class T>
struct LossResult {
  double total = 0.0;              ///< velocity + w·rate
  double velocity = 0.0;           ///< velocity loss: mean over flowing frames of ‖V_i − (x1_i − ε_i)‖² / D
  double rate = 0.0;               ///< rate loss, not weighted: mean of exp(ℓ_i) − k_i·ℓ_i over rate frames
  std::size_t flowing_frames = 0;  ///< frames of this batch with the velocity loss (flow_mask set)
  std::size_t rate_frames = 0;     ///< frames of this batch with the rate loss (rate_mask set)
  std::vector<T> grad_velocity;        ///< ∂total/∂V, rows × dim
  std::vector<double> grad_log_rate;   ///< ∂total/∂ℓ, rows
};

/// Velocity MSE over the frames where `mask` is set; accumulates its gradient into `grad` (scaled by `scale`).
template <class T>
double velocity_loss(std::span<const T> velocity, std::span<const T> target, std::span<const std::uint8_t> mask,
                     std::size_t dim, std::span<T> grad, double scale = 1.0, std::size_t denominator = 0) {
  std::size_t active = 0;
  for (auto m : mask) active += m ? 1u : 0u;
  if (active == 0) return 0.0;
  if (denominator != 0) active = denominator;
  const double norm = 1.0 / (static_cast<double>(active) * static_cast<double>(dim));
  double sum = 0.0;
  for (std::size_t r = 0; r < mask.size(); ++r) {
    if (!mask[r]) continue;
    for (std::size_t e = 0; e < dim; ++e) {
      const double diff = static_cast<double>(velocity[r * dim + e]) - static_cast<double>(target[r * dim + e]);
      sum += diff * diff;
      if (!grad.empty()) grad[r * dim + e] += static_cast<T>(scale * 2.0 * diff * norm);
    }
  }
  return sum * norm;
}

/// Poisson NLL in log space over the frames where `mask` is set; accumulates its gradient.
inline double rate_loss(std::span<const double> log_rate, std::span<const double> counts,
                        std::span<const std::uint8_t> mask, std::span<double> grad, double scale = 1.0,
                        std::size_t denominator = 0) {
  std::size_t active = 0;
  for (auto m : mask) active += m ? 1u : 0u;
  if (active == 0) return 0.0;
  if (denominator != 0) active = denominator;
  const double norm = 1.0 / static_cast<double>(active);
  double sum = 0.0;
  for (std::size_t r = 0; r < mask.size(); ++r) {
    if (!mask[r]) continue;
    const double lam = std::exp(log_rate[r]);
    sum += lam - counts[r] * log_rate[r];
    if (!grad.empty()) grad[r] += scale * (lam - counts[r]) * norm;
  }
  return sum * norm;
}

/// Counts the batch's flowing and rate frames into `res`, and checks that the whole batch's
/// denominators `norm` (0: this batch's own) are at least those counts (ConfigError otherwise).
template <class T>
void count_loss_frames(const TrainingBatch<T>& batch, const LossNormalisation& norm, LossResult<T>& res) {
  res.flowing_frames = res.rate_frames = 0;
  for (auto m : batch.flow_mask) res.flowing_frames += m ? 1u : 0u;
  for (auto m : batch.rate_mask) res.rate_frames += m ? 1u : 0u;
  detail::require(norm.flowing_frames == 0 || norm.flowing_frames >= res.flowing_frames,
                  "loss normalisation: ", norm.flowing_frames, " flowing frames in the whole batch, fewer than the ",
                  res.flowing_frames, " of this part");
  detail::require(norm.rate_frames == 0 || norm.rate_frames >= res.rate_frames, "loss normalisation: ",
                  norm.rate_frames, " rate frames in the whole batch, fewer than the ", res.rate_frames, " of this part");
}

/// Both losses on a packed batch, with gradients. `velocity` is rows × dim, `log_rate` rows.
/// `norm` gives the denominators of the means when the batch is part of a larger one.
template <class T>
LossResult<T> flowception_loss(const TrainingBatch<T>& batch, std::span<const T> velocity,
                               std::span<const double> log_rate, double rate_weight = 1.0, LossNormalisation norm = {}) {
  detail::require(std::isfinite(rate_weight) && rate_weight >= 0.0, "rate loss weight must be finite and >= 0, got ",
                  rate_weight);
  detail::require<ShapeError>(velocity.size() == batch.inputs.size(), "velocity has ", velocity.size(),
                              " values, the batch needs ", batch.rows(), " frames × ", batch.dim, " = ",
                              batch.inputs.size());
  detail::require<ShapeError>(log_rate.size() == batch.rows(), "log-rate has ", log_rate.size(),
                              " values, the batch has ", batch.rows(), " frames");
  for (std::size_t i = 0; i < velocity.size(); ++i)
    detail::require<ModelOutputError>(std::isfinite(static_cast<double>(velocity[i])),
                                      "non-finite velocity at frame ", i / batch.dim, ", element ", i % batch.dim);
  for (std::size_t r = 0; r < log_rate.size(); ++r)
    detail::require<ModelOutputError>(std::isfinite(log_rate[r]), "non-finite log-rate ", log_rate[r], " at frame ", r);

  LossResult<T> res;
  res.grad_velocity.assign(velocity.size(), T(0));
  res.grad_log_rate.assign(log_rate.size(), 0.0);
  count_loss_frames(batch, norm, res);
  res.velocity = velocity_loss<T>(velocity, batch.targets, batch.flow_mask, batch.dim, res.grad_velocity, 1.0,
                                  norm.flowing_frames);
  res.rate = rate_loss(log_rate, batch.counts, batch.rate_mask, res.grad_log_rate, rate_weight, norm.rate_frames);
  res.total = res.velocity + rate_weight * res.rate;
  return res;
}

}  // namespace flowception
