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

/// One named parameter tensor inside the flat parameter buffer.
struct ParameterInfo {
  std::string name;                ///< Tensor name, as in checkpoints (e.g. `blocks.0.attn.qkv.weight`; `docs/dit.md`).
  std::vector<std::size_t> shape;  ///< Shape; [in, out] for linear weights (row-major, y = x·W + b).
  /// First element in the flat buffer: a multiple of kBufferAlignment bytes, so every tensor of
  /// the parameter, gradient, moment and EMA buffers starts on that boundary (padding between
  /// tensors is zero and belongs to no tensor; checkpoints store the tensors unpadded).
  std::size_t offset = 0;
  std::size_t size = 0;    ///< Element count (product of shape).
  /// Initialisation (§6): Xavier uniform (`xavier`), N(0, 0.02²) (`normal002`) or zeros (`zero`).
  enum class Init { xavier, normal002, zero } init = Init::zero;  ///< How init_parameters() draws this tensor.
};

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
/// A VelocityModel over the backend's frames (evaluate()).
template <class T, class Backend = CpuBackend>
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
    build_parameter_table();
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
  const std::vector<ParameterInfo>& parameter_table() const { return table_; }
  /// Bytes the workspace holds now (capacities of every activation, scratch, index and host
  /// buffer; weights and gradients excluded): what DitConfig::workspace_bytes() bounds.
  std::size_t workspace_bytes() const {
    std::size_t b = 0;
    auto add = [&](const auto&... bufs) { ((b += bufs.capacity() * sizeof(typename std::decay_t<decltype(bufs)>::value_type)), ...); };
    add(h_token_frame_, h_frame_token_begin_, h_kind_index_, h_class_index_, h_key_range_, h_query_range_, h_lfeat_,
        h_temb_, host_scalars_, positions_, tiles_, token_frame_, frame_token_begin_, kind_index_, class_index_,
        key_range_, query_range_, rope_cos_, rope_sin_, patches_, x_, temb_, h1_, a1_, c_, sc_, fmod_, nf_, rstdf_, mf_,
        out_, rin_, r1_, ra_, ell_, lfeat_, lemb_, lcond_, dell_, dra_, datt_, dr1_, drin_, dout_, dmf_, dfmod_, dnf_, dx_,
        dsc_, dc_, da1_, dh1_, dmod_, dbuf_, dbuf2_, dbig_, dqkv_, rope_.cos, rope_.sin);
    for (const auto& c : blocks_)
      add(c.mod, c.n1, c.rstd1, c.m1, c.qkv, c.o, c.lse, c.a, c.n2, c.rstd2, c.m2, c.h, c.gl, c.y);
    return b;
  }
  /// The parameters of the model (DitConfig::parameter_count()), padding excluded.
  std::size_t parameter_count() const { return count_; }
  /// Values of the flat parameter (and gradient) buffer: the parameters and the padding that puts
  /// each tensor on a kBufferAlignment-byte boundary. Host copies (host_parameters(),
  /// set_parameters()) have this layout.
  std::size_t parameter_buffer_size() const { return params_.size(); }
  /// Sets every gradient to zero (backward() accumulates).
  void zero_grad() { Backend::fill(raw(grads_), grads_.size(), T(0)); }

  /// Re-draws every parameter from `seed` with the initialisation of §6 (zero adaLN/outputs).
  void init_parameters(std::uint64_t seed) {
    std::vector<T> host(params_.size());
    for (const auto& p : table_) {
      T* w = host.data() + p.offset;
      // Keyed by the name, so a parameter's initial value does not depend on the model's depth.
      std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
      for (unsigned char ch : p.name) h = (h ^ ch) * 0x100000001b3ULL;
      random::Stream rng(seed, random::derive_stream(0x64697470ULL, h));
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
    const std::ptrdiff_t F = F_, N = N_, Hd = hd(), P = pd(), Tp = tp();
    const layers::PatchGeometry geo = geometry();
    // Patch tokens (rate rows of `patches_` stay zero) and their embedding.
    zeroed(patches_, static_cast<std::size_t>(N * P));
    Backend::parallel_for(F, kernels::PatchifyFrames<T>{geo, frames, raw(patches_), tpf(), P});
    x_.resize(static_cast<std::size_t>(N * Hd));
    layers::linear_forward<Backend>(N, P, Hd, raw(patches_), p(pe_w_), static_cast<const T*>(nullptr), raw(x_));
    const bool token_head = cfg_.rate_head == RateHead::token;
    Backend::parallel_for(N, kernels::AddTokenBias<T>{raw(x_), p(pe_b_), token_head ? p(rate_token_) : nullptr, tpf(),
                                                      Tp, Hd});
    // Conditioning c_f = MLP(sinusoidal(1000·t_f)) + kind (+ class); sc = SiLU(c) feeds every adaLN.
    // The sinusoids were computed on the host by prepare() (a few numbers per frame).
    const std::ptrdiff_t FD = static_cast<std::ptrdiff_t>(cfg_.frequency_dim);
    h1_.resize(static_cast<std::size_t>(F * Hd));
    a1_.resize(h1_.size());
    c_.resize(h1_.size());
    sc_.resize(h1_.size());
    layers::linear_forward<Backend>(F, FD, Hd, raw(temb_), p(t1_w_), p(t1_b_), raw(h1_));
    layers::activation_forward<Backend, layers::Silu>(F * Hd, raw(h1_), raw(a1_));
    layers::linear_forward<Backend>(F, Hd, Hd, raw(a1_), p(t2_w_), p(t2_b_), raw(c_));
    layers::embedding_add<Backend>(F, Hd, p(kind_emb_), raw(kind_index_), raw(c_));
    if (cfg_.num_classes > 0) layers::embedding_add<Backend>(F, Hd, p(class_emb_), raw(class_index_), raw(c_));
    if (cfg_.length_conditioning) {
      const std::ptrdiff_t LF = static_cast<std::ptrdiff_t>(cfg_.length_features());
      lcond_.resize(c_.size());
      layers::linear_forward<Backend>(F, LF, Hd, raw(lfeat_), p(lc_w_), p(lc_b_), raw(lcond_));
      Backend::parallel_for(F * Hd, kernels::AddInPlace<T>{raw(c_), raw(lcond_)});
    }
    layers::activation_forward<Backend, layers::Silu>(F * Hd, raw(c_), raw(sc_));

    blocks_.resize(cfg_.depth);
    for (std::size_t l = 0; l < cfg_.depth; ++l) block_forward(l);

    // Final layer: adaLN + zero-initialised linear → velocity; LN'd rate token → rate MLP → ℓ.
    fmod_.resize(static_cast<std::size_t>(F * 2 * Hd));
    layers::linear_forward<Backend>(F, Hd, 2 * Hd, raw(sc_), p(f_ada_w_), p(f_ada_b_), raw(fmod_));
    nf_.resize(x_.size());
    rstdf_.resize(static_cast<std::size_t>(N));
    mf_.resize(x_.size());
    layers::layernorm_forward<Backend>(N, Hd, raw(x_), raw(nf_), raw(rstdf_));
    layers::modulate_forward<Backend>(N, Hd, raw(nf_), raw(fmod_), raw(fmod_) + Hd, 2 * Hd, raw(token_frame_),
                                      raw(mf_));
    out_.resize(static_cast<std::size_t>(N * P));
    layers::linear_forward<Backend>(N, Hd, P, raw(mf_), p(out_w_), p(out_b_), raw(out_));
    Backend::parallel_for(F, kernels::UnpatchifyFrames<T>{geo, raw(out_), velocity, tpf(), P});
    // Rate-head input: the normalised rate token, or the mean of the frame's normalised patch
    // tokens; plus, when length-aware, the embedding of (n, i, n − 1 − i).
    rin_.resize(static_cast<std::size_t>(F * Hd));
    if (token_head)
      Backend::parallel_for(F, kernels::GatherRateToken<T>{raw(nf_), raw(rin_), tpf(), Tp, Hd});
    else
      Backend::parallel_for(F, kernels::MeanPatchTokens<T>{raw(nf_), raw(rin_), tpf(), Tp, Hd});
    if (cfg_.length_aware) {
      const std::ptrdiff_t LF = static_cast<std::ptrdiff_t>(cfg_.length_features());
      lemb_.resize(rin_.size());
      layers::linear_forward<Backend>(F, LF, Hd, raw(lfeat_), p(len_w_), p(len_b_), raw(lemb_));
      Backend::parallel_for(F * Hd, kernels::AddInPlace<T>{raw(rin_), raw(lemb_)});
    }
    r1_.resize(rin_.size());
    ra_.resize(rin_.size());
    layers::linear_forward<Backend>(F, Hd, Hd, raw(rin_), p(r1_w_), p(r1_b_), raw(r1_));
    layers::activation_forward<Backend, layers::Silu>(F * Hd, raw(r1_), raw(ra_));
    ell_.resize(static_cast<std::size_t>(F));
    layers::linear_forward<Backend>(F, Hd, 1, raw(ra_), p(r2_w_), p(r2_b_), raw(ell_));
    // The log-rates (one number per frame) are the only output that crosses to the host, and
    // only when asked for: training on a device reads them in place (device_log_rate()).
    if (!log_rate) return;
    host_scalars_.resize(static_cast<std::size_t>(F));
    Backend::download(raw(ell_), static_cast<std::size_t>(F), host_scalars_.data());
    for (std::ptrdiff_t f = 0; f < F; ++f) log_rate[f] = static_cast<double>(host_scalars_[static_cast<std::size_t>(f)]);
  }

  /// The log-rates of the last forward pass in the backend's memory (frames() values of T): what
  /// forward() copies to `log_rate`, for callers that keep them on the device.
  const T* device_log_rate() const { return raw(ell_); }

  /// Backward pass of the last forward(): accumulates ∂L/∂θ into gradients() given ∂L/∂velocity
  /// (F × frame_dim, backend memory) and ∂L/∂ℓ (F, host memory).
  ///
  /// `ready(begin, end)`, when given, is called as soon as the gradients of parameters
  /// [begin, end) (flat offsets) are final, in this order: the heads after the last block, then
  /// each block from the last to the first, then the embeddings; the ranges are contiguous and
  /// cover the buffer. Data-parallel training starts reducing a range there while the backward
  /// pass goes on (distributed/gradient_buckets.hpp). On a device backend the range is final in
  /// stream order, not yet on the host clock.
  template <class Ready = std::nullptr_t>
  void backward(const T* dvelocity, const double* dlog_rate, Ready&& ready = nullptr) {
    dell_.resize(static_cast<std::size_t>(F_));
    host_scalars_.resize(static_cast<std::size_t>(F_));
    for (std::ptrdiff_t f = 0; f < F_; ++f) host_scalars_[static_cast<std::size_t>(f)] = static_cast<T>(dlog_rate[f]);
    Backend::upload(host_scalars_.data(), static_cast<std::size_t>(F_), raw(dell_));
    backward_device(dvelocity, raw(dell_), std::forward<Ready>(ready));
  }

  /// The same, with ∂L/∂ℓ in the backend's memory (frames() values of T), as the device losses
  /// (train/device_loss.hpp) leave it: nothing crosses to or from the host.
  template <class Ready = std::nullptr_t>
  void backward_device(const T* dvelocity, const T* dlog_rate, Ready&& ready = nullptr) {
    auto announce = [&](std::size_t begin, std::size_t end) {
      if constexpr (!std::is_same_v<std::remove_cvref_t<Ready>, std::nullptr_t>) ready(begin, end);
    };
    const std::ptrdiff_t F = F_, N = N_, Hd = hd(), P = pd(), Tp = tp();
    const layers::PatchGeometry geo = geometry();
    // Rate head.
    dra_.resize(ra_.size());
    layers::linear_backward<Backend>(F, Hd, 1, raw(ra_), p(r2_w_), dlog_rate, raw(dra_), g(r2_w_), g(r2_b_));
    dr1_.resize(r1_.size());
    layers::activation_backward<Backend, layers::Silu>(F * Hd, raw(r1_), raw(dra_), raw(dr1_));
    drin_.resize(rin_.size());
    layers::linear_backward<Backend>(F, Hd, Hd, raw(rin_), p(r1_w_), raw(dr1_), raw(drin_), g(r1_w_), g(r1_b_));
    // Velocity head.
    zeroed(dout_, static_cast<std::size_t>(N * P));
    Backend::parallel_for(F, kernels::PatchifyFrames<T>{geo, dvelocity, raw(dout_), tpf(), P});
    dmf_.resize(x_.size());
    layers::linear_backward<Backend>(N, Hd, P, raw(mf_), p(out_w_), raw(dout_), raw(dmf_), g(out_w_), g(out_b_));
    zeroed(dfmod_, fmod_.size());
    dnf_.resize(x_.size());
    layers::modulate_backward<Backend>(F, Hd, raw(nf_), raw(fmod_) + Hd, 2 * Hd, raw(frame_token_begin_),
                                       raw(dmf_), raw(dnf_), raw(dfmod_), raw(dfmod_) + Hd);
    if (cfg_.rate_head == RateHead::token)
      Backend::parallel_for(F, kernels::ScatterRateToken<T>{raw(drin_), raw(dnf_), tpf(), Tp, Hd});
    else
      Backend::parallel_for(F, kernels::SpreadMeanGradient<T>{raw(drin_), raw(dnf_), tpf(), Tp, Hd});
    if (cfg_.length_aware) {
      const std::ptrdiff_t LF = static_cast<std::ptrdiff_t>(cfg_.length_features());
      layers::linear_backward<Backend>(F, LF, Hd, raw(lfeat_), p(len_w_), raw(drin_), static_cast<T*>(nullptr),
                                       g(len_w_), g(len_b_));
    }
    dx_.resize(x_.size());
    layers::layernorm_backward<Backend>(N, Hd, raw(nf_), raw(rstdf_), raw(dnf_), raw(dx_));
    zeroed(dsc_, sc_.size());
    layers::linear_backward<Backend>(F, Hd, 2 * Hd, raw(sc_), p(f_ada_w_), raw(dfmod_), raw(dsc_), g(f_ada_w_),
                                     g(f_ada_b_), true);
    announce(table_[f_ada_w_].offset, params_.size());  // the heads: everything after the last block
    for (std::size_t l = cfg_.depth; l-- > 0;) {
      block_backward(l);
      // Up to the next block's first tensor: the padding after the block's last tensor is in its range.
      announce(table_[bidx_[l].ada_w].offset, l + 1 < cfg_.depth ? table_[bidx_[l + 1].ada_w].offset
                                                                  : table_[f_ada_w_].offset);
    }
    // Patch embedding and rate token.
    layers::linear_backward<Backend>(N, P, Hd, raw(patches_), p(pe_w_), raw(dx_), static_cast<T*>(nullptr),
                                     g(pe_w_), static_cast<T*>(nullptr));
    Backend::parallel_for(Hd, kernels::TokenBiasGradient<T>{raw(dx_), g(pe_b_),
                                                           cfg_.rate_head == RateHead::token ? g(rate_token_) : nullptr,
                                                           N, tpf(), Tp, Hd});
    // Conditioning.
    dc_.resize(c_.size());
    layers::activation_backward<Backend, layers::Silu>(F * Hd, raw(c_), raw(dsc_), raw(dc_));
    layers::embedding_backward<Backend>(F, Hd, raw(kind_index_), raw(dc_), g(kind_emb_));
    if (cfg_.num_classes > 0) layers::embedding_backward<Backend>(F, Hd, raw(class_index_), raw(dc_), g(class_emb_));
    if (cfg_.length_conditioning) {
      const std::ptrdiff_t LF = static_cast<std::ptrdiff_t>(cfg_.length_features());
      layers::linear_backward<Backend>(F, LF, Hd, raw(lfeat_), p(lc_w_), raw(dc_), static_cast<T*>(nullptr),
                                       g(lc_w_), g(lc_b_));
    }
    da1_.resize(a1_.size());
    layers::linear_backward<Backend>(F, Hd, Hd, raw(a1_), p(t2_w_), raw(dc_), raw(da1_), g(t2_w_), g(t2_b_));
    dh1_.resize(h1_.size());
    layers::activation_backward<Backend, layers::Silu>(F * Hd, raw(h1_), raw(da1_), raw(dh1_));
    const std::ptrdiff_t FD = static_cast<std::ptrdiff_t>(cfg_.frequency_dim);
    layers::linear_backward<Backend>(F, FD, Hd, raw(temb_), p(t1_w_), raw(dh1_), static_cast<T*>(nullptr),
                                     g(t1_w_), g(t1_b_));
    announce(0, table_[bidx_.front().ada_w].offset);  // embeddings and conditioning
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
  struct BlockIndex {
    std::size_t ada_w, ada_b, qkv_w, qkv_b, proj_w, proj_b, fc1_w, fc1_b, fc2_w, fc2_b;
  };
  struct BlockCache {
    buffer<T> mod, n1, rstd1, m1, qkv, o, lse, a, n2, rstd2, m2, h, gl, y;
  };

  std::ptrdiff_t hd() const { return static_cast<std::ptrdiff_t>(cfg_.width_hidden); }
  std::ptrdiff_t pd() const { return static_cast<std::ptrdiff_t>(cfg_.patch_dim()); }
  std::ptrdiff_t tp() const { return static_cast<std::ptrdiff_t>(cfg_.patch_tokens()); }
  std::ptrdiff_t tpf() const { return static_cast<std::ptrdiff_t>(cfg_.tokens_per_frame()); }
  layers::PatchGeometry geometry() const {
    return {static_cast<std::ptrdiff_t>(cfg_.channels), static_cast<std::ptrdiff_t>(cfg_.height),
            static_cast<std::ptrdiff_t>(cfg_.width), static_cast<std::ptrdiff_t>(cfg_.patch)};
  }
  T* p(std::size_t i) { return raw(params_) + table_[i].offset; }
  T* g(std::size_t i) { return raw(grads_) + table_[i].offset; }

  /// Elements of T per kBufferAlignment bytes: tensor offsets are multiples of it.
  static constexpr std::size_t kAlignElements = kBufferAlignment / sizeof(T);
  static_assert(kBufferAlignment % sizeof(T) == 0);
  static constexpr std::size_t round_up(std::size_t n) { return (n + kAlignElements - 1) / kAlignElements * kAlignElements; }

  std::size_t add(std::string name, std::vector<std::size_t> shape, ParameterInfo::Init init) {
    std::size_t size = 1;
    for (auto s : shape) size *= s;
    const std::size_t offset = table_.empty() ? 0 : round_up(table_.back().offset + table_.back().size);
    table_.push_back({std::move(name), std::move(shape), offset, size, init});
    return table_.size() - 1;
  }

  /// f(begin, end) for every range of padding in the flat buffer (between tensors, and after the
  /// last one up to parameter_buffer_size()).
  template <class F>
  void for_each_padding(F&& f) const {
    for (std::size_t i = 0; i < table_.size(); ++i) {
      const std::size_t end = table_[i].offset + table_[i].size;
      const std::size_t next = i + 1 < table_.size() ? table_[i + 1].offset : params_.size();
      if (next > end) f(end, next);
    }
  }

  /// Resizes `b` to n values and sets them to zero on the backend (no host wait on a device).
  template <class U>
  static void zeroed(buffer<U>& b, std::size_t n) {
    b.resize(n);
    Backend::fill(Backend::raw(b), n, U(0));
  }

  void build_parameter_table() {
    using I = ParameterInfo::Init;
    const std::size_t H = cfg_.width_hidden, P = cfg_.patch_dim(), M = cfg_.mlp_hidden();
    pe_w_ = add("patch_embed.weight", {P, H}, I::xavier);
    pe_b_ = add("patch_embed.bias", {H}, I::zero);
    if (cfg_.rate_head == RateHead::token) rate_token_ = add("rate_token", {H}, I::normal002);
    t1_w_ = add("time_mlp.0.weight", {cfg_.frequency_dim, H}, I::normal002);
    t1_b_ = add("time_mlp.0.bias", {H}, I::zero);
    t2_w_ = add("time_mlp.2.weight", {H, H}, I::normal002);
    t2_b_ = add("time_mlp.2.bias", {H}, I::zero);
    kind_emb_ = add("kind_embed", {3, H}, I::normal002);
    if (cfg_.num_classes > 0) class_emb_ = add("class_embed", {cfg_.num_classes + 1, H}, I::normal002);
    if (cfg_.length_conditioning) {
      // Zero-initialised like the length embedding of the rate head.
      lc_w_ = add("length_cond.weight", {cfg_.length_features(), H}, I::zero);
      lc_b_ = add("length_cond.bias", {H}, I::zero);
    }
    for (std::size_t l = 0; l < cfg_.depth; ++l) {
      const std::string b = "blocks." + std::to_string(l) + ".";
      BlockIndex bi{};
      bi.ada_w = add(b + "adaLN.weight", {H, 6 * H}, I::zero);
      bi.ada_b = add(b + "adaLN.bias", {6 * H}, I::zero);
      bi.qkv_w = add(b + "attn.qkv.weight", {H, 3 * H}, I::xavier);
      bi.qkv_b = add(b + "attn.qkv.bias", {3 * H}, I::zero);
      bi.proj_w = add(b + "attn.proj.weight", {H, H}, I::xavier);
      bi.proj_b = add(b + "attn.proj.bias", {H}, I::zero);
      bi.fc1_w = add(b + "mlp.fc1.weight", {H, M}, I::xavier);
      bi.fc1_b = add(b + "mlp.fc1.bias", {M}, I::zero);
      bi.fc2_w = add(b + "mlp.fc2.weight", {M, H}, I::xavier);
      bi.fc2_b = add(b + "mlp.fc2.bias", {H}, I::zero);
      bidx_.push_back(bi);
    }
    f_ada_w_ = add("final.adaLN.weight", {H, 2 * H}, I::zero);
    f_ada_b_ = add("final.adaLN.bias", {2 * H}, I::zero);
    out_w_ = add("final.linear.weight", {H, P}, I::zero);
    out_b_ = add("final.linear.bias", {P}, I::zero);
    r1_w_ = add("rate_head.0.weight", {H, H}, I::xavier);
    r1_b_ = add("rate_head.0.bias", {H}, I::zero);
    r2_w_ = add("rate_head.2.weight", {H, 1}, I::zero);
    r2_b_ = add("rate_head.2.bias", {1}, I::zero);
    if (cfg_.length_aware) {
      // Zero-initialised: switching the option on does not change the model at initialisation.
      len_w_ = add("rate_head.length_embed.weight", {cfg_.length_features(), H}, I::zero);
      len_b_ = add("rate_head.length_embed.bias", {H}, I::zero);
    }
    count_ = 0;
    for (const auto& p : table_) count_ += p.size;
    const std::size_t count = round_up(table_.back().offset + table_.back().size);
    if constexpr (requires { Backend::available_memory_bytes(); }) {
      // Weights and gradients must fit before anything is allocated (activations come on top).
      const double need = 2.0 * static_cast<double>(count) * sizeof(T);
      const double have = static_cast<double>(Backend::available_memory_bytes());
      detail::require<ConfigError>(need <= have, "DiT '", cfg_.name, "' is too large for ", Backend::name(),
                                   " memory: ", count, " parameters need ", need / (1 << 30),
                                   " GiB for weights and gradients alone, ", have / (1 << 30), " GiB are free");
    }
    params_.resize(count);
    grads_.resize(count);
    Backend::fill(raw(params_), count, T(0));
    Backend::fill(raw(grads_), count, T(0));
  }

  /// Token structure of a packed batch: frames, token→frame map, rotary positions, tiles.
  void prepare(const DitBatch& b) {
    detail::require<ShapeError>(b.offsets.size() >= 2 && b.offsets.front() == 0, "DiT batch needs offsets [0, ...]");
    const std::size_t videos = b.offsets.size() - 1;
    F_ = static_cast<std::ptrdiff_t>(b.offsets.back());
    detail::require<ShapeError>(b.times.size() == static_cast<std::size_t>(F_) &&
                                    b.kinds.size() == static_cast<std::size_t>(F_),
                                "DiT batch: times/kinds must have one entry per frame (", F_, ")");
    detail::require<ShapeError>(b.conditions.empty() || b.conditions.size() == videos,
                                "DiT batch: conditions must have one entry per video");
    detail::require<ShapeError>(b.drop_condition.empty() || b.drop_condition.size() == videos,
                                "DiT batch: drop_condition must have one entry per video");
    N_ = F_ * tpf();
    h_token_frame_.resize(static_cast<std::size_t>(N_));
    h_frame_token_begin_.resize(static_cast<std::size_t>(F_ + 1));
    h_kind_index_.resize(static_cast<std::size_t>(F_));
    h_class_index_.resize(static_cast<std::size_t>(F_));
    positions_.resize(static_cast<std::size_t>(N_));
    tiles_.clear();
    h_lfeat_.resize(static_cast<std::size_t>(F_) * cfg_.length_features());
    const double gh = static_cast<double>(cfg_.grid_h()), gw = static_cast<double>(cfg_.grid_w());
    for (std::size_t v = 0; v < videos; ++v) {
      const auto fb = static_cast<std::ptrdiff_t>(b.offsets[v]), fe = static_cast<std::ptrdiff_t>(b.offsets[v + 1]);
      detail::require<ShapeError>(fe >= fb, "DiT batch: offsets must be non-decreasing");
      const std::int64_t label = b.conditions.empty() ? kNoCondition : b.conditions[v];
      const bool drop = !b.drop_condition.empty() && b.drop_condition[v] != 0;
      if (cfg_.num_classes > 0)
        detail::require<ShapeError>(label == kNoCondition || (label >= 0 && label < static_cast<std::int64_t>(cfg_.num_classes)),
                                    "DiT batch: class ", label, " outside [0, ", cfg_.num_classes, ")");
      else  // a label would be ignored: refusing it says so instead of pretending to condition
        detail::require<ShapeError>(label == kNoCondition, "DiT batch: video ", v, " has class ", label,
                                    ", but this DiT is unconditional (num_classes = 0)");
      const std::int64_t cls = (drop || label == kNoCondition) ? static_cast<std::int64_t>(cfg_.num_classes) : label;
      for (std::ptrdiff_t f = fb; f < fe; ++f) {
        const double t = b.times[f];
        detail::require<ShapeError>(std::isfinite(t) && t >= 0.0 && t <= 1.0, "DiT batch: time ", t, " of frame ", f,
                                    " outside [0, 1]");
        h_kind_index_[f] = static_cast<std::int64_t>(b.kinds[f]);
        h_class_index_[f] = cls;
        h_frame_token_begin_[f] = f * tpf();
        const double fi = b.first_frame_position + static_cast<double>(f - fb);
        if (cfg_.length_features() > 0) {
          // Sinusoids of the integers n, i and n − 1 − i (timestep_embedding embeds 1000·t).
          const std::ptrdiff_t E = static_cast<std::ptrdiff_t>(DitConfig::kLengthEmbedDim);
          const double n = static_cast<double>(fe - fb), i = static_cast<double>(f - fb);
          T* row = h_lfeat_.data() + f * 3 * E;
          layers::timestep_embedding(n / 1000.0, E, row);
          layers::timestep_embedding(i / 1000.0, E, row + E);
          layers::timestep_embedding((n - 1.0 - i) / 1000.0, E, row + 2 * E);
        }
        for (std::ptrdiff_t t = 0; t < tpf(); ++t) {
          const std::ptrdiff_t r = f * tpf() + t;
          h_token_frame_[r] = static_cast<std::int32_t>(f);
          positions_[r] = t < tp() ? std::array<double, 3>{fi, static_cast<double>(t / cfg_.grid_w()),
                                                           static_cast<double>(t % cfg_.grid_w())}
                                   : std::array<double, 3>{fi, (gh - 1.0) / 2.0, (gw - 1.0) / 2.0};
        }
        std::ptrdiff_t kf0 = fb, kf1 = fe;  // key frames [kf0, kf1)
        if (cfg_.window >= 0) {
          kf0 = std::max(fb, f - cfg_.window);
          kf1 = std::min(fe, f + cfg_.window + 1);
        }
        if (cfg_.causal) kf1 = f + 1;
        for (std::ptrdiff_t q = f * tpf(); q < (f + 1) * tpf();) {
          const std::ptrdiff_t k0 = kf0 * tpf(), k1 = kf1 * tpf();
          auto* last = tiles_.empty() ? nullptr : &tiles_.back();
          if (last && last->k_begin == k0 && last->k_end == k1 && last->q_end == q &&
              last->q_end - last->q_begin < layers::kTileRows) {
            const std::ptrdiff_t grow = std::min(layers::kTileRows - (last->q_end - last->q_begin), (f + 1) * tpf() - q);
            last->q_end += grow;
            q += grow;
          } else {
            const std::ptrdiff_t end = std::min(q + layers::kTileRows, (f + 1) * tpf());
            tiles_.push_back({q, end, k0, k1});
            q = end;
          }
        }
      }
    }
    h_frame_token_begin_[F_] = N_;
    rope_.build(positions_, {cfg_.rope_dim(0), cfg_.rope_dim(1), cfg_.rope_dim(2)}, cfg_.rope_base);
    // Per-token attention ranges for the row kernels of device backends (layers/attention.hpp).
    if constexpr (!Backend::kEigenKernels) {
      h_key_range_.assign(static_cast<std::size_t>(2 * N_), 0);
      h_query_range_.assign(static_cast<std::size_t>(2 * N_), 0);
      for (std::ptrdiff_t r = 0; r < N_; ++r) {
        h_query_range_[2 * r] = N_;  // min/max over the queries that see key r
        h_query_range_[2 * r + 1] = 0;
      }
      for (const auto& t : tiles_)
        for (std::ptrdiff_t q = t.q_begin; q < t.q_end; ++q) {
          h_key_range_[2 * q] = t.k_begin;
          h_key_range_[2 * q + 1] = t.k_end;
        }
      for (const auto& t : tiles_)
        for (std::ptrdiff_t k = t.k_begin; k < t.k_end; ++k) {
          h_query_range_[2 * k] = std::min<std::int64_t>(h_query_range_[2 * k], t.q_begin);
          h_query_range_[2 * k + 1] = std::max<std::int64_t>(h_query_range_[2 * k + 1], t.q_end);
        }
      // The masks (packing, window, causal) make each key's query set a contiguous range.
      upload_to(h_key_range_, key_range_);
      upload_to(h_query_range_, query_range_);
    }
    // Everything the kernels read goes to the backend's memory once per batch.
    upload_to(h_token_frame_, token_frame_);
    upload_to(h_frame_token_begin_, frame_token_begin_);
    upload_to(h_kind_index_, kind_index_);
    upload_to(h_class_index_, class_index_);
    upload_to(h_lfeat_, lfeat_);
    upload_to(rope_.cos, rope_cos_);
    upload_to(rope_.sin, rope_sin_);
    const std::ptrdiff_t FD = static_cast<std::ptrdiff_t>(cfg_.frequency_dim);
    h_temb_.resize(static_cast<std::size_t>(F_ * FD));
    for (std::ptrdiff_t f = 0; f < F_; ++f) layers::timestep_embedding(b.times[f], FD, h_temb_.data() + f * FD);
    upload_to(h_temb_, temb_);
  }

  template <class U>
  static void upload_to(const std::vector<U>& host, buffer<U>& dst) {
    dst.resize(host.size());
    if (!host.empty()) Backend::upload(host.data(), host.size(), Backend::raw(dst));
  }
  template <class U>
  static std::vector<U> to_host(const buffer<U>& src) {
    std::vector<U> host(src.size());
    if (!host.empty()) Backend::download(Backend::raw(src), host.size(), host.data());
    return host;
  }
  template <class U>
  static U* raw(buffer<U>& b) { return Backend::raw(b); }
  template <class U>
  static const U* raw(const buffer<U>& b) { return Backend::raw(b); }


  FlopCount flops(bool backward) const {
    const double F = static_cast<double>(F_), N = static_cast<double>(N_), H = static_cast<double>(hd());
    const double P = static_cast<double>(pd()), M = static_cast<double>(cfg_.mlp_hidden());
    const double FD = static_cast<double>(cfg_.frequency_dim), L = static_cast<double>(cfg_.depth);
    // Linear layers: 2·rows·in·out forward; backward computes dX and dW (twice that), except
    // for the first layers of the graph, whose input gradient is not needed.
    double lin = N * P * H + F * (FD * H + H * H) + L * (F * H * 6 * H + N * H * 3 * H + N * H * H + 2 * N * H * M) +
                 F * H * 2 * H + N * H * P + F * (H * H + H);
    const double LF = static_cast<double>(cfg_.length_features());
    const double length_layers = (cfg_.length_aware ? 1.0 : 0.0) + (cfg_.length_conditioning ? 1.0 : 0.0);
    lin += length_layers * F * LF * H;
    // Patch embedding, the first time-MLP layer and the length embeddings: no input gradient.
    double lin_no_dx = N * P * H + F * FD * H + length_layers * F * LF * H;
    double pairs = 0;  // Σ over tiles of query rows × keys
    for (const auto& t : tiles_) pairs += static_cast<double>(t.q_end - t.q_begin) * static_cast<double>(t.k_end - t.k_begin);
    FlopCount c;
    if (!backward) {
      c.other = 2 * lin;
      c.attention = L * 4 * pairs * H;
    } else {
      c.other = 4 * lin - 2 * lin_no_dx;
      c.attention = L * 10 * pairs * H;  // recomputed QKᵀ, dV, dP, dQ, dK
    }
    return c;
  }

  void block_forward(std::size_t l) {
    const BlockIndex& bi = bidx_[l];
    BlockCache& c = blocks_[l];
    const std::ptrdiff_t F = F_, N = N_, Hd = hd(), M = static_cast<std::ptrdiff_t>(cfg_.mlp_hidden());
    const std::ptrdiff_t H = static_cast<std::ptrdiff_t>(cfg_.heads);
    auto sz = [](std::ptrdiff_t a, std::ptrdiff_t b2) { return static_cast<std::size_t>(a * b2); };
    c.mod.resize(sz(F, 6 * Hd));
    layers::linear_forward<Backend>(F, Hd, 6 * Hd, raw(sc_), p(bi.ada_w), p(bi.ada_b), raw(c.mod));
    const T* shift_msa = raw(c.mod);
    const T* scale_msa = raw(c.mod) + Hd;
    const T* gate_msa = raw(c.mod) + 2 * Hd;
    const T* shift_mlp = raw(c.mod) + 3 * Hd;
    const T* scale_mlp = raw(c.mod) + 4 * Hd;
    const T* gate_mlp = raw(c.mod) + 5 * Hd;
    // Attention branch.
    c.n1.resize(sz(N, Hd));
    c.rstd1.resize(sz(N, 1));
    c.m1.resize(sz(N, Hd));
    layers::layernorm_forward<Backend>(N, Hd, raw(x_), raw(c.n1), raw(c.rstd1));
    layers::modulate_forward<Backend>(N, Hd, raw(c.n1), shift_msa, scale_msa, 6 * Hd, raw(token_frame_), raw(c.m1));
    c.qkv.resize(sz(N, 3 * Hd));
    layers::linear_forward<Backend>(N, Hd, 3 * Hd, raw(c.m1), p(bi.qkv_w), p(bi.qkv_b), raw(c.qkv));
    layers::rope_apply<Backend>(N, H, raw(rope_cos_), raw(rope_sin_), rope_.pairs, raw(c.qkv), 3 * Hd, 0, +1);
    layers::rope_apply<Backend>(N, H, raw(rope_cos_), raw(rope_sin_), rope_.pairs, raw(c.qkv), 3 * Hd, Hd, +1);
    c.o.resize(sz(N, Hd));
    c.lse.resize(sz(N, H));
    layers::AttentionShape<T> ash{N, Hd, H, static_cast<std::ptrdiff_t>(cfg_.head_dim())};
    layers::attention_forward<Backend>(ash, tiles_, raw(key_range_), raw(c.qkv), raw(c.o), raw(c.lse));
    c.a.resize(sz(N, Hd));
    layers::linear_forward<Backend>(N, Hd, Hd, raw(c.o), p(bi.proj_w), p(bi.proj_b), raw(c.a));
    layers::gated_residual_forward<Backend>(N, Hd, raw(c.a), gate_msa, 6 * Hd, raw(token_frame_), raw(x_));
    // MLP branch.
    c.n2.resize(sz(N, Hd));
    c.rstd2.resize(sz(N, 1));
    c.m2.resize(sz(N, Hd));
    layers::layernorm_forward<Backend>(N, Hd, raw(x_), raw(c.n2), raw(c.rstd2));
    layers::modulate_forward<Backend>(N, Hd, raw(c.n2), shift_mlp, scale_mlp, 6 * Hd, raw(token_frame_), raw(c.m2));
    c.h.resize(sz(N, M));
    c.gl.resize(sz(N, M));
    layers::linear_gelu_forward<Backend>(N, Hd, M, raw(c.m2), p(bi.fc1_w), p(bi.fc1_b), raw(c.h), raw(c.gl));
    c.y.resize(sz(N, Hd));
    layers::linear_forward<Backend>(N, M, Hd, raw(c.gl), p(bi.fc2_w), p(bi.fc2_b), raw(c.y));
    layers::gated_residual_forward<Backend>(N, Hd, raw(c.y), gate_mlp, 6 * Hd, raw(token_frame_), raw(x_));
  }

  void block_backward(std::size_t l) {
    const BlockIndex& bi = bidx_[l];
    BlockCache& c = blocks_[l];
    const std::ptrdiff_t F = F_, N = N_, Hd = hd(), M = static_cast<std::ptrdiff_t>(cfg_.mlp_hidden());
    const std::ptrdiff_t H = static_cast<std::ptrdiff_t>(cfg_.heads);
    const std::ptrdiff_t ld = 6 * Hd;
    zeroed(dmod_, c.mod.size());
    T* d_shift_msa = raw(dmod_);
    T* d_scale_msa = raw(dmod_) + Hd;
    T* d_gate_msa = raw(dmod_) + 2 * Hd;
    T* d_shift_mlp = raw(dmod_) + 3 * Hd;
    T* d_scale_mlp = raw(dmod_) + 4 * Hd;
    T* d_gate_mlp = raw(dmod_) + 5 * Hd;
    const std::int64_t* ftb = raw(frame_token_begin_);
    // MLP branch: x_out = x_mid + gate·y.
    dbuf_.resize(static_cast<std::size_t>(N * Hd));
    layers::gated_residual_backward<Backend>(F, Hd, raw(c.y), raw(c.mod) + 5 * Hd, ld, ftb, raw(dx_), raw(dbuf_),
                                             d_gate_mlp);
    dbig_.resize(static_cast<std::size_t>(N * M));
    layers::linear_backward<Backend>(N, M, Hd, raw(c.gl), p(bi.fc2_w), raw(dbuf_), raw(dbig_), g(bi.fc2_w),
                                     g(bi.fc2_b));
    layers::activation_backward<Backend, layers::GeluTanh>(N * M, raw(c.h), raw(dbig_), raw(dbig_));
    dbuf2_.resize(dbuf_.size());
    layers::linear_backward<Backend>(N, Hd, M, raw(c.m2), p(bi.fc1_w), raw(dbig_), raw(dbuf2_), g(bi.fc1_w),
                                     g(bi.fc1_b));
    layers::modulate_backward<Backend>(F, Hd, raw(c.n2), raw(c.mod) + 4 * Hd, ld, ftb, raw(dbuf2_), raw(dbuf_),
                                       d_shift_mlp, d_scale_mlp);
    layers::layernorm_backward<Backend>(N, Hd, raw(c.n2), raw(c.rstd2), raw(dbuf_), raw(dx_), true);
    // Attention branch: x_mid = x_in + gate·a.
    layers::gated_residual_backward<Backend>(F, Hd, raw(c.a), raw(c.mod) + 2 * Hd, ld, ftb, raw(dx_), raw(dbuf_),
                                             d_gate_msa);
    dbuf2_.resize(dbuf_.size());
    layers::linear_backward<Backend>(N, Hd, Hd, raw(c.o), p(bi.proj_w), raw(dbuf_), raw(dbuf2_), g(bi.proj_w),
                                     g(bi.proj_b));
    dqkv_.resize(c.qkv.size());
    layers::AttentionShape<T> ash{N, Hd, H, static_cast<std::ptrdiff_t>(cfg_.head_dim())};
    datt_.resize(static_cast<std::size_t>(N * H));
    layers::attention_backward<Backend>(ash, tiles_, raw(key_range_), raw(query_range_), raw(c.qkv), raw(c.o),
                                        raw(c.lse), raw(dbuf2_), raw(dqkv_), raw(datt_));
    layers::rope_apply<Backend>(N, H, raw(rope_cos_), raw(rope_sin_), rope_.pairs, raw(dqkv_), 3 * Hd, 0, -1);
    layers::rope_apply<Backend>(N, H, raw(rope_cos_), raw(rope_sin_), rope_.pairs, raw(dqkv_), 3 * Hd, Hd, -1);
    layers::linear_backward<Backend>(N, Hd, 3 * Hd, raw(c.m1), p(bi.qkv_w), raw(dqkv_), raw(dbuf_), g(bi.qkv_w),
                                     g(bi.qkv_b));
    layers::modulate_backward<Backend>(F, Hd, raw(c.n1), raw(c.mod) + Hd, ld, ftb, raw(dbuf_), raw(dbuf2_),
                                       d_shift_msa, d_scale_msa);
    layers::layernorm_backward<Backend>(N, Hd, raw(c.n1), raw(c.rstd1), raw(dbuf2_), raw(dx_), true);
    // adaLN: mod = sc·W + b.
    layers::linear_backward<Backend>(F, Hd, 6 * Hd, raw(sc_), p(bi.ada_w), raw(dmod_), raw(dsc_), g(bi.ada_w),
                                     g(bi.ada_b), true);
  }

  DitConfig cfg_;
  std::vector<ParameterInfo> table_;
  std::size_t count_ = 0;  ///< parameters, padding excluded
  buffer<T> params_, grads_;
  std::size_t pe_w_{}, pe_b_{}, rate_token_{}, t1_w_{}, t1_b_{}, t2_w_{}, t2_b_{}, kind_emb_{}, class_emb_{};
  std::size_t f_ada_w_{}, f_ada_b_{}, out_w_{}, out_b_{}, r1_w_{}, r1_b_{}, r2_w_{}, r2_b_{}, len_w_{}, len_b_{}, lc_w_{},
      lc_b_{};
  std::vector<BlockIndex> bidx_;

  // Structure of the last batch.
  std::ptrdiff_t F_ = 0, N_ = 0;
  // Host copies built by prepare(), and the backend copies the kernels read.
  std::vector<std::int32_t> h_token_frame_;
  std::vector<std::int64_t> h_frame_token_begin_, h_kind_index_, h_class_index_, h_key_range_, h_query_range_;
  std::vector<T> h_lfeat_, h_temb_, host_scalars_;
  std::vector<std::array<double, 3>> positions_;
  std::vector<layers::AttentionTile> tiles_;
  layers::RopeTable<T> rope_;
  buffer<std::int32_t> token_frame_;
  buffer<std::int64_t> frame_token_begin_, kind_index_, class_index_, key_range_, query_range_;
  buffer<T> rope_cos_, rope_sin_;

  // Activations kept for backward, and gradient scratch; reused across calls.
  buffer<T> patches_, x_, temb_, h1_, a1_, c_, sc_, fmod_, nf_, rstdf_, mf_, out_, rin_, r1_, ra_, ell_, lfeat_,
      lemb_, lcond_;
  std::vector<BlockCache> blocks_;
  buffer<T> dell_, dra_, datt_, dr1_, drin_, dout_, dmf_, dfmod_, dnf_, dx_, dsc_, dc_, da1_, dh1_, dmod_, dbuf_, dbuf2_,
      dbig_, dqkv_;
};

static_assert(VelocityModel<DiT<float>, HostFrames<float>>);
static_assert(VelocityModel<DiT<double>, HostFrames<double>>);

}  // namespace flowception::dit
