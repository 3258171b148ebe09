// What the image writers share: an 8-bit raster (`Image`), a view of a float video (`VideoView`),
// the float → byte mapping, nearest-neighbour upscaling and the checks every writer runs first.
// No third-party dependency; png.hpp and gif.hpp build on it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "flowception/core/errors.hpp"

namespace flowception::io {

/// An 8-bit raster, row-major with interleaved channels: the byte of channel c of pixel (x, y) is
/// `pixels[(y * width + x) * channels + c]`. channels: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA.
struct Image {
  std::size_t width = 0;  ///< pixels per row
  std::size_t height = 0;  ///< rows
  std::size_t channels = 0;  ///< bytes per pixel: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA
  std::vector<std::uint8_t> pixels;  ///< width · height · channels bytes, row after row

  /// Byte of channel c of pixel (x, y): column x, row y (unchecked).
  std::uint8_t at(std::size_t x, std::size_t y, std::size_t c = 0) const {
    return pixels[(y * width + x) * channels + c];
  }
  /// Byte of channel c of pixel (x, y): column x, row y (unchecked).
  std::uint8_t& at(std::size_t x, std::size_t y, std::size_t c = 0) { return pixels[(y * width + x) * channels + c]; }
};

/// A video of `frames` frames stored back to back, each frame C×H×W channel-major
/// (`c*H*W + y*W + x`), values in [0, 1] (clamped for display; NaN is an error), C = 1 or 3.
/// Non-owning: `data` must outlive the view. Aggregate: `VideoView{vec, T, C, H, W}`.
struct VideoView {
  std::span<const float> data;  ///< T·C·H·W values, frame after frame (not owned)
  std::size_t frames = 0;  ///< T
  std::size_t channels = 0;  ///< C: 1 grey or 3 RGB
  std::size_t height = 0;  ///< H, pixels
  std::size_t width = 0;  ///< W, pixels

  /// Values per frame, C·H·W.
  std::size_t frame_size() const { return channels * height * width; }
  /// The C·H·W values of frame t (unchecked: t must be < frames).
  std::span<const float> frame(std::size_t t) const { return data.subspan(t * frame_size(), frame_size()); }
};

/// An RGB colour, 8 bits per channel.
struct Rgb8 {
  std::uint8_t r = 0;  ///< red, 0..255
  std::uint8_t g = 0;  ///< green, 0..255
  std::uint8_t b = 0;  ///< blue, 0..255
  /// Equal when all three channels are.
  friend bool operator==(const Rgb8&, const Rgb8&) = default;
};

/// The display byte of a value: round(255 · clamp(v, 0, 1)). ±Inf clamp; NaN must be rejected before.
inline std::uint8_t to_byte(float v) {
  const double c = std::clamp(static_cast<double>(v), 0.0, 1.0);
  return static_cast<std::uint8_t>(std::lround(255.0 * c));
}

namespace detail_media {

using detail::cat;
using detail::require;

/// a·b·... with an overflow check (sizes from user data).
inline std::size_t checked_product(std::initializer_list<std::size_t> factors, std::string_view what) {
  std::size_t p = 1;
  for (std::size_t f : factors) {
    if (f != 0 && p > std::numeric_limits<std::size_t>::max() / f)
      detail::fail<ShapeError>(what, " is too large (size overflow)");
    p *= f;
  }
  return p;
}

/// Reads a whole file into memory; IoError naming the path when it cannot.
inline std::string read_file_bytes(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) detail::fail<IoError>("cannot read ", path, ": no such file");
  if (std::filesystem::is_directory(path, ec))
    detail::fail<IoError>("cannot read ", path, ": it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::fail<IoError>("cannot open ", path, " for reading");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) detail::fail<IoError>("read error on ", path);
  return bytes;
}

}  // namespace detail_media

/// Checks a video view: at least one frame, C ∈ {1, 3}, H, W ≥ 1, data size T·C·H·W, no NaN.
/// `what` names the video in messages (e.g. "video 2"). Throws ShapeError.
inline void validate_video(const VideoView& v, std::string_view what = "video") {
  using detail::require;
  require<ShapeError>(v.frames >= 1, what, " is empty (0 frames)");
  require<ShapeError>(v.channels == 1 || v.channels == 3, what, " has ", v.channels,
                      " channels; frames must have 1 (grey) or 3 (RGB)");
  require<ShapeError>(v.height >= 1 && v.width >= 1, what, " has an empty frame size ", v.height, "x", v.width);
  const std::size_t n = detail_media::checked_product({v.frames, v.channels, v.height, v.width}, what);
  require<ShapeError>(v.data.size() == n, what, " has ", v.data.size(), " values, but its shape (T=", v.frames,
                      ", C=", v.channels, ", H=", v.height, ", W=", v.width, ") needs ", n);
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isnan(v.data[i])) {
      const std::size_t fs = v.frame_size(), plane = v.height * v.width;
      const std::size_t t = i / fs, c = (i % fs) / plane, y = (i % plane) / v.width, x = i % v.width;
      detail::fail<ShapeError>(what, " contains NaN at frame ", t, ", channel ", c,
                                                ", row ", y, ", column ", x);
    }
  }
}

/// Integer nearest-neighbour factor for H×W frames: `scale` when non-zero, otherwise the smallest
/// factor that makes the shorter side at least `min_side_px` pixels (and at least 1).
inline std::size_t resolve_scale(std::size_t height, std::size_t width, std::size_t scale, std::size_t min_side_px) {
  if (scale > 0) return scale;
  const std::size_t side = std::max<std::size_t>(1, std::min(height, width));
  return std::max<std::size_t>(1, (min_side_px + side - 1) / side);
}

/// Frame `t` of a (validated) video as an RGB image (grey is repeated over R, G, B), each pixel
/// upscaled to a `scale`×`scale` block. Validates the whole video unless `validated` is true.
inline Image frame_to_rgb(const VideoView& v, std::size_t t, std::size_t scale = 1, bool validated = false) {
  if (!validated) validate_video(v);
  detail::require<ShapeError>(t < v.frames, "frame index ", t, " out of range (video has ", v.frames,
                                           " frames)");
  detail::require<ConfigError>(scale >= 1, "scale must be at least 1");
  Image img;
  img.width = detail_media::checked_product({v.width, scale}, "scaled frame");
  img.height = detail_media::checked_product({v.height, scale}, "scaled frame");
  img.channels = 3;
  img.pixels.resize(detail_media::checked_product({img.width, img.height, 3}, "scaled frame"));
  const std::span<const float> f = v.frame(t);
  const std::size_t plane = v.height * v.width;
  for (std::size_t y = 0; y < v.height; ++y) {
    for (std::size_t x = 0; x < v.width; ++x) {
      std::uint8_t px[3];
      for (std::size_t c = 0; c < 3; ++c) px[c] = to_byte(f[(v.channels == 1 ? 0 : c) * plane + y * v.width + x]);
      for (std::size_t dy = 0; dy < scale; ++dy) {
        std::uint8_t* row = img.pixels.data() + ((y * scale + dy) * img.width + x * scale) * 3;
        for (std::size_t dx = 0; dx < scale; ++dx) std::copy_n(px, 3, row + dx * 3);
      }
    }
  }
  return img;
}

}  // namespace flowception::io
