// The two losses of §3 step 7 (training/losses.hpp) computed where a device backend keeps the
// model's outputs: one functor per frame of the packed batch writes the gradients and the frame's
// partial sums, a pairwise tree of functors reduces the sums in a fixed order (the same bits on
// every backend), and one copy of 32 bytes brings them to the host. The velocities, log-rates and
// their gradients never leave the device; a training step moves only these scalars to the host.
// It needs nothing of the backend but buffers, parallel_for and copies, so it runs (and is
// tested) on the CPU backend too.
//
// Every gradient element is the host loss's expression, so gradients equal flowception_loss's bit
// for bit where exp does (the OpenMP system); the loss values differ from the host's serial sums
// only in the order of the double additions. The same checks: a non-finite velocity or log-rate
// anywhere in the batch is a ModelOutputError naming the frame (and element).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "flowception/core/errors.hpp"
#include "flowception/random/philox.hpp"  // FLOWCEPTION_HOST_DEVICE
#include "flowception/training/batch.hpp"
#include "flowception/training/losses.hpp"

namespace flowception::train {

namespace device_kernels {

/// Per-frame results of the loss functor, reduced over the batch.
struct LossSums {
  double velocity = 0;  ///< Σ over the frame's elements of (V − target)² (flowing frames only)
  double rate = 0;      ///< exp(ℓ) − k·ℓ (rate frames only)
  std::uint64_t bad_velocity = ~std::uint64_t{0};  ///< first non-finite velocity (flat index), or none
  std::uint64_t bad_rate = ~std::uint64_t{0};      ///< first frame with a non-finite log-rate, or none
};

/// One level of the pairwise reduction: sums[2·i·stride] absorbs sums[2·i·stride + stride]
/// (sums of the sums, minima of the indices).
struct CombineLossSums {
  LossSums* sums;       ///< one per frame; element 0 ends with the whole batch's
  std::size_t n;        ///< frames
  std::size_t stride;   ///< 1, 2, 4, ... (one level each)
  /// Combines pair i of this level.
  FLOWCEPTION_HOST_DEVICE void operator()(std::size_t i) const {
    const std::size_t a = 2 * i * stride, b = a + stride;
    if (b >= n) return;
    LossSums& x = sums[a];
    const LossSums& y = sums[b];
    x.velocity += y.velocity;
    x.rate += y.rate;
    if (y.bad_velocity < x.bad_velocity) x.bad_velocity = y.bad_velocity;
    if (y.bad_rate < x.bad_rate) x.bad_rate = y.bad_rate;
  }
};

/// Frame r of the batch: its velocity gradient (zero off the flowing frames), its log-rate
/// gradient (zero off the rate frames), and its partial sums and non-finite markers.
template <class T>
struct LossFrame {
  const T* velocity;             ///< V, frames × dim
  const T* target;               ///< x1 − ε, frames × dim
  const std::uint8_t* flow;      ///< 1 where the frame carries the velocity loss
  const T* log_rate;             ///< ℓ, one per frame
  const double* counts;          ///< k, one per frame
  const std::uint8_t* rate;      ///< 1 where the frame carries the rate loss
  T* grad_velocity;              ///< ∂total/∂V, frames × dim (written)
  T* grad_log_rate;              ///< ∂total/∂ℓ, one per frame (written)
  LossSums* sums;                ///< one per frame (written)
  std::size_t dim;               ///< D
  double velocity_norm;          ///< 1 / (flowing frames · D)
  double rate_norm;              ///< 1 / rate frames
  double rate_weight;            ///< w
  /// Writes frame r's gradients and sums (the expressions of velocity_loss and rate_loss).
  FLOWCEPTION_HOST_DEVICE void operator()(std::size_t r) const {
    LossSums s;
    const T* v = velocity + r * dim;
    T* g = grad_velocity + r * dim;
    for (std::size_t e = 0; e < dim; ++e) {
      const T x = v[e];
      // (x − x is 0 for every finite x and NaN otherwise; std::isfinite is not a device function)
      if (!(x - x == T(0)) && s.bad_velocity == ~std::uint64_t{0}) s.bad_velocity = r * dim + e;
      if (flow[r]) {
        const double diff = static_cast<double>(x) - static_cast<double>(target[r * dim + e]);
        s.velocity += diff * diff;
        g[e] = T(0) + static_cast<T>(1.0 * 2.0 * diff * velocity_norm);
      } else {
        g[e] = T(0);
      }
    }
    const double ell = static_cast<double>(log_rate[r]);
    if (!(ell - ell == 0.0)) s.bad_rate = r;
    if (rate[r]) {
      const double lam = std::exp(ell);
      s.rate = lam - counts[r] * ell;
      grad_log_rate[r] = static_cast<T>(0.0 + rate_weight * (lam - counts[r]) * rate_norm);
    } else {
      grad_log_rate[r] = T(0);
    }
    sums[r] = s;
  }
};

}  // namespace device_kernels

/// The losses of a packed batch whose model outputs live in `Backend`'s memory (a device backend,
/// dit/thrust_backend.hpp, or the CPU backend). Holds the device copies of the batch's targets,
/// counts and masks and the gradients; one instance serves one trainer.
template <class Backend>
class DeviceLoss {
 public:
  /// The backend's buffer of U.
  template <class U>
  using buffer = typename Backend::template buffer<U>;

  /// Both losses of `batch` for the velocities and log-rates at `velocity` and `log_rate`
  /// (frames × dim and frames values of float, backend memory), as flowception_loss computes them
  /// (`norm`: the denominators of a batch that is part of a larger one). The gradients go to
  /// grad_velocity() and grad_log_rate(); the result's host gradient vectors stay empty.
  /// ModelOutputError naming the frame for a non-finite velocity or log-rate.
  LossResult<float> compute(const TrainingBatch<float>& batch, const float* velocity, const float* log_rate,
                            double rate_weight = 1.0, LossNormalisation norm = {}) {
    detail::require(std::isfinite(rate_weight) && rate_weight >= 0.0, "rate loss weight must be finite and >= 0, got ",
                    rate_weight);
    const std::size_t rows = batch.rows(), dim = batch.dim;
    detail::require<ShapeError>(batch.targets.size() == rows * dim && batch.counts.size() == rows &&
                                    batch.flow_mask.size() == rows && batch.rate_mask.size() == rows,
                                "DeviceLoss: the batch's targets, counts and masks do not match its ", rows,
                                " frames of ", dim);
    LossResult<float> res;
    count_loss_frames(batch, norm, res);
    const std::size_t flowing = norm.flowing_frames != 0 ? norm.flowing_frames : res.flowing_frames;
    const std::size_t rated = norm.rate_frames != 0 ? norm.rate_frames : res.rate_frames;
    const double vnorm = res.flowing_frames == 0 ? 0.0 : 1.0 / (static_cast<double>(flowing) * static_cast<double>(dim));
    const double rnorm = res.rate_frames == 0 ? 0.0 : 1.0 / static_cast<double>(rated);
    upload(batch.targets, targets_);
    upload(batch.counts, counts_);
    upload(batch.flow_mask, flow_);
    upload(batch.rate_mask, rate_);
    grad_velocity_.resize(rows * dim);
    grad_log_rate_.resize(rows);
    sums_.resize(rows);
    if (rows == 0) return res;
    Backend::parallel_for(static_cast<std::ptrdiff_t>(rows),
                          device_kernels::LossFrame<float>{velocity, raw(targets_), raw(flow_), log_rate, raw(counts_),
                                                           raw(rate_), raw(grad_velocity_), raw(grad_log_rate_),
                                                           raw(sums_), dim, vnorm, rnorm, rate_weight});
    for (std::size_t stride = 1; stride < rows; stride *= 2)
      Backend::parallel_for(static_cast<std::ptrdiff_t>((rows + 2 * stride - 1) / (2 * stride)),
                            device_kernels::CombineLossSums{raw(sums_), rows, stride});
    // The one value that crosses to the host (the host waits for it).
    device_kernels::LossSums s;
    Backend::download(raw(sums_), 1, &s);
    if (s.bad_velocity != ~std::uint64_t{0}) {
      float x = 0;
      Backend::download(velocity + s.bad_velocity, 1, &x);
      detail::fail<ModelOutputError>("non-finite velocity ", x, " at frame ", s.bad_velocity / dim, ", element ",
                                     s.bad_velocity % dim);
    }
    if (s.bad_rate != ~std::uint64_t{0}) {
      float x = 0;
      Backend::download(log_rate + s.bad_rate, 1, &x);
      detail::fail<ModelOutputError>("non-finite log-rate ", x, " at frame ", s.bad_rate);
    }
    res.velocity = s.velocity * vnorm;
    res.rate = s.rate * rnorm;
    res.total = res.velocity + rate_weight * res.rate;
    return res;
  }

  /// ∂total/∂V of the last compute(), frames × dim floats in the backend's memory.
  const float* grad_velocity() const { return raw(grad_velocity_); }
  /// ∂total/∂ℓ of the last compute(), one float per frame in the backend's memory.
  const float* grad_log_rate() const { return raw(grad_log_rate_); }

 private:
  template <class U>
  static void upload(const std::vector<U>& host, buffer<U>& dst) {
    dst.resize(host.size());
    if (!host.empty()) Backend::upload(host.data(), host.size(), Backend::raw(dst));
  }
  template <class U>
  static U* raw(buffer<U>& b) { return Backend::raw(b); }
  template <class U>
  static const U* raw(const buffer<U>& b) { return Backend::raw(b); }

  buffer<float> targets_, grad_velocity_, grad_log_rate_;
  buffer<double> counts_;
  buffer<std::uint8_t> flow_, rate_;
  buffer<device_kernels::LossSums> sums_;
};

}  // namespace flowception::train
