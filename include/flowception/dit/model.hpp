// The reference DiT of method.md §6 with a hand-written backward pass. One source over a
// backend (backend.hpp): products through Backend::gemm, element and row kernels as functors
// through Backend::parallel_for, buffers in Backend::buffer. It is a VelocityModel over the
// backend's frames: HostFrames<T> on the CPU, ThrustFrames<T> on a device.
//
// Token layout of a packed batch: frame f (global index over all videos) owns token rows
// [f·(P+1), (f+1)·(P+1)): its P patch tokens in raster order, then its rate token. With the
// pooled rate head there is no rate token: rows [f·P, (f+1)·P), and the rate head reads the mean
// of the frame's patch tokens.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "flowception/core/errors.hpp"
#include "flowception/core/frame_kind.hpp"
#include "flowception/dit/backend.hpp"
#include "flowception/dit/config.hpp"
#include "flowception/dit/layout.hpp"
#include "flowception/dit/layers/activations.hpp"
#include "flowception/dit/layers/attention.hpp"
#include "flowception/dit/layers/embeddings.hpp"
#include "flowception/dit/layers/layernorm.hpp"
#include "flowception/dit/layers/linear.hpp"
#include "flowception/dit/layers/modulation.hpp"
#include "flowception/dit/layers/rope.hpp"
#include "flowception/algebra/host_algebra.hpp"
#include "flowception/model/flop_count.hpp"
#include "flowception/model/velocity_model.hpp"
#include "flowception/random/stream.hpp"

namespace flowception::dit {

// ParameterInfo, the parameter layout and the workspace are declared in dit/layout.hpp.

/// Floating-point operations of one pass, counted from the shapes actually computed.
using flowception::FlopCount;

/// What the DiT reads: a packed batch of videos (see ModelInput in model/velocity_model.hpp).
struct DitBatch {
  std::span<const double> times;         ///< Model time t per frame, in [0, 1].
  std::span<const FrameKind> kinds;      ///< Kind per frame (selects the kind embedding).
  /// Videos + 1 entries: video v is frames [offsets[v], offsets[v+1]); offsets[0] = 0.
  std::span<const std::size_t> offsets;
  std::span<const std::int64_t> conditions;    ///< per video (may be empty)
  std::span<const std::uint8_t> drop_condition;  ///< per video (may be empty)
  /// Rotary frame position of every video's first frame. Attention depends only on position
  /// differences, so any constant gives the same outputs (tested); 0 by default.
  double first_frame_position = 0.0;
};

/// The model's own per-frame and per-token kernels (the layers have theirs): functors that run
/// on the host and on a device.
namespace kernels {

template <class T>
struct PatchifyFrames {  // frame f (backend memory) → the patch rows of its tokens
  layers::PatchGeometry geo;
  const T* frames;
  T* patches;
  std::ptrdiff_t tokens_per_frame, patch_dim;
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t f) const {
    layers::patchify(geo, frames + f * geo.frame_dim(), patches + f * tokens_per_frame * patch_dim, patch_dim);
  }
};

template <class T>
struct UnpatchifyFrames {
  layers::PatchGeometry geo;
  const T* patches;
  T* frames;
  std::ptrdiff_t tokens_per_frame, patch_dim;
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t f) const {
    layers::unpatchify(geo, patches + f * tokens_per_frame * patch_dim, patch_dim, frames + f * geo.frame_dim());
  }
};

/// Patch rows get the patch-embedding bias; the rate-token row (t == Tp) is the learned token.
template <class T>
struct AddTokenBias {
  T* x;
  const T* bias;
  const T* rate_token;  ///< null without a rate token
  std::ptrdiff_t tokens_per_frame, patch_tokens, d;
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t r) const {
    T* row = x + r * d;
    if (r % tokens_per_frame < patch_tokens)
      for (std::ptrdiff_t i = 0; i < d; ++i) row[i] += bias[i];
    else
      for (std::ptrdiff_t i = 0; i < d; ++i) row[i] = rate_token[i];
  }
};

/// Σ over token rows of ∂L/∂x, per column: into the patch bias, or the rate token for its rows.
template <class T>
struct TokenBiasGradient {
  const T* dx;
  T* dbias;
  T* drate_token;  ///< null without a rate token
  std::ptrdiff_t n, tokens_per_frame, patch_tokens, d;
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t i) const {
    for (std::ptrdiff_t r = 0; r < n; ++r) {
      T* dst = r % tokens_per_frame < patch_tokens ? dbias : drate_token;
      dst[i] += dx[r * d + i];
    }
  }
};

template <class T>
struct AddInPlace {
  T* y;
  const T* x;
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t i) const { y[i] += x[i]; }
};

template <class T>
struct GatherRateToken {  // rate-head input of frame f: its normalised rate-token row
  const T* nf;
  T* rin;
  std::ptrdiff_t tokens_per_frame, patch_tokens, d;
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t f) const {
    const T* src = nf + (f * tokens_per_frame + patch_tokens) * d;
    for (std::ptrdiff_t i = 0; i < d; ++i) rin[f * d + i] = src[i];
  }
};

template <class T>
struct ScatterRateToken {
  const T* drin;
  T* dnf;
  std::ptrdiff_t tokens_per_frame, patch_tokens, d;
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t f) const {
    T* row = dnf + (f * tokens_per_frame + patch_tokens) * d;
    for (std::ptrdiff_t i = 0; i < d; ++i) row[i] += drin[f * d + i];
  }
};

template <class T>
struct MeanPatchTokens {  // rate-head input of frame f: the mean of its normalised patch rows
  const T* nf;
  T* rin;
  std::ptrdiff_t tokens_per_frame, patch_tokens, d;
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t f) const {
    const T inv = T(1) / static_cast<T>(patch_tokens);
    T* dst = rin + f * d;
    for (std::ptrdiff_t i = 0; i < d; ++i) dst[i] = T(0);
    for (std::ptrdiff_t t = 0; t < patch_tokens; ++t) {
      const T* row = nf + (f * tokens_per_frame + t) * d;
      for (std::ptrdiff_t i = 0; i < d; ++i) dst[i] += row[i];
    }
    for (std::ptrdiff_t i = 0; i < d; ++i) dst[i] *= inv;
  }
};

template <class T>
struct SpreadMeanGradient {
  const T* drin;
  T* dnf;
  std::ptrdiff_t tokens_per_frame, patch_tokens, d;
  FLOWCEPTION_HOST_DEVICE void operator()(std::ptrdiff_t f) const {
    const T inv = T(1) / static_cast<T>(patch_tokens);
    const T* src = drin + f * d;
    for (std::ptrdiff_t t = 0; t < patch_tokens; ++t) {
      T* row = dnf + (f * tokens_per_frame + t) * d;
      for (std::ptrdiff_t i = 0; i < d; ++i) row[i] += inv * src[i];
    }
  }
};

}  // namespace kernels

/// The reference DiT of §6 (`docs/dit.md`): a transformer conditioned per frame that maps a
/// packed batch of frames to velocities and per-frame log-rates, with a hand-written backward
/// pass. T is the value type (float or double); Backend runs it (CpuBackend, ThrustBackend).
/// A VelocityModel over the backend's frames (evaluate()). Its parameters and its workspace are
/// declared in dit/layout.hpp.
template <class T, DitBackend Backend = CpuBackend>
class DiT {
 public:
  using value_type = T;          ///< The value type of parameters, activations and frames.
  using backend_type = Backend;  ///< The compute backend (`dit/backend.hpp`).
  /// Storage in the backend's memory (std::vector on the CPU, device memory on a device).
  template <class U>
  using buffer = typename Backend::template buffer<U>;

  /// Validates `cfg` (ConfigError), lays out the parameter table and draws the initial weights
  /// from `seed` (init_parameters()). On a backend that reports its free memory, throws
  /// ConfigError before allocating when weights and gradients would not fit.
  explicit DiT(DitConfig cfg, std::uint64_t seed = 0) : cfg_(std::move(cfg)) {
    cfg_.validate();
    layout_ = parameter_layout(cfg_, sizeof(T));
    ws_.blocks.resize(cfg_.depth);
    allocate_parameters();
    init_parameters(seed);
  }

  const DitConfig& config() const { return cfg_; }  ///< The validated configuration.
  /// The flat parameter and gradient buffers, in the backend's memory.
  buffer<T>& parameters() { return params_; }
  const buffer<T>& parameters() const { return params_; }  ///< The flat parameter buffer (read-only).
  /// The flat gradient buffer, laid out like parameters(); backward() adds into it.
  buffer<T>& gradients() { return grads_; }
  const buffer<T>& gradients() const { return grads_; }  ///< The flat gradient buffer (read-only).
  /// Host copies, and loading from the host: the one checkpoint format on every backend.
  std::vector<T> host_parameters() const { return to_host(params_); }
  std::vector<T> host_gradients() const { return to_host(grads_); }  ///< A host copy of gradients().
  /// Uploads `host`, laid out as parameters() (parameter_buffer_size() values, each tensor at its
  /// table offset), into parameters(); the padding between tensors is set to zero whatever `host`
  /// holds there. Throws ShapeError unless it has parameter_buffer_size() values.
  void set_parameters(std::span<const T> host) {
    detail::require<ShapeError>(host.size() == params_.size(), "DiT::set_parameters: expected ", params_.size(),
                                " values (the flat buffer: ", parameter_count(), " parameters and the padding that "
                                "puts each tensor on a ", kBufferAlignment, "-byte boundary), got ", host.size());
    bool padded_zero = true;
    for_each_padding([&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e && padded_zero; ++i) padded_zero = host[i] == T(0);
    });
    if (padded_zero) {
      Backend::upload(host.data(), host.size(), raw(params_));
      return;
    }
    std::vector<T> copy(host.begin(), host.end());
    for_each_padding([&](std::size_t b, std::size_t e) { std::fill(copy.begin() + b, copy.begin() + e, T(0)); });
    Backend::upload(copy.data(), copy.size(), raw(params_));
  }
  /// Every parameter tensor in buffer order: name, shape, offset and initialisation.
  const std::vector<ParameterInfo>& parameter_table() const { return layout_.table; }
  /// Where each named tensor is in parameter_table().
  const ParameterIndex& parameter_index() const { return layout_.index; }
  /// Bytes the workspace holds now: the capacity of every buffer of dit/layout.hpp's Workspace
  /// (index tables, activations, gradient scratch; weights and gradients excluded). What
  /// DitConfig::workspace_bytes() estimates from the same list.
  std::size_t workspace_bytes() const {
    std::size_t b = 0;
    visit_workspace(ws_, cfg_, dims(), [&](BufferRole, const auto& buf, std::size_t) {
      b += buf.capacity() * sizeof(typename std::decay_t<decltype(buf)>::value_type);
    });
    return b;
  }
  /// The parameters of the model (DitConfig::parameter_count()), padding excluded.
  std::size_t parameter_count() const { return layout_.count; }
  /// Values of the flat parameter (and gradient) buffer: the parameters and the padding that puts
  /// each tensor on a kBufferAlignment-byte boundary. Host copies (host_parameters(),
  /// set_parameters()) have this layout.
  std::size_t parameter_buffer_size() const { return params_.size(); }
  /// Sets every gradient to zero (backward() accumulates).
  void zero_grad() { Backend::fill(raw(grads_), grads_.size(), T(0)); }

  /// Re-draws every parameter from `seed` with the initialisation of §6 (zero adaLN/outputs).
  void init_parameters(std::uint64_t seed) {
    std::vector<T> host(params_.size());
    for (const auto& p : layout_.table) {
      T* w = host.data() + p.offset;
      // Keyed by the name, so a parameter's initial value does not depend on the model's depth.
      std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
      for (unsigned char ch : p.name) h = (h ^ ch) * 0x100000001b3ULL;
      random::Stream rng(seed, random::derive_stream(kInitStreamTag, h));
      switch (p.init) {
        case ParameterInfo::Init::zero: std::fill(w, w + p.size, T(0)); break;
        case ParameterInfo::Init::normal002:
          for (std::size_t k = 0; k < p.size; ++k) w[k] = static_cast<T>(0.02 * rng.normal());
          break;
        case ParameterInfo::Init::xavier: {
          const double fan_in = static_cast<double>(p.shape[0]), fan_out = static_cast<double>(p.shape[1]);
          const double a = std::sqrt(6.0 / (fan_in + fan_out));
          for (std::size_t k = 0; k < p.size; ++k) w[k] = static_cast<T>(a * (2.0 * rng.uniform() - 1.0));
          break;
        }
      }
    }
    set_parameters(host);
  }

  /// Forward pass on a packed batch. frames: F × frame_dim, in the backend's memory. Writes
  /// velocity (F × frame_dim, backend memory) and log-rate (F, host memory; null: left in the
  /// backend's memory, device_log_rate()) and keeps what backward() needs.
  void forward(const T* frames, const DitBatch& b, T* velocity, double* log_rate) {
    prepare(b);
    embed_tokens(frames);
    condition_frames();
    for (std::size_t l = 0; l < cfg_.depth; ++l) block_forward(l);
    final_layer(velocity);
    rate_head();
    // The log-rates (one number per frame) are the only output that crosses to the host, and
    // only when asked for: training on a device reads them in place (device_log_rate()).
    if (!log_rate) return;
    auto& host = ws_.host_scalars;
    Backend::download(raw(ws_.log_rate), static_cast<std::size_t>(F_), host.data());
    for (std::ptrdiff_t f = 0; f < F_; ++f) log_rate[f] = static_cast<double>(host[static_cast<std::size_t>(f)]);
  }

  /// The log-rates of the last forward pass in the backend's memory (frames() values of T): what
  /// forward() copies to `log_rate`, for callers that keep them on the device.
  const T* device_log_rate() const { return raw(ws_.log_rate); }

  /// Backward pass of the last forward(): accumulates ∂L/∂θ into gradients() given ∂L/∂velocity
  /// (F × frame_dim, backend memory) and ∂L/∂ℓ (F, host memory).
  ///
  /// `ready(begin, end)`, when given, is called as soon as the gradients of parameters
  /// [begin, end) (flat offsets) are final, in this order: the heads after the last block, then
  /// each block from the last to the first, then the embeddings; the ranges are contiguous and
  /// cover the buffer, padding included. Data-parallel training starts reducing a range there
  /// while the backward pass goes on (distributed/gradient_buckets.hpp). On a device backend the
  /// range is final in stream order, not yet on the host clock.
  template <class Ready = std::nullptr_t>
  void backward(const T* dvelocity, const double* dlog_rate, Ready&& ready = nullptr) {
    resize_workspace(BufferRole::gradient);
    auto& host = ws_.host_scalars;
    for (std::ptrdiff_t f = 0; f < F_; ++f) host[static_cast<std::size_t>(f)] = static_cast<T>(dlog_rate[f]);
    Backend::upload(host.data(), static_cast<std::size_t>(F_), raw(ws_.d_log_rate));
    backward_device(dvelocity, raw(ws_.d_log_rate), std::forward<Ready>(ready));
  }

  /// The same, with ∂L/∂ℓ in the backend's memory (frames() values of T), as the device losses
  /// (train/device_loss.hpp) leave it: nothing crosses to or from the host.
  template <class Ready = std::nullptr_t>
  void backward_device(const T* dvelocity, const T* dlog_rate, Ready&& ready = nullptr) {
    auto announce = [&](std::size_t begin, std::size_t end) {
      if constexpr (!std::is_same_v<std::remove_cvref_t<Ready>, std::nullptr_t>) ready(begin, end);
    };
    resize_workspace(BufferRole::gradient);
    const ParameterIndex& x = layout_.index;
    heads_backward(dvelocity, dlog_rate);
    announce(offset(x.final_adaln_w), params_.size());  // the heads: everything after the last block
    for (std::size_t l = cfg_.depth; l-- > 0;) {
      block_backward(l);
      // Up to the next block's first tensor: the padding after the block's last tensor is in its range.
      announce(offset(x.blocks[l].adaln_w),
               l + 1 < cfg_.depth ? offset(x.blocks[l + 1].adaln_w) : offset(x.final_adaln_w));
    }
    embeddings_backward();
    announce(0, offset(x.blocks.front().adaln_w));  // embeddings and conditioning
  }

  /// VelocityModel: forward on the sampler's packed batch, over frames in the backend's memory
  /// (HostFrames on the CPU, ThrustFrames on a device): the frames never leave the device.
  template <class Frames>
    requires requires(Frames& f) { Backend::raw(f.values); }
  void evaluate(const ModelInput<Frames>& in, ModelOutput<Frames>& out) {
    detail::require<ShapeError>(in.frames.dim == cfg_.frame_dim(), "DiT expects frames of ", cfg_.frame_dim(),
                                " values (", cfg_.channels, "x", cfg_.height, "x", cfg_.width, "), got ", in.frames.dim);
    DitBatch b{in.times, in.kinds, in.offsets, in.conditions, in.drop_condition};
    forward(Backend::raw(in.frames.values), b, Backend::raw(out.velocity.values), out.log_rate.data());
  }

  /// FLOPs of the last forward pass, and of the matching backward pass.
  FlopCount forward_flops() const { return flops(false); }
  FlopCount backward_flops() const { return flops(true); }  ///< FLOPs of backward() after the last forward pass.

  /// The FLOPs of one forward pass and of its backward pass.
  struct PassFlops {
    FlopCount forward;   ///< Of forward().
    FlopCount backward;  ///< Of backward().
  };
  /// The FLOPs forward and backward would spend on batch `b`, from its shapes alone (nothing is
  /// computed). It re-plans the model for `b`: run forward() again before calling backward().
  PassFlops planned_flops(const DitBatch& b) {
    prepare(b);
    return {flops(false), flops(true)};
  }

  /// Frames and tokens of the last forward pass.
  std::size_t frames() const { return static_cast<std::size_t>(F_); }
  /// Token rows of the last forward pass (frames × tokens_per_frame).
  std::size_t tokens() const { return static_cast<std::size_t>(N_); }

 private:
  /// The random stream family of the initial weights ("ditp").
  static constexpr std::uint64_t kInitStreamTag = 0x64697470ULL;

  // ---- Sizes and views -------------------------------------------------------------------------
  std::ptrdiff_t hd() const { return static_cast<std::ptrdiff_t>(cfg_.width_hidden); }  ///< Hd, the width
  std::ptrdiff_t heads() const { return static_cast<std::ptrdiff_t>(cfg_.heads); }
  std::ptrdiff_t mlp() const { return static_cast<std::ptrdiff_t>(cfg_.mlp_hidden()); }
  std::ptrdiff_t pd() const { return static_cast<std::ptrdiff_t>(cfg_.patch_dim()); }
  std::ptrdiff_t tp() const { return static_cast<std::ptrdiff_t>(cfg_.patch_tokens()); }
  std::ptrdiff_t tpf() const { return static_cast<std::ptrdiff_t>(cfg_.tokens_per_frame()); }
  std::ptrdiff_t fd() const { return static_cast<std::ptrdiff_t>(cfg_.frequency_dim); }
  std::ptrdiff_t lf() const { return static_cast<std::ptrdiff_t>(cfg_.length_features()); }
  layers::PatchGeometry geometry() const {
    return {static_cast<std::ptrdiff_t>(cfg_.channels), static_cast<std::ptrdiff_t>(cfg_.height),
            static_cast<std::ptrdiff_t>(cfg_.width), static_cast<std::ptrdiff_t>(cfg_.patch)};
  }
  WorkspaceDims dims() const {
    return {static_cast<std::size_t>(F_), static_cast<std::size_t>(N_), videos_, !Backend::kEigenKernels};
  }
  std::size_t offset(std::size_t tensor) const { return layout_.table[tensor].offset; }
  T* p(std::size_t tensor) { return raw(params_) + offset(tensor); }  ///< a parameter tensor
  T* g(std::size_t tensor) { return raw(grads_) + offset(tensor); }   ///< its gradient
  /// Slice k (Hd wide) of a block's modulation rows (6·Hd wide).
  const T* slice(const buffer<T>& mod, Modulation k) const { return raw(mod) + static_cast<std::ptrdiff_t>(k) * hd(); }
  T* slice(buffer<T>& mod, Modulation k) { return raw(mod) + static_cast<std::ptrdiff_t>(k) * hd(); }
  /// Slice k (Hd wide) of the final layer's modulation rows (2·Hd wide).
  T* slice(buffer<T>& mod, FinalModulation k) { return raw(mod) + static_cast<std::ptrdiff_t>(k) * hd(); }
  static constexpr std::ptrdiff_t kModulationSlices = static_cast<std::ptrdiff_t>(Modulation::count);
  static constexpr std::ptrdiff_t kFinalSlices = static_cast<std::ptrdiff_t>(FinalModulation::count);

  template <class U>
  static U* raw(buffer<U>& b) { return Backend::raw(b); }
  template <class U>
  static const U* raw(const buffer<U>& b) { return Backend::raw(b); }
  template <class U>
  static void upload_to(const std::vector<U>& host, buffer<U>& dst) {
    if (!host.empty()) Backend::upload(host.data(), host.size(), Backend::raw(dst));
  }
  template <class U>
  static std::vector<U> to_host(const buffer<U>& src) {
    std::vector<U> host(src.size());
    if (!host.empty()) Backend::download(Backend::raw(src), host.size(), host.data());
    return host;
  }
  /// Sets b to zero on the backend (no host wait on a device).
  template <class U>
  static void zero(buffer<U>& b) { Backend::fill(Backend::raw(b), b.size(), U(0)); }

  /// Sizes every workspace buffer of `role` for the current batch (dit/layout.hpp); buffers keep
  /// their capacity, so this allocates only when a batch grows.
  void resize_workspace(BufferRole role) {
    visit_workspace(ws_, cfg_, dims(), [&](BufferRole r, auto& buf, std::size_t count) {
      if (r == role) buf.resize(count);
    });
  }

  // ---- Parameters ------------------------------------------------------------------------------
  /// Allocates the flat parameter and gradient buffers (zero), after checking that they fit in
  /// the backend's free memory when it reports one.
  void allocate_parameters() {
    const std::size_t count = layout_.buffer_elements;
    if constexpr (Backend::kReportsMemory) {
      // Weights and gradients must fit before anything is allocated (activations come on top).
      const double need = 2.0 * static_cast<double>(count) * sizeof(T);
      const double have = static_cast<double>(Backend::available_memory_bytes());
      detail::require<ConfigError>(need <= have, "DiT '", cfg_.name, "' is too large for ", Backend::name(),
                                   " memory: ", count, " parameters need ", need / (1 << 30),
                                   " GiB for weights and gradients alone, ", have / (1 << 30), " GiB are free");
    }
    params_.resize(count);
    grads_.resize(count);
    zero(params_);
    zero(grads_);
  }

  /// f(begin, end) for every range of padding in the flat buffer (between tensors, and after the
  /// last one up to parameter_buffer_size()).
  template <class F>
  void for_each_padding(F&& f) const {
    const auto& table = layout_.table;
    for (std::size_t i = 0; i < table.size(); ++i) {
      const std::size_t end = table[i].offset + table[i].size;
      const std::size_t next = i + 1 < table.size() ? table[i + 1].offset : params_.size();
      if (next > end) f(end, next);
    }
  }

  // ---- The batch: prepare() in named steps -----------------------------------------------------
  /// Token structure of a packed batch, on the host and then in the backend's memory: frames,
  /// token→frame map, kinds, classes, length features, rotary positions and tables, attention
  /// tiles, per-token attention ranges (device backends) and the time embeddings.
  void prepare(const DitBatch& b) {
    check_batch(b);
    resize_workspace(BufferRole::index);
    resize_workspace(BufferRole::activation);
    lay_out_tokens(b);
    build_tiles(b);
    rope_pairs_ = layers::build_rope_table(ws_.positions, {cfg_.rope_dim(0), cfg_.rope_dim(1), cfg_.rope_dim(2)},
                                           cfg_.rope_base, ws_.host_rope_cos, ws_.host_rope_sin);
    if constexpr (!Backend::kEigenKernels) build_attention_ranges();
    for (std::ptrdiff_t f = 0; f < F_; ++f)
      layers::timestep_embedding(b.times[f], fd(), ws_.host_time_embedding.data() + f * fd());
    upload_tables();
  }

  /// Checks the batch's sizes, times and labels against the model (ShapeError naming the
  /// problem) and sets F_, N_ and the video count.
  void check_batch(const DitBatch& b) {
    detail::require<ShapeError>(b.offsets.size() >= 2 && b.offsets.front() == 0, "DiT batch needs offsets [0, ...]");
    const std::size_t videos = b.offsets.size() - 1;
    const auto F = static_cast<std::ptrdiff_t>(b.offsets.back());
    detail::require<ShapeError>(b.times.size() == static_cast<std::size_t>(F) && b.kinds.size() == static_cast<std::size_t>(F),
                                "DiT batch: times/kinds must have one entry per frame (", F, ")");
    detail::require<ShapeError>(b.conditions.empty() || b.conditions.size() == videos,
                                "DiT batch: conditions must have one entry per video");
    detail::require<ShapeError>(b.drop_condition.empty() || b.drop_condition.size() == videos,
                                "DiT batch: drop_condition must have one entry per video");
    for (std::size_t v = 0; v < videos; ++v) {
      detail::require<ShapeError>(b.offsets[v + 1] >= b.offsets[v], "DiT batch: offsets must be non-decreasing");
      const std::int64_t label = b.conditions.empty() ? kNoCondition : b.conditions[v];
      if (cfg_.num_classes > 0)
        detail::require<ShapeError>(label == kNoCondition || (label >= 0 && label < static_cast<std::int64_t>(cfg_.num_classes)),
                                    "DiT batch: class ", label, " outside [0, ", cfg_.num_classes, ")");
      else  // a label would be ignored: refusing it says so instead of pretending to condition
        detail::require<ShapeError>(label == kNoCondition, "DiT batch: video ", v, " has class ", label,
                                    ", but this DiT is unconditional (num_classes = 0)");
      for (std::size_t f = b.offsets[v]; f < b.offsets[v + 1]; ++f) {
        const double t = b.times[f];
        detail::require<ShapeError>(std::isfinite(t) && t >= 0.0 && t <= 1.0, "DiT batch: time ", t, " of frame ", f,
                                    " outside [0, 1]");
      }
    }
    F_ = F;
    N_ = F * tpf();
    videos_ = videos;
  }

  /// Per frame: kind and class rows, first token row, length features; per token: its frame and
  /// rotary position (frame, patch row, patch column; the rate token sits at the grid's centre).
  void lay_out_tokens(const DitBatch& b) {
    const double gh = static_cast<double>(cfg_.grid_h()), gw = static_cast<double>(cfg_.grid_w());
    for (std::size_t v = 0; v < videos_; ++v) {
      const auto fb = static_cast<std::ptrdiff_t>(b.offsets[v]), fe = static_cast<std::ptrdiff_t>(b.offsets[v + 1]);
      const std::int64_t label = b.conditions.empty() ? kNoCondition : b.conditions[v];
      const bool drop = !b.drop_condition.empty() && b.drop_condition[v] != 0;
      const std::int64_t cls = (drop || label == kNoCondition) ? static_cast<std::int64_t>(cfg_.num_classes) : label;
      for (std::ptrdiff_t f = fb; f < fe; ++f) {
        ws_.host_kind_index[f] = static_cast<std::int64_t>(b.kinds[f]);
        ws_.host_class_index[f] = cls;
        ws_.host_frame_token_begin[f] = f * tpf();
        const double fi = b.first_frame_position + static_cast<double>(f - fb);
        if (lf() > 0) {
          // Sinusoids of the integers n, i and n − 1 − i (timestep_embedding embeds 1000·t).
          const std::ptrdiff_t E = static_cast<std::ptrdiff_t>(DitConfig::kLengthEmbedDim);
          const double n = static_cast<double>(fe - fb), i = static_cast<double>(f - fb);
          T* row = ws_.host_length_features.data() + f * 3 * E;
          layers::timestep_embedding(n / 1000.0, E, row);
          layers::timestep_embedding(i / 1000.0, E, row + E);
          layers::timestep_embedding((n - 1.0 - i) / 1000.0, E, row + 2 * E);
        }
        for (std::ptrdiff_t t = 0; t < tpf(); ++t) {
          const std::ptrdiff_t r = f * tpf() + t;
          ws_.host_token_frame[r] = static_cast<std::int32_t>(f);
          ws_.positions[r] = t < tp() ? std::array<double, 3>{fi, static_cast<double>(t / cfg_.grid_w()),
                                                              static_cast<double>(t % cfg_.grid_w())}
                                      : std::array<double, 3>{fi, (gh - 1.0) / 2.0, (gw - 1.0) / 2.0};
        }
      }
    }
    ws_.host_frame_token_begin[F_] = N_;
  }

  /// Attention tiles: each frame's query rows against its key frames (its video, within ±window,
  /// up to itself when causal), consecutive frames with the same keys sharing a tile of at most
  /// kTileRows rows.
  void build_tiles(const DitBatch& b) {
    auto& tiles = ws_.tiles;
    tiles.clear();
    for (std::size_t v = 0; v < videos_; ++v) {
      const auto fb = static_cast<std::ptrdiff_t>(b.offsets[v]), fe = static_cast<std::ptrdiff_t>(b.offsets[v + 1]);
      for (std::ptrdiff_t f = fb; f < fe; ++f) {
        std::ptrdiff_t kf0 = fb, kf1 = fe;  // key frames [kf0, kf1)
        if (cfg_.window >= 0) {
          kf0 = std::max(fb, f - cfg_.window);
          kf1 = std::min(fe, f + cfg_.window + 1);
        }
        if (cfg_.causal) kf1 = f + 1;
        for (std::ptrdiff_t q = f * tpf(); q < (f + 1) * tpf();) {
          const std::ptrdiff_t k0 = kf0 * tpf(), k1 = kf1 * tpf();
          auto* last = tiles.empty() ? nullptr : &tiles.back();
          if (last && last->k_begin == k0 && last->k_end == k1 && last->q_end == q &&
              last->q_end - last->q_begin < layers::kTileRows) {
            const std::ptrdiff_t grow = std::min(layers::kTileRows - (last->q_end - last->q_begin), (f + 1) * tpf() - q);
            last->q_end += grow;
            q += grow;
          } else {
            const std::ptrdiff_t end = std::min(q + layers::kTileRows, (f + 1) * tpf());
            tiles.push_back({q, end, k0, k1});
            q = end;
          }
        }
      }
    }
  }

  /// Per-token key ranges and per-key query ranges for the row kernels of device backends
  /// (layers/attention.hpp). The masks (packing, window, causal) make each key's query set a
  /// contiguous range.
  void build_attention_ranges() {
    auto& keys = ws_.host_key_range;
    auto& queries = ws_.host_query_range;
    std::fill(keys.begin(), keys.end(), 0);
    for (std::ptrdiff_t r = 0; r < N_; ++r) {
      queries[2 * r] = N_;  // min/max over the queries that see key r
      queries[2 * r + 1] = 0;
    }
    for (const auto& t : ws_.tiles)
      for (std::ptrdiff_t q = t.q_begin; q < t.q_end; ++q) {
        keys[2 * q] = t.k_begin;
        keys[2 * q + 1] = t.k_end;
      }
    for (const auto& t : ws_.tiles)
      for (std::ptrdiff_t k = t.k_begin; k < t.k_end; ++k) {
        queries[2 * k] = std::min<std::int64_t>(queries[2 * k], t.q_begin);
        queries[2 * k + 1] = std::max<std::int64_t>(queries[2 * k + 1], t.q_end);
      }
  }

  /// Everything the kernels read goes to the backend's memory once per batch.
  void upload_tables() {
    if constexpr (!Backend::kEigenKernels) {
      upload_to(ws_.host_key_range, ws_.key_range);
      upload_to(ws_.host_query_range, ws_.query_range);
    }
    upload_to(ws_.host_token_frame, ws_.token_frame);
    upload_to(ws_.host_frame_token_begin, ws_.frame_token_begin);
    upload_to(ws_.host_kind_index, ws_.kind_index);
    upload_to(ws_.host_class_index, ws_.class_index);
    upload_to(ws_.host_length_features, ws_.length_features);
    upload_to(ws_.host_rope_cos, ws_.rope_cos);
    upload_to(ws_.host_rope_sin, ws_.rope_sin);
    upload_to(ws_.host_time_embedding, ws_.time_embedding);
  }

  // ---- Forward, in named steps -----------------------------------------------------------------
  /// Patch tokens (the rate rows of `patches` stay zero) and their embedding; the rate-token rows
  /// get the learned token.
  void embed_tokens(const T* frames) {
    const ParameterIndex& x = layout_.index;
    const std::ptrdiff_t F = F_, N = N_, Hd = hd(), P = pd();
    zero(ws_.patches);
    Backend::parallel_for(F, kernels::PatchifyFrames<T>{geometry(), frames, raw(ws_.patches), tpf(), P});
    layers::linear_forward<Backend>(N, P, Hd, raw(ws_.patches), p(x.patch_w), static_cast<const T*>(nullptr), raw(ws_.x));
    const bool token_head = cfg_.rate_head == RateHead::token;
    Backend::parallel_for(N, kernels::AddTokenBias<T>{raw(ws_.x), p(x.patch_b), token_head ? p(x.rate_token) : nullptr,
                                                      tpf(), tp(), Hd});
  }

  /// Conditioning c_f = MLP(sinusoidal(1000·t_f)) + kind (+ class, + length); SiLU(c) feeds
  /// every adaLN. The sinusoids were computed on the host by prepare() (a few numbers per frame).
  void condition_frames() {
    const ParameterIndex& x = layout_.index;
    const std::ptrdiff_t F = F_, Hd = hd();
    layers::linear_forward<Backend>(F, fd(), Hd, raw(ws_.time_embedding), p(x.time1_w), p(x.time1_b), raw(ws_.time_hidden));
    layers::activation_forward<Backend, layers::Silu>(F * Hd, raw(ws_.time_hidden), raw(ws_.time_act));
    layers::linear_forward<Backend>(F, Hd, Hd, raw(ws_.time_act), p(x.time2_w), p(x.time2_b), raw(ws_.cond));
    layers::embedding_add<Backend>(F, Hd, p(x.kind_embed), raw(ws_.kind_index), raw(ws_.cond));
    if (cfg_.num_classes > 0) layers::embedding_add<Backend>(F, Hd, p(x.class_embed), raw(ws_.class_index), raw(ws_.cond));
    if (cfg_.length_conditioning) {
      layers::linear_forward<Backend>(F, lf(), Hd, raw(ws_.length_features), p(x.length_cond_w), p(x.length_cond_b),
                                      raw(ws_.length_cond));
      Backend::parallel_for(F * Hd, kernels::AddInPlace<T>{raw(ws_.cond), raw(ws_.length_cond)});
    }
    layers::activation_forward<Backend, layers::Silu>(F * Hd, raw(ws_.cond), raw(ws_.cond_act));
  }

  /// One block: x += gate_msa·Attention(modulate(LN(x))); x += gate_mlp·MLP(modulate(LN(x))).
  void block_forward(std::size_t l) {
    const BlockParameters& bp = layout_.index.blocks[l];
    BlockActivations<T, Backend::template buffer>& c = ws_.blocks[l];
    const std::ptrdiff_t F = F_, N = N_, Hd = hd(), M = mlp(), ld = kModulationSlices * Hd;
    using Mod = Modulation;
    layers::linear_forward<Backend>(F, Hd, ld, raw(ws_.cond_act), p(bp.adaln_w), p(bp.adaln_b), raw(c.mod));
    // Attention branch.
    layers::layernorm_forward<Backend>(N, Hd, raw(ws_.x), raw(c.n1), raw(c.rstd1));
    layers::modulate_forward<Backend>(N, Hd, raw(c.n1), slice(c.mod, Mod::shift_msa), slice(c.mod, Mod::scale_msa), ld,
                                      raw(ws_.token_frame), raw(c.m1));
    layers::linear_forward<Backend>(N, Hd, 3 * Hd, raw(c.m1), p(bp.qkv_w), p(bp.qkv_b), raw(c.qkv));
    rotate_qk(raw(c.qkv), +1);
    layers::AttentionShape<T> shape{N, Hd, heads(), static_cast<std::ptrdiff_t>(cfg_.head_dim())};
    layers::attention_forward<Backend>(shape, ws_.tiles, raw(ws_.key_range), raw(c.qkv), raw(c.o), raw(c.lse));
    layers::linear_forward<Backend>(N, Hd, Hd, raw(c.o), p(bp.proj_w), p(bp.proj_b), raw(c.a));
    layers::gated_residual_forward<Backend>(N, Hd, raw(c.a), slice(c.mod, Mod::gate_msa), ld, raw(ws_.token_frame),
                                            raw(ws_.x));
    // MLP branch.
    layers::layernorm_forward<Backend>(N, Hd, raw(ws_.x), raw(c.n2), raw(c.rstd2));
    layers::modulate_forward<Backend>(N, Hd, raw(c.n2), slice(c.mod, Mod::shift_mlp), slice(c.mod, Mod::scale_mlp), ld,
                                      raw(ws_.token_frame), raw(c.m2));
    layers::linear_gelu_forward<Backend>(N, Hd, M, raw(c.m2), p(bp.fc1_w), p(bp.fc1_b), raw(c.h), raw(c.gl));
    layers::linear_forward<Backend>(N, M, Hd, raw(c.gl), p(bp.fc2_w), p(bp.fc2_b), raw(c.y));
    layers::gated_residual_forward<Backend>(N, Hd, raw(c.y), slice(c.mod, Mod::gate_mlp), ld, raw(ws_.token_frame),
                                            raw(ws_.x));
  }

  /// Rotates the queries and keys of `qkv` ([N, 3·Hd]) by their tokens' rotary angles (sign +1),
  /// or their gradients back (sign −1).
  void rotate_qk(T* qkv, int sign) {
    const std::ptrdiff_t Hd = hd();
    layers::rope_apply<Backend>(N_, heads(), raw(ws_.rope_cos), raw(ws_.rope_sin), rope_pairs_, qkv, 3 * Hd, 0, sign);
    layers::rope_apply<Backend>(N_, heads(), raw(ws_.rope_cos), raw(ws_.rope_sin), rope_pairs_, qkv, 3 * Hd, Hd, sign);
  }

  /// Final layer: adaLN + zero-initialised linear → velocity.
  void final_layer(T* velocity) {
    const ParameterIndex& x = layout_.index;
    const std::ptrdiff_t F = F_, N = N_, Hd = hd(), P = pd(), ld = kFinalSlices * Hd;
    layers::linear_forward<Backend>(F, Hd, ld, raw(ws_.cond_act), p(x.final_adaln_w), p(x.final_adaln_b), raw(ws_.final_mod));
    layers::layernorm_forward<Backend>(N, Hd, raw(ws_.x), raw(ws_.final_norm), raw(ws_.final_rstd));
    layers::modulate_forward<Backend>(N, Hd, raw(ws_.final_norm), slice(ws_.final_mod, FinalModulation::shift),
                                      slice(ws_.final_mod, FinalModulation::scale), ld, raw(ws_.token_frame),
                                      raw(ws_.final_mod_out));
    layers::linear_forward<Backend>(N, Hd, P, raw(ws_.final_mod_out), p(x.final_w), p(x.final_b), raw(ws_.out));
    Backend::parallel_for(F, kernels::UnpatchifyFrames<T>{geometry(), raw(ws_.out), velocity, tpf(), P});
  }

  /// Rate head: the normalised rate token, or the mean of the frame's normalised patch tokens;
  /// plus, when length-aware, the embedding of (n, i, n − 1 − i); then MLP → ℓ.
  void rate_head() {
    const ParameterIndex& x = layout_.index;
    const std::ptrdiff_t F = F_, Hd = hd();
    if (cfg_.rate_head == RateHead::token)
      Backend::parallel_for(F, kernels::GatherRateToken<T>{raw(ws_.final_norm), raw(ws_.rate_in), tpf(), tp(), Hd});
    else
      Backend::parallel_for(F, kernels::MeanPatchTokens<T>{raw(ws_.final_norm), raw(ws_.rate_in), tpf(), tp(), Hd});
    if (cfg_.length_aware) {
      layers::linear_forward<Backend>(F, lf(), Hd, raw(ws_.length_features), p(x.length_embed_w), p(x.length_embed_b),
                                      raw(ws_.length_emb));
      Backend::parallel_for(F * Hd, kernels::AddInPlace<T>{raw(ws_.rate_in), raw(ws_.length_emb)});
    }
    layers::linear_forward<Backend>(F, Hd, Hd, raw(ws_.rate_in), p(x.rate1_w), p(x.rate1_b), raw(ws_.rate_hidden));
    layers::activation_forward<Backend, layers::Silu>(F * Hd, raw(ws_.rate_hidden), raw(ws_.rate_act));
    layers::linear_forward<Backend>(F, Hd, 1, raw(ws_.rate_act), p(x.rate2_w), p(x.rate2_b), raw(ws_.log_rate));
  }

  // ---- Backward, in named steps ----------------------------------------------------------------
  /// The rate head, the velocity head and the final layer, down to ∂L/∂x after the last block
  /// (ws_.dx) and the heads' share of ∂L/∂SiLU(c) (ws_.d_cond_act).
  void heads_backward(const T* dvelocity, const T* dlog_rate) {
    const ParameterIndex& x = layout_.index;
    const std::ptrdiff_t F = F_, N = N_, Hd = hd(), P = pd(), ld = kFinalSlices * Hd;
    // Rate head.
    layers::linear_backward<Backend>(F, Hd, 1, raw(ws_.rate_act), p(x.rate2_w), dlog_rate, raw(ws_.d_rate_act),
                                     g(x.rate2_w), g(x.rate2_b));
    layers::activation_backward<Backend, layers::Silu>(F * Hd, raw(ws_.rate_hidden), raw(ws_.d_rate_act),
                                                       raw(ws_.d_rate_hidden));
    layers::linear_backward<Backend>(F, Hd, Hd, raw(ws_.rate_in), p(x.rate1_w), raw(ws_.d_rate_hidden),
                                     raw(ws_.d_rate_in), g(x.rate1_w), g(x.rate1_b));
    // Velocity head.
    zero(ws_.d_out);
    Backend::parallel_for(F, kernels::PatchifyFrames<T>{geometry(), dvelocity, raw(ws_.d_out), tpf(), P});
    layers::linear_backward<Backend>(N, Hd, P, raw(ws_.final_mod_out), p(x.final_w), raw(ws_.d_out),
                                     raw(ws_.d_final_mod_out), g(x.final_w), g(x.final_b));
    zero(ws_.d_final_mod);
    layers::modulate_backward<Backend>(F, Hd, raw(ws_.final_norm), slice(ws_.final_mod, FinalModulation::scale), ld,
                                       raw(ws_.frame_token_begin), raw(ws_.d_final_mod_out), raw(ws_.d_final_norm),
                                       slice(ws_.d_final_mod, FinalModulation::shift),
                                       slice(ws_.d_final_mod, FinalModulation::scale));
    if (cfg_.rate_head == RateHead::token)
      Backend::parallel_for(F, kernels::ScatterRateToken<T>{raw(ws_.d_rate_in), raw(ws_.d_final_norm), tpf(), tp(), Hd});
    else
      Backend::parallel_for(F, kernels::SpreadMeanGradient<T>{raw(ws_.d_rate_in), raw(ws_.d_final_norm), tpf(), tp(), Hd});
    if (cfg_.length_aware)
      layers::linear_backward<Backend>(F, lf(), Hd, raw(ws_.length_features), p(x.length_embed_w), raw(ws_.d_rate_in),
                                       static_cast<T*>(nullptr), g(x.length_embed_w), g(x.length_embed_b));
    layers::layernorm_backward<Backend>(N, Hd, raw(ws_.final_norm), raw(ws_.final_rstd), raw(ws_.d_final_norm),
                                        raw(ws_.dx));
    zero(ws_.d_cond_act);
    layers::linear_backward<Backend>(F, Hd, ld, raw(ws_.cond_act), p(x.final_adaln_w), raw(ws_.d_final_mod),
                                     raw(ws_.d_cond_act), g(x.final_adaln_w), g(x.final_adaln_b), true);
  }

  /// One block backward: ∂L/∂x through both branches (ws_.dx), the block's parameter gradients,
  /// and its adaLN's share of ∂L/∂SiLU(c).
  void block_backward(std::size_t l) {
    const BlockParameters& bp = layout_.index.blocks[l];
    BlockActivations<T, Backend::template buffer>& c = ws_.blocks[l];
    const std::ptrdiff_t F = F_, N = N_, Hd = hd(), M = mlp(), ld = kModulationSlices * Hd;
    using Mod = Modulation;
    buffer<T>& dmod = ws_.d_mod;
    zero(dmod);
    const std::int64_t* ftb = raw(ws_.frame_token_begin);
    // MLP branch: x_out = x_mid + gate·y.
    layers::gated_residual_backward<Backend>(F, Hd, raw(c.y), slice(c.mod, Mod::gate_mlp), ld, ftb, raw(ws_.dx),
                                             raw(ws_.d_tmp), slice(dmod, Mod::gate_mlp));
    layers::linear_backward<Backend>(N, M, Hd, raw(c.gl), p(bp.fc2_w), raw(ws_.d_tmp), raw(ws_.d_mlp), g(bp.fc2_w),
                                     g(bp.fc2_b));
    layers::activation_backward<Backend, layers::GeluTanh>(N * M, raw(c.h), raw(ws_.d_mlp), raw(ws_.d_mlp));
    layers::linear_backward<Backend>(N, Hd, M, raw(c.m2), p(bp.fc1_w), raw(ws_.d_mlp), raw(ws_.d_tmp2), g(bp.fc1_w),
                                     g(bp.fc1_b));
    layers::modulate_backward<Backend>(F, Hd, raw(c.n2), slice(c.mod, Mod::scale_mlp), ld, ftb, raw(ws_.d_tmp2),
                                       raw(ws_.d_tmp), slice(dmod, Mod::shift_mlp), slice(dmod, Mod::scale_mlp));
    layers::layernorm_backward<Backend>(N, Hd, raw(c.n2), raw(c.rstd2), raw(ws_.d_tmp), raw(ws_.dx), true);
    // Attention branch: x_mid = x_in + gate·a.
    layers::gated_residual_backward<Backend>(F, Hd, raw(c.a), slice(c.mod, Mod::gate_msa), ld, ftb, raw(ws_.dx),
                                             raw(ws_.d_tmp), slice(dmod, Mod::gate_msa));
    layers::linear_backward<Backend>(N, Hd, Hd, raw(c.o), p(bp.proj_w), raw(ws_.d_tmp), raw(ws_.d_tmp2), g(bp.proj_w),
                                     g(bp.proj_b));
    layers::AttentionShape<T> shape{N, Hd, heads(), static_cast<std::ptrdiff_t>(cfg_.head_dim())};
    layers::attention_backward<Backend>(shape, ws_.tiles, raw(ws_.key_range), raw(ws_.query_range), raw(c.qkv), raw(c.o),
                                        raw(c.lse), raw(ws_.d_tmp2), raw(ws_.d_qkv), raw(ws_.d_attention));
    rotate_qk(raw(ws_.d_qkv), -1);
    layers::linear_backward<Backend>(N, Hd, 3 * Hd, raw(c.m1), p(bp.qkv_w), raw(ws_.d_qkv), raw(ws_.d_tmp), g(bp.qkv_w),
                                     g(bp.qkv_b));
    layers::modulate_backward<Backend>(F, Hd, raw(c.n1), slice(c.mod, Mod::scale_msa), ld, ftb, raw(ws_.d_tmp),
                                       raw(ws_.d_tmp2), slice(dmod, Mod::shift_msa), slice(dmod, Mod::scale_msa));
    layers::layernorm_backward<Backend>(N, Hd, raw(c.n1), raw(c.rstd1), raw(ws_.d_tmp2), raw(ws_.dx), true);
    // adaLN: mod = SiLU(c)·W + b.
    layers::linear_backward<Backend>(F, Hd, ld, raw(ws_.cond_act), p(bp.adaln_w), raw(dmod), raw(ws_.d_cond_act),
                                     g(bp.adaln_w), g(bp.adaln_b), true);
  }

  /// The patch embedding, the rate token and the conditioning (time MLP, kind, class, length).
  void embeddings_backward() {
    const ParameterIndex& x = layout_.index;
    const std::ptrdiff_t F = F_, N = N_, Hd = hd(), P = pd();
    layers::linear_backward<Backend>(N, P, Hd, raw(ws_.patches), p(x.patch_w), raw(ws_.dx), static_cast<T*>(nullptr),
                                     g(x.patch_w), static_cast<T*>(nullptr));
    const bool token_head = cfg_.rate_head == RateHead::token;
    Backend::parallel_for(Hd, kernels::TokenBiasGradient<T>{raw(ws_.dx), g(x.patch_b), token_head ? g(x.rate_token) : nullptr,
                                                           N, tpf(), tp(), Hd});
    layers::activation_backward<Backend, layers::Silu>(F * Hd, raw(ws_.cond), raw(ws_.d_cond_act), raw(ws_.d_cond));
    layers::embedding_backward<Backend>(F, Hd, raw(ws_.kind_index), raw(ws_.d_cond), g(x.kind_embed));
    if (cfg_.num_classes > 0) layers::embedding_backward<Backend>(F, Hd, raw(ws_.class_index), raw(ws_.d_cond), g(x.class_embed));
    if (cfg_.length_conditioning)
      layers::linear_backward<Backend>(F, lf(), Hd, raw(ws_.length_features), p(x.length_cond_w), raw(ws_.d_cond),
                                       static_cast<T*>(nullptr), g(x.length_cond_w), g(x.length_cond_b));
    layers::linear_backward<Backend>(F, Hd, Hd, raw(ws_.time_act), p(x.time2_w), raw(ws_.d_cond), raw(ws_.d_time_act),
                                     g(x.time2_w), g(x.time2_b));
    layers::activation_backward<Backend, layers::Silu>(F * Hd, raw(ws_.time_hidden), raw(ws_.d_time_act),
                                                       raw(ws_.d_time_hidden));
    layers::linear_backward<Backend>(F, fd(), Hd, raw(ws_.time_embedding), p(x.time1_w), raw(ws_.d_time_hidden),
                                     static_cast<T*>(nullptr), g(x.time1_w), g(x.time1_b));
  }

  // ---- FLOPs -----------------------------------------------------------------------------------
  FlopCount flops(bool backward) const {
    const double F = static_cast<double>(F_), N = static_cast<double>(N_), Hd = static_cast<double>(hd());
    const double P = static_cast<double>(pd()), M = static_cast<double>(cfg_.mlp_hidden());
    const double FD = static_cast<double>(cfg_.frequency_dim), L = static_cast<double>(cfg_.depth);
    // Linear layers: 2·rows·in·out forward; backward computes dX and dW (twice that), except
    // for the first layers of the graph, whose input gradient is not needed.
    double lin = N * P * Hd + F * (FD * Hd + Hd * Hd) + L * (F * Hd * 6 * Hd + N * Hd * 3 * Hd + N * Hd * Hd + 2 * N * Hd * M) +
                 F * Hd * 2 * Hd + N * Hd * P + F * (Hd * Hd + Hd);
    const double LF = static_cast<double>(cfg_.length_features());
    const double length_layers = (cfg_.length_aware ? 1.0 : 0.0) + (cfg_.length_conditioning ? 1.0 : 0.0);
    lin += length_layers * F * LF * Hd;
    // Patch embedding, the first time-MLP layer and the length embeddings: no input gradient.
    double lin_no_dx = N * P * Hd + F * FD * Hd + length_layers * F * LF * Hd;
    double pairs = 0;  // Σ over tiles of query rows × keys
    for (const auto& t : ws_.tiles) pairs += static_cast<double>(t.q_end - t.q_begin) * static_cast<double>(t.k_end - t.k_begin);
    FlopCount c;
    if (!backward) {
      c.other = 2 * lin;
      c.attention = L * 4 * pairs * Hd;
    } else {
      c.other = 4 * lin - 2 * lin_no_dx;
      c.attention = L * 10 * pairs * Hd;  // recomputed QKᵀ, dV, dP, dQ, dK
    }
    return c;
  }

  DitConfig cfg_;
  ParameterLayout layout_;  ///< the parameter table, the index of every tensor, the counts
  buffer<T> params_;        ///< [parameter_buffer_size()] every tensor at its table offset
  buffer<T> grads_;         ///< [parameter_buffer_size()] laid out as params_
  // The last batch: its frames, tokens and videos, and everything sized by them.
  std::ptrdiff_t F_ = 0, N_ = 0;
  std::size_t videos_ = 0;
  std::ptrdiff_t rope_pairs_ = 0;  ///< rotary pairs per head
  Workspace<T, Backend::template buffer> ws_;
};

static_assert(VelocityModel<DiT<float>, HostFrames<float>>);
static_assert(VelocityModel<DiT<double>, HostFrames<double>>);

}  // namespace flowception::dit
