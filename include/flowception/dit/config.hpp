// Configuration of the reference DiT (method.md §6).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "flowception/core/errors.hpp"

namespace flowception::dit {

/// What the log-rate head reads (method.md §6).
enum class RateHead {
  token,   ///< a learned rate token appended to each frame's patch tokens (P + 1 tokens a frame)
  pooled,  ///< the mean of the frame's own patch tokens after the last block (P tokens a frame)
};

/// The name of a rate head as in checkpoints and on the command line: "token" or "pooled".
inline const char* rate_head_name(RateHead h) { return h == RateHead::pooled ? "pooled" : "token"; }
/// The rate head named "token" or "pooled"; throws ConfigError for any other name.
inline RateHead rate_head_from_name(const std::string& s) {
  if (s == "token") return RateHead::token;
  if (s == "pooled") return RateHead::pooled;
  detail::fail<ConfigError>("DiT rate head '", s, "' is not one of: token, pooled");
}

/// The shape and options of a reference DiT (§6). Every field is stored in checkpoints; validate()
/// refuses inconsistent or out-of-range values, and difference() compares two configurations.
struct DitConfig {
  std::size_t channels = 3;  ///< C
  std::size_t height = 16;   ///< H
  std::size_t width = 16;    ///< W (frame C×H×W)
  std::size_t patch = 4;                              ///< p: p×p patches
  std::size_t depth = 4;           ///< blocks
  std::size_t width_hidden = 128;  ///< token width
  std::size_t heads = 4;           ///< heads (dividing width_hidden)
  std::size_t mlp_ratio = 4;  ///< MLP hidden width as a multiple of width_hidden.
  std::size_t frequency_dim = 256;  ///< sinusoidal embedding size of 1000·t
  std::size_t num_classes = 0;      ///< 0: unconditional; else a class table of num_classes + 1 (last = null)
  std::int64_t window = -1;         ///< attend to frames within ±window (−1: all frames)
  /// Windows above this are refused (frame ± window must not overflow; no video is this long).
  static constexpr std::int64_t kMaxWindow = 1'000'000;
  /// Frame-causal attention: frame f attends only to frames <= f of its video (the
  /// autoregressive baseline's causal variant, method.md §7). Off for Flowception.
  bool causal = false;
  double rope_base = 10000.0;  ///< Base of the rotary frequencies, in (1, 1e30].
  /// Rotary dimensions of the frame axis per head (0: the 3-D split, rows and columns getting
  /// equal even shares of about a third each). When a frame is a single patch, row and column
  /// positions are constant, so the frame axis may take every dimension (head_dim).
  std::size_t rope_frame_dims = 0;
  RateHead rate_head = RateHead::token;  ///< What the log-rate head reads: a rate token or the pooled patch tokens.
  /// Length-aware rate head: the rate head's input also gets an embedding of the video's
  /// visible-frame count n and of the frame's place i among them (i and n − 1 − i), so the
  /// content-free law P(L | n, s) is exactly representable.
  bool length_aware = false;
  /// Length-aware conditioning: the same embedding of (n, i, n − 1 − i) is also added to every
  /// frame's conditioning vector c_f, so every block, and the velocity head, knows the frame's
  /// place among the visible frames (rotary positions give only differences).
  bool length_conditioning = false;
  /// Sinusoidal dimensions per embedded integer (n, i, n − 1 − i) of the length-aware head.
  static constexpr std::size_t kLengthEmbedDim = 32;
  std::string name = "custom";  ///< Size name ("tiny", "S", "B", or "custom"), used in messages and checkpoints.

  std::size_t grid_h() const { return height / patch; }        ///< Patch rows per frame (H / p).
  std::size_t grid_w() const { return width / patch; }         ///< Patch columns per frame (W / p).
  std::size_t patch_tokens() const { return grid_h() * grid_w(); }  ///< Patch tokens per frame (grid_h·grid_w).
  /// Patch tokens, plus the rate token when the rate head has one.
  std::size_t tokens_per_frame() const { return patch_tokens() + (rate_head == RateHead::token ? 1 : 0); }
  /// Width of the length embedding φ(n, i, n − 1 − i): 3·kLengthEmbedDim when length_aware or
  /// length_conditioning is on, else 0.
  std::size_t length_features() const { return length_aware || length_conditioning ? 3 * kLengthEmbedDim : 0; }
  std::size_t patch_dim() const { return channels * patch * patch; }  ///< Values in one patch (C·p·p).
  std::size_t frame_dim() const { return channels * height * width; }  ///< Values in one frame (C·H·W).
  std::size_t head_dim() const { return width_hidden / heads; }      ///< Width of one attention head.
  std::size_t mlp_hidden() const { return mlp_ratio * width_hidden; }  ///< Hidden width of the blocks' MLP.
  /// Rotary dimensions per axis (frame, row, column); each even, summing to head_dim.
  std::size_t rope_dim(int axis) const {
    const std::size_t hd = head_dim();
    if (rope_frame_dims > 0) return axis == 0 ? rope_frame_dims : (hd - rope_frame_dims) / 2;
    const std::size_t spatial = 2 * ((hd / 3) / 2);  // rows and columns get the same even share
    return axis == 0 ? hd - 2 * spatial : spatial;
  }

  /// Upper bounds of the size fields. They keep every product of sizes (parameter counts,
  /// workspace bytes) far inside 64 bits, so a corrupt checkpoint or a typo is refused by
  /// validate() instead of overflowing or allocating until the system refuses.
  static constexpr std::size_t kMaxFrameSide = 1 << 14;     ///< height, width, patch
  static constexpr std::size_t kMaxChannels = 1 << 10;      ///< channels
  static constexpr std::size_t kMaxDepth = 1 << 12;         ///< depth
  static constexpr std::size_t kMaxWidth = 1 << 16;         ///< width_hidden, rope_frame_dims
  static constexpr std::size_t kMaxHeads = 1 << 10;         ///< heads
  static constexpr std::size_t kMaxMlpRatio = 64;           ///< mlp_ratio
  static constexpr std::size_t kMaxFrequencyDim = 1 << 14;  ///< frequency_dim
  static constexpr std::size_t kMaxClasses = 1 << 24;       ///< num_classes
  /// Largest model accepted (2^36 parameters: 256 GiB of weights in float).
  static constexpr std::size_t kMaxParameters = std::size_t{1} << 36;

  /// Throws ConfigError, naming the field, unless every size is in range, the patch divides the
  /// frame, heads divide width_hidden, the head dimension is even and at least 6, the rotary split
  /// is valid (rope_frame_dims), window is −1 or in [0, kMaxWindow], rope_base is in (1, 1e30] and
  /// the model has at most kMaxParameters parameters.
  void validate() const {
    auto in = [](const char* field, std::size_t v, std::size_t lo, std::size_t hi) {
      detail::require(v >= lo && v <= hi, "DiT ", field, " must be in [", lo, ", ", hi, "], got ", v);
    };
    in("channels", channels, 1, kMaxChannels);
    in("height", height, 1, kMaxFrameSide);
    in("width", width, 1, kMaxFrameSide);
    in("patch", patch, 1, kMaxFrameSide);
    in("depth", depth, 1, kMaxDepth);
    in("width_hidden", width_hidden, 1, kMaxWidth);
    in("heads", heads, 1, kMaxHeads);
    in("mlp_ratio", mlp_ratio, 1, kMaxMlpRatio);
    in("frequency_dim", frequency_dim, 2, kMaxFrequencyDim);
    in("num_classes", num_classes, 0, kMaxClasses);
    in("rope_frame_dims", rope_frame_dims, 0, kMaxWidth);
    detail::require(channels >= 1 && height >= 1 && width >= 1, "DiT frame size must be positive");
    detail::require(patch >= 1 && height % patch == 0 && width % patch == 0, "DiT patch ", patch,
                    " must divide the frame size ", height, "x", width);
    detail::require(depth >= 1 && heads >= 1 && width_hidden >= 1, "DiT depth, heads and width must be >= 1");
    detail::require(width_hidden % heads == 0, "DiT width ", width_hidden, " is not divisible by heads ", heads);
    detail::require(head_dim() % 2 == 0 && head_dim() >= 6, "DiT head dimension ", head_dim(),
                    " must be even and >= 6 for 3-D rotary positions");
    detail::require(rope_frame_dims == 0 || (rope_frame_dims % 2 == 0 && rope_frame_dims <= head_dim() &&
                                             (head_dim() - rope_frame_dims) % 4 == 0),
                    "DiT rope_frame_dims ", rope_frame_dims, " must be even, at most the head dimension ", head_dim(),
                    ", and leave a multiple of 4 for rows and columns");
    detail::require(rope_frame_dims != head_dim() || patch_tokens() == 1, "DiT rope_frame_dims = head dimension ",
                    head_dim(), " leaves no rotary dimension for patch rows and columns; it needs one patch per frame (",
                    grid_h(), "x", grid_w(), " patches here)");
    detail::require(rope_dim(0) % 2 == 0 && rope_dim(0) >= 2, "DiT rotary split of head dim ", head_dim(), " is invalid");
    detail::require(mlp_ratio >= 1 && frequency_dim >= 2 && frequency_dim % 2 == 0, "DiT mlp_ratio/frequency_dim invalid");
    detail::require(window >= -1 && window <= kMaxWindow, "DiT attention window must be -1 (all) or in [0, ", kMaxWindow,
                    "], got ", window);
    detail::require(rope_base > 1.0 && rope_base <= 1e30, "DiT rope_base must be in (1, 1e30], got ", rope_base);
    detail::require(parameter_count() <= kMaxParameters, "DiT '", name, "' has ", parameter_count(),
                    " parameters, above the limit of ", kMaxParameters);
  }

  /// Bytes of the DiT's workspace (index tables, activations kept for backward, gradient
  /// scratch) for a batch of `frames` frames in `videos` videos, with values of `value_bytes`
  /// bytes (4 or 8); `training` adds what backward needs; `row_kernels` counts the per-token
  /// attention ranges of device backends. Computed from the same list of buffers the model sizes
  /// itself from (dit/layout.hpp, visit_workspace), so it equals what DiT::workspace_bytes()
  /// reports after such a batch, but for the attention tiles, counted at an upper bound; weights
  /// and gradients are not included.
  std::size_t workspace_bytes(std::size_t frames, std::size_t videos, bool training, std::size_t value_bytes = 4,
                              bool row_kernels = true) const;

  /// The number of parameters of the DiT of this configuration (what DiT::parameter_count()
  /// returns): the sum over its parameter layout (dit/layout.hpp), without building the model.
  std::size_t parameter_count() const;
  /// Elements of the model's flat parameter buffer for values of `value_bytes` bytes: the
  /// parameters and the padding that puts each tensor on a kBufferAlignment-byte boundary.
  std::size_t parameter_buffer_elements(std::size_t value_bytes = 4) const;

  /// The first field in which `other` differs, as "field: mine vs other" (empty when equal).
  std::string difference(const DitConfig& o) const {
    auto str = [](const auto& v) {
      if constexpr (std::is_same_v<std::decay_t<decltype(v)>, RateHead>) return std::string(rate_head_name(v));
      else if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::string>) return v;
      else return detail::cat(v);
    };
    std::string out;
    auto cmp = [&](const char* name, const auto& a, const auto& b) {
      if (out.empty() && !(a == b)) out = detail::cat(name, ": ", str(a), " vs ", str(b));
    };
    cmp("channels", channels, o.channels);
    cmp("height", height, o.height);
    cmp("width", width, o.width);
    cmp("patch", patch, o.patch);
    cmp("depth", depth, o.depth);
    cmp("width_hidden", width_hidden, o.width_hidden);
    cmp("heads", heads, o.heads);
    cmp("mlp_ratio", mlp_ratio, o.mlp_ratio);
    cmp("frequency_dim", frequency_dim, o.frequency_dim);
    cmp("num_classes", num_classes, o.num_classes);
    cmp("window", window, o.window);
    cmp("causal", causal, o.causal);
    cmp("rope_base", rope_base, o.rope_base);
    cmp("rope_frame_dims", rope_frame_dims, o.rope_frame_dims);
    cmp("rate_head", rate_head, o.rate_head);
    cmp("length_aware", length_aware, o.length_aware);
    cmp("length_conditioning", length_conditioning, o.length_conditioning);
    return out;
  }

  /// Sizes of §6: tiny (4, 128, 4) for tests and demos; S (12, 384, 6) and B (12, 768, 12) after DiT.
  static DitConfig tiny(std::size_t c, std::size_t h, std::size_t w, std::size_t patch) {
    return make(c, h, w, patch, 4, 128, 4, "tiny");
  }
  /// Size S (depth 12, width 384, 6 heads) for C×h×w frames and patch p; validated.
  static DitConfig small(std::size_t c, std::size_t h, std::size_t w, std::size_t patch) {
    return make(c, h, w, patch, 12, 384, 6, "S");
  }
  /// Size B (depth 12, width 768, 12 heads) for C×h×w frames and patch p; validated.
  static DitConfig base(std::size_t c, std::size_t h, std::size_t w, std::size_t patch) {
    return make(c, h, w, patch, 12, 768, 12, "B");
  }

 private:
  static DitConfig make(std::size_t c, std::size_t h, std::size_t w, std::size_t p, std::size_t depth,
                        std::size_t width, std::size_t heads, const char* name) {
    DitConfig cfg;
    cfg.channels = c;
    cfg.height = h;
    cfg.width = w;
    cfg.patch = p;
    cfg.depth = depth;
    cfg.width_hidden = width;
    cfg.heads = heads;
    cfg.name = name;
    cfg.validate();
    return cfg;
  }
};

}  // namespace flowception::dit

// The definitions of parameter_count(), parameter_buffer_elements() and workspace_bytes(): the
// model's own layout.
#include "flowception/dit/layout.hpp"
