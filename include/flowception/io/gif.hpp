// Animated GIFs of one video (giflib 5.2), encoded in memory and written atomically, and a reader
// (frame count, size, delays, loop count and the decoded frames) for tests and users.
//
//   io::write_gif("video.gif", io::VideoView{frames, T, 3, 16, 16}, {.delay_cs = 8});
//
// Colours: the whole video shares one global palette of at most 256 colours, so frames do not
// flicker and the bytes are a pure function of the input and the options:
//   - GifPalette::adaptive (default): the video's own colours when it has at most 256 distinct
//     ones (then the GIF is exact: always the case for grey videos), otherwise a median cut of
//     its colour histogram; every pixel maps to its nearest palette colour (ties: lowest index).
//   - GifPalette::fixed: 256 grey levels for grey videos (exact); for RGB videos the uniform
//     8×8×4 levels of R, G, B (level i of n is round(255·i/(n−1))), so the error per channel is at
//     most 18 for R and G and 43 for B.
#pragma once

#include <gif_lib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flowception/core/errors.hpp"
#include "flowception/io/atomic_file.hpp"
#include "flowception/io/image.hpp"

namespace flowception::io {

/// How a GIF's one global palette is chosen (see quantise_video).
enum class GifPalette {
  adaptive,  ///< own colours, or a median cut past 256
  fixed,     ///< 256 greys, or 8×8×4 RGB
};

/// How encode_gif draws a video: scale, frame delay, looping and palette.
struct GifOptions {
  /// Nearest-neighbour factor; 0 picks the smallest that makes the shorter side ≥ min_frame_px.
  std::size_t scale = 0;
  std::size_t min_frame_px = 96;  ///< shorter frame side, in pixels, that `scale` = 0 reaches at least
  /// Display time of each frame in hundredths of a second (browsers show 0 or 1 as about 10).
  std::uint16_t delay_cs = 10;
  /// NETSCAPE2.0 loop count: 0 loops forever, n > 0 plays n + 1 times in most viewers.
  std::uint16_t loop = 0;
  GifPalette palette = GifPalette::adaptive;  ///< how the global palette is chosen
};

/// A video reduced to one palette: `indices[t*H*W + y*W + x]` is the palette entry of pixel (x, y)
/// of frame t (before any upscaling).
struct QuantisedVideo {
  std::vector<Rgb8> palette;  ///< 1 to 256 colours
  std::vector<std::uint8_t> indices;  ///< T·H·W palette indices, frame after frame, row-major
};

namespace detail_media {

inline std::uint32_t pack_rgb(std::uint8_t r, std::uint8_t g, std::uint8_t b) {
  return (std::uint32_t{r} << 16) | (std::uint32_t{g} << 8) | std::uint32_t{b};
}
inline std::uint8_t rgb_channel(std::uint32_t packed, int c) {
  return static_cast<std::uint8_t>(packed >> (16 - 8 * c));
}

struct ColourCount {
  std::uint32_t rgb;
  std::size_t count;
};

/// Median cut over a colour histogram (distinct colours with counts) down to `max_colours`
/// boxes; each palette entry is its box's count-weighted mean. Deterministic: the box with the
/// widest channel range is split (ties: earliest box, lowest channel), at the weighted median of
/// that channel, colours ordered by (channel value, packed value).
inline std::vector<Rgb8> median_cut(std::vector<ColourCount> colours, std::size_t max_colours) {
  struct Box {
    std::size_t begin, end;
    int range, channel;
  };
  const auto make_box = [&](std::size_t b, std::size_t e) {
    Box box{b, e, -1, 0};
    for (int c = 0; c < 3; ++c) {
      int lo = 255, hi = 0;
      for (std::size_t i = b; i < e; ++i) {
        const int v = rgb_channel(colours[i].rgb, c);
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      if (hi - lo > box.range) {
        box.range = hi - lo;
        box.channel = c;
      }
    }
    return box;
  };
  std::vector<Box> boxes{make_box(0, colours.size())};
  while (boxes.size() < max_colours) {
    std::size_t best = boxes.size();
    for (std::size_t i = 0; i < boxes.size(); ++i)
      if (boxes[i].end - boxes[i].begin >= 2 && (best == boxes.size() || boxes[i].range > boxes[best].range)) best = i;
    if (best == boxes.size() || boxes[best].range <= 0) break;
    const Box box = boxes[best];
    const int c = box.channel;
    std::sort(colours.begin() + static_cast<std::ptrdiff_t>(box.begin),
              colours.begin() + static_cast<std::ptrdiff_t>(box.end), [c](const ColourCount& a, const ColourCount& b) {
                const auto va = rgb_channel(a.rgb, c), vb = rgb_channel(b.rgb, c);
                return va != vb ? va < vb : a.rgb < b.rgb;
              });
    std::size_t total = 0;
    for (std::size_t i = box.begin; i < box.end; ++i) total += colours[i].count;
    std::size_t acc = 0, split = box.begin + 1;
    for (std::size_t i = box.begin; i < box.end; ++i) {
      acc += colours[i].count;
      if (2 * acc >= total) {
        split = i + 1;
        break;
      }
    }
    split = std::clamp(split, box.begin + 1, box.end - 1);
    boxes[best] = make_box(box.begin, split);
    boxes.push_back(make_box(split, box.end));
  }
  std::vector<Rgb8> palette;
  palette.reserve(boxes.size());
  for (const Box& box : boxes) {
    std::size_t n = 0, sum[3] = {0, 0, 0};
    for (std::size_t i = box.begin; i < box.end; ++i) {
      n += colours[i].count;
      for (int c = 0; c < 3; ++c) sum[c] += colours[i].count * rgb_channel(colours[i].rgb, c);
    }
    const auto mean = [&](int c) { return static_cast<std::uint8_t>((sum[c] + n / 2) / n); };
    palette.push_back({mean(0), mean(1), mean(2)});
  }
  return palette;
}

inline std::uint8_t nearest_colour(const std::vector<Rgb8>& palette, std::uint32_t rgb) {
  const int r = rgb_channel(rgb, 0), g = rgb_channel(rgb, 1), b = rgb_channel(rgb, 2);
  int best = 0, best_d = 1 << 30;
  for (std::size_t i = 0; i < palette.size(); ++i) {
    const int dr = palette[i].r - r, dg = palette[i].g - g, db = palette[i].b - b;
    const int d = dr * dr + dg * dg + db * db;
    if (d < best_d) {
      best_d = d;
      best = static_cast<int>(i);
    }
  }
  return static_cast<std::uint8_t>(best);
}

inline const char* gif_error_text(int code) {
  const char* s = GifErrorString(code);
  return s ? s : "unknown giflib error";
}

}  // namespace detail_media

/// The palette used for fixed mode: 256 greys when channels == 1, else 8×8×4 RGB levels with
/// index r·32 + g·4 + b.
inline std::vector<Rgb8> fixed_gif_palette(std::size_t channels) {
  std::vector<Rgb8> p;
  p.reserve(256);
  if (channels == 1) {
    for (int v = 0; v < 256; ++v) p.push_back({std::uint8_t(v), std::uint8_t(v), std::uint8_t(v)});
    return p;
  }
  const auto level = [](int i, int n) { return static_cast<std::uint8_t>((255 * i * 2 + (n - 1)) / (2 * (n - 1))); };
  for (int r = 0; r < 8; ++r)
    for (int g = 0; g < 8; ++g)
      for (int b = 0; b < 4; ++b) p.push_back({level(r, 8), level(g, 8), level(b, 4)});
  return p;
}

/// Reduces a video to one palette (see the top of this file). Validates the video.
inline QuantisedVideo quantise_video(const VideoView& v, GifPalette mode = GifPalette::adaptive) {
  validate_video(v);
  const std::size_t plane = v.height * v.width, n = v.frames * plane;
  std::vector<std::uint32_t> packed(n);
  for (std::size_t t = 0; t < v.frames; ++t) {
    const std::span<const float> f = v.frame(t);
    for (std::size_t i = 0; i < plane; ++i) {
      const std::uint8_t r = to_byte(f[i]);
      const std::uint8_t g = v.channels == 1 ? r : to_byte(f[plane + i]);
      const std::uint8_t b = v.channels == 1 ? r : to_byte(f[2 * plane + i]);
      packed[t * plane + i] = detail_media::pack_rgb(r, g, b);
    }
  }
  std::vector<std::uint32_t> distinct = packed;
  std::sort(distinct.begin(), distinct.end());
  std::vector<detail_media::ColourCount> histogram;
  for (std::size_t i = 0; i < distinct.size();) {
    std::size_t j = i;
    while (j < distinct.size() && distinct[j] == distinct[i]) ++j;
    histogram.push_back({distinct[i], j - i});
    i = j;
  }
  distinct.resize(histogram.size());
  for (std::size_t i = 0; i < histogram.size(); ++i) distinct[i] = histogram[i].rgb;

  QuantisedVideo q;
  if (mode == GifPalette::fixed) {
    q.palette = fixed_gif_palette(v.channels);
  } else if (histogram.size() <= 256) {
    for (const auto& h : histogram)
      q.palette.push_back({detail_media::rgb_channel(h.rgb, 0), detail_media::rgb_channel(h.rgb, 1),
                           detail_media::rgb_channel(h.rgb, 2)});
  } else {
    q.palette = detail_media::median_cut(histogram, 256);
  }
  std::vector<std::uint8_t> index_of(distinct.size());
  for (std::size_t i = 0; i < distinct.size(); ++i) index_of[i] = detail_media::nearest_colour(q.palette, distinct[i]);
  q.indices.resize(n);
  for (std::size_t i = 0; i < n; ++i)
    q.indices[i] = index_of[static_cast<std::size_t>(std::lower_bound(distinct.begin(), distinct.end(), packed[i]) -
                                                     distinct.begin())];
  return q;
}

/// Encodes one video as an animated GIF (global palette, NETSCAPE2.0 loop extension, a graphics
/// control extension with the delay before every frame, nearest-neighbour upscaling).
/// ShapeError for bad videos or a frame over 65535 px per side; IoError if giflib fails.
inline std::string encode_gif(const VideoView& v, const GifOptions& options = {}) {
  using detail::cat;
  const QuantisedVideo q = quantise_video(v, options.palette);
  const std::size_t s = resolve_scale(v.height, v.width, options.scale, options.min_frame_px);
  const std::size_t w = detail_media::checked_product({v.width, s}, "GIF frame");
  const std::size_t h = detail_media::checked_product({v.height, s}, "GIF frame");
  detail::require<ShapeError>(w <= 65535 && h <= 65535, "GIF frame would be ", w, "x", h,
                                           " pixels; GIF allows at most 65535 per side");

  std::size_t map_size = 2;
  while (map_size < q.palette.size()) map_size *= 2;
  std::vector<GifColorType> colours(map_size, GifColorType{0, 0, 0});
  for (std::size_t i = 0; i < q.palette.size(); ++i) colours[i] = {q.palette[i].r, q.palette[i].g, q.palette[i].b};

  struct Sink {
    std::string bytes;
    bool failed = false;
  } sink;
  const OutputFunc write = [](GifFileType* gif, const GifByteType* data, int len) -> int {
    auto* out = static_cast<Sink*>(gif->UserData);
    try {
      out->bytes.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(len));
      return len;
    } catch (...) {  // never unwind through giflib's C frames
      out->failed = true;
      return 0;
    }
  };
  int error = 0;
  GifFileType* gif = EGifOpen(&sink, write, &error);
  if (gif == nullptr)
    detail::fail<IoError>("giflib could not start a GIF: ", detail_media::gif_error_text(error));
  struct Closer {  // frees the encoder on every error path
    GifFileType* gif;
    ~Closer() {
      int ignored = 0;
      if (gif) EGifCloseFile(gif, &ignored);
    }
  } closer{gif};
  const auto check = [&](int rc, const char* what) {
    if (rc == GIF_ERROR)
      detail::fail<IoError>("giflib failed to ", what, ": ",
                        sink.failed ? "out of memory" : detail_media::gif_error_text(gif->Error));
  };

  EGifSetGifVersion(gif, true);
  ColorMapObject* map = GifMakeMapObject(static_cast<int>(map_size), colours.data());
  if (map == nullptr) detail::fail<IoError>("giflib could not allocate a colour map");
  const int rc = EGifPutScreenDesc(gif, static_cast<int>(w), static_cast<int>(h), 8, 0, map);
  GifFreeMapObject(map);
  check(rc, "write the screen descriptor");

  const std::uint8_t netscape_loop[3] = {1, static_cast<std::uint8_t>(options.loop & 0xff),
                                         static_cast<std::uint8_t>(options.loop >> 8)};
  check(EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE), "write the loop extension");
  check(EGifPutExtensionBlock(gif, 11, "NETSCAPE2.0"), "write the loop extension");
  check(EGifPutExtensionBlock(gif, 3, netscape_loop), "write the loop extension");
  check(EGifPutExtensionTrailer(gif), "write the loop extension");

  GraphicsControlBlock gcb{};
  gcb.DisposalMode = DISPOSE_DO_NOT;
  gcb.UserInputFlag = false;
  gcb.DelayTime = options.delay_cs;
  gcb.TransparentColor = NO_TRANSPARENT_COLOR;
  GifByteType gce[4];
  const std::size_t gce_len = EGifGCBToExtension(&gcb, gce);

  const std::size_t plane = v.height * v.width;
  std::vector<GifPixelType> raster(detail_media::checked_product({w, h}, "GIF frame"));
  for (std::size_t t = 0; t < v.frames; ++t) {
    check(EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, static_cast<int>(gce_len), gce), "write a frame delay");
    check(EGifPutImageDesc(gif, 0, 0, static_cast<int>(w), static_cast<int>(h), false, nullptr),
          "write an image descriptor");
    for (std::size_t y = 0; y < h; ++y)
      for (std::size_t x = 0; x < w; ++x) raster[y * w + x] = q.indices[t * plane + (y / s) * v.width + x / s];
    check(EGifPutLine(gif, raster.data(), static_cast<int>(raster.size())), "compress a frame");
  }
  closer.gif = nullptr;
  if (EGifCloseFile(gif, &error) == GIF_ERROR)
    detail::fail<IoError>("giflib failed to finish the GIF: ", detail_media::gif_error_text(error));
  if (sink.failed) detail::fail<IoError>("out of memory while encoding a GIF");
  return std::move(sink.bytes);
}

/// Writes one video as an animated GIF file, atomically (see encode_gif).
inline void write_gif(const std::filesystem::path& path, const VideoView& v, const GifOptions& options = {}) {
  write_file_atomically(path, encode_gif(v, options));
}

// ---------------------------------------------------------------------------------------------
// Reading

/// The structure of a GIF file, as read_gif_info and decode_gif report it.
struct GifInfo {
  std::size_t width = 0;   ///< logical screen width, pixels
  std::size_t height = 0;  ///< logical screen height, pixels
  std::size_t frames = 0;  ///< number of images in the file
  std::vector<std::uint16_t> delays_cs;  ///< one per frame (0 where a frame has no graphics control)
  std::optional<std::uint16_t> loop;     ///< NETSCAPE2.0 loop count, if the extension is present
  std::size_t global_palette_size = 0;   ///< 0 without a global colour table
};

/// A decoded GIF: its structure and every frame as a viewer shows it.
struct GifAnimation {
  GifInfo info;  ///< size, frame count, delays, loop count, palette size
  std::vector<Image> frames;  ///< RGB, screen-sized, each the canvas after drawing that frame
};

namespace detail_media {

inline GifAnimation decode_gif_impl(std::string_view bytes, std::string_view name, bool compose) {
  struct Source {
    std::string_view bytes;
    std::size_t pos = 0;
  } source{bytes};
  const InputFunc read = [](GifFileType* gif, GifByteType* out, int len) -> int {
    auto* src = static_cast<Source*>(gif->UserData);
    const std::size_t n = std::min(static_cast<std::size_t>(std::max(len, 0)), src->bytes.size() - src->pos);
    std::memcpy(out, src->bytes.data() + src->pos, n);
    src->pos += n;
    return static_cast<int>(n);
  };
  int error = 0;
  GifFileType* gif = DGifOpen(&source, read, &error);
  if (gif == nullptr) detail::fail<IoError>("cannot read ", name, ": ", gif_error_text(error));
  struct Closer {
    GifFileType* gif;
    ~Closer() {
      int ignored = 0;
      DGifCloseFile(gif, &ignored);
    }
  } closer{gif};
  if (DGifSlurp(gif) == GIF_ERROR)
    detail::fail<IoError>("cannot read ", name, ": ", gif_error_text(gif->Error));
  if (gif->ImageCount < 1) detail::fail<IoError>("cannot read ", name, ": the GIF has no frames");

  GifAnimation a;
  a.info.width = static_cast<std::size_t>(gif->SWidth);
  a.info.height = static_cast<std::size_t>(gif->SHeight);
  a.info.frames = static_cast<std::size_t>(gif->ImageCount);
  a.info.global_palette_size = gif->SColorMap ? static_cast<std::size_t>(gif->SColorMap->ColorCount) : 0;
  const auto scan_loop = [&](int count, const ExtensionBlock* blocks) {
    for (int i = 0; i + 1 < count; ++i) {
      const ExtensionBlock& app = blocks[i];
      const ExtensionBlock& sub = blocks[i + 1];
      if (app.Function == APPLICATION_EXT_FUNC_CODE && app.ByteCount == 11 &&
          std::memcmp(app.Bytes, "NETSCAPE2.0", 11) == 0 && sub.Function == CONTINUE_EXT_FUNC_CODE &&
          sub.ByteCount >= 3 && sub.Bytes[0] == 1 && !a.info.loop)
        a.info.loop = static_cast<std::uint16_t>(sub.Bytes[1] | (sub.Bytes[2] << 8));
    }
  };
  for (int i = 0; i < gif->ImageCount; ++i) {
    scan_loop(gif->SavedImages[i].ExtensionBlockCount, gif->SavedImages[i].ExtensionBlocks);
    GraphicsControlBlock gcb{};
    a.info.delays_cs.push_back(
        DGifSavedExtensionToGCB(gif, i, &gcb) == GIF_OK ? static_cast<std::uint16_t>(gcb.DelayTime) : 0);
  }
  scan_loop(gif->ExtensionBlockCount, gif->ExtensionBlocks);
  if (!compose) return a;

  // Compose the frames on the canvas as a viewer would (disposal modes honoured; "background"
  // restores the global background colour).
  const std::size_t W = a.info.width, H = a.info.height;
  Rgb8 background{};
  if (gif->SColorMap && gif->SBackGroundColor >= 0 && gif->SBackGroundColor < gif->SColorMap->ColorCount) {
    const GifColorType& c = gif->SColorMap->Colors[gif->SBackGroundColor];
    background = {c.Red, c.Green, c.Blue};
  }
  Image canvas;
  canvas.width = W;
  canvas.height = H;
  canvas.channels = 3;
  canvas.pixels.resize(checked_product({W, H, 3}, "GIF canvas"));
  for (std::size_t i = 0; i < W * H; ++i) {
    canvas.pixels[3 * i] = background.r;
    canvas.pixels[3 * i + 1] = background.g;
    canvas.pixels[3 * i + 2] = background.b;
  }
  for (int f = 0; f < gif->ImageCount; ++f) {
    const SavedImage& img = gif->SavedImages[f];
    const GifImageDesc& d = img.ImageDesc;
    const ColorMapObject* map = d.ColorMap ? d.ColorMap : gif->SColorMap;
    if (map == nullptr) detail::fail<IoError>("cannot read ", name, ": frame ", f, " has no colour table");
    GraphicsControlBlock gcb{};
    gcb.TransparentColor = NO_TRANSPARENT_COLOR;
    if (DGifSavedExtensionToGCB(gif, f, &gcb) != GIF_OK) {
      gcb.DisposalMode = DISPOSAL_UNSPECIFIED;
      gcb.TransparentColor = NO_TRANSPARENT_COLOR;
    }
    const Image before = gcb.DisposalMode == DISPOSE_PREVIOUS ? canvas : Image{};
    for (int y = 0; y < d.Height; ++y) {
      for (int x = 0; x < d.Width; ++x) {
        const long cx = static_cast<long>(d.Left) + x, cy = static_cast<long>(d.Top) + y;
        if (cx < 0 || cy < 0 || static_cast<std::size_t>(cx) >= W || static_cast<std::size_t>(cy) >= H) continue;
        const int idx = img.RasterBits[static_cast<std::size_t>(y) * static_cast<std::size_t>(d.Width) +
                                       static_cast<std::size_t>(x)];
        if (idx == gcb.TransparentColor) continue;
        if (idx >= map->ColorCount)
          detail::fail<IoError>("cannot read ", name, ": frame ", f, " uses colour ", idx, " of a ",
                            map->ColorCount, "-colour table");
        const GifColorType& c = map->Colors[idx];
        canvas.at(static_cast<std::size_t>(cx), static_cast<std::size_t>(cy), 0) = c.Red;
        canvas.at(static_cast<std::size_t>(cx), static_cast<std::size_t>(cy), 1) = c.Green;
        canvas.at(static_cast<std::size_t>(cx), static_cast<std::size_t>(cy), 2) = c.Blue;
      }
    }
    a.frames.push_back(canvas);
    if (gcb.DisposalMode == DISPOSE_PREVIOUS) {
      canvas = before;
    } else if (gcb.DisposalMode == DISPOSE_BACKGROUND) {
      for (int y = 0; y < d.Height; ++y)
        for (int x = 0; x < d.Width; ++x) {
          const long cx = static_cast<long>(d.Left) + x, cy = static_cast<long>(d.Top) + y;
          if (cx < 0 || cy < 0 || static_cast<std::size_t>(cx) >= W || static_cast<std::size_t>(cy) >= H) continue;
          canvas.at(static_cast<std::size_t>(cx), static_cast<std::size_t>(cy), 0) = background.r;
          canvas.at(static_cast<std::size_t>(cx), static_cast<std::size_t>(cy), 1) = background.g;
          canvas.at(static_cast<std::size_t>(cx), static_cast<std::size_t>(cy), 2) = background.b;
        }
    }
  }
  return a;
}

}  // namespace detail_media

/// Decodes GIF bytes: the info and every frame composed on the canvas (RGB). `name` labels errors.
inline GifAnimation decode_gif(std::string_view bytes, std::string_view name = "GIF data") {
  return detail_media::decode_gif_impl(bytes, name, /*compose=*/true);
}

/// Reads a GIF file and decodes its frames. IoError naming the path for missing or corrupt files.
inline GifAnimation read_gif(const std::filesystem::path& path) {
  const std::string bytes = detail_media::read_file_bytes(path);
  return detail_media::decode_gif_impl(bytes, detail::cat(path), /*compose=*/true);
}

/// Reads only the structure of a GIF file: size, frame count, delays, loop count.
inline GifInfo read_gif_info(const std::filesystem::path& path) {
  const std::string bytes = detail_media::read_file_bytes(path);
  return detail_media::decode_gif_impl(bytes, detail::cat(path), /*compose=*/false).info;
}

}  // namespace flowception::io
