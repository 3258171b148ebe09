// The optimizer of a DiT whose weights live in device memory (dit/thrust_backend.hpp): gradient
// clipping, AdamW and the EMA as element functors over the flat parameter buffer, so weights,
// gradients, moments and averages never leave the device during training. Each element is updated
// by the same expressions as adamw_update and Ema::update (optimizer.hpp); the global norm is a
// parallel reduction, so a step equals the host optimizer's up to the order of that one sum.
// The host AdamW and Ema objects stay the containers of record for checkpoints: sync_to_host()
// hands the device state over before saving, load_from_host() takes it back after loading.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "flowception/core/errors.hpp"
#include "flowception/dit/model.hpp"
#include "flowception/train/optimizer.hpp"

namespace flowception::train {

namespace device_kernels {

/// One AdamW update of one element of the flat parameter buffer, the arithmetic of adamw_update.
struct AdamWElement {
  float* params;               ///< parameters, updated in place
  const float* grads;          ///< gradients
  float* m;                    ///< first moments, updated in place
  float* v;                    ///< second moments, updated in place
  const std::uint8_t* decays;  ///< per element: 1 where the tensor takes weight decay
  double b1,                   ///< β1
      b2,                      ///< β2
      bc1,                     ///< 1 − β1^t, the bias correction of m at update t
      bc2,                     ///< 1 − β2^t, the bias correction of v at update t
      eps,                     ///< ε
      lr,                      ///< learning rate η of this update
      decay;                   ///< 1 − η·λ: the factor of a parameter that takes weight decay
  /// Updates m[i], v[i] and params[i].
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t i) const {
    const double g = grads[i];
    const double mi = b1 * static_cast<double>(m[i]) + (1.0 - b1) * g;
    const double vi = b2 * static_cast<double>(v[i]) + (1.0 - b2) * g * g;
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
    const double mhat = static_cast<double>(m[i]) / bc1;
    const double vhat = static_cast<double>(v[i]) / bc2;
    const double d = decays[i] ? decay : 1.0;
    params[i] = static_cast<float>(static_cast<double>(params[i]) * d - lr * mhat / (std::sqrt(vhat) + eps));
  }
};

/// Multiplies one element by a factor (computed in double): gradient clipping.
struct ScaleElement {
  float* x;      ///< the buffer, scaled in place
  double scale;  ///< the factor
  /// x[i] ← scale·x[i].
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t i) const {
    x[i] = static_cast<float>(static_cast<double>(x[i]) * scale);
  }
};

/// One EMA update of one element, the arithmetic of Ema::update.
struct EmaElement {
  float* shadow;         ///< the averaged weights, updated in place
  const float* weights;  ///< the current weights
  double d;              ///< the decay of this update (Ema::effective_decay)
  /// shadow[i] ← d·shadow[i] + (1 − d)·weights[i].
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t i) const {
    shadow[i] = static_cast<float>(d * static_cast<double>(shadow[i]) + (1.0 - d) * static_cast<double>(weights[i]));
  }
};

}  // namespace device_kernels

/// Moments and EMA of one DiT<float, Backend>, in the backend's memory.
template <class Backend>
class DeviceOptimizer {
 public:
  using Model = dit::DiT<float, Backend>;  ///< the model whose state this holds
  /// The backend's buffer of U (device memory on a device backend).
  template <class U>
  using buffer = typename Backend::template buffer<U>;

  /// `adam` and `ema` have the model's tensors registered, in the model's order.
  DeviceOptimizer(const Model& model, const AdamW& adam, const Ema& ema) {
    const std::size_t n = model.parameter_buffer_size();
    m_.assign(n, 0.0f);
    v_.assign(n, 0.0f);
    std::vector<std::uint8_t> decays(n, 0);
    const auto& table = model.parameter_table();
    detail::require<ShapeError>(adam.num_params() == table.size() && ema.num_params() == table.size(),
                                "DeviceOptimizer: the optimizer and EMA must register the model's ", table.size(),
                                " tensors");
    for (std::size_t i = 0; i < table.size(); ++i)
      for (std::size_t e = 0; e < table[i].size; ++e) decays[table[i].offset + e] = adam.decays(i) ? 1 : 0;
    decays_.resize(n);
    Backend::upload(decays.data(), n, Backend::raw(decays_));
    load_from_host(model, adam, ema);
  }

  /// Global gradient norm before clipping; scales the gradients to `max_norm` when above it
  /// (max_norm <= 0: no clipping). A NaN or Inf gradient is a ModelOutputError naming the tensor
  /// and element (found on the host, on that error path only); nothing is scaled then.
  double clip(Model& model, double max_norm) {
    float* g = Backend::raw(model.gradients());
    const std::size_t n = model.parameter_buffer_size();
    const double norm = std::sqrt(Backend::sum_squares(g, n));
    if (!std::isfinite(norm)) {
      const auto host = model.host_gradients();
      std::vector<std::span<const float>> views;
      std::vector<std::string> names;
      for (const auto& p : model.parameter_table()) {
        views.emplace_back(host.data() + p.offset, p.size);
        names.push_back(p.name);
      }
      global_grad_norm(views, names);  // throws, naming the tensor
      detail::require<ModelOutputError>(false, "the gradient norm overflowed (", norm, ")");
    }
    if (max_norm > 0 && norm > max_norm)
      Backend::parallel_for(static_cast<std::ptrdiff_t>(n), device_kernels::ScaleElement{g, max_norm / norm});
    return norm;
  }

  /// One AdamW update (the t-th, t = adam.step_count() + 1) and one EMA update; advances the
  /// host objects' counters, whose moments are refreshed by sync_to_host().
  void step(Model& model, AdamW& adam, Ema& ema, double lr) {
    detail::require(std::isfinite(lr) && lr >= 0.0, "AdamW: lr must be finite and >= 0, got ", lr);
    const AdamWConfig& cfg = adam.config();
    const std::int64_t t = adam.step_count() + 1;
    const auto n = static_cast<std::ptrdiff_t>(model.parameter_buffer_size());
    float* w = Backend::raw(model.parameters());
    Backend::parallel_for(n, device_kernels::AdamWElement{w, Backend::raw(model.gradients()), Backend::raw(m_),
                                                          Backend::raw(v_), Backend::raw(decays_), cfg.beta1, cfg.beta2,
                                                          1.0 - std::pow(cfg.beta1, static_cast<double>(t)),
                                                          1.0 - std::pow(cfg.beta2, static_cast<double>(t)), cfg.eps, lr,
                                                          1.0 - lr * cfg.weight_decay});
    adam.set_step_count(t);
    Backend::parallel_for(n, device_kernels::EmaElement{Backend::raw(ema_), w, ema.effective_decay()});
    ema.set_update_count(ema.update_count() + 1);
  }

  /// The EMA weights, flat in the model's parameter order (host copy).
  std::vector<float> ema_parameters() const { return download(ema_); }

  /// Copies the moments and the averages into the host objects (before a checkpoint is written).
  void sync_to_host(const Model& model, AdamW& adam, Ema& ema) const {
    const auto m = download(m_), v = download(v_), e = download(ema_);
    const auto& table = model.parameter_table();
    for (std::size_t i = 0; i < table.size(); ++i) {
      const auto o = static_cast<std::ptrdiff_t>(table[i].offset);
      adam.set_state(i, std::span<const float>(m.data() + o, table[i].size),
                     std::span<const float>(v.data() + o, table[i].size));
      ema.set_shadow(i, std::span<const float>(e.data() + o, table[i].size));
    }
  }

  /// Takes the moments and averages of the host objects (after a checkpoint was loaded).
  void load_from_host(const Model& model, const AdamW& adam, const Ema& ema) {
    const std::size_t n = model.parameter_buffer_size();
    std::vector<float> m(n), v(n), e(n);
    const auto& table = model.parameter_table();
    for (std::size_t i = 0; i < table.size(); ++i) {
      std::copy(adam.m(i).begin(), adam.m(i).end(), m.begin() + static_cast<std::ptrdiff_t>(table[i].offset));
      std::copy(adam.v(i).begin(), adam.v(i).end(), v.begin() + static_cast<std::ptrdiff_t>(table[i].offset));
      std::copy(ema.shadow(i).begin(), ema.shadow(i).end(), e.begin() + static_cast<std::ptrdiff_t>(table[i].offset));
    }
    upload(m, m_);
    upload(v, v_);
    upload(e, ema_);
  }

 private:
  static std::vector<float> download(const buffer<float>& b) {
    std::vector<float> h(b.size());
    if (!h.empty()) Backend::download(Backend::raw(b), h.size(), h.data());
    return h;
  }
  static void upload(const std::vector<float>& h, buffer<float>& b) {
    b.resize(h.size());
    if (!h.empty()) Backend::upload(h.data(), h.size(), Backend::raw(b));
  }

  buffer<float> m_, v_, ema_;
  buffer<std::uint8_t> decays_;
};

}  // namespace flowception::train
