// A training set for tests of the trainer: videos of one random colour each (3 channels,
// side × side frames), labelled by parity. A model must learn that every frame of a video has
// the colour of the others, and the length distribution. Video i is a pure function of i.
#pragma once

#include <cstddef>
#include <cstdint>

#include "flowception/data/video.hpp"
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

}  // namespace fc_test
