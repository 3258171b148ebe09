// PNG output and input (libpng 1.6, through its "simplified" API, which reports errors in the
// image struct instead of longjmp-ing through C++ frames and never prints), and contact sheets:
// one or several videos laid out as a grid, one row per video and one column per frame.
//
//   io::write_contact_sheet_png("sheet.png", {io::VideoView{a, Ta, 3, 3, 3}, io::VideoView{b, Tb, 3, 3, 3}});
//
// Every file is written atomically (io::write_atomically).
#pragma once

#include <png.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "flowception/core/errors.hpp"
#include "flowception/io/atomic_file.hpp"
#include "flowception/io/image.hpp"

namespace flowception::io {

namespace detail_media {

/// libpng's own per-dimension limit (PNG_USER_WIDTH_MAX / PNG_USER_HEIGHT_MAX defaults).
inline constexpr std::size_t kPngMaxSide = 1000000;

inline png_uint_32 png_format_for(std::size_t channels) {
  switch (channels) {
    case 1:
      return PNG_FORMAT_GRAY;
    case 2:
      return PNG_FORMAT_GA;
    case 3:
      return PNG_FORMAT_RGB;
    case 4:
      return PNG_FORMAT_RGBA;
    default:
      detail::fail<ShapeError>("PNG images have 1 (grey), 2, 3 (RGB) or 4 channels, not ", channels);
  }
}

}  // namespace detail_media

/// Encodes an 8-bit image (row-major, interleaved, `channels` = 1 grey, 2 grey+alpha, 3 RGB,
/// 4 RGBA) as PNG bytes. ShapeError for bad sizes, IoError if libpng fails.
inline std::string encode_png(const std::uint8_t* pixels, std::size_t width, std::size_t height, std::size_t channels) {
  using detail::require;
  const png_uint_32 format = detail_media::png_format_for(channels);
  require<ShapeError>(width >= 1 && height >= 1, "PNG image size ", width, "x", height, " is empty");
  require<ShapeError>(width <= detail_media::kPngMaxSide && height <= detail_media::kPngMaxSide, "PNG image size ",
                      width, "x", height, " exceeds libpng's limit of ", detail_media::kPngMaxSide, " pixels per side");
  require<ShapeError>(pixels != nullptr, "PNG pixel pointer is null");
  (void)detail_media::checked_product({width, height, channels}, "PNG image");
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  image.format = format;
  // Worst case (stored blocks) first, then shrink to what was written: one compression pass.
  png_alloc_size_t size = PNG_IMAGE_PNG_SIZE_MAX(image);
  std::string out(size, '\0');
  const int ok = png_image_write_to_memory(&image, out.data(), &size, /*convert_to_8_bit=*/0, pixels,
                                           /*row_stride=*/0, /*colormap=*/nullptr);
  const std::string message = image.message;
  png_image_free(&image);
  if (!ok)
    detail::fail<IoError>("libpng could not encode a ", width, "x", height, "x", channels,
                                           " image: ", message);
  out.resize(size);
  return out;
}

/// Encodes an Image as PNG bytes; ShapeError when its pixel count does not match width × height ×
/// channels (see the pointer overload for the rest).
inline std::string encode_png(const Image& image) {
  detail::require<ShapeError>(
      image.pixels.size() == detail_media::checked_product({image.width, image.height, image.channels}, "image"),
      "image has ", image.pixels.size(), " bytes, but ", image.width, "x", image.height, "x", image.channels, " needs ",
      image.width * image.height * image.channels);
  return encode_png(image.pixels.data(), image.width, image.height, image.channels);
}

/// Writes an 8-bit image as a PNG file, atomically (see encode_png for the layout).
inline void write_png(const std::filesystem::path& path, const std::uint8_t* pixels, std::size_t width,
                      std::size_t height, std::size_t channels) {
  write_file_atomically(path, encode_png(pixels, width, height, channels));
}

/// Writes an Image as a PNG file, atomically (see encode_png).
inline void write_png(const std::filesystem::path& path, const Image& image) {
  write_file_atomically(path, encode_png(image));
}

/// Decodes PNG bytes to 8 bits per channel, keeping the file's channels (grey 1, grey+alpha 2,
/// RGB 3, RGBA 4; palette images become RGB or RGBA). 16-bit files are reduced to 8-bit sRGB by
/// libpng. `name` labels errors. IoError for anything that is not a complete, valid PNG.
inline Image decode_png(std::string_view bytes, std::string_view name = "PNG data") {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (bytes.size() < 8 || png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) != 0)
    detail::fail<IoError>("cannot read ", name, ": not a PNG file");
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    const std::string message = image.message;
    png_image_free(&image);
    detail::fail<IoError>("cannot read ", name, ": ", message);
  }
  const bool colour = (image.format & PNG_FORMAT_FLAG_COLOR) != 0;
  const bool alpha = (image.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  image.format = colour ? (alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB) : (alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY);
  Image out;
  out.width = image.width;
  out.height = image.height;
  out.channels = PNG_IMAGE_PIXEL_CHANNELS(image.format);
  out.pixels.resize(PNG_IMAGE_SIZE(image));
  const int ok = png_image_finish_read(&image, /*background=*/nullptr, out.pixels.data(), /*row_stride=*/0,
                                       /*colormap=*/nullptr);
  const std::string message = image.message;
  png_image_free(&image);
  if (!ok) detail::fail<IoError>("cannot read ", name, ": ", message);
  return out;
}

/// Reads a PNG file (see decode_png). IoError naming the path for missing, truncated or corrupt files.
inline Image read_png(const std::filesystem::path& path) {
  const std::string bytes = detail_media::read_file_bytes(path);
  return decode_png(bytes, detail::cat(path));
}

// ---------------------------------------------------------------------------------------------
// Contact sheets

/// How contact_sheet draws: frame scale, separators and colours.
struct ContactSheetOptions {
  /// Nearest-neighbour factor for every frame; 0 picks the smallest that makes a frame's shorter
  /// side at least `min_frame_px` (3×3 toy frames become 48×48 with the default).
  std::size_t scale = 0;
  std::size_t min_frame_px = 48;  ///< shorter frame side, in pixels, that `scale` = 0 reaches at least
  /// Width in pixels of the lines between cells and around the sheet (0 for none).
  std::size_t separator = 2;
  Rgb8 separator_colour{128, 128, 128};  ///< colour of the separator lines
  /// Fills the cells past the end of rows shorter than the longest.
  Rgb8 background{255, 255, 255};
};

/// Where everything lies on a contact sheet. The sheet is
///   width  = separator + columns · (cell_width + separator),  cell_width  = W · scale
///   height = separator + rows    · (cell_height + separator), cell_height = H · scale
/// and frame k of video r has its top-left corner at (cell_x(k), cell_y(r)).
struct ContactSheetLayout {
  std::size_t rows = 0;         ///< one per video
  std::size_t columns = 0;      ///< the longest video's frames
  std::size_t scale = 1;        ///< upscaling factor
  std::size_t cell_width = 0;   ///< W · scale
  std::size_t cell_height = 0;  ///< H · scale
  std::size_t separator = 0;    ///< line width, pixels
  std::size_t width = 0;        ///< sheet width, pixels
  std::size_t height = 0;       ///< sheet height, pixels

  /// x of the left edge of the cells of column `column` (frame `column` of every video).
  std::size_t cell_x(std::size_t column) const { return separator + column * (cell_width + separator); }
  /// y of the top edge of the cells of row `row` (the frames of video `row`).
  std::size_t cell_y(std::size_t row) const { return separator + row * (cell_height + separator); }
};

/// Validates the videos (each as in validate_video, all with the same H×W; grey and RGB may be
/// mixed) and computes the layout. ShapeError for no videos or mismatched frame sizes.
inline ContactSheetLayout contact_sheet_layout(std::span<const VideoView> videos,
                                               const ContactSheetOptions& options = {}) {
  using detail::cat;
  using detail::require;
  require<ShapeError>(!videos.empty(), "contact sheet needs at least one video");
  std::size_t columns = 0;
  for (std::size_t r = 0; r < videos.size(); ++r) {
    validate_video(videos[r], cat("video ", r));
    require<ShapeError>(videos[r].height == videos[0].height && videos[r].width == videos[0].width, "video ", r,
                        " has ", videos[r].height, "x", videos[r].width, " frames but video 0 has ", videos[0].height,
                        "x", videos[0].width, "; a contact sheet needs one frame size");
    columns = std::max(columns, videos[r].frames);
  }
  ContactSheetLayout l;
  l.rows = videos.size();
  l.columns = columns;
  l.scale = resolve_scale(videos[0].height, videos[0].width, options.scale, options.min_frame_px);
  l.separator = options.separator;
  l.cell_width = detail_media::checked_product({videos[0].width, l.scale}, "contact sheet");
  l.cell_height = detail_media::checked_product({videos[0].height, l.scale}, "contact sheet");
  l.width = l.separator + detail_media::checked_product({l.columns, l.cell_width + l.separator}, "contact sheet");
  l.height = l.separator + detail_media::checked_product({l.rows, l.cell_height + l.separator}, "contact sheet");
  require<ShapeError>(l.width <= detail_media::kPngMaxSide && l.height <= detail_media::kPngMaxSide,
                      "contact sheet would be ", l.width, "x", l.height, " pixels, more than ",
                      detail_media::kPngMaxSide, " per side; use fewer frames or a smaller scale");
  return l;
}

/// Renders the videos as an RGB contact sheet (one row per video, one column per frame; layout in
/// ContactSheetLayout). A value v becomes the byte round(255 · clamp(v, 0, 1)).
inline Image contact_sheet(std::span<const VideoView> videos, const ContactSheetOptions& options = {}) {
  const ContactSheetLayout l = contact_sheet_layout(videos, options);
  Image sheet;
  sheet.width = l.width;
  sheet.height = l.height;
  sheet.channels = 3;
  sheet.pixels.resize(detail_media::checked_product({l.width, l.height, 3}, "contact sheet"));
  const auto fill = [&](std::size_t x0, std::size_t y0, std::size_t w, std::size_t h, Rgb8 c) {
    for (std::size_t y = y0; y < y0 + h; ++y)
      for (std::size_t x = x0; x < x0 + w; ++x) {
        std::uint8_t* p = sheet.pixels.data() + (y * sheet.width + x) * 3;
        p[0] = c.r;
        p[1] = c.g;
        p[2] = c.b;
      }
  };
  fill(0, 0, l.width, l.height, options.separator_colour);
  for (std::size_t r = 0; r < l.rows; ++r) {
    for (std::size_t k = 0; k < l.columns; ++k) {
      const std::size_t x0 = l.cell_x(k), y0 = l.cell_y(r);
      if (k >= videos[r].frames) {
        fill(x0, y0, l.cell_width, l.cell_height, options.background);
        continue;
      }
      const Image frame = frame_to_rgb(videos[r], k, l.scale, /*validated=*/true);
      for (std::size_t y = 0; y < frame.height; ++y)
        std::copy_n(frame.pixels.data() + y * frame.width * 3, frame.width * 3,
                    sheet.pixels.data() + ((y0 + y) * sheet.width + x0) * 3);
    }
  }
  return sheet;
}

/// contact_sheet of a braced list of videos (see the span overload).
inline Image contact_sheet(std::initializer_list<VideoView> videos, const ContactSheetOptions& options = {}) {
  return contact_sheet(std::span<const VideoView>(videos.begin(), videos.size()), options);
}

/// Renders a contact sheet and writes it as an RGB PNG, atomically.
inline void write_contact_sheet_png(const std::filesystem::path& path, std::span<const VideoView> videos,
                                    const ContactSheetOptions& options = {}) {
  write_png(path, contact_sheet(videos, options));
}

/// write_contact_sheet_png of a braced list of videos (see the span overload).
inline void write_contact_sheet_png(const std::filesystem::path& path, std::initializer_list<VideoView> videos,
                                    const ContactSheetOptions& options = {}) {
  write_contact_sheet_png(path, std::span<const VideoView>(videos.begin(), videos.size()), options);
}

}  // namespace flowception::io
