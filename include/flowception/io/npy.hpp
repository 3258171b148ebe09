// NumPy .npy files: user videos in (load_npy_video, load_npy_directory) and arrays out
// (save_npy, save_npy_video).
//
// Reading. A video file holds one array of shape (T, H, W, C), C in {1, 3}, dtype uint8 ('|u1',
// scaled by 1/255) or float32 ('<f4', finite and in [0, 1]); C order or Fortran order. The header
// is parsed and checked here first (magic, version 1.0 or 2.0, a well-formed dict, dtype, rank,
// dimensions, and the file size against shape × item size, since xtensor does not notice a short
// file); the data are then read with xtensor's xt::load_npy and reordered into the library's
// T×C×H×W layout (data/video.hpp). Problems of the file itself (missing, unreadable, not a .npy,
// corrupt or truncated header, truncated data, trailing bytes) throw IoError; a well-formed file
// holding the wrong kind of array (dtype, rank, zero or absurd dimensions, C not 1 or 3, more than
// 2^31 elements, a float value that is NaN, infinite or outside [0, 1]) throws ShapeError. Every
// message starts "flowception: ", names the file and the offending field and value.
//
// Writing. save_npy writes format version 1.0 (magic "\x93NUMPY", 1, 0, little-endian uint16
// header length, the header dict padded with spaces and ended by '\n' so that the data start at a
// multiple of 64 bytes), C order, little-endian dtypes '<f4', '<f8', '|u1', '<i4', '<i8'. Files are
// written atomically (io::write_atomically: temporary file, then rename).
//
// Directories. load_npy_directory reads every regular file named *.npy in a directory (sorted by
// file name); every video must have the same C×H×W. An optional labels file gives one class label
// per video, one "name label" pair per line (name: the file name, with or without ".npy"; label: a
// non-negative integer); blank lines and lines starting with '#' are ignored. Every video needs a
// label and every name must be a video of the directory. An unreadable labels file is an IoError;
// any other labels problem (bad line, non-integer or negative label, duplicate, unknown name,
// missing label) a ConfigError naming the file and line.
#pragma once

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>

#include "flowception/core/errors.hpp"
#include "flowception/data/video.hpp"
#include "flowception/io/atomic_file.hpp"

namespace flowception::io {

static_assert(std::endian::native == std::endian::little, "flowception .npy I/O assumes a little-endian host");

/// What the header of a .npy file says.
struct NpyHeader {
  int major_version = 1;  ///< format version, 1 or 2
  int minor_version = 0;  ///< 0 (read_npy_header refuses others)
  std::string descr;               ///< dtype string, e.g. `"<f4"`, `"|u1"`
  bool fortran_order = false;      ///< data in column-major (Fortran) order
  std::vector<std::size_t> shape;  ///< empty for a 0-d array
  std::size_t data_offset = 0;     ///< bytes before the first data byte
  std::uintmax_t file_size = 0;    ///< bytes in the whole file

  /// Bytes per element from the dtype string ("<f4" -> 4); 0 when it has no trailing size.
  std::size_t item_size() const {
    std::size_t i = descr.size();
    while (i > 0 && descr[i - 1] >= '0' && descr[i - 1] <= '9') --i;
    if (i == descr.size() || descr.size() - i > 3) return 0;
    return static_cast<std::size_t>(std::stoul(descr.substr(i)));
  }
};

namespace detail_npy {

inline std::string shape_string(const std::vector<std::size_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

/// Printable excerpt of header bytes for an error message.
inline std::string printable(std::string_view s, std::size_t max_chars = 160) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max_chars; ++i) {
    const unsigned char ch = static_cast<unsigned char>(s[i]);
    if (ch == '\n')
      out += "\\n";
    else if (ch >= 32 && ch < 127)
      out += static_cast<char>(ch);
    else
      out += detail::cat("\\x", "0123456789abcdef"[ch >> 4], "0123456789abcdef"[ch & 15]);
  }
  if (s.size() > max_chars) out += "...";
  return out;
}

/// A parser for the Python-literal dict of a .npy header: string, True/False, tuple-of-int values.
class NpyDictParser {
 public:
  NpyDictParser(std::string_view text, const std::filesystem::path& path) : s_(text), path_(path) {}

  void parse(NpyHeader& h) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    ws();
    expect('{');
    for (;;) {
      ws();
      if (peek() == '}') {
        ++i_;
        break;
      }
      const std::string key = quoted();
      ws();
      expect(':');
      ws();
      if (key == "descr") {
        h.descr = peek() == '[' ? balanced() : quoted();  // a list: a structured dtype, refused by the loaders
        have_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = boolean();
        have_fortran = true;
      } else if (key == "shape") {
        h.shape = tuple();
        have_shape = true;
      } else {
        fail(cat("unknown key '", key, "'"));
      }
      ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      ws();
      if (peek() != '}') fail(cat("expected ',' or '}' at byte ", i_));
    }
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    if (i_ != s_.size()) fail(cat("unexpected bytes after the dict at byte ", i_));
    if (s_.empty() || s_.back() != '\n') fail("the header does not end with a newline");
    if (!have_descr) fail("missing key 'descr'");
    if (!have_fortran) fail("missing key 'fortran_order'");
    if (!have_shape) fail("missing key 'shape'");
  }

 private:
  template <class... P>
  static std::string cat(P&&... p) {
    return detail::cat(std::forward<P>(p)...);
  }
  [[noreturn]] void fail(const std::string& why) const {
    detail::fail<IoError>(path_.string(), ": corrupt .npy header (", why, "): '", printable(s_), "'");
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  void expect(char c) {
    if (peek() != c) fail(cat("expected '", c, "' at byte ", i_));
    ++i_;
  }
  std::string quoted() {
    const char q = peek();
    if (q != '\'' && q != '"') fail(cat("expected a quoted string at byte ", i_));
    const std::size_t start = ++i_;
    while (i_ < s_.size() && s_[i_] != q) ++i_;
    if (i_ >= s_.size()) fail("unterminated string");
    return std::string(s_.substr(start, i_++ - start));
  }
  bool boolean() {
    if (s_.substr(i_, 4) == "True") {
      i_ += 4;
      return true;
    }
    if (s_.substr(i_, 5) == "False") {
      i_ += 5;
      return false;
    }
    fail(cat("fortran_order must be True or False at byte ", i_));
  }
  std::vector<std::size_t> tuple() {
    expect('(');
    std::vector<std::size_t> out;
    for (;;) {
      ws();
      if (peek() == ')') {
        ++i_;
        return out;
      }
      const std::size_t start = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      if (i_ == start) fail(cat("shape entries must be non-negative integers (byte ", i_, ")"));
      std::size_t v = 0;
      const auto r = std::from_chars(s_.data() + start, s_.data() + i_, v);
      if (r.ec != std::errc{}) fail(cat("shape entry ", s_.substr(start, i_ - start), " is too large"));
      out.push_back(v);
      ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() != ')') fail(cat("expected ',' or ')' in the shape at byte ", i_));
    }
  }
  std::string balanced() {
    const std::size_t start = i_;
    int depth = 0;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '[' || c == '(') ++depth;
      if ((c == ']' || c == ')') && --depth == 0) break;
    }
    return std::string(s_.substr(start, i_ - start));
  }

  std::string_view s_;
  const std::filesystem::path& path_;
  std::size_t i_ = 0;
};

template <class T>
struct NpyType;
template <>
struct NpyType<float> {
  static constexpr const char* descr = "<f4";
};
template <>
struct NpyType<double> {
  static constexpr const char* descr = "<f8";
};
template <>
struct NpyType<std::uint8_t> {
  static constexpr const char* descr = "|u1";
};
template <>
struct NpyType<std::int32_t> {
  static constexpr const char* descr = "<i4";
};
template <>
struct NpyType<std::int64_t> {
  static constexpr const char* descr = "<i8";
};

/// Product of `shape`, or nullopt when it exceeds `limit`.
inline std::optional<std::size_t> checked_count(const std::vector<std::size_t>& shape, std::size_t limit) {
  std::size_t n = 1;
  for (std::size_t d : shape) {
    if (d == 0) return std::size_t{0};
  }
  for (std::size_t d : shape) {
    if (d > limit / n) return std::nullopt;
    n *= d;
  }
  return n;
}

}  // namespace detail_npy

/// The scalar types save_npy writes: float, double, uint8, int32, int64.
template <class T>
concept NpyScalar = requires { detail_npy::NpyType<T>::descr; };

/// Reads and checks the header of a .npy file (magic, version, header length against the file
/// size, the dict). Does not look at the data. Throws IoError for a missing, unreadable, non-.npy or
/// corrupt file.
inline NpyHeader read_npy_header(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  using detail::cat;
  std::error_code ec;
  if (!fs::exists(path, ec)) detail::fail<IoError>("cannot read ", path.string(), ": file does not exist");
  if (!fs::is_regular_file(path, ec))
    detail::fail<IoError>("cannot read ", path.string(), ": not a regular file");
  NpyHeader h;
  h.file_size = fs::file_size(path, ec);
  if (ec) detail::fail<IoError>("cannot read ", path.string(), ": ", ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::fail<IoError>("cannot open ", path.string(), " for reading");

  constexpr std::size_t kPrefix = 8;  // magic (6) + version (2)
  if (h.file_size < kPrefix + 2)
    detail::fail<IoError>(path.string(), ": truncated .npy header: the file has only ", h.file_size,
                      " bytes");
  char pre[kPrefix];
  in.read(pre, kPrefix);
  if (!in) detail::fail<IoError>(path.string(), ": read error in the .npy header");
  if (std::memcmp(pre, "\x93NUMPY", 6) != 0)
    detail::fail<IoError>(path.string(), ": not a .npy file (bad magic '",
                      detail_npy::printable(std::string_view(pre, 6)), "', expected '\\x93NUMPY')");
  h.major_version = static_cast<unsigned char>(pre[6]);
  h.minor_version = static_cast<unsigned char>(pre[7]);
  if (!((h.major_version == 1 || h.major_version == 2) && h.minor_version == 0))
    detail::fail<IoError>(path.string(), ": unsupported .npy format version ", h.major_version, ".",
                      h.minor_version, " (1.0 and 2.0 are read)");
  const std::size_t len_bytes = h.major_version == 1 ? 2 : 4;
  if (h.file_size < kPrefix + len_bytes)
    detail::fail<IoError>(path.string(), ": truncated .npy header: the file has only ", h.file_size,
                      " bytes");
  unsigned char lb[4] = {0, 0, 0, 0};
  in.read(reinterpret_cast<char*>(lb), static_cast<std::streamsize>(len_bytes));
  std::size_t header_len = 0;
  for (std::size_t i = 0; i < len_bytes; ++i) header_len |= static_cast<std::size_t>(lb[i]) << (8 * i);
  h.data_offset = kPrefix + len_bytes + header_len;
  if (h.file_size < h.data_offset)
    detail::fail<IoError>(path.string(), ": truncated .npy header: it declares ", header_len,
                      " header bytes but the file has ", h.file_size, " bytes in all");
  std::string text(header_len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_len));
  if (!in) detail::fail<IoError>(path.string(), ": read error in the .npy header");
  detail_npy::NpyDictParser(text, path).parse(h);
  return h;
}

/// Reads a video file of shape (T, H, W, C), uint8 or float32, into T×C×H×W floats in [0, 1].
inline data::Video load_npy_video(const std::filesystem::path& path) {
  using detail::cat;
  const NpyHeader h = read_npy_header(path);
  const std::string name = path.string();
  const bool is_u8 = h.descr == "|u1";
  const bool is_f32 = h.descr == "<f4";
  if (!is_u8 && !is_f32)
    detail::fail<ShapeError>(name, ": unsupported dtype '", h.descr,
                         "' (a video must be uint8 '|u1' or float32 '<f4')");
  if (h.shape.size() != 4)
    detail::fail<ShapeError>(name, ": a video must have rank 4 (T, H, W, C), got shape ",
                         detail_npy::shape_string(h.shape), " of rank ", h.shape.size());
  static constexpr const char* kDimNames[4] = {"T (frames)", "H (height)", "W (width)", "C (channels)"};
  for (std::size_t i = 0; i < 4; ++i)
    if (h.shape[i] == 0)
      detail::fail<ShapeError>(name, ": dimension ", kDimNames[i], " is 0 in shape ",
                           detail_npy::shape_string(h.shape));
  const std::size_t T = h.shape[0], H = h.shape[1], W = h.shape[2], C = h.shape[3];
  if (C != 1 && C != 3)
    detail::fail<ShapeError>(name, ": C (channels) must be 1 or 3, got ", C, " in shape ",
                         detail_npy::shape_string(h.shape));
  constexpr std::size_t kMaxElements = std::size_t{1} << 31;
  const auto count = detail_npy::checked_count(h.shape, kMaxElements);
  if (!count)
    detail::fail<ShapeError>(name, ": shape ", detail_npy::shape_string(h.shape),
                         " has more than 2^31 elements");
  const std::uintmax_t data_bytes = static_cast<std::uintmax_t>(*count) * h.item_size();
  const std::uintmax_t expected = h.data_offset + data_bytes;
  if (h.file_size < expected)
    detail::fail<IoError>(name, ": truncated .npy data: shape ", detail_npy::shape_string(h.shape), " of '",
                      h.descr, "' needs ", data_bytes, " data bytes but the file has ", h.file_size - h.data_offset);
  if (h.file_size > expected)
    detail::fail<IoError>(name, ": corrupt .npy file: ", h.file_size - expected,
                      " unexpected bytes after the ", data_bytes, " data bytes of shape ",
                      detail_npy::shape_string(h.shape));

  data::Video v;
  v.channels = C;
  v.height = H;
  v.width = W;
  v.frames.resize(*count);
  auto convert = [&](auto tag) {
    using T_ = decltype(tag);
    auto arr = [&] {
      try {
        return xt::load_npy<T_>(name);
      } catch (const std::exception& e) {
        detail::fail<IoError>(name, ": xtensor could not read the .npy file: ", e.what());
      }
    }();
    if (arr.dimension() != 4 || arr.shape()[0] != T || arr.shape()[1] != H || arr.shape()[2] != W ||
        arr.shape()[3] != C)
      detail::fail<IoError>(name, ": xtensor read a different shape than the header declares");
    const T_* src = arr.data();
    const auto& st = arr.strides();
    const std::ptrdiff_t s0 = static_cast<std::ptrdiff_t>(st[0]), s1 = static_cast<std::ptrdiff_t>(st[1]),
                         s2 = static_cast<std::ptrdiff_t>(st[2]), s3 = static_cast<std::ptrdiff_t>(st[3]);
    float* dst = v.frames.data();
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t c = 0; c < C; ++c)
        for (std::size_t y = 0; y < H; ++y)
          for (std::size_t x = 0; x < W; ++x) {
            const T_ val = src[static_cast<std::ptrdiff_t>(t) * s0 + static_cast<std::ptrdiff_t>(y) * s1 +
                               static_cast<std::ptrdiff_t>(x) * s2 + static_cast<std::ptrdiff_t>(c) * s3];
            float out;
            if constexpr (std::is_same_v<T_, std::uint8_t>) {
              out = static_cast<float>(val) / 255.0f;
            } else {
              if (!std::isfinite(val) || val < 0.0f || val > 1.0f)
                detail::fail<ShapeError>(name, ": float32 pixel value ", val, " at (t=", t, ", y=", y,
                                     ", x=", x, ", c=", c, ") is ", std::isfinite(val) ? "outside [0, 1]" : "not finite");
              out = val;
            }
            *dst++ = out;
          }
  };
  if (is_u8)
    convert(std::uint8_t{});
  else
    convert(float{});
  return v;
}

/// Writes `data` (C order, product(shape) elements) as a .npy file, atomically.
template <NpyScalar T>
void save_npy(const std::filesystem::path& path, const T* data, std::vector<std::size_t> shape) {
  using detail::cat;
  const auto count = detail_npy::checked_count(shape, std::size_t{1} << 60);
  detail::require<ShapeError>(count.has_value(), "save_npy ", path.string(), ": shape ",
                                           detail_npy::shape_string(shape), " is too large");
  detail::require<ShapeError>(*count == 0 || data != nullptr, "save_npy ", path.string(),
                                           ": null data for shape ", detail_npy::shape_string(shape));
  std::string dict = cat("{'descr': '", detail_npy::NpyType<T>::descr, "', 'fortran_order': False, 'shape': ",
                         detail_npy::shape_string(shape), ", }");
  const std::size_t unpadded = 10 + dict.size() + 1;  // prefix + dict + '\n'
  const std::size_t total = (unpadded + 63) / 64 * 64;
  dict.append(total - unpadded, ' ');
  dict.push_back('\n');
  detail::require<ShapeError>(dict.size() <= 65535, "save_npy ", path.string(), ": header too long");
  std::string prefix("\x93NUMPY\x01\x00", 8);
  prefix.push_back(static_cast<char>(dict.size() & 0xff));
  prefix.push_back(static_cast<char>(dict.size() >> 8));
  write_atomically(path, [&](std::ostream& out) {
    out.write(prefix.data(), static_cast<std::streamsize>(prefix.size()));
    out.write(dict.data(), static_cast<std::streamsize>(dict.size()));
    if (*count > 0) out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(*count * sizeof(T)));
  });
}

/// As above, checking that the vector holds exactly product(shape) elements.
template <NpyScalar T>
void save_npy(const std::filesystem::path& path, const std::vector<T>& data, std::vector<std::size_t> shape) {
  const auto count = detail_npy::checked_count(shape, std::size_t{1} << 60);
  detail::require<ShapeError>(count.has_value() && *count == data.size(), "save_npy ", path.string(),
                                           ": ", data.size(), " values do not fill shape ",
                                           detail_npy::shape_string(shape));
  save_npy(path, data.data(), std::move(shape));
}

/// The dtype save_npy_video writes.
enum class NpyVideoType {
  float32,  ///< `<f4`, values as stored
  uint8,    ///< `|u1`, round(clamp(v, 0, 1)·255)
};

/// Writes a video as (T, H, W, C): float32 as stored, or uint8 as round(clamp(v, 0, 1)·255).
inline void save_npy_video(const std::filesystem::path& path, const data::Video& v,
                           NpyVideoType type = NpyVideoType::float32) {
  data::validate_video(v, path.string());
  const std::size_t T = v.length(), C = v.channels, H = v.height, W = v.width;
  const std::vector<std::size_t> shape{T, H, W, C};
  auto reorder = [&](auto convert) {
    std::vector<decltype(convert(0.0f))> out(v.frames.size());
    std::size_t k = 0;
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t y = 0; y < H; ++y)
        for (std::size_t x = 0; x < W; ++x)
          for (std::size_t c = 0; c < C; ++c) out[k++] = convert(v.at(t, c, y, x));
    return out;
  };
  if (type == NpyVideoType::float32) {
    save_npy(path, reorder([](float f) { return f; }), shape);
  } else {
    save_npy(path, reorder([](float f) {
               const float c = std::isnan(f) ? 0.0f : std::clamp(f, 0.0f, 1.0f);
               return static_cast<std::uint8_t>(std::lround(c * 255.0f));
             }),
             shape);
  }
}

/// The videos of a directory, in file-name order, with the file names they came from.
struct VideoDirectory {
  std::vector<std::string> names;  ///< file names (no directory), sorted
  std::vector<data::Video> videos;  ///< videos[i] read from names[i], with its label when a labels file was given
};

namespace detail_npy {

inline std::map<std::string, std::int64_t> read_labels(const std::filesystem::path& labels_file,
                                                       const std::vector<std::string>& names,
                                                       const std::filesystem::path& dir) {
  using detail::cat;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(labels_file, ec))
    detail::fail<IoError>("cannot read labels file ", labels_file.string(), ": file does not exist");
  std::ifstream in(labels_file);
  if (!in) detail::fail<IoError>("cannot open labels file ", labels_file.string());
  std::map<std::string, std::int64_t> labels;
  std::string line;
  std::size_t line_no = 0;
  auto fail = [&](const std::string& why) {
    detail::fail<ConfigError>("labels file ", labels_file.string(), " line ", line_no, ": ", why);
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::istringstream ls(line);
    std::string name, label, extra;
    if (!(ls >> name) || name[0] == '#') continue;
    if (!(ls >> label)) fail(cat("expected 'name label', got '", line, "'"));
    if (ls >> extra) fail(cat("expected 'name label', got extra text '", extra, "'"));
    std::int64_t value = 0;
    const auto r = std::from_chars(label.data(), label.data() + label.size(), value);
    if (r.ec != std::errc{} || r.ptr != label.data() + label.size())
      fail(cat("label '", label, "' of '", name, "' is not an integer"));
    if (value < 0) fail(cat("label ", value, " of '", name, "' is negative"));
    std::string file = name;
    if (std::find(names.begin(), names.end(), file) == names.end()) file = name + ".npy";
    if (std::find(names.begin(), names.end(), file) == names.end())
      fail(cat("no video named '", name, "' in ", dir.string()));
    if (labels.count(file)) fail(cat("a second label for '", file, "'"));
    labels[file] = value;
  }
  if (in.bad()) detail::fail<IoError>("read error in labels file ", labels_file.string());
  for (const auto& n : names)
    if (!labels.count(n))
      detail::fail<ConfigError>("labels file ", labels_file.string(), " has no label for video '", n, "'");
  return labels;
}

}  // namespace detail_npy

/// Every *.npy file of `dir` (sorted by name) as a video; labels from `labels_file` when given.
inline VideoDirectory load_npy_directory(const std::filesystem::path& dir,
                                         const std::optional<std::filesystem::path>& labels_file = std::nullopt) {
  namespace fs = std::filesystem;
  using detail::cat;
  std::error_code ec;
  if (!fs::exists(dir, ec)) detail::fail<IoError>("video directory ", dir.string(), " does not exist");
  if (!fs::is_directory(dir, ec)) detail::fail<IoError>(dir.string(), " is not a directory");
  VideoDirectory out;
  fs::directory_iterator it(dir, ec);
  if (ec) detail::fail<IoError>("cannot list ", dir.string(), ": ", ec.message());
  for (const auto& entry : it) {
    if (entry.path().extension() == ".npy" && entry.is_regular_file(ec)) out.names.push_back(entry.path().filename().string());
  }
  if (out.names.empty()) detail::fail<IoError>("video directory ", dir.string(), " contains no .npy files");
  std::sort(out.names.begin(), out.names.end());
  std::map<std::string, std::int64_t> labels;
  if (labels_file) labels = detail_npy::read_labels(*labels_file, out.names, dir);
  out.videos.reserve(out.names.size());
  for (const auto& n : out.names) {
    data::Video v = load_npy_video(dir / n);
    if (!out.videos.empty()) {
      const data::Video& f = out.videos.front();
      if (v.channels != f.channels || v.height != f.height || v.width != f.width)
        detail::fail<ShapeError>((dir / n).string(), ": frame size H×W×C = ", v.height, "x", v.width, "x",
                             v.channels, " differs from ", f.height, "x", f.width, "x", f.channels, " of ",
                             (dir / out.names.front()).string());
    }
    if (labels_file) v.label = labels.at(n);
    out.videos.push_back(std::move(v));
  }
  return out;
}

}  // namespace flowception::io
