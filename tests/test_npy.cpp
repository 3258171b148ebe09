// .npy I/O: round trips, files crafted byte by byte (Fortran order, version 2.0, every kind of bad
// file, each rejected with its own message), and directory loading with and without labels.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <xtensor/xnpy.hpp>

#include "flowception/io/npy.hpp"

namespace fs = std::filesystem;
using namespace flowception;

namespace {

class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           (std::string("fc_npy_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

std::string bytes_of(const void* p, std::size_t n) { return std::string(static_cast<const char*>(p), n); }

/// A .npy file from its parts: `dict` is padded with spaces and ended by '\n' to a 64-byte
/// boundary unless `raw_header` is set; `declared_len` overrides the header length field.
void write_npy_raw(const fs::path& path, std::string dict, const std::string& data, int major = 1,
                   bool raw_header = false, long declared_len = -1, std::size_t keep_header_bytes = std::string::npos) {
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  if (!raw_header) {
    const std::size_t unpadded = 8 + len_bytes + dict.size() + 1;
    dict.append((unpadded + 63) / 64 * 64 - unpadded, ' ');
    dict.push_back('\n');
  }
  const std::size_t len = declared_len >= 0 ? static_cast<std::size_t>(declared_len) : dict.size();
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back('\0');
  for (std::size_t i = 0; i < len_bytes; ++i) out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  out += dict.substr(0, keep_header_bytes);
  out += data;
  std::ofstream f(path, std::ios::binary);
  f.write(out.data(), static_cast<std::streamsize>(out.size()));
}

std::string dict_for(const std::string& descr, const std::string& shape, bool fortran = false) {
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': " + shape + ", }";
}

std::string float_bytes(const std::vector<float>& v) { return bytes_of(v.data(), v.size() * sizeof(float)); }

template <class E, class F>
void expect_error(F&& f, std::initializer_list<const char*> parts) {
  try {
    f();
    ADD_FAILURE() << "no exception thrown; expected one mentioning " << *parts.begin();
  } catch (const E& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("flowception: ", 0), 0u) << msg;
    for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

/// Value of element (t, y, x, c) used by the round-trip tests.
std::uint8_t u8_value(std::size_t t, std::size_t y, std::size_t x, std::size_t c) {
  return static_cast<std::uint8_t>((t * 31 + y * 7 + x * 3 + c * 50) % 256);
}

}  // namespace

TEST_F(NpyTest, Uint8RoundTripReordersToChannelMajor) {
  const std::size_t T = 3, H = 4, W = 5, C = 3;
  std::vector<std::uint8_t> raw;
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t y = 0; y < H; ++y)
      for (std::size_t x = 0; x < W; ++x)
        for (std::size_t c = 0; c < C; ++c) raw.push_back(u8_value(t, y, x, c));
  const fs::path p = dir_ / "u8.npy";
  io::save_npy(p, raw, {T, H, W, C});
  // Header padded so that the data start at a multiple of 64 bytes.
  const io::NpyHeader h = io::read_npy_header(p);
  EXPECT_EQ(h.descr, "|u1");
  EXPECT_FALSE(h.fortran_order);
  EXPECT_EQ(h.shape, (std::vector<std::size_t>{T, H, W, C}));
  EXPECT_EQ(h.data_offset % 64, 0u);
  EXPECT_EQ(h.file_size, h.data_offset + raw.size());

  const data::Video v = io::load_npy_video(p);
  ASSERT_EQ(v.channels, C);
  ASSERT_EQ(v.height, H);
  ASSERT_EQ(v.width, W);
  ASSERT_EQ(v.length(), T);
  EXPECT_EQ(v.label, -1);
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t y = 0; y < H; ++y)
        for (std::size_t x = 0; x < W; ++x) {
          EXPECT_EQ(v.frames[t * C * H * W + c * H * W + y * W + x], static_cast<float>(u8_value(t, y, x, c)) / 255.0f);
        }
  // No temporary file is left behind by the atomic write.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator{}), 1);
}

TEST_F(NpyTest, Float32RoundTripIsExactForOneAndThreeChannels) {
  for (std::size_t C : {std::size_t{1}, std::size_t{3}}) {
    data::Video v{C, 3, 2, {}, -1};
    const std::size_t T = 4;
    for (std::size_t i = 0; i < T * v.frame_size(); ++i) v.frames.push_back(static_cast<float>(i % 97) / 96.0f);
    const fs::path p = dir_ / ("f32_" + std::to_string(C) + ".npy");
    io::save_npy_video(p, v);
    EXPECT_EQ(io::read_npy_header(p).shape, (std::vector<std::size_t>{T, 3, 2, C}));
    const data::Video back = io::load_npy_video(p);
    EXPECT_EQ(back.channels, C);
    EXPECT_EQ(back.height, 3u);
    EXPECT_EQ(back.width, 2u);
    EXPECT_EQ(back.frames, v.frames);
    // As uint8: the nearest of the 256 levels.
    const fs::path q = dir_ / ("u8_" + std::to_string(C) + ".npy");
    io::save_npy_video(q, v, io::NpyVideoType::uint8);
    EXPECT_EQ(io::read_npy_header(q).descr, "|u1");
    const data::Video b8 = io::load_npy_video(q);
    ASSERT_EQ(b8.frames.size(), v.frames.size());
    for (std::size_t i = 0; i < v.frames.size(); ++i) EXPECT_NEAR(b8.frames[i], v.frames[i], 0.5 / 255.0 + 1e-6);
  }
}

TEST_F(NpyTest, XtensorReadsTheFilesWeWrite) {
  const std::vector<float> f{0.f, 1.5f, -2.f, 3.25f, 4.f, 5.f};
  io::save_npy(dir_ / "f.npy", f.data(), {2, 3});
  const auto xf = xt::load_npy<float>((dir_ / "f.npy").string());
  ASSERT_EQ(xf.dimension(), 2u);
  EXPECT_EQ(xf.shape()[0], 2u);
  EXPECT_EQ(xf.shape()[1], 3u);
  EXPECT_EQ(xf(1, 0), 3.25f);
  const std::vector<std::int64_t> n{-1, 1LL << 40, 7};
  io::save_npy(dir_ / "i.npy", n, {3});
  EXPECT_EQ(io::read_npy_header(dir_ / "i.npy").descr, "<i8");
  const auto xi = xt::load_npy<std::int64_t>((dir_ / "i.npy").string());
  ASSERT_EQ(xi.size(), 3u);
  EXPECT_EQ(xi(1), 1LL << 40);
  const std::vector<double> d{0.5};
  io::save_npy(dir_ / "scalar.npy", d, {});
  EXPECT_TRUE(io::read_npy_header(dir_ / "scalar.npy").shape.empty());
  EXPECT_EQ(xt::load_npy<double>((dir_ / "scalar.npy").string())(), 0.5);
  // Overwriting replaces the file.
  io::save_npy(dir_ / "f.npy", f.data(), {6});
  EXPECT_EQ(io::read_npy_header(dir_ / "f.npy").shape, (std::vector<std::size_t>{6}));
}

TEST_F(NpyTest, SaveRejectsMismatchedShapesAndMissingDirectories) {
  const std::vector<float> f(5, 0.f);
  expect_error<ShapeError>([&] { io::save_npy(dir_ / "x.npy", f, {2, 3}); }, {"5 values do not fill shape (2, 3)"});
  expect_error<IoError>([&] { io::save_npy(dir_ / "no" / "x.npy", f, {5}); }, {"does not exist"});
  data::Video bad{3, 2, 2, std::vector<float>(13), -1};
  expect_error<ShapeError>([&] { io::save_npy_video(dir_ / "v.npy", bad); }, {"not a whole number"});
}

TEST_F(NpyTest, ReadsFortranOrderAndVersion2) {
  const std::size_t T = 2, H = 2, W = 3, C = 3;
  std::vector<float> fortran(T * H * W * C);
  // Fortran order: the first index varies fastest.
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t x = 0; x < W; ++x)
      for (std::size_t y = 0; y < H; ++y)
        for (std::size_t t = 0; t < T; ++t)
          fortran[t + T * (y + H * (x + W * c))] = static_cast<float>(u8_value(t, y, x, c)) / 255.0f;
  write_npy_raw(dir_ / "f.npy", dict_for("<f4", "(2, 2, 3, 3)", true), float_bytes(fortran));
  const data::Video v = io::load_npy_video(dir_ / "f.npy");
  ASSERT_EQ(v.length(), T);
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t y = 0; y < H; ++y)
        for (std::size_t x = 0; x < W; ++x)
          EXPECT_EQ(v.at(t, c, y, x), static_cast<float>(u8_value(t, y, x, c)) / 255.0f);

  std::vector<std::uint8_t> u(2 * 2 * 2 * 1, 255);
  write_npy_raw(dir_ / "v2.npy", dict_for("|u1", "(2, 2, 2, 1)"), bytes_of(u.data(), u.size()), 2);
  const data::Video v2 = io::load_npy_video(dir_ / "v2.npy");
  EXPECT_EQ(io::read_npy_header(dir_ / "v2.npy").major_version, 2);
  EXPECT_EQ(v2.channels, 1u);
  EXPECT_EQ(v2.frames, std::vector<float>(8, 1.0f));
}

TEST_F(NpyTest, RejectsMissingAndNonNpyFiles) {
  expect_error<IoError>([&] { io::load_npy_video(dir_ / "missing.npy"); }, {"missing.npy", "does not exist"});
  expect_error<IoError>([&] { io::load_npy_video(dir_); }, {"not a regular file"});
  {
    std::ofstream f(dir_ / "text.npy");
    f << "hello, this is not numpy data at all";
  }
  expect_error<IoError>([&] { io::load_npy_video(dir_ / "text.npy"); }, {"text.npy", "not a .npy file", "bad magic"});
  {
    std::ofstream f(dir_ / "tiny.npy", std::ios::binary);
    f.write("\x93NUM", 4);
  }
  expect_error<IoError>([&] { io::load_npy_video(dir_ / "tiny.npy"); }, {"tiny.npy", "truncated .npy header", "4 bytes"});
  // Format version 3.0 is refused by name.
  {
    std::string s("\x93NUMPY\x03\x00", 8);
    s += std::string(60, ' ');
    std::ofstream f(dir_ / "v3.npy", std::ios::binary);
    f.write(s.data(), static_cast<std::streamsize>(s.size()));
  }
  expect_error<IoError>([&] { io::load_npy_video(dir_ / "v3.npy"); }, {"unsupported .npy format version 3.0"});
}

TEST_F(NpyTest, RejectsTruncatedAndCorruptHeaders) {
  const std::vector<float> data(2 * 2 * 2 * 3, 0.5f);
  // The header length field promises more bytes than the file has.
  write_npy_raw(dir_ / "th.npy", dict_for("<f4", "(2, 2, 2, 3)"), "", 1, false, -1, 20);
  expect_error<IoError>([&] { io::load_npy_video(dir_ / "th.npy"); }, {"th.npy", "truncated .npy header", "118"});
  write_npy_raw(dir_ / "noshape.npy", "{'descr': '<f4', 'fortran_order': False, }", float_bytes(data));
  expect_error<IoError>([&] { io::load_npy_video(dir_ / "noshape.npy"); },
                        {"noshape.npy", "corrupt .npy header", "missing key 'shape'"});
  write_npy_raw(dir_ / "nonl.npy", dict_for("<f4", "(2, 2, 2, 3)") + "   ", float_bytes(data), 1, true);
  expect_error<IoError>([&] { io::load_npy_video(dir_ / "nonl.npy"); }, {"corrupt .npy header", "newline"});
  write_npy_raw(dir_ / "badshape.npy", dict_for("<f4", "(2, -2, 2, 3)"), float_bytes(data));
  expect_error<IoError>([&] { io::load_npy_video(dir_ / "badshape.npy"); }, {"corrupt .npy header", "non-negative integers"});
  write_npy_raw(dir_ / "badbool.npy", "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 2, 2, 3), }", float_bytes(data));
  expect_error<IoError>([&] { io::load_npy_video(dir_ / "badbool.npy"); }, {"fortran_order must be True or False"});
  write_npy_raw(dir_ / "garbage.npy", "\x01\x02garbage", float_bytes(data));
  expect_error<IoError>([&] { io::load_npy_video(dir_ / "garbage.npy"); }, {"corrupt .npy header", "\\x01\\x02garbage"});
  write_npy_raw(dir_ / "struct.npy", "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
                float_bytes({0.f, 0.f}));
  expect_error<ShapeError>([&] { io::load_npy_video(dir_ / "struct.npy"); }, {"unsupported dtype '[('a', '<f4')]'"});
}

TEST_F(NpyTest, RejectsTruncatedOrOverlongData) {
  const std::vector<float> data(2 * 2 * 2 * 3, 0.5f);
  write_npy_raw(dir_ / "td.npy", dict_for("<f4", "(2, 2, 2, 3)"), float_bytes(data).substr(0, 41));
  expect_error<IoError>([&] { io::load_npy_video(dir_ / "td.npy"); },
                        {"td.npy", "truncated .npy data", "(2, 2, 2, 3)", "needs 96 data bytes but the file has 41"});
  write_npy_raw(dir_ / "long.npy", dict_for("<f4", "(2, 2, 2, 3)"), float_bytes(data) + "xyz");
  expect_error<IoError>([&] { io::load_npy_video(dir_ / "long.npy"); }, {"long.npy", "3 unexpected bytes"});
}

TEST_F(NpyTest, RejectsWrongDtypes) {
  const std::string data(2 * 2 * 2 * 3 * 8, '\0');
  for (const char* descr : {"<f8", "<i4", ">f4", "<u2", "|b1"}) {
    const fs::path p = dir_ / "dtype.npy";
    write_npy_raw(p, dict_for(descr, "(2, 2, 2, 3)"), data);
    expect_error<ShapeError>([&] { io::load_npy_video(p); },
                             {"dtype.npy", "unsupported dtype", (std::string("'") + descr + "'").c_str(), "uint8", "float32"});
  }
}

TEST_F(NpyTest, RejectsWrongRankAndAbsurdShapes) {
  const std::vector<float> f(48, 0.25f);
  write_npy_raw(dir_ / "r3.npy", dict_for("<f4", "(4, 4, 3)"), float_bytes(f));
  expect_error<ShapeError>([&] { io::load_npy_video(dir_ / "r3.npy"); },
                           {"r3.npy", "rank 4 (T, H, W, C)", "shape (4, 4, 3)", "rank 3"});
  write_npy_raw(dir_ / "r5.npy", dict_for("<f4", "(1, 2, 4, 2, 3)"), float_bytes(f));
  expect_error<ShapeError>([&] { io::load_npy_video(dir_ / "r5.npy"); }, {"shape (1, 2, 4, 2, 3)", "rank 5"});
  write_npy_raw(dir_ / "r1.npy", dict_for("<f4", "(48,)"), float_bytes(f));
  expect_error<ShapeError>([&] { io::load_npy_video(dir_ / "r1.npy"); }, {"shape (48,)"});

  const char* zero_shapes[] = {"(0, 4, 4, 3)", "(2, 0, 4, 3)", "(2, 4, 0, 3)", "(2, 4, 4, 0)"};
  const char* zero_names[] = {"T (frames) is 0", "H (height) is 0", "W (width) is 0", "C (channels) is 0"};
  for (int i = 0; i < 4; ++i) {
    write_npy_raw(dir_ / "z.npy", dict_for("<f4", zero_shapes[i]), "");
    expect_error<ShapeError>([&] { io::load_npy_video(dir_ / "z.npy"); }, {zero_names[i], zero_shapes[i]});
  }
  write_npy_raw(dir_ / "c2.npy", dict_for("<f4", "(2, 2, 3, 2)"), float_bytes(std::vector<float>(24, 0.f)));
  expect_error<ShapeError>([&] { io::load_npy_video(dir_ / "c2.npy"); },
                           {"c2.npy", "C (channels) must be 1 or 3, got 2"});
  write_npy_raw(dir_ / "c4.npy", dict_for("|u1", "(1, 1, 1, 4)"), "abcd");
  expect_error<ShapeError>([&] { io::load_npy_video(dir_ / "c4.npy"); }, {"got 4"});
  // 2^31 elements are refused before any data is read (the file holds only a few bytes).
  write_npy_raw(dir_ / "huge.npy", dict_for("|u1", "(65536, 1024, 1024, 3)"), "abc");
  expect_error<ShapeError>([&] { io::load_npy_video(dir_ / "huge.npy"); }, {"(65536, 1024, 1024, 3)", "2^31"});
  write_npy_raw(dir_ / "overflow.npy", dict_for("|u1", "(18446744073709551615, 4294967296, 4294967296, 3)"), "");
  expect_error<ShapeError>([&] { io::load_npy_video(dir_ / "overflow.npy"); }, {"2^31"});
  write_npy_raw(dir_ / "toolarge.npy", dict_for("|u1", "(99999999999999999999999, 1, 1, 3)"), "");
  expect_error<IoError>([&] { io::load_npy_video(dir_ / "toolarge.npy"); }, {"too large"});
}

TEST_F(NpyTest, RejectsOutOfRangeAndNonFiniteFloats) {
  std::vector<float> f(2 * 2 * 2 * 3, 0.5f);
  f[13] = 1.5f;  // t=1, y=0, x=0, c=1
  write_npy_raw(dir_ / "big.npy", dict_for("<f4", "(2, 2, 2, 3)"), float_bytes(f));
  expect_error<ShapeError>([&] { io::load_npy_video(dir_ / "big.npy"); },
                           {"big.npy", "value 1.5", "(t=1, y=0, x=0, c=1)", "outside [0, 1]"});
  f[13] = -0.25f;
  write_npy_raw(dir_ / "neg.npy", dict_for("<f4", "(2, 2, 2, 3)"), float_bytes(f));
  expect_error<ShapeError>([&] { io::load_npy_video(dir_ / "neg.npy"); }, {"value -0.25", "outside [0, 1]"});
  f[13] = std::numeric_limits<float>::quiet_NaN();
  write_npy_raw(dir_ / "nan.npy", dict_for("<f4", "(2, 2, 2, 3)"), float_bytes(f));
  expect_error<ShapeError>([&] { io::load_npy_video(dir_ / "nan.npy"); }, {"nan.npy", "value nan", "not finite"});
  f[13] = std::numeric_limits<float>::infinity();
  write_npy_raw(dir_ / "inf.npy", dict_for("<f4", "(2, 2, 2, 3)"), float_bytes(f));
  expect_error<ShapeError>([&] { io::load_npy_video(dir_ / "inf.npy"); }, {"value inf", "not finite"});
  // The end points themselves are legal.
  f[13] = 1.0f;
  f[0] = 0.0f;
  write_npy_raw(dir_ / "ok.npy", dict_for("<f4", "(2, 2, 2, 3)"), float_bytes(f));
  EXPECT_EQ(io::load_npy_video(dir_ / "ok.npy").at(1, 1, 0, 0), 1.0f);
}

namespace {

void save_video(const fs::path& p, std::size_t T, std::size_t H, std::size_t W, std::size_t C, float value) {
  data::Video v{C, H, W, std::vector<float>(T * C * H * W, value), -1};
  io::save_npy_video(p, v);
}

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream f(p);
  f << s;
}

}  // namespace

TEST_F(NpyTest, LoadsADirectorySortedByName) {
  const fs::path d = dir_ / "videos";
  fs::create_directories(d);
  save_video(d / "b.npy", 5, 4, 6, 3, 0.2f);
  save_video(d / "a.npy", 3, 4, 6, 3, 0.1f);
  save_video(d / "c.npy", 7, 4, 6, 3, 0.3f);
  write_text(d / "notes.txt", "not a video");
  fs::create_directories(d / "sub.npy");  // a directory named like a video is skipped
  const io::VideoDirectory vd = io::load_npy_directory(d);
  ASSERT_EQ(vd.names, (std::vector<std::string>{"a.npy", "b.npy", "c.npy"}));
  ASSERT_EQ(vd.videos.size(), 3u);
  EXPECT_EQ(vd.videos[0].length(), 3u);
  EXPECT_EQ(vd.videos[1].length(), 5u);
  EXPECT_EQ(vd.videos[2].length(), 7u);
  EXPECT_FLOAT_EQ(vd.videos[2].frames[0], 0.3f);
  for (const auto& v : vd.videos) EXPECT_EQ(v.label, -1);

  write_text(dir_ / "labels.txt", "# name label\na 0\n\nb.npy 2\r\n  c   1  \n");
  const io::VideoDirectory lab = io::load_npy_directory(d, dir_ / "labels.txt");
  EXPECT_EQ(lab.videos[0].label, 0);
  EXPECT_EQ(lab.videos[1].label, 2);
  EXPECT_EQ(lab.videos[2].label, 1);
}

TEST_F(NpyTest, DirectoryAndLabelErrors) {
  const fs::path d = dir_ / "videos";
  fs::create_directories(d);
  expect_error<IoError>([&] { io::load_npy_directory(d); }, {"videos", "contains no .npy files"});
  expect_error<IoError>([&] { io::load_npy_directory(dir_ / "nowhere"); }, {"nowhere", "does not exist"});
  write_text(dir_ / "file.txt", "x");
  expect_error<IoError>([&] { io::load_npy_directory(dir_ / "file.txt"); }, {"is not a directory"});

  save_video(d / "a.npy", 3, 4, 6, 3, 0.1f);
  save_video(d / "b.npy", 2, 4, 6, 3, 0.1f);
  const fs::path labels = dir_ / "labels.txt";
  expect_error<IoError>([&] { io::load_npy_directory(d, labels); }, {"labels.txt", "does not exist"});
  write_text(labels, "a 0\nb 1\nd 1\n");
  expect_error<ConfigError>([&] { io::load_npy_directory(d, labels); }, {"labels.txt line 3", "no video named 'd'"});
  write_text(labels, "a 0\n");
  expect_error<ConfigError>([&] { io::load_npy_directory(d, labels); }, {"no label for video 'b.npy'"});
  write_text(labels, "a 0\nb x\n");
  expect_error<ConfigError>([&] { io::load_npy_directory(d, labels); }, {"line 2", "label 'x' of 'b' is not an integer"});
  write_text(labels, "a 1.5\nb 1\n");
  expect_error<ConfigError>([&] { io::load_npy_directory(d, labels); }, {"line 1", "'1.5'", "not an integer"});
  write_text(labels, "a -3\nb 1\n");
  expect_error<ConfigError>([&] { io::load_npy_directory(d, labels); }, {"label -3", "negative"});
  write_text(labels, "a 0\nb 1\na.npy 2\n");
  expect_error<ConfigError>([&] { io::load_npy_directory(d, labels); }, {"line 3", "second label for 'a.npy'"});
  write_text(labels, "a\nb 1\n");
  expect_error<ConfigError>([&] { io::load_npy_directory(d, labels); }, {"line 1", "expected 'name label'"});
  write_text(labels, "a 0 7\nb 1\n");
  expect_error<ConfigError>([&] { io::load_npy_directory(d, labels); }, {"extra text '7'"});

  save_video(d / "c.npy", 2, 4, 5, 3, 0.1f);
  expect_error<ShapeError>([&] { io::load_npy_directory(d); }, {"c.npy", "4x5x3", "differs from 4x6x3", "a.npy"});
  fs::remove(d / "c.npy");
  save_video(d / "c.npy", 2, 4, 6, 1, 0.1f);
  expect_error<ShapeError>([&] { io::load_npy_directory(d); }, {"c.npy", "differs"});
  fs::remove(d / "c.npy");
  // A bad file inside the directory is reported with its own name.
  write_text(d / "c.npy", "garbage garbage garbage");
  expect_error<IoError>([&] { io::load_npy_directory(d); }, {"c.npy", "not a .npy file"});
}
