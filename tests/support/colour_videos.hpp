// A training set for tests of the trainer: videos of one random colour each (3 channels,
// side × side frames), labelled by parity. A model must learn that every frame of a video has
// the colour of the others, and the length distribution. Video i is a pure function of i.
#pragma once

#include <cstddef>
#include <cstdint>

#include "flowception/data/video.hpp"
#include "flowception/dit/config.hpp"
#include "flowception/random/stream.hpp"

namespace fc_test {

struct ColourVideos {
  std::size_t count = 1000;
  std::size_t side = 4;
  std::size_t min_length = 3, lengths = 6;  ///< lengths min_length .. min_length + lengths − 1

  std::size_t size() const { return count; }
  flowception::data::Video video(std::size_t i) const {
    flowception::random::Stream rng(99, i);
    flowception::data::Video v{3, side, side, {}, static_cast<std::int64_t>(i % 2)};
    const std::size_t L = min_length + static_cast<std::size_t>(rng.below(lengths));
    const float c[3] = {static_cast<float>(rng.uniform()), static_cast<float>(rng.uniform()),
                        static_cast<float>(rng.uniform())};
    for (std::size_t t = 0; t < L; ++t)
      for (std::size_t ch = 0; ch < 3; ++ch)
        for (std::size_t e = 0; e < side * side; ++e) v.frames.push_back(c[ch]);
    return v;
  }
};

/// The small DiT the training tests fit to these videos (3×4×4 frames, 2×2 patches).
inline flowception::dit::DitConfig colour_video_dit(std::size_t width = 32, std::size_t classes = 2,
                                                    std::size_t depth = 2) {
  flowception::dit::DitConfig c;
  c.channels = 3;
  c.height = 4;
  c.width = 4;
  c.patch = 2;
  c.depth = depth;
  c.width_hidden = width;
  c.heads = 2;
  c.mlp_ratio = 2;
  c.frequency_dim = width;
  c.num_classes = classes;
  c.name = "test";
  c.validate();
  return c;
}

/// The length-aware model of the GPU parity test (tests/gpu/dit_parity.cu), also one of the models
/// whose products tests/test_device_products.cpp checks: classes, a ±2-frame window, 3×8×8 frames
/// in 2×2 patches, the pooled rate head with the length features.
inline flowception::dit::DitConfig gpu_parity_dit(std::size_t classes) {
  flowception::dit::DitConfig c;
  c.channels = 3;
  c.height = 8;
  c.width = 8;
  c.patch = 2;
  c.depth = 2;
  c.width_hidden = 64;
  c.heads = 4;
  c.mlp_ratio = 4;
  c.frequency_dim = 64;
  c.num_classes = classes;
  c.rate_head = flowception::dit::RateHead::pooled;
  c.length_aware = true;
  c.length_conditioning = true;
  c.window = 2;
  c.name = "gpu-parity";
  c.validate();
  return c;
}

}  // namespace fc_test
