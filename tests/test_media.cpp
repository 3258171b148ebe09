// PNG, contact sheets, animated GIFs and the HTML report (flowception/io/{png,gif,report}.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "flowception/io/gif.hpp"
#include "flowception/io/png.hpp"
#include "flowception/io/report.hpp"

namespace fs = std::filesystem;
using namespace flowception;

namespace {

class MediaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / (std::string("fc_media_") + info->test_suite_name() + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  /// Names of everything in the test directory (to spot leftover temporaries).
  std::set<std::string> listing() const {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.insert(e.path().filename().string());
    return names;
  }

  fs::path dir_;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::size_t count_of(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

/// Uniform floats in [lo, hi) from a fixed-seed mt19937 (same on every standard library).
std::vector<float> random_values(std::size_t n, std::uint32_t seed, float lo = 0.0f, float hi = 1.0f) {
  std::mt19937 g(seed);
  std::vector<float> v(n);
  for (float& x : v) x = lo + (hi - lo) * static_cast<float>(g() / 4294967296.0);
  return v;
}

int expected_byte(float v) {
  return static_cast<int>(std::lround(255.0 * std::clamp(static_cast<double>(v), 0.0, 1.0)));
}

/// Value of channel c at (y, x) of frame t of a T×C×H×W video.
float value_at(const io::VideoView& v, std::size_t t, std::size_t c, std::size_t y, std::size_t x) {
  return v.data[((t * v.channels + c) * v.height + y) * v.width + x];
}

template <class F>
void expect_error_message(F&& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning '" << part << "'";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("flowception: ", 0), 0u) << what;
    EXPECT_NE(what.find(part), std::string::npos) << what;
  }
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// PNG

TEST_F(MediaTest, PngRoundTripIsExactForGreyAndRgb) {
  for (std::size_t channels : {1u, 3u}) {
    const std::size_t w = 37, h = 23;
    std::mt19937 g(static_cast<std::uint32_t>(channels));
    std::vector<std::uint8_t> px(w * h * channels);
    for (auto& b : px) b = static_cast<std::uint8_t>(g());
    const fs::path p = dir_ / ("img" + std::to_string(channels) + ".png");
    io::write_png(p, px.data(), w, h, channels);
    const io::Image back = io::read_png(p);
    EXPECT_EQ(back.width, w);
    EXPECT_EQ(back.height, h);
    EXPECT_EQ(back.channels, channels);
    EXPECT_EQ(back.pixels, px);
  }
  EXPECT_EQ(listing(), (std::set<std::string>{"img1.png", "img3.png"}));
}

TEST_F(MediaTest, PngRejectsBadSizesAndChannels) {
  std::vector<std::uint8_t> px(12, 7);
  EXPECT_THROW(io::write_png(dir_ / "a.png", px.data(), 2, 2, 5), ShapeError);
  EXPECT_THROW(io::write_png(dir_ / "a.png", px.data(), 0, 2, 3), ShapeError);
  io::Image bad{2, 2, 3, std::vector<std::uint8_t>(11)};
  EXPECT_THROW(io::write_png(dir_ / "a.png", bad), ShapeError);
  EXPECT_TRUE(listing().empty());
}

TEST_F(MediaTest, PngReadErrorsNameTheFile) {
  const fs::path missing = dir_ / "missing.png";
  expect_error_message([&] { io::read_png(missing); }, missing.string());
  EXPECT_THROW(io::read_png(missing), IoError);

  const fs::path garbage = dir_ / "garbage.png";
  io::write_file_atomically(garbage, "this is not a png file at all");
  expect_error_message([&] { io::read_png(garbage); }, garbage.string());
  EXPECT_THROW(io::read_png(garbage), IoError);

  std::vector<std::uint8_t> px(64 * 64 * 3);
  std::mt19937 g(5);
  for (auto& b : px) b = static_cast<std::uint8_t>(g());
  const std::string good = io::encode_png(px.data(), 64, 64, 3);
  const fs::path truncated = dir_ / "truncated.png";
  io::write_file_atomically(truncated, std::string_view(good).substr(0, good.size() / 2));
  expect_error_message([&] { io::read_png(truncated); }, truncated.string());
  EXPECT_THROW(io::read_png(truncated), IoError);

  std::string corrupt = good;
  corrupt[corrupt.size() / 2] ^= 0x5a;  // inside the IDAT data: CRC or zlib error
  EXPECT_THROW(io::decode_png(corrupt), IoError);
  EXPECT_THROW(io::read_png(dir_), IoError);  // a directory
}

// ------------------------------------------------------------------------------------------------
// Contact sheets

TEST_F(MediaTest, ContactSheetGeometry) {
  // 3×3 toy frames: the default scale makes each 48×48; separators of 2 px between and around.
  const auto a = random_values(5 * 3 * 3 * 3, 1), b = random_values(3 * 3 * 3 * 3, 2);
  const std::vector<io::VideoView> videos{{a, 5, 3, 3, 3}, {b, 3, 3, 3, 3}};
  const io::Image sheet = io::contact_sheet(videos);
  EXPECT_EQ(sheet.channels, 3u);
  EXPECT_EQ(sheet.width, 2u + 5u * (48u + 2u));
  EXPECT_EQ(sheet.height, 2u + 2u * (48u + 2u));
  EXPECT_EQ(sheet.pixels.size(), sheet.width * sheet.height * 3);

  // Non-square frames, explicit scale and separator, three rows.
  for (std::size_t sep : {0u, 1u, 2u}) {
    const auto c = random_values(4 * 1 * 5 * 7, 3);
    const std::span<const float> cs(c);
    const std::vector<io::VideoView> v3{{cs, 4, 1, 5, 7}, {cs.first(70), 2, 1, 5, 7}, {cs.first(35), 1, 1, 5, 7}};
    io::ContactSheetOptions o;
    o.scale = 3;
    o.separator = sep;
    const io::Image s = io::contact_sheet(v3, o);
    EXPECT_EQ(s.width, sep + 4 * (7 * 3 + sep));
    EXPECT_EQ(s.height, sep + 3 * (5 * 3 + sep));
    const io::ContactSheetLayout l = io::contact_sheet_layout(v3, o);
    EXPECT_EQ(l.width, s.width);
    EXPECT_EQ(l.height, s.height);
    EXPECT_EQ(l.cell_x(2), sep + 2 * (21 + sep));
    EXPECT_EQ(l.cell_y(1), sep + 1 * (15 + sep));
  }
  // Automatic scale uses the shorter side: 16×40 frames → factor 3 (48 px), 50×60 → 1.
  const auto d = random_values(16 * 40, 4), e = random_values(50 * 60, 5);
  EXPECT_EQ(io::contact_sheet({io::VideoView{d, 1, 1, 16, 40}}).height, 2u + 16u * 3u + 2u);
  EXPECT_EQ(io::contact_sheet({io::VideoView{e, 1, 1, 50, 60}}).width, 2u + 60u + 2u);
}

TEST_F(MediaTest, ContactSheetPixelsLandWhereExpected) {
  const std::size_t H = 3, W = 4;
  // Values outside [0, 1] must clamp; 0.5 (127.5) and 0.25 (63.75) exercise the rounding.
  auto a = random_values(6 * 3 * H * W, 11, -0.2f, 1.2f);
  auto b = random_values(2 * 1 * H * W, 12);
  a[7] = 0.5f;
  a[8] = 0.25f;
  const std::vector<io::VideoView> videos{{a, 6, 3, H, W}, {b, 2, 1, H, W}};
  io::ContactSheetOptions o;
  o.separator = 2;
  o.separator_colour = {10, 20, 30};
  o.background = {200, 201, 202};
  const io::Image s = io::contact_sheet(videos, o);
  const std::size_t scale = 16;  // 48 / min(3, 4)
  const std::size_t cw = W * scale, ch = H * scale;
  for (std::size_t r = 0; r < 2; ++r) {
    for (std::size_t k = 0; k < 6; ++k) {
      const std::size_t x0 = 2 + k * (cw + 2), y0 = 2 + r * (ch + 2);
      for (std::size_t y = 0; y < H; ++y)
        for (std::size_t x = 0; x < W; ++x)
          for (std::size_t dy : {std::size_t{0}, scale - 1})
            for (std::size_t dx : {std::size_t{0}, scale / 2}) {
              const std::size_t px = x0 + x * scale + dx, py = y0 + y * scale + dy;
              for (std::size_t c = 0; c < 3; ++c) {
                int want;
                if (k < videos[r].frames)
                  want = expected_byte(value_at(videos[r], k, videos[r].channels == 1 ? 0 : c, y, x));
                else
                  want = c == 0 ? 200 : c == 1 ? 201 : 202;  // padding of the shorter row
                ASSERT_EQ(static_cast<int>(s.at(px, py, c)), want)
                    << "row " << r << " frame " << k << " y " << y << " x " << x << " channel " << c;
              }
            }
    }
  }
  // Separator pixels: the corner, and the gap between frames 0 and 1 of row 0.
  EXPECT_EQ(s.at(0, 0, 0), 10);
  EXPECT_EQ(s.at(1, 1, 2), 30);
  EXPECT_EQ(s.at(2 + cw, 2 + 5, 1), 20);
  EXPECT_EQ(s.at(2 + cw + 1, 2 + 5, 0), 10);
  EXPECT_EQ(s.at(2 + cw + 2, 2 + 5, 0), expected_byte(value_at(videos[0], 1, 0, 0, 0)));
  // The rounding cases: 127.5 → 128 (half away from zero), 63.75 → 64.
  EXPECT_EQ(s.at(2 + 3 * scale, 2 + 1 * scale, 0), 128);  // a[7] = frame 0, c 0, y 1, x 3
  EXPECT_EQ(s.at(2 + 0 * scale, 2 + 2 * scale, 0), 64);   // a[8] = frame 0, c 0, y 2, x 0

  // Written as PNG, the file holds exactly the same pixels.
  const fs::path p = dir_ / "sheet.png";
  io::write_contact_sheet_png(p, videos, o);
  const io::Image back = io::read_png(p);
  EXPECT_EQ(back.width, s.width);
  EXPECT_EQ(back.height, s.height);
  EXPECT_EQ(back.channels, 3u);
  EXPECT_EQ(back.pixels, s.pixels);
  EXPECT_EQ(listing(), std::set<std::string>{"sheet.png"});
}

TEST_F(MediaTest, ContactSheetRejectsBadVideos) {
  const fs::path p = dir_ / "bad.png";
  auto ok = random_values(2 * 3 * 3 * 3, 1);
  auto nan = ok;
  nan[40] = std::numeric_limits<float>::quiet_NaN();
  expect_error_message(
      [&] {
        io::write_contact_sheet_png(p, {io::VideoView{ok, 2, 3, 3, 3}, io::VideoView{nan, 2, 3, 3, 3}});
      },
      "video 1 contains NaN");
  EXPECT_THROW(io::contact_sheet({io::VideoView{nan, 2, 3, 3, 3}}), ShapeError);
  const auto two = random_values(2 * 2 * 3 * 3, 1);
  expect_error_message([&] { io::contact_sheet({io::VideoView{two, 2, 2, 3, 3}}); }, "2 channels");
  EXPECT_THROW(io::write_contact_sheet_png(p, {io::VideoView{two, 2, 2, 3, 3}}), ShapeError);
  expect_error_message([&] { io::contact_sheet({io::VideoView{{}, 0, 3, 3, 3}}); }, "empty");
  EXPECT_THROW(io::write_contact_sheet_png(p, {io::VideoView{{}, 0, 3, 3, 3}}), ShapeError);
  EXPECT_THROW(io::contact_sheet(std::vector<io::VideoView>{}), ShapeError);
  expect_error_message([&] { io::contact_sheet({io::VideoView{ok, 3, 3, 3, 3}}); }, "needs 81");  // size mismatch
  const auto big = random_values(4 * 4 * 3, 2);
  expect_error_message(
      [&] {
        io::contact_sheet({io::VideoView{ok, 2, 3, 3, 3}, io::VideoView{big, 1, 3, 4, 4}});
      },
      "one frame size");
  // Infinities are displayable (they clamp); only NaN is an error.
  auto inf = ok;
  inf[0] = std::numeric_limits<float>::infinity();
  inf[1] = -std::numeric_limits<float>::infinity();
  const io::Image s = io::contact_sheet({io::VideoView{inf, 2, 3, 3, 3}});
  EXPECT_EQ(s.at(2, 2, 0), 255);
  EXPECT_EQ(s.at(2 + 16, 2, 0), 0);
  EXPECT_TRUE(listing().empty());
}

TEST_F(MediaTest, UnwritableTargetsThrowIoErrorNamingThePathAndLeaveNoTemporaries) {
  const auto v = random_values(2 * 3 * 3 * 3, 1);
  const io::VideoView video{v, 2, 3, 3, 3};
  // A directory that does not exist.
  const fs::path nodir = dir_ / "no_such_dir" / "sheet.png";
  expect_error_message([&] { io::write_contact_sheet_png(nodir, {video}); }, nodir.string());
  EXPECT_THROW(io::write_gif(nodir, video), IoError);
  // A "directory" that is a regular file (fails even for root, unlike permissions).
  io::write_file_atomically(dir_ / "file", "x");
  const fs::path under_file = dir_ / "file" / "sheet.png";
  expect_error_message([&] { io::write_contact_sheet_png(under_file, {video}); }, under_file.string());
  EXPECT_THROW(io::write_gif(dir_ / "file" / "v.gif", video), IoError);
  io::HtmlReport report;
  report.title = "t";
  EXPECT_THROW(io::write_html_report(dir_ / "file" / "r.html", report), IoError);
  // A target that is a directory: the temporary is written, the rename fails, the temporary goes.
  fs::create_directories(dir_ / "target.png");
  expect_error_message([&] { io::write_contact_sheet_png(dir_ / "target.png", {video}); }, "target.png");
  EXPECT_THROW(io::write_gif(dir_ / "target.png", video), IoError);
  EXPECT_EQ(listing(), (std::set<std::string>{"file", "target.png"}));
  EXPECT_TRUE(fs::is_empty(dir_ / "target.png"));
  // Overwriting a file leaves one file.
  io::write_contact_sheet_png(dir_ / "s.png", {video});
  io::write_contact_sheet_png(dir_ / "s.png", {video, video});
  io::write_gif(dir_ / "v.gif", video);
  io::write_gif(dir_ / "v.gif", video);
  EXPECT_EQ(listing(), (std::set<std::string>{"file", "target.png", "s.png", "v.gif"}));
  EXPECT_EQ(io::read_png(dir_ / "s.png").height, 2u + 2u * 50u);
}

// ------------------------------------------------------------------------------------------------
// GIF

TEST_F(MediaTest, GifStructureRoundTrips) {
  const auto v = random_values(7 * 3 * 3 * 3, 21);
  const fs::path p = dir_ / "v.gif";
  io::GifOptions o;
  o.scale = 5;
  o.delay_cs = 12;
  o.loop = 3;
  io::write_gif(p, io::VideoView{v, 7, 3, 3, 3}, o);
  const io::GifInfo info = io::read_gif_info(p);
  EXPECT_EQ(info.frames, 7u);
  EXPECT_EQ(info.width, 15u);
  EXPECT_EQ(info.height, 15u);
  EXPECT_EQ(info.delays_cs, std::vector<std::uint16_t>(7, 12));
  ASSERT_TRUE(info.loop.has_value());
  EXPECT_EQ(*info.loop, 3);
  EXPECT_EQ(slurp(p).substr(0, 6), "GIF89a");

  // Defaults: loop forever (0), 10 cs, frames scaled so the shorter side is ≥ 96 px.
  const auto w = random_values(2 * 1 * 4 * 6, 22);
  io::write_gif(p, io::VideoView{w, 2, 1, 4, 6});
  const io::GifInfo d = io::read_gif_info(p);
  EXPECT_EQ(d.frames, 2u);
  EXPECT_EQ(d.height, 96u);
  EXPECT_EQ(d.width, 144u);
  EXPECT_EQ(d.delays_cs, std::vector<std::uint16_t>(2, 10));
  ASSERT_TRUE(d.loop.has_value());
  EXPECT_EQ(*d.loop, 0);
  EXPECT_EQ(listing(), std::set<std::string>{"v.gif"});
}

namespace {
/// Decodes a GIF and checks every upscaled pixel against the input within per-channel bounds;
/// returns the mean absolute error over all channels.
double check_gif_colours(const std::string& bytes, const io::VideoView& v, std::size_t scale, const int bound[3]) {
  const io::GifAnimation a = io::decode_gif(bytes);
  EXPECT_EQ(a.frames.size(), v.frames);
  EXPECT_EQ(a.info.width, v.width * scale);
  EXPECT_EQ(a.info.height, v.height * scale);
  double sum = 0;
  std::size_t n = 0;
  for (std::size_t t = 0; t < std::min(v.frames, a.frames.size()); ++t) {
    const io::Image& f = a.frames[t];
    for (std::size_t y = 0; y < v.height; ++y)
      for (std::size_t x = 0; x < v.width; ++x)
        for (std::size_t c = 0; c < 3; ++c) {
          const int want = expected_byte(value_at(v, t, v.channels == 1 ? 0 : c, y, x));
          const int got = f.at(x * scale, y * scale, c);
          EXPECT_LE(std::abs(got - want), bound[c]) << "frame " << t << " y " << y << " x " << x << " c " << c;
          // the whole upscaled block has the same colour
          EXPECT_EQ(f.at(x * scale + scale - 1, y * scale + scale - 1, c), got);
          sum += std::abs(got - want);
          ++n;
        }
  }
  return sum / static_cast<double>(n);
}
}  // namespace

TEST_F(MediaTest, GifColoursWithinPaletteError) {
  // Fixed palette, RGB: levels round(255 i/7) for R, G (gaps ≤ 37 → error ≤ 18) and round(255 i/3)
  // for B (gaps 85 → error ≤ 42); ±1 of slack for ties.
  const auto v = random_values(6 * 3 * 5 * 4, 31, -0.1f, 1.1f);
  const io::VideoView rgb{v, 6, 3, 5, 4};
  io::GifOptions o;
  o.scale = 2;
  o.palette = io::GifPalette::fixed;
  const int fixed_bound[3] = {19, 19, 43};
  const double fixed_mean = check_gif_colours(io::encode_gif(rgb, o), rgb, 2, fixed_bound);
  EXPECT_EQ(io::fixed_gif_palette(3).size(), 256u);

  // Fixed palette, grey: 256 grey levels, exact.
  const auto gv = random_values(4 * 1 * 6 * 6, 32);
  const io::VideoView grey{gv, 4, 1, 6, 6};
  const int exact[3] = {0, 0, 0};
  check_gif_colours(io::encode_gif(grey, o), grey, 2, exact);

  // Adaptive palette with at most 256 distinct colours (a rotating-ring-like video): exact.
  std::vector<float> ring(30 * 3 * 3 * 3);
  for (std::size_t t = 0; t < 30; ++t)
    for (std::size_t c = 0; c < 3; ++c)
      for (std::size_t i = 0; i < 9; ++i)
        ring[(t * 3 + c) * 9 + i] = static_cast<float>(((t + i) % 9) * 0.1 + 0.05 * c);
  const io::VideoView ringv{ring, 30, 3, 3, 3};
  o.palette = io::GifPalette::adaptive;
  o.scale = 3;
  check_gif_colours(io::encode_gif(ringv, o), ringv, 3, exact);
  check_gif_colours(io::encode_gif(grey, o), grey, 3, exact);  // grey is always exact

  // Adaptive palette over many colours (median cut): close to the input, better than fixed on average.
  o.scale = 2;
  EXPECT_LE(io::quantise_video(rgb).palette.size(), 120u);  // 6·5·4 = 120 pixels: exact
  check_gif_colours(io::encode_gif(rgb, o), rgb, 2, exact);
  const auto many = random_values(20 * 3 * 8 * 8, 33);
  const io::VideoView manyv{many, 20, 3, 8, 8};
  EXPECT_EQ(io::quantise_video(manyv).palette.size(), 256u);
  const int loose[3] = {48, 48, 48};
  const double adaptive_mean = check_gif_colours(io::encode_gif(manyv, o), manyv, 2, loose);
  o.palette = io::GifPalette::fixed;
  const double fixed_many_mean = check_gif_colours(io::encode_gif(manyv, o), manyv, 2, fixed_bound);
  EXPECT_LT(adaptive_mean, fixed_many_mean);
  EXPECT_GT(fixed_mean, 0.0);
}

TEST_F(MediaTest, GifBytesAreDeterministic) {
  const auto v = random_values(12 * 3 * 9 * 9, 41);
  const io::VideoView video{v, 12, 3, 9, 9};
  for (io::GifPalette mode : {io::GifPalette::adaptive, io::GifPalette::fixed}) {
    io::GifOptions o;
    o.palette = mode;
    const std::string a = io::encode_gif(video, o), b = io::encode_gif(video, o);
    EXPECT_EQ(a, b);
    io::write_gif(dir_ / "a.gif", video, o);
    io::write_gif(dir_ / "b.gif", video, o);
    EXPECT_EQ(slurp(dir_ / "a.gif"), a);
    EXPECT_EQ(slurp(dir_ / "b.gif"), a);
  }
  EXPECT_EQ(listing(), (std::set<std::string>{"a.gif", "b.gif"}));
}

TEST_F(MediaTest, GifErrors) {
  const fs::path p = dir_ / "v.gif";
  auto v = random_values(2 * 3 * 3 * 3, 51);
  v[5] = std::numeric_limits<float>::quiet_NaN();
  expect_error_message([&] { io::write_gif(p, io::VideoView{v, 2, 3, 3, 3}); }, "NaN");
  EXPECT_THROW(io::write_gif(p, io::VideoView{v, 2, 3, 3, 3}), ShapeError);
  const auto two = random_values(2 * 2 * 3 * 3, 52);
  EXPECT_THROW(io::write_gif(p, io::VideoView{two, 2, 2, 3, 3}), ShapeError);
  EXPECT_THROW(io::write_gif(p, io::VideoView{{}, 0, 3, 3, 3}), ShapeError);
  io::GifOptions huge;
  huge.scale = 30000;
  EXPECT_THROW(io::encode_gif(io::VideoView{two, 1, 1, 3, 3}, huge), ShapeError);
  EXPECT_TRUE(listing().empty());

  expect_error_message([&] { io::read_gif_info(p); }, p.string());
  io::write_file_atomically(p, "GIF89a but nothing after that");
  EXPECT_THROW(io::read_gif_info(p), IoError);
  io::write_file_atomically(p, "not a gif");
  expect_error_message([&] { io::read_gif(p); }, p.string());
  const auto ok = random_values(8 * 3 * 8 * 8, 53);
  const std::string good = io::encode_gif(io::VideoView{ok, 8, 3, 8, 8});
  io::write_file_atomically(p, std::string_view(good).substr(0, good.size() / 2));
  expect_error_message([&] { io::read_gif(p); }, p.string());
  EXPECT_THROW(io::read_gif_info(p), IoError);
}

// ------------------------------------------------------------------------------------------------
// HTML report

TEST(MediaReport, FormatsNumbers) {
  using S = io::NumberFormat::Style;
  EXPECT_EQ(io::format_number(0.123456), "0.1235");
  EXPECT_EQ(io::format_number(0.9351, {S::percent, 1, ""}), "93.5%");
  EXPECT_EQ(io::format_number(1234.5, {S::scientific, 2, ""}), "1.23e+03");
  EXPECT_EQ(io::format_number(22.6, {S::integer, 0, "frames"}), "23 frames");
  EXPECT_EQ(io::format_number(-0.0001, {S::fixed, 2, ""}), "0.00");
  EXPECT_EQ(io::format_number(std::nan("")), "n/a");
  EXPECT_EQ(io::format_number(-std::numeric_limits<double>::infinity()), "-inf");
  EXPECT_THROW(io::format_number(1.0, {S::fixed, -1, ""}), ConfigError);
  EXPECT_EQ(io::html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(io::url_path_escape("gifs/a b&c<d>.gif"), "gifs/a%20b%26c%3Cd%3E.gif");
}

TEST_F(MediaTest, ReportHasEscapedTitleScoresImagesAndOneBarPerBinPerSeries) {
  io::HtmlReport r;
  r.title = "eval <ring> & \"friends\"";
  r.paragraphs.push_back("checkpoint <latest> & co");
  const io::NumberFormat plain, percent{io::NumberFormat::Style::percent, 1, ""},
      frames{io::NumberFormat::Style::fixed, 2, "frames"};
  r.scores.push_back({"valid fraction", 0.9351, percent, "target ≥ 99%"});
  r.scores.push_back({"length TV", 0.0234567, plain, ""});
  r.scores.push_back({"mean length <L>", 22.5, frames, ""});
  r.scores.push_back({"undefined", std::nan(""), plain, ""});
  io::HistogramComparison h;
  h.generated = {{14, 0.05}, {15, 0.2}, {20, 0.25}, {25, 0.25}, {30, 0.2}, {31, 0.05}};
  h.data = {{15, 0.25}, {20, 0.25}, {25, 0.25}, {30, 0.25}};
  h.generated_label = "model <gen>";
  r.histograms.push_back(h);
  r.images.push_back({"gifs/sample_000.gif", "sample 0 <uncond>"});
  r.images.push_back({"sheets/all samples.png", "contact sheet"});
  const fs::path p = dir_ / "report.html";
  io::write_html_report(p, r);
  EXPECT_EQ(listing(), std::set<std::string>{"report.html"});
  const std::string html = slurp(p);

  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<title>eval &lt;ring&gt; &amp; &quot;friends&quot;</title>"), std::string::npos);
  EXPECT_NE(html.find("<h1>eval &lt;ring&gt; &amp; &quot;friends&quot;</h1>"), std::string::npos);
  EXPECT_EQ(html.find("<ring>"), std::string::npos);
  EXPECT_EQ(html.find("<latest>"), std::string::npos);
  EXPECT_EQ(html.find("<gen>"), std::string::npos);
  EXPECT_EQ(html.find("<uncond>"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("checkpoint &lt;latest&gt; &amp; co"), std::string::npos);
  // Scores: name and formatted value in one row each.
  EXPECT_NE(html.find("<td>valid fraction</td><td class=\"value\">93.5%</td><td>target ≥ 99%</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>length TV</td><td class=\"value\">0.0235</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>mean length &lt;L&gt;</td><td class=\"value\">22.50 frames</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>undefined</td><td class=\"value\">n/a</td>"), std::string::npos);
  // Images, percent-encoded, with captions.
  EXPECT_NE(html.find("<img src=\"gifs/sample_000.gif\" alt=\"sample 0 &lt;uncond&gt;\">"), std::string::npos);
  EXPECT_NE(html.find("<img src=\"sheets/all%20samples.png\""), std::string::npos);
  EXPECT_NE(html.find("<figcaption>contact sheet</figcaption>"), std::string::npos);
  // The chart: union of lengths {14, 15, 20, 25, 30, 31} → 6 bins, one bar per bin per series.
  EXPECT_EQ(count_of(html, "<svg"), 1u);
  EXPECT_EQ(count_of(html, "</svg>"), 1u);
  EXPECT_EQ(count_of(html, "<rect class=\"bar generated\""), 6u);
  EXPECT_EQ(count_of(html, "<rect class=\"bar data\""), 6u);
  for (std::size_t len : {14u, 15u, 20u, 25u, 30u, 31u})
    EXPECT_EQ(count_of(html, "data-length=\"" + std::to_string(len) + "\""), 2u) << len;
  EXPECT_NE(html.find("class=\"bar data\" data-length=\"14\" data-p=\"0.000000\""), std::string::npos);
  EXPECT_NE(html.find("class=\"bar generated\" data-length=\"20\" data-p=\"0.250000\""), std::string::npos);
  EXPECT_NE(html.find("model &lt;gen&gt;"), std::string::npos);
}

TEST_F(MediaTest, ReportChartBarHeightsAreProportionalAndBadProbabilitiesRejected) {
  io::HistogramComparison h;
  h.generated = {{3, 0.1}, {4, 0.4}};
  h.data = {{3, 0.2}};
  const std::string svg = io::svg_histogram(h);
  const auto height_of = [&](const std::string& cls, std::size_t len) {
    const std::string key = "<rect class=\"bar " + cls + "\" data-length=\"" + std::to_string(len) + "\"";
    const std::size_t at = svg.find(key);
    EXPECT_NE(at, std::string::npos) << key;
    const std::size_t hp = svg.find("height=\"", at) + 8;
    return std::stod(svg.substr(hp, svg.find('"', hp) - hp));
  };
  EXPECT_NEAR(height_of("generated", 4) / height_of("generated", 3), 4.0, 1e-3);
  EXPECT_NEAR(height_of("data", 3) / height_of("generated", 3), 2.0, 1e-3);
  EXPECT_EQ(height_of("data", 4), 0.0);

  h.data[5] = -0.1;
  EXPECT_THROW(io::svg_histogram(h), ConfigError);
  h.data[5] = std::nan("");
  io::HtmlReport r;
  r.title = "t";
  r.histograms.push_back(h);
  EXPECT_THROW(io::write_html_report(dir_ / "r.html", r), ConfigError);
  EXPECT_TRUE(listing().empty());
  // An empty comparison still renders.
  EXPECT_NE(io::svg_histogram({}).find("no lengths"), std::string::npos);
}
