// Configuration of the reference DiT (method.md §6).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "flowception/core/errors.hpp"

namespace flowception::dit {

struct DitConfig {
  std::size_t channels = 3, height = 16, width = 16;  ///< frame C×H×W
  std::size_t patch = 4;                              ///< p: p×p patches
  std::size_t depth = 4, width_hidden = 128, heads = 4;
  std::size_t mlp_ratio = 4;
  std::size_t frequency_dim = 256;  ///< sinusoidal embedding size of 1000·t
  std::size_t num_classes = 0;      ///< 0: unconditional; else a class table of num_classes + 1 (last = null)
  std::int64_t window = -1;         ///< attend to frames within ±window (−1: all frames)
  /// Frame-causal attention: frame f attends only to frames <= f of its video (the
  /// autoregressive baseline's causal variant, method.md §7). Off for Flowception.
  bool causal = false;
  double rope_base = 10000.0;
  std::string name = "custom";

  std::size_t grid_h() const { return height / patch; }
  std::size_t grid_w() const { return width / patch; }
  std::size_t patch_tokens() const { return grid_h() * grid_w(); }
  std::size_t tokens_per_frame() const { return patch_tokens() + 1; }  ///< + the rate token
  std::size_t patch_dim() const { return channels * patch * patch; }
  std::size_t frame_dim() const { return channels * height * width; }
  std::size_t head_dim() const { return width_hidden / heads; }
  std::size_t mlp_hidden() const { return mlp_ratio * width_hidden; }
  /// Rotary dimensions per axis (frame, row, column); each even, summing to head_dim.
  std::size_t rope_dim(int axis) const {
    const std::size_t hd = head_dim();
    const std::size_t spatial = 2 * ((hd / 3) / 2);  // rows and columns get the same even share
    return axis == 0 ? hd - 2 * spatial : spatial;
  }

  void validate() const {
    detail::require(channels >= 1 && height >= 1 && width >= 1, "DiT frame size must be positive");
    detail::require(patch >= 1 && height % patch == 0 && width % patch == 0, "DiT patch ", patch,
                    " must divide the frame size ", height, "x", width);
    detail::require(depth >= 1 && heads >= 1 && width_hidden >= 1, "DiT depth, heads and width must be >= 1");
    detail::require(width_hidden % heads == 0, "DiT width ", width_hidden, " is not divisible by heads ", heads);
    detail::require(head_dim() % 2 == 0 && head_dim() >= 6, "DiT head dimension ", head_dim(),
                    " must be even and >= 6 for 3-D rotary positions");
    detail::require(rope_dim(0) % 2 == 0 && rope_dim(0) >= 2, "DiT rotary split of head dim ", head_dim(), " is invalid");
    detail::require(mlp_ratio >= 1 && frequency_dim >= 2 && frequency_dim % 2 == 0, "DiT mlp_ratio/frequency_dim invalid");
    detail::require(window >= -1, "DiT attention window must be -1 (all) or >= 0, got ", window);
    detail::require(rope_base > 1.0, "DiT rope_base must be > 1");
  }

  /// Sizes of §6: tiny (4, 128, 4) for tests and demos; S (12, 384, 6) and B (12, 768, 12) after DiT.
  static DitConfig tiny(std::size_t c, std::size_t h, std::size_t w, std::size_t patch) {
    return make(c, h, w, patch, 4, 128, 4, "tiny");
  }
  static DitConfig small(std::size_t c, std::size_t h, std::size_t w, std::size_t patch) {
    return make(c, h, w, patch, 12, 384, 6, "S");
  }
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
