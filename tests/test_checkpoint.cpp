// The safetensors layer: exact round trips, deterministic bytes, agreement with an independent
// reader, rejection of every kind of corrupt file with a message that says what is wrong, and
// atomic writes.
#include <gtest/gtest.h>

#include "support/expect_error.hpp"
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <source_location>
#include <sstream>
#include <string>
#include <vector>

#include "flowception/io/safetensors.hpp"

namespace fs = std::filesystem;
using namespace flowception;
using io::DType;

namespace {

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("fc_ckpt_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::size_t entries() const {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(path), fs::directory_iterator{}));
  }
};

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// A file made by hand: the length prefix, the header text as given (no padding), the data.
std::string raw_file(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

float float_from_bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct Sample {
  std::vector<float> f32a{1.5f,
                          -0.0f,
                          std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::denorm_min(),
                          float_from_bits(0x7fc12345u),  // NaN with payload
                          3.14159274f,
                          -1e-30f};
  std::vector<float> f32b{0.25f, 0.5f, 0.75f, 1.0f, 1.25f, 1.5f};
  std::vector<float> f32_scalar{42.0f};
  std::vector<double> f64a{
      0.1,  -2.5e300, std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::quiet_NaN(),
      -0.0, 1.0 / 3.0};
  std::vector<double> f64b{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::vector<std::int64_t> i64a{0, -1, std::numeric_limits<std::int64_t>::min(),
                                 std::numeric_limits<std::int64_t>::max(), 123456789012345};
  std::vector<std::int64_t> i64_scalar{7};
  std::vector<std::uint8_t> u8a{0, 1, 127, 128, 254, 255, 3};
  std::vector<std::uint8_t> u8b{9, 8, 7, 6};
  std::vector<std::int32_t> i32a{-5, 5, 1 << 30};
  std::vector<float> empty{};

  std::vector<io::Tensor> tensors() const {
    std::vector<io::Tensor> t;
    t.push_back(io::make_tensor("weights.a", {2, 4}, f32a));
    t.push_back(io::make_tensor("weights.b", {3, 1, 2}, f32b));
    t.push_back(io::make_tensor("scalar.f32", {}, f32_scalar));
    t.push_back(io::make_tensor("double.a", {6}, f64a));
    t.push_back(io::make_tensor("double.b", {2, 2, 3}, f64b));
    t.push_back(io::make_tensor("ints.a", {5}, i64a));
    t.push_back(io::make_tensor("ints.step", {}, i64_scalar));
    t.push_back(io::make_tensor("bytes.a", {7}, u8a));
    t.push_back(io::make_tensor("bytes.b", {2, 2}, u8b));
    t.push_back(io::make_tensor("i32", {3}, i32a));
    t.push_back(io::make_tensor("empty", {0, 3}, empty));
    t.push_back(io::make_raw_tensor(
        "half", DType::F16, {2}, {std::byte{0x00}, std::byte{0x3c}, std::byte{0x00}, std::byte{0xc0}}));  // 1.0, -2.0
    return t;
  }
  std::map<std::string, std::string> metadata() const {
    return {{"format", "flowception-test"}, {"step", "1234"}, {"note", "température ✓"}, {"empty", ""}};
  }
};

using fc_test::expect_error;

}  // namespace

TEST(Safetensors, DtypeTable) {
  EXPECT_EQ(io::dtype_name(DType::F32), "F32");
  EXPECT_EQ(io::dtype_size(DType::F64), 8u);
  EXPECT_EQ(io::dtype_size(DType::BF16), 2u);
  EXPECT_EQ(io::dtype_from_name("I64"), DType::I64);
  EXPECT_EQ(io::dtype_from_name("BOOL"), DType::BOOL);
  EXPECT_FALSE(io::dtype_from_name("F33").has_value());
  EXPECT_FALSE(io::dtype_from_name("f32").has_value());
}

TEST(Safetensors, ExactRoundTripOfEveryDtypeWithMetadata) {
  TempDir dir("roundtrip");
  const Sample s;
  const fs::path p = dir.path / "a.safetensors";
  io::save_safetensors(p, s.tensors(), s.metadata());
  const io::SafetensorsFile f = io::load_safetensors(p);

  EXPECT_EQ(f.size(), 12u);
  EXPECT_EQ(f.metadata(), s.metadata());
  EXPECT_EQ(f.metadata_string("note"), "température ✓");
  EXPECT_EQ(f.metadata_i64("step"), 1234);
  EXPECT_EQ(f.metadata_u64("step"), 1234u);
  EXPECT_TRUE(f.has_metadata("empty"));
  EXPECT_FALSE(f.has_metadata("absent"));

  EXPECT_TRUE(same_bits(io::read_f32(f, "weights.a", {2, 4}), s.f32a));
  EXPECT_TRUE(same_bits(io::read_f32(f, "weights.b", {3, 1, 2}), s.f32b));
  EXPECT_TRUE(same_bits(io::read_f32(f, "scalar.f32", {}), s.f32_scalar));
  EXPECT_TRUE(same_bits(io::read_f64(f, "double.a", {6}), s.f64a));
  EXPECT_TRUE(same_bits(io::read_f64(f, "double.b", {2, 2, 3}), s.f64b));
  EXPECT_TRUE(same_bits(io::read_i64(f, "ints.a", {5}), s.i64a));
  EXPECT_TRUE(same_bits(io::read_i64(f, "ints.step", {}), s.i64_scalar));
  EXPECT_TRUE(same_bits(io::read_u8(f, "bytes.a", {7}), s.u8a));
  EXPECT_TRUE(same_bits(io::read_u8(f, "bytes.b", {2, 2}), s.u8b));
  EXPECT_TRUE(same_bits(io::read_tensor<std::int32_t>(f, "i32", {3}), s.i32a));
  EXPECT_TRUE(io::read_f32(f, "empty", {0, 3}).empty());

  const io::TensorView half = f.view("half");
  EXPECT_EQ(half.dtype, DType::F16);
  ASSERT_EQ(half.bytes.size(), 4u);
  EXPECT_EQ(half.bytes[1], std::byte{0x3c});
  EXPECT_EQ(half.bytes[3], std::byte{0xc0});
  const io::Tensor copy = f.tensor("weights.b");
  EXPECT_EQ(copy.shape, (std::vector<std::int64_t>{3, 1, 2}));
  EXPECT_EQ(copy.dtype, DType::F32);
  EXPECT_EQ(copy.numel(), 6);

  // read_into fills a caller's buffer.
  std::vector<float> buf(6);
  io::read_into<float>(f, "weights.b", {3, 1, 2}, std::span<float>(buf));
  EXPECT_TRUE(same_bits(buf, s.f32b));
  std::vector<float> small(5);
  expect_error<ShapeError>(
      [&] {
        io::read_into<float>(f, "weights.b", {3, 1, 2}, std::span<float>(small));
      },
      "destination buffer holds 5");

  // A file without tensors or metadata is valid too.
  io::save_safetensors(dir.path / "empty.safetensors", {});
  const auto e = io::load_safetensors(dir.path / "empty.safetensors");
  EXPECT_EQ(e.size(), 0u);
  EXPECT_TRUE(e.metadata().empty());
}

TEST(Safetensors, BytesAreDeterministicAndIndependentOfInputOrder) {
  TempDir dir("determinism");
  const Sample s;
  auto tensors = s.tensors();
  io::save_safetensors(dir.path / "a.safetensors", tensors, s.metadata());
  io::save_safetensors(dir.path / "b.safetensors", tensors, s.metadata());
  std::reverse(tensors.begin(), tensors.end());
  io::save_safetensors(dir.path / "c.safetensors", tensors, s.metadata());
  const std::string a = read_bytes(dir.path / "a.safetensors");
  EXPECT_EQ(a, read_bytes(dir.path / "b.safetensors"));
  EXPECT_EQ(a, read_bytes(dir.path / "c.safetensors"));
  std::ostringstream os;
  io::write_safetensors(os, s.tensors(), s.metadata());
  EXPECT_EQ(a, os.str());
  // Re-saving what was loaded reproduces the file.
  const auto f = io::load_safetensors(dir.path / "a.safetensors");
  std::vector<io::Tensor> again;
  for (const auto& n : f.names()) again.push_back(f.tensor(n));
  io::save_safetensors(dir.path / "d.safetensors", again, f.metadata());
  EXPECT_EQ(a, read_bytes(dir.path / "d.safetensors"));
}

// A reader written from the format description alone, sharing no code with the library's.
TEST(Safetensors, IndependentMinimalParserAgrees) {
  TempDir dir("independent");
  const Sample s;
  const fs::path p = dir.path / "a.safetensors";
  io::save_safetensors(p, s.tensors(), s.metadata());
  const std::string file = read_bytes(p);
  ASSERT_GE(file.size(), 8u);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(file[i]);
  ASSERT_LE(8 + n, file.size());
  EXPECT_EQ((8 + n) % 8, 0u) << "data must start 8-byte aligned";
  const std::string header = file.substr(8, n);
  EXPECT_EQ(header.front(), '{');
  const auto last = header.find_last_not_of(' ');
  EXPECT_EQ(header[last], '}');
  EXPECT_LT(header.size() - last - 1, 8u) << "at most 7 padding spaces";
  const auto j = nlohmann::json::parse(header);
  const std::string data = file.substr(8 + n);

  // Metadata.
  ASSERT_TRUE(j.contains("__metadata__"));
  EXPECT_EQ(j["__metadata__"]["format"], "flowception-test");
  EXPECT_EQ(j["__metadata__"]["step"], "1234");
  EXPECT_EQ(j.size(), 13u);

  // Every tensor: dtype string, shape, offsets packed in name order without gaps.
  struct Want {
    const char* name;
    const char* dtype;
    std::vector<std::int64_t> shape;
    std::size_t bytes;
  };
  const std::vector<Want> want{{"bytes.a", "U8", {7}, 7},        {"bytes.b", "U8", {2, 2}, 4},
                               {"double.a", "F64", {6}, 48},     {"double.b", "F64", {2, 2, 3}, 96},
                               {"empty", "F32", {0, 3}, 0},      {"half", "F16", {2}, 4},
                               {"i32", "I32", {3}, 12},          {"ints.a", "I64", {5}, 40},
                               {"ints.step", "I64", {}, 8},      {"scalar.f32", "F32", {}, 4},
                               {"weights.a", "F32", {2, 4}, 32}, {"weights.b", "F32", {3, 1, 2}, 24}};
  std::uint64_t offset = 0;
  for (const auto& w : want) {
    SCOPED_TRACE(w.name);
    ASSERT_TRUE(j.contains(w.name));
    const auto& e = j[w.name];
    EXPECT_EQ(e.size(), 3u);
    EXPECT_EQ(e["dtype"], w.dtype);
    EXPECT_EQ(e["shape"].get<std::vector<std::int64_t>>(), w.shape);
    EXPECT_EQ(e["data_offsets"][0].get<std::uint64_t>(), offset);
    EXPECT_EQ(e["data_offsets"][1].get<std::uint64_t>(), offset + w.bytes);
    offset += w.bytes;
  }
  EXPECT_EQ(offset, data.size());

  // Little-endian bytes, decoded by hand.
  auto at = [&](const char* name) { return j[name]["data_offsets"][0].get<std::size_t>(); };
  const std::size_t wa = at("weights.a");
  // 1.5f = 0x3FC00000, stored 00 00 C0 3F; then -0.0f = 0x80000000.
  EXPECT_EQ(static_cast<unsigned char>(data[wa + 0]), 0x00);
  EXPECT_EQ(static_cast<unsigned char>(data[wa + 2]), 0xC0);
  EXPECT_EQ(static_cast<unsigned char>(data[wa + 3]), 0x3F);
  EXPECT_EQ(static_cast<unsigned char>(data[wa + 7]), 0x80);
  // NaN payload 0x7FC12345 at element 5.
  std::uint32_t nan_bits = 0;
  for (int b = 3; b >= 0; --b) nan_bits = (nan_bits << 8) | static_cast<unsigned char>(data[wa + 20 + b]);
  EXPECT_EQ(nan_bits, 0x7FC12345u);
  // int64 min at element 2 of ints.a: 00 .. 00 80.
  const std::size_t ia = at("ints.a") + 16;
  for (int b = 0; b < 7; ++b) EXPECT_EQ(data[ia + b], '\0');
  EXPECT_EQ(static_cast<unsigned char>(data[ia + 7]), 0x80);
  // u8 bytes verbatim.
  EXPECT_EQ(static_cast<unsigned char>(data[at("bytes.a") + 5]), 255);
  // 1.0 as double = 0x3FF0000000000000 (double.b element 0).
  EXPECT_EQ(static_cast<unsigned char>(data[at("double.b") + 7]), 0x3F);
  EXPECT_EQ(static_cast<unsigned char>(data[at("double.b") + 6]), 0xF0);
}

// The library reads a file that another writer made with a different (valid) layout: unpadded
// header, data not in name order, extra whitespace in the JSON.
TEST(Safetensors, ReadsForeignValidLayouts) {
  TempDir dir("foreign");
  std::string data;
  const float two = 2.0f;
  const std::int64_t seven = 7;
  data.append(reinterpret_cast<const char*>(&seven), 8);  // "z" first in the data
  data.append(reinterpret_cast<const char*>(&two), 4);    // then "a"
  const std::string header =
      R"({ "z" : {"shape":[1],"dtype":"I64","data_offsets":[0,8]},
           "a": {"dtype":"F32","shape":[1,1],"data_offsets":[8,12]}, "__metadata__": {"k":"v"} })";
  write_bytes(dir.path / "f.safetensors", raw_file(header, data));
  const auto f = io::load_safetensors(dir.path / "f.safetensors");
  EXPECT_EQ(io::read_f32(f, "a", {1, 1})[0], 2.0f);
  EXPECT_EQ(io::read_i64(f, "z", {1})[0], 7);
  EXPECT_EQ(f.metadata_string("k"), "v");
}

TEST(Safetensors, MissingFileAndMetadataErrors) {
  TempDir dir("missing");
  expect_error<IoError>([&] { io::load_safetensors(dir.path / "nope.safetensors"); }, "nope.safetensors");
  expect_error<IoError>([&] { io::load_safetensors(dir.path); }, "no such regular file");
  const Sample s;
  io::save_safetensors(dir.path / "a.safetensors", s.tensors(), s.metadata());
  const auto f = io::load_safetensors(dir.path / "a.safetensors");
  expect_error<IoError>([&] { (void)f.metadata_string("config"); }, "no metadata entry 'config'");
  expect_error<IoError>([&] { (void)f.metadata_i64("format"); }, "'format' = 'flowception-test' is not a valid");
  expect_error<IoError>([&] { (void)f.metadata_f64("empty"); }, "'empty' = '' is not a valid");
  for (double x : {0.1, 1e-8, 3.141592653589793, -2.5e-310, 1e300, 0.0}) {
    io::SafetensorsFile g = io::parse_safetensors(
        [&] {
          std::ostringstream os;
          io::write_safetensors(os, {}, {{"x", io::format_metadata_double(x)}});
          const std::string b = os.str();
          std::vector<std::byte> v(b.size());
          std::memcpy(v.data(), b.data(), b.size());
          return v;
        }(),
        "mem");
    EXPECT_EQ(g.metadata_f64("x"), x);
  }
}

TEST(Safetensors, TypedReadsRejectMissingTensorWrongDtypeAndWrongShape) {
  TempDir dir("typed");
  const Sample s;
  const fs::path p = dir.path / "a.safetensors";
  io::save_safetensors(p, s.tensors(), s.metadata());
  const auto f = io::load_safetensors(p);
  expect_error<IoError>([&] { io::read_f32(f, "weights.c", {2, 4}); }, "no tensor named 'weights.c'");
  expect_error<IoError>([&] { io::read_f32(f, "weights.c", {2, 4}); }, "a.safetensors");
  expect_error<ShapeError>([&] { io::read_f32(f, "double.a", {6}); },
                           "tensor 'double.a' has dtype F64 but F32 was expected");
  expect_error<ShapeError>([&] { io::read_f64(f, "ints.a", {5}); },
                           "tensor 'ints.a' has dtype I64 but F64 was expected");
  expect_error<ShapeError>([&] { io::read_i64(f, "weights.a", {2, 4}); }, "has dtype F32 but I64 was expected");
  expect_error<ShapeError>([&] { io::read_u8(f, "ints.step", {}); }, "has dtype I64 but U8 was expected");
  expect_error<ShapeError>(
      [&] {
        io::read_f32(f, "weights.a", {4, 2});
      },
      "tensor 'weights.a' has shape [2, 4] but [4, 2] was expected");
  expect_error<ShapeError>([&] { io::read_f32(f, "weights.a", {8}); }, "has shape [2, 4] but [8] was expected");
  expect_error<ShapeError>([&] { io::read_f32(f, "scalar.f32", {1}); }, "has shape [] but [1] was expected");
  expect_error<ShapeError>([&] { io::read_f32(f, "weights.a", {2, 4, 1}); }, "a.safetensors");
}

TEST(Safetensors, SaveRejectsBadInput) {
  TempDir dir("badsave");
  const std::vector<float> v{1, 2, 3};
  expect_error<ShapeError>(
      [&] {
        io::make_tensor("w", {2, 2}, v);
      },
      "tensor 'w' of shape [2, 2] needs 4 values, got 3");
  expect_error<ShapeError>([&] { io::make_tensor("w", {-1, 3}, v); }, "negative dimension -1");
  expect_error<ShapeError>([&] { io::make_raw_tensor("h", DType::BF16, {2}, std::vector<std::byte>(3)); },
                           "needs 4 bytes, got 3");
  std::vector<io::Tensor> dup{io::make_tensor("w", {3}, v), io::make_tensor("w", {3}, v)};
  expect_error<ConfigError>([&] { io::save_safetensors(dir.path / "x", dup); },
                            "tensor name 'w' appears more than once");
  expect_error<ConfigError>([&] { io::save_safetensors(dir.path / "x", {io::make_tensor("", {3}, v)}); }, "empty name");
  expect_error<ConfigError>([&] { io::save_safetensors(dir.path / "x", {io::make_tensor("__metadata__", {3}, v)}); },
                            "reserved");
  io::Tensor bad = io::make_tensor("w", {3}, v);
  bad.data.pop_back();
  expect_error<ShapeError>([&] { io::save_safetensors(dir.path / "x", {bad}); }, "needs 12 bytes of data, has 11");
  expect_error<ConfigError>(
      [&] {
        io::save_safetensors(dir.path / "x", {}, {{"k", std::string("\xff\xfe")}});
      },
      "UTF-8");
  EXPECT_EQ(dir.entries(), 0u) << "a rejected save leaves nothing behind";
}

TEST(Safetensors, TruncatedFilesAreRejected) {
  TempDir dir("truncated");
  const Sample s;
  const fs::path good = dir.path / "good.safetensors";
  io::save_safetensors(good, s.tensors(), s.metadata());
  const std::string bytes = read_bytes(good);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  const std::size_t cuts[] = {0, 1, 7, 8, 9, 8 + n / 2, 8 + n - 1, 8 + n, 8 + n + 1, 8 + n + 50, bytes.size() - 1};
  for (std::size_t cut : cuts) {
    SCOPED_TRACE(cut);
    const fs::path p = dir.path / "cut.safetensors";
    write_bytes(p, bytes.substr(0, cut));
    expect_error<IoError>([&] { io::load_safetensors(p); }, "truncated");
    expect_error<IoError>([&] { io::load_safetensors(p); }, "cut.safetensors");
  }
  // Data cut inside the last tensor names that tensor.
  write_bytes(dir.path / "cut.safetensors", bytes.substr(0, bytes.size() - 3));
  expect_error<IoError>([&] { io::load_safetensors(dir.path / "cut.safetensors"); }, "tensor 'weights.b'");
}

TEST(Safetensors, CorruptHeadersAreRejected) {
  TempDir dir("corrupt");
  const fs::path p = dir.path / "bad.safetensors";
  auto expect_io = [&](const std::string& file_bytes, const std::string& substring,
                       const std::source_location loc = std::source_location::current()) {
    testing::ScopedTrace trace(loc.file_name(), static_cast<int>(loc.line()), "expect_io");
    write_bytes(p, file_bytes);
    expect_error<IoError>([&] { io::load_safetensors(p); }, substring);
    expect_error<IoError>([&] { io::load_safetensors(p); }, "bad.safetensors");
  };
  const std::string d8(8, '\x01');  // 8 data bytes

  // Header length larger than the file, and absurd.
  expect_io(le64(1000) + "{}", "header length says 1000 bytes but only 2 bytes follow");
  expect_io(le64(1ull << 40) + "{}", "header length 1099511627776 exceeds the limit");
  expect_io(le64(~0ull) + std::string(64, ' '), "exceeds the limit");
  // Not JSON / not an object.
  expect_io(raw_file(R"({"a": {"dtype":"F32", "shape":[2], "data_offsets":[0,8]})", d8), "not valid JSON");
  expect_io(raw_file(R"({"a": {"dtype":"F32", "shape":[2], "data_offsets":[0,8]}} x)", d8), "not valid JSON");
  expect_io(raw_file("\x01\x02garbage", d8), "not valid JSON");
  expect_io(raw_file(std::string("{\"a\": \"") + "\xff" + "\"}", ""), "not valid JSON");  // invalid UTF-8
  expect_io(raw_file(R"([1, 2, 3])", ""), "not a JSON object but array");
  expect_io(raw_file("{", ""), "not valid JSON");
  expect_io(le64(0), "not valid JSON");
  // Fields missing, ill-typed or unknown.
  expect_io(raw_file(R"({"a": {"shape":[2], "data_offsets":[0,8]}})", d8), "tensor 'a': missing field 'dtype'");
  expect_io(raw_file(R"({"a": {"dtype":"F32", "data_offsets":[0,8]}})", d8), "tensor 'a': missing field 'shape'");
  expect_io(raw_file(R"({"a": {"dtype":"F32", "shape":[2]}})", d8), "tensor 'a': missing field 'data_offsets'");
  expect_io(raw_file(R"({"a": [1]})", d8), "tensor 'a': entry is a JSON array");
  expect_io(raw_file(R"({"a": {"dtype":32, "shape":[2], "data_offsets":[0,8]}})", d8), "dtype holds 32, not a string");
  expect_io(raw_file(R"({"a": {"dtype":"F32", "shape":2, "data_offsets":[0,8]}})", d8), "shape holds 2, not an array");
  expect_io(raw_file(R"({"a": {"dtype":"F32", "shape":[2.0], "data_offsets":[0,8]}})", d8), "not an integer");
  expect_io(raw_file(R"({"a": {"dtype":"F32", "shape":["2"], "data_offsets":[0,8]}})", d8), "not an integer");
  expect_io(raw_file(R"({"a": {"dtype":"F32", "shape":[2], "data_offsets":[0]}})", d8), "not an array [begin, end]");
  expect_io(raw_file(R"({"a": {"dtype":"F32", "shape":[2], "data_offsets":[0,8], "x":1}})", d8),
            "tensor 'a': unknown field 'x'");
  expect_io(raw_file(R"({"__metadata__": {"k": 1}})", ""), "__metadata__ entry 'k' holds 1, not a string");
  expect_io(raw_file(R"({"__metadata__": [1]})", ""), "__metadata__ is a JSON array");
  // Wrong dtype string.
  expect_io(raw_file(R"({"a": {"dtype":"F33", "shape":[2], "data_offsets":[0,8]}})", d8), "unknown dtype 'F33'");
  expect_io(raw_file(R"({"a": {"dtype":"float32", "shape":[2], "data_offsets":[0,8]}})", d8), "unknown dtype");
  // Negative or absurd dimensions, bad offsets.
  expect_io(raw_file(R"({"a": {"dtype":"F32", "shape":[-2], "data_offsets":[0,8]}})", d8),
            "tensor 'a': shape holds the negative value -2");
  expect_io(raw_file(R"({"a": {"dtype":"F32", "shape":[2], "data_offsets":[-1,8]}})", d8), "negative value -1");
  expect_io(raw_file(R"({"a": {"dtype":"F64", "shape":[4294967296, 4294967296], "data_offsets":[0,8]}})", d8),
            "absurdly large");
  expect_io(raw_file(R"({"a": {"dtype":"F32", "shape":[18446744073709551615], "data_offsets":[0,8]}})", d8),
            "absurd value");
  expect_io(raw_file(R"({"a": {"dtype":"F32", "shape":[2], "data_offsets":[8,0]}})", d8), "end before they begin");
  // Shape / offset mismatch.
  expect_io(raw_file(R"({"a": {"dtype":"F32", "shape":[3], "data_offsets":[0,8]}})", d8),
            "tensor 'a': data_offsets [0, 8] span 8 bytes, which does not match shape [3] of F32 (12 bytes)");
  expect_io(raw_file(R"({"a": {"dtype":"F64", "shape":[2], "data_offsets":[0,8]}})", d8),
            "does not match shape [2] of F64");
  // Offsets out of range.
  expect_io(raw_file(R"({"a": {"dtype":"F32", "shape":[2], "data_offsets":[4,12]}})", d8),
            "tensor 'a': data_offsets [4, 12] run past the end of the data section (8 bytes)");
  // Overlap, hole, trailing bytes.
  expect_io(raw_file(R"({"a": {"dtype":"F32", "shape":[2], "data_offsets":[0,8]},
                         "b": {"dtype":"F32", "shape":[1], "data_offsets":[4,8]}})",
                     d8),
            "overlaps tensor 'a'");
  expect_io(raw_file(R"({"a": {"dtype":"U8", "shape":[2], "data_offsets":[0,2]},
                         "b": {"dtype":"U8", "shape":[2], "data_offsets":[4,6]},
                         "c": {"dtype":"U8", "shape":[2], "data_offsets":[6,8]}})",
                     d8),
            "hole of 2 unused bytes before tensor 'b'");
  expect_io(raw_file(R"({"a": {"dtype":"U8", "shape":[4], "data_offsets":[4,8]}})", d8), "hole of 4 unused bytes");
  expect_io(raw_file(R"({"a": {"dtype":"F32", "shape":[1], "data_offsets":[0,4]}})", d8),
            "4 trailing bytes after the last tensor");
  expect_io(raw_file("{}", "junk"), "4 trailing bytes");
  // Duplicate names (and duplicate fields).
  expect_io(raw_file(R"({"a": {"dtype":"U8", "shape":[4], "data_offsets":[0,4]},
                         "a": {"dtype":"U8", "shape":[4], "data_offsets":[4,8]}})",
                     d8),
            "key 'a' more than once");
  expect_io(raw_file(R"({"a": {"dtype":"U8", "dtype":"U8", "shape":[8], "data_offsets":[0,8]}})", d8),
            "key 'dtype' more than once");

  // A good file with garbage appended is rejected; the same file without it is read.
  const Sample s;
  std::ostringstream os;
  io::write_safetensors(os, s.tensors(), s.metadata());
  expect_io(os.str() + "GARBAGE", "7 trailing bytes");
  // A byte flipped inside the header breaks the JSON.
  std::string flipped = os.str();
  flipped[8] = '[';
  expect_io(flipped, "not valid JSON");
  write_bytes(p, os.str());
  EXPECT_NO_THROW(io::load_safetensors(p));
}

TEST(Safetensors, AtomicWriteNeverLeavesAHalfFileOrATemporary) {
  TempDir dir("atomic");
  const Sample s;
  const fs::path p = dir.path / "ckpt.safetensors";
  io::save_safetensors(p, s.tensors(), s.metadata());
  const std::string before = read_bytes(p);
  ASSERT_EQ(dir.entries(), 1u);

  // 1. A writer that dies half-way through the data.
  EXPECT_THROW(io::write_atomically(p,
                                    [&](std::ostream& out) {
                                      std::ostringstream full;
                                      io::write_safetensors(
                                          full, {io::make_tensor("w", {1000}, std::vector<float>(1000, 1.0f))});
                                      const std::string b = full.str();
                                      out.write(b.data(), static_cast<std::streamsize>(b.size() / 2));
                                      throw IoError("flowception: simulated crash");
                                    }),
               IoError);
  EXPECT_EQ(read_bytes(p), before);
  EXPECT_EQ(dir.entries(), 1u);

  // 2. A real save that runs out of space: the file-size limit makes the writes fail (EFBIG).
  {
    struct rlimit old {};
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old;
    small.rlim_cur = 4096;
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
    std::string msg;
    try {
      io::save_safetensors(p, {io::make_tensor("big", {100000}, std::vector<float>(100000, 2.0f))}, {});
    } catch (const IoError& e) {
      msg = e.what();
    }
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
    EXPECT_NE(msg.find("disk full"), std::string::npos) << msg;
    EXPECT_EQ(read_bytes(p), before) << "the old checkpoint survives a failed save";
    EXPECT_EQ(dir.entries(), 1u) << "no temporary file is left";
  }

  // 3. The rename itself fails (the target is a non-empty directory).
  const fs::path blocked = dir.path / "blocked";
  fs::create_directories(blocked / "inside");
  expect_error<IoError>([&] { io::save_safetensors(blocked, s.tensors(), s.metadata()); }, "is a directory");
  EXPECT_TRUE(fs::is_directory(blocked));
  EXPECT_EQ(dir.entries(), 2u);

  // 4. The directory does not exist.
  expect_error<IoError>([&] { io::save_safetensors(dir.path / "no" / "x.safetensors", s.tensors()); },
                        "does not exist");

  // A successful save replaces the file completely.
  io::save_safetensors(p, {io::make_tensor("only", {1}, std::vector<float>{5.0f})});
  const auto f = io::load_safetensors(p);
  EXPECT_EQ(f.names(), std::vector<std::string>{"only"});
  EXPECT_EQ(dir.entries(), 2u);
}

// ---- Checksums -------------------------------------------------------------------------------

TEST(Crc32c, KnownValuesAndIncrementalUse) {
  auto crc = [](std::string_view t, std::uint32_t c = 0) {
    return io::crc32c(std::as_bytes(std::span<const char>(t.data(), t.size())), c);
  };
  EXPECT_EQ(crc(""), 0u);
  EXPECT_EQ(crc("123456789"), 0xE3069283u);  // the standard check value of CRC-32C
  EXPECT_EQ(crc(std::string(32, '\0')), 0x8A9136AAu);  // RFC 3720, B.4: 32 bytes of zeros
  EXPECT_EQ(crc(std::string(32, '\xff')), 0x62A8AB43u);  // RFC 3720, B.4: 32 bytes of ones
  const std::string long_text = "the quick brown fox jumps over the lazy dog, again and again and again";
  for (std::size_t cut : {0, 1, 7, 8, 9, 33, 70}) EXPECT_EQ(crc(long_text.substr(cut), crc(long_text.substr(0, cut))), crc(long_text));
}

// Every single-bit flip anywhere in a file (length, header, padding, data) is refused; flips in
// the data name the tensor whose checksum fails.
TEST(Safetensors, EverySingleBitFlipIsDetected) {
  std::vector<io::Tensor> t{io::make_tensor("w", {2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6}),
                            io::make_tensor("step", {}, std::vector<std::int64_t>{7}),
                            io::make_tensor("b", {3}, std::vector<std::uint8_t>{1, 2, 3})};
  std::ostringstream out;
  io::write_safetensors(out, t, {{"format", "x"}, {"lr", "0.001"}});
  const std::string good = out.str();
  const auto clean = io::parse_safetensors(std::vector<std::byte>(reinterpret_cast<const std::byte*>(good.data()),
                                                                  reinterpret_cast<const std::byte*>(good.data()) + good.size()),
                                           "good");
  EXPECT_TRUE(clean.verified());
  EXPECT_EQ(clean.metadata(), (std::map<std::string, std::string>{{"format", "x"}, {"lr", "0.001"}}));
  EXPECT_EQ(clean.checksums().size(), 4u);  // three tensors and the header
  const std::size_t data_start = good.size() - (24 + 8 + 3);
  std::size_t refused = 0;
  for (std::size_t i = 0; i < good.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(bad.data()),
                                   reinterpret_cast<const std::byte*>(bad.data()) + bad.size());
      try {
        (void)io::parse_safetensors(std::move(bytes), "flipped");
        ADD_FAILURE() << "bit " << bit << " of byte " << i << " flipped and the file loaded";
      } catch (const IoError& e) {
        ++refused;
        if (i >= data_start) {
          const std::string tensor = i < data_start + 3 ? "'b'" : i < data_start + 11 ? "'step'" : "'w'";
          EXPECT_NE(std::string(e.what()).find("tensor " + tensor + " fails its CRC-32C checksum"), std::string::npos)
              << "byte " << i << ": " << e.what();
        }
      }
    }
  EXPECT_EQ(refused, good.size() * 8);
}

// A file without checksums (another tool's) loads, unverified; one with only some is corrupt;
// writers cannot use the reserved prefix.
TEST(Safetensors, UncheckedFilesLoadUnverifiedAndPartialChecksumsAreRefused) {
  const std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  const std::string data("\0\0\x80\x3f\0\0\0\x40", 8);
  auto parse = [](const std::string& b) {
    return io::parse_safetensors(std::vector<std::byte>(reinterpret_cast<const std::byte*>(b.data()),
                                                        reinterpret_cast<const std::byte*>(b.data()) + b.size()),
                                 "hand");
  };
  const auto f = parse(raw_file(header, data));
  EXPECT_FALSE(f.verified());
  EXPECT_TRUE(f.checksums().empty());
  EXPECT_EQ(io::read_f32(f, "b", {1})[0], 2.0f);
  const std::string crc_a = io::detail_st::hex32(io::crc32c(std::as_bytes(std::span<const char>(data.data(), 4))));
  const std::string partial = R"({"__metadata__":{"crc32c.a":")" + crc_a + R"("},)" + header.substr(1);
  expect_error<IoError>([&] { (void)parse(raw_file(partial, data)); }, "has checksums for some tensors but not for 2 others, first 'b'");
  const std::string stray = R"({"__metadata__":{"crc32c.zz":"00000000"},)" + header.substr(1);
  expect_error<IoError>([&] { (void)parse(raw_file(stray, data)); }, "has checksums for some tensors but not for 3 others");
  std::ostringstream out;
  expect_error<ConfigError>([&] { io::write_safetensors(out, {}, {{"crc32c.x", "1"}}); }, "reserves for checksums");
  expect_error<ConfigError>([&] { io::write_safetensors(out, {io::make_tensor("__header__", {1}, std::vector<float>{1})}); },
                            "'__header__' is reserved");
}

// /proc files report a size of 0: the reader reads on and judges the content.
TEST(Safetensors, FilesOfUnknownSizeAreReadToTheEnd) {
  expect_error<IoError>([] { (void)io::load_safetensors("/proc/self/status"); }, "exceeds the limit");
}
