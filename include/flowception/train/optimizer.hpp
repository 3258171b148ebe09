// Optimisation pieces for training a model held in flat float buffers:
//   - AdamW with bias correction and decoupled weight decay (Loshchilov & Hutter), as a stateless
//     per-buffer update (adamw_update) and as an object owning the moments of registered tensors;
//   - global gradient-norm clipping over a list of gradient buffers;
//   - a learning-rate schedule: linear warm-up, then constant or cosine decay;
//   - an exponential moving average (EMA) of the weights.
// Everything is single-threaded and deterministic: the same inputs give the same bits. The complete
// state of AdamW (moments and step count) and of the EMA (shadow weights and update count) goes
// to and comes back from safetensors tensors bit for bit, so resuming from a checkpoint continues
// exactly like an uninterrupted run.
//
// The AdamW update for step t = 1, 2, ... with learning rate η, gradient g and parameter p:
//   p ← p − η·λ·p                  (decoupled weight decay; only for tensors registered with decay)
//   m ← β1·m + (1 − β1)·g
//   v ← β2·v + (1 − β2)·g²
//   p ← p − η · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + ε)
// Moments and parameters are stored as float; the arithmetic of one element is done in double.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <numbers>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "flowception/core/errors.hpp"
#include "flowception/io/safetensors.hpp"

namespace flowception::train {

// ---------------------------------------------------------------------------------------------
// AdamW

/// Hyper-parameters of AdamW. `lr` is the default learning rate of AdamW::step when none is given.
struct AdamWConfig {
  double lr = 1e-3;            ///< learning rate η when AdamW::step is given none
  double beta1 = 0.9;          ///< β1: decay of the first moment m
  double beta2 = 0.999;        ///< β2: decay of the second moment v
  double eps = 1e-8;           ///< ε added to the root of the corrected second moment
  double weight_decay = 0.0;   ///< λ of the decoupled decay p ← p − η·λ·p (tensors registered with decay)

  /// ConfigError naming the field and the value unless lr >= 0, beta1, beta2 in [0, 1), eps > 0,
  /// weight_decay >= 0, all finite.
  void validate() const {
    detail::require(std::isfinite(lr) && lr >= 0.0, "AdamW: lr must be finite and >= 0, got ", lr);
    detail::require(std::isfinite(beta1) && beta1 >= 0.0 && beta1 < 1.0, "AdamW: beta1 must be in [0, 1), got ",
                    beta1);
    detail::require(std::isfinite(beta2) && beta2 >= 0.0 && beta2 < 1.0, "AdamW: beta2 must be in [0, 1), got ",
                    beta2);
    detail::require(std::isfinite(eps) && eps > 0.0, "AdamW: eps must be finite and > 0, got ", eps);
    detail::require(std::isfinite(weight_decay) && weight_decay >= 0.0,
                    "AdamW: weight_decay must be finite and >= 0, got ", weight_decay);
  }
};

/// One AdamW update of one buffer at step `step` (1 for the first update) with learning rate `lr`.
/// `m` and `v` are the first and second moments (zero before the first step), updated in place.
/// `apply_weight_decay` false skips the decay term (biases, norms, embeddings). Does not look for
/// NaN/Inf in the gradients: clip_grad_norm does.
inline void adamw_update(std::span<float> params, std::span<const float> grads, std::span<float> m,
                         std::span<float> v, std::int64_t step, double lr, const AdamWConfig& cfg,
                         bool apply_weight_decay = true) {
  cfg.validate();
  detail::require(step >= 1, "AdamW: step must be >= 1 (the first update is step 1), got ", step);
  detail::require(std::isfinite(lr) && lr >= 0.0, "AdamW: lr must be finite and >= 0, got ", lr);
  detail::require<ShapeError>(grads.size() == params.size() && m.size() == params.size() && v.size() == params.size(),
                              "AdamW: buffer sizes differ: params ", params.size(), ", grads ", grads.size(), ", m ",
                              m.size(), ", v ", v.size());
  const double b1 = cfg.beta1, b2 = cfg.beta2;
  const double bc1 = 1.0 - std::pow(b1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(b2, static_cast<double>(step));
  const double decay = apply_weight_decay ? 1.0 - lr * cfg.weight_decay : 1.0;
  const double eps = cfg.eps;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const double g = grads[i];
    const double mi = b1 * static_cast<double>(m[i]) + (1.0 - b1) * g;
    const double vi = b2 * static_cast<double>(v[i]) + (1.0 - b2) * g * g;
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
    // The stored (rounded) moments drive the update, so a run restored from them is identical.
    const double mhat = static_cast<double>(m[i]) / bc1;
    const double vhat = static_cast<double>(v[i]) / bc2;
    params[i] = static_cast<float>(static_cast<double>(params[i]) * decay - lr * mhat / (std::sqrt(vhat) + eps));
  }
}

/// AdamW owning the moments of every registered tensor. Register the tensors once, in a fixed
/// order, then call step() with the parameter and gradient buffers in that order.
class AdamW {
 public:
  /// ConfigError when `cfg` is invalid (AdamWConfig::validate).
  explicit AdamW(AdamWConfig cfg = {}) : cfg_(cfg) { cfg_.validate(); }

  /// Registers a parameter tensor of `size` floats under `name` (unique, non-empty); returns its index.
  /// `weight_decay` false exempts it from the decay term.
  std::size_t add_param(std::string name, std::size_t size, bool weight_decay = true) {
    detail::require(!name.empty(), "AdamW: parameter ", params_.size(), " has an empty name");
    for (const auto& p : params_)
      detail::require(p.name != name, "AdamW: parameter name '", name, "' registered twice");
    params_.push_back(Slot{std::move(name), size, weight_decay, std::vector<float>(size, 0.0f),
                           std::vector<float>(size, 0.0f)});
    return params_.size() - 1;
  }

  /// The hyper-parameters in use.
  const AdamWConfig& config() const { return cfg_; }
  /// Replaces the hyper-parameters (validated); the moments and the step count are kept.
  void set_config(const AdamWConfig& cfg) {
    cfg.validate();
    cfg_ = cfg;
  }

  /// Number of registered tensors.
  std::size_t num_params() const { return params_.size(); }
  /// Name of tensor i (ShapeError when i is not a registered index, as for the accessors below).
  const std::string& name(std::size_t i) const { return slot(i).name; }
  /// Number of floats of tensor i.
  std::size_t size(std::size_t i) const { return slot(i).size; }
  /// Whether tensor i takes the weight-decay term.
  bool decays(std::size_t i) const { return slot(i).decay; }
  /// First moment m of tensor i (zeros before the first step).
  std::span<const float> m(std::size_t i) const { return slot(i).m; }
  /// Second moment v of tensor i (zeros before the first step).
  std::span<const float> v(std::size_t i) const { return slot(i).v; }
  /// Number of updates done so far (0 before the first step).
  std::int64_t step_count() const { return step_; }

  /// Replaces the moments of tensor i (ShapeError unless both have its size); with
  /// set_step_count, how a device optimizer (whose moments live in device memory,
  /// train/device_optimizer.hpp) hands its state over for a checkpoint.
  void set_state(std::size_t i, std::span<const float> m, std::span<const float> v) {
    detail::require<ShapeError>(m.size() == slot(i).size && v.size() == slot(i).size, "AdamW: state of '", slot(i).name,
                                "' needs ", slot(i).size, " values, got ", m.size(), " and ", v.size());
    params_[i].m.assign(m.begin(), m.end());
    params_[i].v.assign(v.begin(), v.end());
  }
  /// Sets the number of updates done (ConfigError when negative): the next step is update step + 1.
  void set_step_count(std::int64_t step) {
    detail::require(step >= 0, "AdamW: step count must be >= 0, got ", step);
    step_ = step;
  }

  /// One update of every registered tensor with learning rate `lr` (ShapeError naming the tensor
  /// when a buffer has the wrong size; nothing is changed then).
  void step(std::span<const std::span<float>> params, std::span<const std::span<const float>> grads, double lr) {
    detail::require<ShapeError>(params.size() == params_.size() && grads.size() == params_.size(), "AdamW: ",
                                params_.size(), " parameters registered, step got ", params.size(),
                                " parameter buffers and ", grads.size(), " gradient buffers");
    for (std::size_t i = 0; i < params_.size(); ++i) {
      detail::require<ShapeError>(params[i].size() == params_[i].size, "AdamW: parameter '", params_[i].name,
                                  "' has ", params[i].size(), " values, registered with ", params_[i].size);
      detail::require<ShapeError>(grads[i].size() == params_[i].size, "AdamW: gradient of '", params_[i].name,
                                  "' has ", grads[i].size(), " values, the parameter has ", params_[i].size);
    }
    detail::require(std::isfinite(lr) && lr >= 0.0, "AdamW: lr must be finite and >= 0, got ", lr);
    const std::int64_t t = step_ + 1;
    for (std::size_t i = 0; i < params_.size(); ++i)
      adamw_update(params[i], grads[i], params_[i].m, params_[i].v, t, lr, cfg_, params_[i].decay);
    step_ = t;
  }
  /// The same, with the gradients given as mutable spans.
  void step(std::span<const std::span<float>> params, std::span<const std::span<float>> grads, double lr) {
    std::vector<std::span<const float>> g(grads.begin(), grads.end());
    step(params, std::span<const std::span<const float>>(g), lr);
  }
  /// One update with the configured learning rate.
  void step(std::span<const std::span<float>> params, std::span<const std::span<const float>> grads) {
    step(params, grads, cfg_.lr);
  }

  /// The complete state as tensors. For every registered tensor `<prefix>m.<name>` and
  /// `<prefix>v.<name>` (F32, shape [size]), and `<prefix>step` (I64 scalar).
  std::vector<io::Tensor> state_tensors(const std::string& prefix = "optimizer.") const {
    std::vector<io::Tensor> out;
    out.reserve(2 * params_.size() + 1);
    for (const auto& p : params_) {
      const std::vector<std::int64_t> shape{static_cast<std::int64_t>(p.size)};
      out.push_back(io::make_tensor<float>(prefix + "m." + p.name, shape, std::span<const float>(p.m)));
      out.push_back(io::make_tensor<float>(prefix + "v." + p.name, shape, std::span<const float>(p.v)));
    }
    const std::int64_t s = step_;
    out.push_back(io::make_tensor<std::int64_t>(prefix + "step", {}, std::span<const std::int64_t>(&s, 1)));
    return out;
  }

  /// The hyper-parameters as metadata entries `<prefix>lr`, `<prefix>beta1`, ... (exact decimal
  /// round-trip), plus `<prefix>step`, for a human reading the file; see config_from_metadata.
  std::map<std::string, std::string> metadata(const std::string& prefix = "optimizer.") const {
    return {{prefix + "lr", io::format_metadata_double(cfg_.lr)},
            {prefix + "beta1", io::format_metadata_double(cfg_.beta1)},
            {prefix + "beta2", io::format_metadata_double(cfg_.beta2)},
            {prefix + "eps", io::format_metadata_double(cfg_.eps)},
            {prefix + "weight_decay", io::format_metadata_double(cfg_.weight_decay)},
            {prefix + "step", std::to_string(step_)}};
  }

  /// Restores the state written by state_tensors (same prefix, same registered tensors). All checks
  /// come first, so on error (IoError: a tensor is missing or the step is negative; ShapeError: a
  /// moment has the wrong dtype or size, or the file holds state of a tensor not registered here)
  /// nothing is changed.
  void load_state(const io::SafetensorsFile& file, const std::string& prefix = "optimizer.") {
    std::vector<std::vector<float>> ms, vs;
    for (const auto& p : params_) {
      const std::vector<std::int64_t> shape{static_cast<std::int64_t>(p.size)};
      ms.push_back(io::read_f32(file, prefix + "m." + p.name, shape));
      vs.push_back(io::read_f32(file, prefix + "v." + p.name, shape));
    }
    const std::int64_t s = io::read_i64(file, prefix + "step", {})[0];
    if (s < 0)
      detail::fail<IoError>(file.source(), ": tensor '", prefix, "step' holds the negative step ",
                                s);
    std::set<std::string> known;
    for (const auto& p : params_) {
      known.insert(prefix + "m." + p.name);
      known.insert(prefix + "v." + p.name);
    }
    for (const auto& n : file.names())
      if ((n.starts_with(prefix + "m.") || n.starts_with(prefix + "v.")) && !known.count(n))
        detail::fail<ShapeError>(file.source(), ": tensor '", n,
                                     "' is optimizer state of a parameter that is not registered");
    for (std::size_t i = 0; i < params_.size(); ++i) {
      params_[i].m = std::move(ms[i]);
      params_[i].v = std::move(vs[i]);
    }
    step_ = s;
  }

 private:
  struct Slot {
    std::string name;
    std::size_t size;
    bool decay;
    std::vector<float> m, v;
  };
  const Slot& slot(std::size_t i) const {
    detail::require<ShapeError>(i < params_.size(), "AdamW: parameter index ", i, " out of range (",
                                params_.size(), " registered)");
    return params_[i];
  }

  AdamWConfig cfg_;
  std::vector<Slot> params_;
  std::int64_t step_ = 0;
};

/// The hyper-parameters written by AdamW::metadata (IoError when an entry is missing or malformed,
/// ConfigError when the values are invalid).
inline AdamWConfig config_from_metadata(const io::SafetensorsFile& file, const std::string& prefix = "optimizer.") {
  AdamWConfig c;
  c.lr = file.metadata_f64(prefix + "lr");
  c.beta1 = file.metadata_f64(prefix + "beta1");
  c.beta2 = file.metadata_f64(prefix + "beta2");
  c.eps = file.metadata_f64(prefix + "eps");
  c.weight_decay = file.metadata_f64(prefix + "weight_decay");
  c.validate();
  return c;
}

// ---------------------------------------------------------------------------------------------
// Gradient clipping

/// Global L2 norm of all gradients together (accumulated in double, in order). ModelOutputError
/// naming the tensor (by `names[i]` when given, else by index) and the element for a NaN or Inf.
inline double global_grad_norm(std::span<const std::span<const float>> grads,
                               std::span<const std::string> names = {}) {
  detail::require<ShapeError>(names.empty() || names.size() == grads.size(), "clip_grad_norm: ", names.size(),
                              " names for ", grads.size(), " gradient buffers");
  double sum = 0.0;
  for (std::size_t t = 0; t < grads.size(); ++t) {
    for (std::size_t i = 0; i < grads[t].size(); ++i) {
      const double g = grads[t][i];
      if (!std::isfinite(g)) {
        detail::fail<ModelOutputError>("gradient ",
                                           names.empty() ? detail::cat("buffer ", t) : detail::cat("'", names[t], "'"),
                                           " has the non-finite value ", g, " at element ", i);
      }
      sum += g * g;
    }
  }
  return std::sqrt(sum);
}

/// Scales all gradients together so that their global L2 norm is at most `max_norm` (by the factor
/// max_norm / norm; gradients already within the bound are left untouched). Returns the norm before
/// clipping. ConfigError unless max_norm is finite and > 0; ModelOutputError naming the tensor for a
/// NaN or Inf gradient (nothing is scaled then).
inline double clip_grad_norm(std::span<const std::span<float>> grads, double max_norm,
                             std::span<const std::string> names = {}) {
  detail::require(std::isfinite(max_norm) && max_norm > 0.0, "clip_grad_norm: max_norm must be finite and > 0, got ",
                  max_norm);
  std::vector<std::span<const float>> view(grads.begin(), grads.end());
  const double norm = global_grad_norm(view, names);
  if (norm > max_norm) {
    const double scale = max_norm / norm;
    for (auto g : grads)
      for (auto& x : g) x = static_cast<float>(static_cast<double>(x) * scale);
  }
  return norm;
}

// ---------------------------------------------------------------------------------------------
// Learning-rate schedule

/// Linear warm-up over the first `warmup_steps` updates, then constant or cosine decay.
/// lr(k) for the k-th update (k = 1, 2, ..., the AdamW step count after the update):
///   k <= warmup:  base · k / warmup           (so lr(warmup) = base and lr(1) = base / warmup)
///   constant:     base
///   cosine:       min + (base − min) · (1 + cos(π · p)) / 2,  p = min(1, (k − warmup) / (total − warmup))
///                 (so lr(total) = min, and min for every k after total)
struct LrSchedule {
  /// constant: base_lr after the warm-up. cosine: from base_lr at the end of the warm-up to min_lr
  /// at total_steps. stable_decay (warm-up, stable, decay): base_lr until decay_start, then a
  /// cosine to min_lr at total_steps. A schedule is a function of the step alone, so a run can be
  /// continued (resumed) into its decay phase: a long constant run ends with a short cooldown.
  enum class Decay { constant, cosine, stable_decay };

  double base_lr = 1e-3;         ///< the rate at the end of the warm-up
  std::int64_t warmup_steps = 0; ///< updates of the linear warm-up (0: none)
  Decay decay = Decay::constant; ///< what follows the warm-up
  std::int64_t total_steps = 0;  ///< cosine, stable_decay: the step at which lr reaches min_lr
  double min_lr = 0.0;           ///< cosine, stable_decay
  std::int64_t decay_start = 0;  ///< stable_decay: the last step at base_lr

  /// Warm-up, then base_lr for ever (ConfigError when invalid, as for the two below).
  static LrSchedule constant(double base_lr, std::int64_t warmup_steps = 0) {
    LrSchedule s{base_lr, warmup_steps, Decay::constant, 0, 0.0};
    s.validate();
    return s;
  }
  /// Warm-up, then a cosine from base_lr to min_lr at total_steps.
  static LrSchedule cosine(double base_lr, std::int64_t warmup_steps, std::int64_t total_steps, double min_lr = 0.0) {
    LrSchedule s{base_lr, warmup_steps, Decay::cosine, total_steps, min_lr};
    s.validate();
    return s;
  }
  /// Warm-up, base_lr until decay_start, then a cosine to min_lr at total_steps.
  static LrSchedule stable_decay(double base_lr, std::int64_t warmup_steps, std::int64_t decay_start,
                                 std::int64_t total_steps, double min_lr = 0.0) {
    LrSchedule s{base_lr, warmup_steps, Decay::stable_decay, total_steps, min_lr, decay_start};
    s.validate();
    return s;
  }

  /// ConfigError naming the field unless base_lr is finite and > 0, warmup_steps >= 0 and, for
  /// cosine, total_steps > warmup_steps and min_lr in [0, base_lr] (stable_decay: the same, and
  /// decay_start in [warmup_steps, total_steps)).
  void validate() const {
    detail::require(std::isfinite(base_lr) && base_lr > 0.0, "LrSchedule: base_lr must be finite and > 0, got ",
                    base_lr);
    detail::require(warmup_steps >= 0, "LrSchedule: warmup_steps must be >= 0, got ", warmup_steps);
    detail::require(decay == Decay::constant || decay == Decay::cosine || decay == Decay::stable_decay,
                    "LrSchedule: unknown decay kind ", static_cast<int>(decay));
    if (decay != Decay::constant) {
      detail::require(total_steps > warmup_steps, "LrSchedule: total_steps (", total_steps,
                      ") must exceed warmup_steps (", warmup_steps, ") for a decay");
      detail::require(std::isfinite(min_lr) && min_lr >= 0.0 && min_lr <= base_lr,
                      "LrSchedule: min_lr must be in [0, base_lr = ", base_lr, "], got ", min_lr);
    }
    if (decay == Decay::stable_decay)
      detail::require(decay_start >= warmup_steps && decay_start < total_steps, "LrSchedule: decay_start (",
                      decay_start, ") must be in [warmup_steps = ", warmup_steps, ", total_steps = ", total_steps, ")");
  }

  /// The learning rate of update number `step` (>= 1; ConfigError otherwise).
  double operator()(std::int64_t step) const {
    validate();
    detail::require(step >= 1, "LrSchedule: step must be >= 1 (the first update is step 1), got ", step);
    if (step <= warmup_steps) return base_lr * static_cast<double>(step) / static_cast<double>(warmup_steps);
    if (decay == Decay::constant) return base_lr;
    if (step >= total_steps) return min_lr;
    const std::int64_t from = decay == Decay::stable_decay ? decay_start : warmup_steps;
    if (step <= from) return base_lr;
    const double p = static_cast<double>(step - from) / static_cast<double>(total_steps - from);
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
  }
};

// ---------------------------------------------------------------------------------------------
// EMA of the weights

/// Exponential moving average of registered weight tensors: after each update,
/// shadow ← decay · shadow + (1 − decay) · weights (in double, stored as float).
class Ema {
 public:
  /// ConfigError unless decay is in [0, 1).
  explicit Ema(double decay) : decay_(decay) {
    detail::require(std::isfinite(decay) && decay >= 0.0 && decay < 1.0, "Ema: decay must be in [0, 1), got ", decay);
  }

  /// Registers a tensor under `name` (unique, non-empty) with its current weights as the initial
  /// shadow; returns its index.
  std::size_t add_param(std::string name, std::span<const float> initial) {
    detail::require(!name.empty(), "Ema: parameter ", shadow_.size(), " has an empty name");
    for (const auto& s : shadow_) detail::require(s.name != name, "Ema: parameter name '", name, "' registered twice");
    shadow_.push_back(Slot{std::move(name), std::vector<float>(initial.begin(), initial.end())});
    return shadow_.size() - 1;
  }

  /// The configured decay: the largest effective_decay() can be.
  double decay() const { return decay_; }
  /// The decay the next update uses: min(decay, (1 + n)/(10 + n)) after n updates, so the
  /// average forgets the initial weights quickly early in training (a plain 0.999 average keeps
  /// 40% of the random initialisation after 900 steps).
  double effective_decay() const {
    const double n = static_cast<double>(updates_);
    return std::min(decay_, (1.0 + n) / (10.0 + n));
  }
  /// Number of registered tensors.
  std::size_t num_params() const { return shadow_.size(); }
  /// Name of tensor i (ShapeError when i is not a registered index).
  const std::string& name(std::size_t i) const { return slot(i).name; }
  /// The averaged weights of tensor i.
  std::span<const float> shadow(std::size_t i) const { return slot(i).values; }
  /// Number of updates done so far.
  std::int64_t update_count() const { return updates_; }

  /// Replaces the average of tensor i (ShapeError unless the size matches); with
  /// set_update_count, state kept in device memory is handed over this way for checkpoints.
  void set_shadow(std::size_t i, std::span<const float> values) {
    detail::require<ShapeError>(values.size() == slot(i).values.size(), "Ema: tensor '", slot(i).name, "' has ",
                                slot(i).values.size(), " values, got ", values.size());
    shadow_[i].values.assign(values.begin(), values.end());
  }
  /// Sets the number of updates done (ConfigError when negative), which effective_decay() reads.
  void set_update_count(std::int64_t n) {
    detail::require(n >= 0, "Ema: update count must be >= 0, got ", n);
    updates_ = n;
  }

  /// Folds the current weights (in registration order) into the average.
  void update(std::span<const std::span<const float>> weights) {
    detail::require<ShapeError>(weights.size() == shadow_.size(), "Ema: ", shadow_.size(),
                                " tensors registered, update got ", weights.size());
    for (std::size_t i = 0; i < shadow_.size(); ++i)
      detail::require<ShapeError>(weights[i].size() == shadow_[i].values.size(), "Ema: tensor '", shadow_[i].name,
                                  "' has ", weights[i].size(), " values, registered with ",
                                  shadow_[i].values.size());
    const double d = effective_decay();
    for (std::size_t i = 0; i < shadow_.size(); ++i) {
      auto& s = shadow_[i].values;
      const auto w = weights[i];
      for (std::size_t e = 0; e < s.size(); ++e)
        s[e] = static_cast<float>(d * static_cast<double>(s[e]) + (1.0 - d) * static_cast<double>(w[e]));
    }
    ++updates_;
  }
  /// The same, with the weights given as mutable spans.
  void update(std::span<const std::span<float>> weights) {
    std::vector<std::span<const float>> w(weights.begin(), weights.end());
    update(std::span<const std::span<const float>>(w));
  }

  /// The complete state: `<prefix><name>` (F32, shape [size]) per tensor and `<prefix>updates` (I64 scalar).
  std::vector<io::Tensor> state_tensors(const std::string& prefix = "ema.") const {
    std::vector<io::Tensor> out;
    out.reserve(shadow_.size() + 1);
    for (const auto& s : shadow_)
      out.push_back(io::make_tensor<float>(prefix + s.name, {static_cast<std::int64_t>(s.values.size())},
                                           std::span<const float>(s.values)));
    const std::int64_t u = updates_;
    out.push_back(io::make_tensor<std::int64_t>(prefix + "updates", {}, std::span<const std::int64_t>(&u, 1)));
    return out;
  }

  /// The decay as metadata `<prefix>decay` (exact decimal round-trip), plus `<prefix>updates`.
  std::map<std::string, std::string> metadata(const std::string& prefix = "ema.") const {
    return {{prefix + "decay", io::format_metadata_double(decay_)}, {prefix + "updates", std::to_string(updates_)}};
  }

  /// Restores the state written by state_tensors (same prefix, same registered tensors); nothing
  /// changes on error (IoError: missing tensor or negative count; ShapeError: wrong dtype or size).
  void load_state(const io::SafetensorsFile& file, const std::string& prefix = "ema.") {
    std::vector<std::vector<float>> vals;
    for (const auto& s : shadow_)
      vals.push_back(io::read_f32(file, prefix + s.name, {static_cast<std::int64_t>(s.values.size())}));
    const std::int64_t u = io::read_i64(file, prefix + "updates", {})[0];
    if (u < 0)
      detail::fail<IoError>(file.source(), ": tensor '", prefix,
                                "updates' holds the negative count ", u);
    for (std::size_t i = 0; i < shadow_.size(); ++i) shadow_[i].values = std::move(vals[i]);
    updates_ = u;
  }

 private:
  struct Slot {
    std::string name;
    std::vector<float> values;
  };
  const Slot& slot(std::size_t i) const {
    detail::require<ShapeError>(i < shadow_.size(), "Ema: tensor index ", i, " out of range (", shadow_.size(),
                                " registered)");
    return shadow_[i];
  }

  double decay_;
  std::vector<Slot> shadow_;
  std::int64_t updates_ = 0;
};

}  // namespace flowception::train
