// A video as the data sets, the .npy loader and the scorers exchange it: T frames of C×H×W
// floats, channel-major inside a frame (element (t, c, y, x) sits at
// t·C·H·W + c·H·W + y·W + x), pixel values in [0, 1], and an optional class label.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "flowception/core/errors.hpp"

namespace flowception::data {

/// A video: T frames of C×H×W floats, channel-major inside a frame (element (t, c, y, x) at
/// t·C·H·W + c·H·W + y·W + x), pixel values in [0, 1], and an optional class label. The exchange
/// type of the data sets, the .npy loader and the scorers.
struct Video {
  std::size_t channels = 0;  ///< C
  std::size_t height = 0;    ///< H, pixels
  std::size_t width = 0;     ///< W, pixels
  std::vector<float> frames;  ///< T×C×H×W
  std::int64_t label = -1;    ///< class index >= 0, or -1 for "no label"

  /// Numbers per frame, C·H·W.
  std::size_t frame_size() const { return channels * height * width; }
  /// Number of frames T (0 for an empty or shapeless video).
  std::size_t length() const { return frame_size() == 0 ? 0 : frames.size() / frame_size(); }
  /// First of the frame_size() values of frame t (t is not checked).
  float* frame(std::size_t t) { return frames.data() + t * frame_size(); }
  /// First of the frame_size() values of frame t (t is not checked).
  const float* frame(std::size_t t) const { return frames.data() + t * frame_size(); }
  /// Element (t, c, y, x): frame t, channel c, row y, column x (unchecked).
  float& at(std::size_t t, std::size_t c, std::size_t y, std::size_t x) {
    return frames[((t * channels + c) * height + y) * width + x];
  }
  /// Element (t, c, y, x): frame t, channel c, row y, column x (unchecked).
  float at(std::size_t t, std::size_t c, std::size_t y, std::size_t x) const {
    return frames[((t * channels + c) * height + y) * width + x];
  }
};

/// Throws ShapeError unless `v` has a non-zero frame size and a whole number of frames.
/// `what` names the video in the message (a file name, "video 3", ...).
inline void validate_video(const Video& v, std::string_view what) {
  detail::require<ShapeError>(v.frame_size() > 0, what, ": frame shape ", v.channels, "x", v.height, "x", v.width,
                              " (C x H x W) has a zero dimension");
  detail::require<ShapeError>(v.frames.size() % v.frame_size() == 0, what, ": ", v.frames.size(),
                              " values is not a whole number of ", v.channels, "x", v.height, "x", v.width, " frames");
}

/// Videos first, first+1, ..., first+count-1 of a data set (anything with `video(i)`).
template <class DataSet>
std::vector<Video> take(const DataSet& set, std::size_t count, std::size_t first = 0) {
  std::vector<Video> out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) out.push_back(set.video(first + i));
  return out;
}

}  // namespace flowception::data
