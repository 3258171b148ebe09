// The safetensors checkpoint format (Hugging Face), written and read with full validation.
//
// Layout of a file:
//   8 bytes        N, the header length, unsigned 64-bit little-endian
//   N bytes        UTF-8 JSON object: tensor name → {"dtype": "F32", "shape": [2, 3],
//                  "data_offsets": [begin, end]}, plus an optional "__metadata__" object of
//                  string → string; padded with trailing spaces so that 8 + N is a multiple of 8
//   the rest       the tensor data, little-endian, row-major; offsets count from the first byte
//                  after the header; tensors are packed without gaps or overlaps
//
// This layer knows nothing about models: callers choose the tensor names and metadata keys.
// Writing is deterministic (tensors ordered by name, JSON keys sorted, no whitespace but the
// padding), so the same input always gives the same bytes, and atomic (io::write_atomically).
//
// Checksums: the writer adds a CRC-32C of every tensor's bytes as metadata "crc32c.<tensor>"
// and one of the rest of the header (names, dtypes, shapes, offsets and the other metadata) as
// "crc32c.__header__", each 8 lowercase hex digits. The reader verifies them all and names the
// tensor that fails; a file with no "crc32c." entries (another tool's) loads unverified
// (SafetensorsFile::verified() is false), one with only some of them is corrupt. The checksum
// entries are kept apart from metadata() (see checksums()); writers cannot use the prefix.
// Reading checks everything a corrupt or truncated file can get wrong and throws IoError naming
// the file, the tensor and the field; the typed accessors throw ShapeError when a tensor does not
// have the dtype or shape the caller expects.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "flowception/core/errors.hpp"
#include "flowception/io/atomic_file.hpp"
#include "flowception/io/crc32c.hpp"

namespace flowception::io {

static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big,
              "flowception: safetensors needs a little- or big-endian host");

/// Element types of the format (the byte-sized ones; sub-byte float formats are not supported).
/// BOOL: one byte; U8 to U64 and I8 to I64: unsigned and signed integers of that many bits; F16,
/// F32, F64: IEEE floats; BF16: bfloat16; F8_E5M2, F8_E4M3: 8-bit floats with 5 or 4 exponent bits.
enum class DType : std::uint8_t { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64 };

namespace detail_st {
struct DTypeInfo {
  DType dtype;
  std::string_view name;
  std::size_t size;
};
inline constexpr std::array<DTypeInfo, 15> kDTypes{{{DType::BOOL, "BOOL", 1},
                                                    {DType::U8, "U8", 1},
                                                    {DType::I8, "I8", 1},
                                                    {DType::F8_E5M2, "F8_E5M2", 1},
                                                    {DType::F8_E4M3, "F8_E4M3", 1},
                                                    {DType::I16, "I16", 2},
                                                    {DType::U16, "U16", 2},
                                                    {DType::F16, "F16", 2},
                                                    {DType::BF16, "BF16", 2},
                                                    {DType::I32, "I32", 4},
                                                    {DType::U32, "U32", 4},
                                                    {DType::F32, "F32", 4},
                                                    {DType::I64, "I64", 8},
                                                    {DType::U64, "U64", 8},
                                                    {DType::F64, "F64", 8}}};
}  // namespace detail_st

/// The format's name of a dtype ("F32", ...).
inline std::string_view dtype_name(DType d) {
  for (const auto& i : detail_st::kDTypes)
    if (i.dtype == d) return i.name;
  detail::fail<ConfigError>("invalid DType value ", static_cast<int>(d));
}

/// Bytes per element of a dtype.
inline std::size_t dtype_size(DType d) {
  for (const auto& i : detail_st::kDTypes)
    if (i.dtype == d) return i.size;
  detail::fail<ConfigError>("invalid DType value ", static_cast<int>(d));
}

/// The dtype with the format's name `name`, or nothing when the name is unknown.
inline std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& i : detail_st::kDTypes)
    if (i.name == name) return i.dtype;
  return std::nullopt;
}

/// The dtype that stores C++ scalar T (float → F32, double → F64, std::int64_t → I64, ...).
template <class T>
struct dtype_of;
/// float is stored as F32.
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; /**< F32 */ };
/// double is stored as F64.
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; /**< F64 */ };
/// std::int8_t is stored as I8.
template <> struct dtype_of<std::int8_t> { static constexpr DType value = DType::I8; /**< I8 */ };
/// std::uint8_t is stored as U8.
template <> struct dtype_of<std::uint8_t> { static constexpr DType value = DType::U8; /**< U8 */ };
/// std::int16_t is stored as I16.
template <> struct dtype_of<std::int16_t> { static constexpr DType value = DType::I16; /**< I16 */ };
/// std::uint16_t is stored as U16.
template <> struct dtype_of<std::uint16_t> { static constexpr DType value = DType::U16; /**< U16 */ };
/// std::int32_t is stored as I32.
template <> struct dtype_of<std::int32_t> { static constexpr DType value = DType::I32; /**< I32 */ };
/// std::uint32_t is stored as U32.
template <> struct dtype_of<std::uint32_t> { static constexpr DType value = DType::U32; /**< U32 */ };
/// std::int64_t is stored as I64.
template <> struct dtype_of<std::int64_t> { static constexpr DType value = DType::I64; /**< I64 */ };
/// std::uint64_t is stored as U64.
template <> struct dtype_of<std::uint64_t> { static constexpr DType value = DType::U64; /**< U64 */ };

/// A C++ scalar type with a safetensors dtype of the same size.
template <class T>
concept SafetensorsScalar = requires { dtype_of<T>::value; } && std::is_trivially_copyable_v<T>;

/// Number of elements of a shape (1 for a scalar, shape {}). Throws ShapeError for a negative dimension
/// or when the count overflows.
inline std::int64_t shape_numel(std::span<const std::int64_t> shape) {
  std::int64_t n = 1;
  for (auto d : shape)
    if (d < 0) detail::fail<ShapeError>("negative dimension ", d, " in a tensor shape");
  for (auto d : shape)
    if (d == 0) return 0;
  for (auto d : shape) {
    if (n > std::numeric_limits<std::int64_t>::max() / d)
      detail::fail<ShapeError>("tensor shape with ", shape.size(),
                                                " dimensions has more than 2^63 elements");
    n *= d;
  }
  return n;
}

/// "[2, 3]" for a shape.
inline std::string shape_string(std::span<const std::int64_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

namespace detail_st {

/// Copies `n` elements of `size` bytes from `src` to `dst`, turning native byte order into
/// little-endian (or back: the operation is its own inverse).
inline void copy_le(std::byte* dst, const std::byte* src, std::size_t n, std::size_t size) {
  if constexpr (std::endian::native == std::endian::little) {
    if (n) std::memcpy(dst, src, n * size);
  } else {
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t b = 0; b < size; ++b) dst[i * size + b] = src[i * size + size - 1 - b];
  }
}

inline std::uint64_t load_u64_le(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}

inline void store_u64_le(std::uint64_t v, char* p) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(static_cast<unsigned char>((v >> (8 * i)) & 0xffu));
}

}  // namespace detail_st

/// An owned tensor to be saved: its name, dtype, shape and little-endian row-major bytes.
struct Tensor {
  std::string name;  ///< the tensor's key in the header (write_safetensors refuses empty, duplicate, reserved)
  DType dtype = DType::F32;  ///< element type
  std::vector<std::int64_t> shape;  ///< dimensions, outermost first; {} for a scalar
  std::vector<std::byte> data;  ///< little-endian, row-major; shape_numel(shape) · dtype_size(dtype) bytes

  /// Number of elements, shape_numel(shape).
  std::int64_t numel() const { return shape_numel(shape); }
};

/// A tensor of C++ scalars (shape {} is a scalar, one value). Throws ShapeError when the number of
/// values does not match the shape.
template <SafetensorsScalar T>
Tensor make_tensor(std::string name, std::vector<std::int64_t> shape, std::span<const T> values) {
  const std::int64_t n = shape_numel(shape);
  if (static_cast<std::uint64_t>(n) != values.size())
    detail::fail<ShapeError>("tensor '", name, "' of shape ", shape_string(shape),
                                              " needs ", n, " values, got ", values.size());
  Tensor t{std::move(name), dtype_of<T>::value, std::move(shape), {}};
  t.data.resize(values.size() * sizeof(T));
  detail_st::copy_le(t.data.data(), reinterpret_cast<const std::byte*>(values.data()), values.size(), sizeof(T));
  return t;
}

/// make_tensor of the values of a vector (see the span overload).
template <SafetensorsScalar T>
Tensor make_tensor(std::string name, std::vector<std::int64_t> shape, const std::vector<T>& values) {
  return make_tensor<T>(std::move(name), std::move(shape), std::span<const T>(values));
}

/// A tensor from raw little-endian bytes of any dtype (F16, BF16, BOOL, ...). Throws ShapeError when
/// the byte count does not match shape × dtype size.
inline Tensor make_raw_tensor(std::string name, DType dtype, std::vector<std::int64_t> shape,
                              std::vector<std::byte> bytes) {
  const std::int64_t n = shape_numel(shape);
  const std::size_t want = static_cast<std::size_t>(n) * dtype_size(dtype);
  if (bytes.size() != want)
    detail::fail<ShapeError>("tensor '", name, "' of dtype ", dtype_name(dtype),
                                              " and shape ", shape_string(shape), " needs ", want, " bytes, got ",
                                              bytes.size());
  return Tensor{std::move(name), dtype, std::move(shape), std::move(bytes)};
}

/// A non-owning view of one tensor inside a SafetensorsFile (valid while the file object lives and
/// is not modified or moved from).
struct TensorView {
  std::string_view name;  ///< the tensor's key in the file's header
  DType dtype = DType::F32;  ///< element type
  std::span<const std::int64_t> shape;  ///< dimensions, outermost first; empty for a scalar
  std::span<const std::byte> bytes;  ///< little-endian, row-major

  /// Number of elements, shape_numel(shape).
  std::int64_t numel() const { return shape_numel(shape); }
};

class SafetensorsFile;
inline SafetensorsFile parse_safetensors(std::vector<std::byte> bytes, std::string source);

/// Largest header accepted on reading (the reference implementation's limit).
inline constexpr std::uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

/// A parsed and validated safetensors file held in memory.
class SafetensorsFile {
 public:
  /// An empty file: no tensors, no metadata, no source.
  SafetensorsFile() = default;

  /// Where the bytes came from (the path, or the name given to parse_safetensors).
  const std::string& source() const { return source_; }

  /// The "__metadata__" entries (empty when the file has none).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// Whether metadata() has an entry `key` (the "crc32c." checksum entries are not metadata).
  bool has_metadata(const std::string& key) const { return metadata_.count(key) != 0; }
  /// The metadata value under `key`; IoError naming the file and the key when absent.
  const std::string& metadata_string(const std::string& key) const {
    auto it = metadata_.find(key);
    if (it == metadata_.end())
      detail::fail<IoError>(source_, ": no metadata entry '", key, "'");
    return it->second;
  }
  /// The metadata value under `key` parsed as a whole decimal integer; IoError when absent or malformed.
  std::int64_t metadata_i64(const std::string& key) const { return parse_number<std::int64_t>(key); }
  /// The metadata value under `key` parsed as a whole unsigned decimal integer; IoError when absent,
  /// signed or malformed.
  std::uint64_t metadata_u64(const std::string& key) const { return parse_number<std::uint64_t>(key); }
  /// The metadata value under `key` parsed as a floating-point number (exact for values written with
  /// format_metadata_double); IoError when absent or malformed.
  double metadata_f64(const std::string& key) const { return parse_number<double>(key); }

  /// Whether the file carried CRC-32C checksums of every tensor and of its header, all of which
  /// matched (a file with none loads unverified; a mismatch or a partial set is an error).
  bool verified() const { return !checksums_.empty(); }
  /// The "crc32c.*" entries of the header (empty when the file has none).
  const std::map<std::string, std::string>& checksums() const { return checksums_; }

  /// Number of tensors.
  std::size_t size() const { return entries_.size(); }
  /// Tensor names in sorted order.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const auto& [k, e] : entries_) out.push_back(k);
    return out;
  }
  /// Whether the file holds a tensor named `name`.
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }

  /// The tensor `name`; IoError naming the file and the tensor when the file has none of that name.
  TensorView view(const std::string& name) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) {
      std::string have;
      std::size_t shown = 0;
      for (const auto& [k, e] : entries_) {
        if (shown == 8) {
          have += ", ...";
          break;
        }
        have += (shown++ ? ", '" : "'") + k + "'";
      }
      detail::fail<IoError>(source_, ": no tensor named '", name,
                                             "' (the file holds ", entries_.size(), " tensors",
                                             entries_.empty() ? "" : ": ", have, ")");
    }
    const Entry& e = it->second;
    return TensorView{it->first, e.dtype, e.shape,
                      std::span<const std::byte>(bytes_.data() + data_start_ + e.begin, e.end - e.begin)};
  }

  /// An owned copy of the tensor `name` (IoError when absent).
  Tensor tensor(const std::string& name) const {
    TensorView v = view(name);
    return Tensor{std::string(v.name), v.dtype, std::vector<std::int64_t>(v.shape.begin(), v.shape.end()),
                  std::vector<std::byte>(v.bytes.begin(), v.bytes.end())};
  }

 private:
  struct Entry {
    DType dtype;
    std::vector<std::int64_t> shape;
    std::size_t begin;
    std::size_t end;
  };

  template <class N>
  N parse_number(const std::string& key) const {
    const std::string& s = metadata_string(key);
    N value{};
    const char* first = s.data();
    const char* last = s.data() + s.size();
    std::from_chars_result r{};
    if constexpr (std::is_floating_point_v<N>)
      r = std::from_chars(first, last, value, std::chars_format::general);
    else
      r = std::from_chars(first, last, value, 10);
    if (s.empty() || r.ec != std::errc{} || r.ptr != last)
      detail::fail<IoError>(source_, ": metadata entry '", key, "' = '", s,
                                             "' is not a valid ",
                                             std::is_floating_point_v<N>    ? "number"
                                             : std::is_signed_v<N> ? "64-bit integer"
                                                                   : "unsigned 64-bit integer");
    return value;
  }

  friend SafetensorsFile parse_safetensors(std::vector<std::byte> bytes, std::string source);
  /// Step 4 of parsing: checksums all or none; every tensor's and the header's must match
  /// (IoError naming the tensor). `all_metadata` is the header's metadata with the checksums.
  void verify_checksums(const std::map<std::string, std::string>& all_metadata) const;

  std::string source_;
  std::vector<std::byte> bytes_;
  std::size_t data_start_ = 0;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, std::string> checksums_;
};

/// Formats a double so that metadata_f64 reads back exactly the same value (shortest round-trip form).
inline std::string format_metadata_double(double x) {
  std::array<char, 64> buf{};
  auto r = std::to_chars(buf.data(), buf.data() + buf.size(), x);
  return std::string(buf.data(), r.ptr);
}

namespace detail_st {

[[noreturn]] inline void corrupt(const std::string& source, const std::string& what) {
  detail::fail<IoError>(source, ": ", what);
}

inline std::string json_excerpt(const nlohmann::json& j) {
  std::string s = j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// Reads a non-negative integer that fits in int64 from field `field` of tensor `tensor`.
inline std::int64_t read_count(const std::string& source, const std::string& tensor, const char* field,
                               const nlohmann::json& j) {
  if (!j.is_number_integer())
    corrupt(source, detail::cat("tensor '", tensor, "': ", field, " holds ", json_excerpt(j),
                                            ", not an integer"));
  if (!j.is_number_unsigned())
    corrupt(source, detail::cat("tensor '", tensor, "': ", field, " holds the negative value ",
                                            j.get<std::int64_t>()));
  const auto u = j.get<std::uint64_t>();
  if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    corrupt(source, detail::cat("tensor '", tensor, "': ", field, " holds the absurd value ", u));
  return static_cast<std::int64_t>(u);
}

inline constexpr std::string_view kChecksumPrefix = "crc32c.";
inline constexpr const char* kHeaderChecksumKey = "crc32c.__header__";

inline std::string hex32(std::uint32_t v) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(8, '0');
  for (int i = 7; i >= 0; --i, v >>= 4) out[static_cast<std::size_t>(i)] = digits[v & 0xF];
  return out;
}

/// CRC-32C of a canonical form of the header: every metadata entry but the header checksum
/// (sorted by key), then every tensor's name, dtype, shape and offsets (sorted by name).
struct HeaderTensor {
  std::string_view name, dtype;
  std::span<const std::int64_t> shape;
  std::uint64_t begin, end;
};
inline std::uint32_t header_checksum(const std::map<std::string, std::string>& metadata,
                                     const std::vector<HeaderTensor>& tensors) {
  std::string canon;
  auto field = [&](std::string_view x) {
    canon += x;
    canon.push_back('\0');
  };
  for (const auto& [k, v] : metadata) {
    if (k == kHeaderChecksumKey) continue;
    field(k);
    field(v);
  }
  for (const auto& t : tensors) {
    field(t.name);
    field(t.dtype);
    for (auto d : t.shape) field(std::to_string(d));
    field(std::to_string(t.begin));
    field(std::to_string(t.end));
  }
  return crc32c(std::as_bytes(std::span<const char>(canon.data(), canon.size())));
}

}  // namespace detail_st

namespace detail_st {

/// Step 1: the header length, then the header as JSON: a NUL byte, invalid JSON, a duplicate key
/// at any level (nlohmann would silently keep the last one) or a non-object is corruption.
/// Returns the parsed header; `header_bytes` is its length N.
inline nlohmann::json parse_header(const std::vector<std::byte>& bytes, const std::string& src,
                                   std::uint64_t& header_bytes) {
  using detail::cat;
  using nlohmann::json;
  const std::size_t total = bytes.size();
  if (total < 8) corrupt(src, cat("file is truncated: ", total, " bytes, shorter than the 8-byte header length"));
  const std::uint64_t n = load_u64_le(bytes.data());
  if (n > kMaxSafetensorsHeaderBytes)
    corrupt(src, cat("header length ", n, " exceeds the limit of ", kMaxSafetensorsHeaderBytes,
                     " bytes (corrupt file or not a safetensors file)"));
  if (n > total - 8)
    corrupt(src, cat("file is truncated: the header length says ", n, " bytes but only ", total - 8,
                     " bytes follow the 8-byte length"));
  header_bytes = n;
  const char* hbeg = reinterpret_cast<const char*>(bytes.data() + 8);
  const char* hend = hbeg + n;
  // The JSON parser would stop at a NUL byte and ignore the rest: no header holds one.
  if (const void* nul = std::memchr(hbeg, 0, static_cast<std::size_t>(n)))
    corrupt(src, cat("header has a NUL byte at offset ", static_cast<const char*>(nul) - hbeg + 8,
                     " (corrupt padding or text)"));
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  json::parser_callback_t cb = [&](int, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (ev == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (ev == json::parse_event_t::key && !open_objects.empty() && parsed.is_string()) {
      if (!open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty())
        duplicate = parsed.get<std::string>();
    }
    return true;
  };
  json header;
  try {
    header = json::parse(hbeg, hend, cb, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    corrupt(src, cat("header is not valid JSON (", e.what(), ")"));
  }
  if (!duplicate.empty()) corrupt(src, cat("header has the key '", duplicate, "' more than once (duplicate names)"));
  if (!header.is_object()) corrupt(src, cat("header is not a JSON object but ", header.type_name()));
  return header;
}

/// Step 2, for the __metadata__ entry: an object of strings, copied into `metadata`.
inline void parse_metadata(const nlohmann::json& v, const std::string& src, std::map<std::string, std::string>& metadata) {
  using detail::cat;
  if (!v.is_object()) corrupt(src, cat("__metadata__ is a JSON ", v.type_name(), ", not an object"));
  for (auto m = v.begin(); m != v.end(); ++m) {
    if (!m.value().is_string())
      corrupt(src, cat("__metadata__ entry '", m.key(), "' holds ", json_excerpt(m.value()), ", not a string"));
    metadata.emplace(m.key(), m.value().get<std::string>());
  }
}

/// One tensor entry of the header, checked: dtype, shape, offsets.
struct ParsedEntry {
  DType dtype;                      ///< element type
  std::vector<std::int64_t> shape;  ///< dimensions
  std::uint64_t begin, end;         ///< bytes [begin, end) of the data section
};

/// Step 2, for a tensor: exactly the fields dtype, shape and data_offsets; a known dtype; a shape
/// of non-negative integers whose byte size does not overflow (shape_numel); offsets that span
/// exactly that size and lie inside the data section of `data_size` bytes.
inline ParsedEntry parse_entry(const std::string& name, const nlohmann::json& v, const std::string& src,
                               std::size_t data_size) {
  using detail::cat;
  using nlohmann::json;
  if (!v.is_object()) corrupt(src, cat("tensor '", name, "': entry is a JSON ", v.type_name(), ", not an object"));
  for (auto fld = v.begin(); fld != v.end(); ++fld)
    if (fld.key() != "dtype" && fld.key() != "shape" && fld.key() != "data_offsets")
      corrupt(src, cat("tensor '", name, "': unknown field '", fld.key(), "'"));
  for (const char* fld : {"dtype", "shape", "data_offsets"})
    if (!v.contains(fld)) corrupt(src, cat("tensor '", name, "': missing field '", fld, "'"));
  const json& jd = v["dtype"];
  if (!jd.is_string()) corrupt(src, cat("tensor '", name, "': dtype holds ", json_excerpt(jd), ", not a string"));
  const auto dtype = dtype_from_name(jd.get<std::string>());
  if (!dtype) corrupt(src, cat("tensor '", name, "': unknown dtype '", jd.get<std::string>(), "'"));
  const json& js = v["shape"];
  if (!js.is_array()) corrupt(src, cat("tensor '", name, "': shape holds ", json_excerpt(js), ", not an array"));
  ParsedEntry e{*dtype, {}, 0, 0};
  for (const auto& d : js) e.shape.push_back(read_count(src, name, "shape", d));
  const json& jo = v["data_offsets"];
  if (!jo.is_array() || jo.size() != 2)
    corrupt(src, cat("tensor '", name, "': data_offsets holds ", json_excerpt(jo), ", not an array [begin, end]"));
  e.begin = static_cast<std::uint64_t>(read_count(src, name, "data_offsets", jo[0]));
  e.end = static_cast<std::uint64_t>(read_count(src, name, "data_offsets", jo[1]));
  // Element count × item size, with overflow treated as corruption.
  std::int64_t count = 0;
  try {
    count = shape_numel(e.shape);
  } catch (const ShapeError&) {
    corrupt(src, cat("tensor '", name, "': shape ", shape_string(e.shape), " is absurdly large"));
  }
  const std::uint64_t item = dtype_size(*dtype);
  if (static_cast<std::uint64_t>(count) > std::numeric_limits<std::uint64_t>::max() / item)
    corrupt(src, cat("tensor '", name, "': shape ", shape_string(e.shape), " is absurdly large"));
  const std::uint64_t nbytes = static_cast<std::uint64_t>(count) * item;
  if (e.end < e.begin)
    corrupt(src, cat("tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] end before they begin"));
  if (e.end - e.begin != nbytes)
    corrupt(src, cat("tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] span ", e.end - e.begin,
                     " bytes, which does not match shape ", shape_string(e.shape), " of ", dtype_name(*dtype), " (",
                     nbytes, " bytes)"));
  if (e.end > data_size)
    corrupt(src, cat("file is truncated: tensor '", name, "': data_offsets [", e.begin, ", ", e.end,
                     "] run past the end of the data section (", data_size, " bytes)"));
  return e;
}

/// Step 3: the tensors (name → bytes [begin, end)) tile the data section of `data_size` bytes
/// exactly: no overlap, no hole, nothing after the last one.
template <class Entries>
void check_tiling(const Entries& entries, const std::string& src, std::size_t data_size) {
  using detail::cat;
  struct Span {
    std::size_t begin, end;
    const std::string* name;
  };
  std::vector<Span> spans;
  for (const auto& [name, e] : entries) spans.push_back(Span{e.begin, e.end, &name});
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : (a.end != b.end ? a.end < b.end : *a.name < *b.name);
  });
  std::size_t cursor = 0;
  const std::string* prev = nullptr;
  for (const Span& s : spans) {
    if (s.begin < cursor)
      corrupt(src, cat("tensor '", *s.name, "' (bytes ", s.begin, "..", s.end, ") overlaps tensor '", *prev,
                       "' (which ends at ", cursor, ")"));
    if (s.begin > cursor)
      corrupt(src, cat("hole of ", s.begin - cursor, " unused bytes before tensor '", *s.name, "' (bytes ", cursor,
                       "..", s.begin, " belong to no tensor)"));
    if (s.end > s.begin || prev == nullptr) prev = s.name;
    cursor = s.end;
  }
  if (cursor != data_size)
    corrupt(src, cat(data_size - cursor, " trailing bytes after the last tensor (data section is ", data_size,
                     " bytes, tensors end at ", cursor, ")"));
}

}  // namespace detail_st

/// Parses and validates a whole safetensors file held in `bytes`; `source` names it in errors.
/// Throws IoError for anything truncated, corrupt or inconsistent. In four steps: the header
/// (detail_st::parse_header), each entry (parse_metadata, parse_entry), the tiling of the data
/// section (check_tiling), and the checksums (SafetensorsFile::verify_checksums).
inline SafetensorsFile parse_safetensors(std::vector<std::byte> bytes, std::string source) {
  SafetensorsFile f;
  f.source_ = std::move(source);
  const std::string& src = f.source_;
  std::uint64_t n = 0;
  const nlohmann::json header = detail_st::parse_header(bytes, src, n);
  const std::size_t data_size = bytes.size() - 8 - static_cast<std::size_t>(n);
  std::map<std::string, std::string> all_metadata;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      detail_st::parse_metadata(it.value(), src, all_metadata);
      continue;
    }
    auto e = detail_st::parse_entry(it.key(), it.value(), src, data_size);
    f.entries_.emplace(it.key(), SafetensorsFile::Entry{e.dtype, std::move(e.shape), static_cast<std::size_t>(e.begin),
                                                        static_cast<std::size_t>(e.end)});
  }
  detail_st::check_tiling(f.entries_, src, data_size);
  f.data_start_ = 8 + static_cast<std::size_t>(n);
  f.bytes_ = std::move(bytes);
  for (auto& [k, v] : all_metadata)
    (std::string_view(k).starts_with(detail_st::kChecksumPrefix) ? f.checksums_ : f.metadata_).emplace(k, v);
  f.verify_checksums(all_metadata);
  return f;
}

inline void SafetensorsFile::verify_checksums(const std::map<std::string, std::string>& all_metadata) const {
  using detail_st::corrupt;
  using detail::cat;
  const std::string& src = source_;
  if (checksums_.empty()) return;
  std::size_t missing = 0;
  std::string first_missing;
  for (const auto& [name, e] : entries_)
    if (!checksums_.count(std::string(detail_st::kChecksumPrefix) + name) && missing++ == 0) first_missing = name;
  if (!checksums_.count(detail_st::kHeaderChecksumKey) && missing++ == 0) first_missing = "__header__";
  if (missing)
    corrupt(src, cat("has checksums for some tensors but not for ", missing, " others, first '", first_missing,
                     "' (a damaged header)"));
  for (const auto& [k, v] : checksums_) {
    const std::string name = k.substr(detail_st::kChecksumPrefix.size());
    if (name == "__header__") continue;
    auto it = entries_.find(name);
    if (it == entries_.end()) corrupt(src, cat("has a checksum '", k, "' for a tensor the file does not hold"));
    const auto& e = it->second;
    const std::string got =
        detail_st::hex32(crc32c(std::span<const std::byte>(bytes_.data() + data_start_ + e.begin, e.end - e.begin)));
    if (got != v)
      corrupt(src, cat("tensor '", name, "' fails its CRC-32C checksum (stored '", v, "', computed '", got,
                       "'): its data is corrupt"));
  }
  std::vector<detail_st::HeaderTensor> ht;
  for (const auto& [name, e] : entries_) ht.push_back({name, dtype_name(e.dtype), e.shape, e.begin, e.end});
  const std::string got = detail_st::hex32(detail_st::header_checksum(all_metadata, ht));
  if (got != checksums_.at(detail_st::kHeaderChecksumKey))
    corrupt(src, cat("the header fails its CRC-32C checksum (stored '", checksums_.at(detail_st::kHeaderChecksumKey),
                     "', computed '", got, "'): names, shapes or metadata are corrupt"));
}

/// Reads and validates the safetensors file at `path` (IoError when missing, unreadable, truncated or corrupt).
inline SafetensorsFile load_safetensors(const std::filesystem::path& path) {
  using detail::cat;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    detail::fail<IoError>("cannot read safetensors file ", path, ": no such regular file");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) detail::fail<IoError>("cannot read safetensors file ", path, ": ", ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::fail<IoError>("cannot open safetensors file ", path, " for reading");
  std::vector<std::byte> bytes(static_cast<std::size_t>(size));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (static_cast<std::uintmax_t>(in.gcount()) != size)
    detail::fail<IoError>("reading safetensors file ", path, " stopped after ", in.gcount(), " of ", size,
                      " bytes");
  // Files whose size the system does not know in advance (/proc, FUSE) report 0 or too little:
  // read on to the end, so the parser judges the real content.
  for (char buf[65536]; in.read(buf, sizeof buf) || in.gcount() > 0;) {
    const auto* b = reinterpret_cast<const std::byte*>(buf);
    bytes.insert(bytes.end(), b, b + in.gcount());
    if (bytes.size() > (std::size_t{1} << 40))
      detail::fail<IoError>("safetensors file ", path, " keeps growing past 1 TiB while being read");
  }
  return parse_safetensors(std::move(bytes), path.string());
}

/// Writes `tensors` and `metadata` in the safetensors format to `out`: tensors ordered by name, the
/// JSON header with sorted keys and padded with spaces to 8-byte alignment. Deterministic: the same
/// input gives the same bytes. Throws ConfigError for an empty, reserved ("__metadata__"), duplicate
/// or non-UTF-8 name, ShapeError for a tensor whose byte count does not match its shape and dtype,
/// IoError when the stream fails.
inline void write_safetensors(std::ostream& out, const std::vector<Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata = {}) {
  using detail::cat;
  using nlohmann::json;
  std::vector<const Tensor*> order;
  order.reserve(tensors.size());
  for (const Tensor& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const Tensor* a, const Tensor* b) { return a->name < b->name; });
  for (std::size_t i = 0; i < order.size(); ++i) {
    const Tensor& t = *order[i];
    detail::require(!t.name.empty(), "safetensors: tensor ", i, " (in name order) has an empty name");
    detail::require(t.name != "__metadata__" && t.name != "__header__",
                                 "safetensors: '", t.name, "' is reserved and cannot name a tensor");
    detail::require(i == 0 || order[i - 1]->name != t.name, "safetensors: tensor name '", t.name,
                                 "' appears more than once");
    for (auto d : t.shape)
      detail::require<ShapeError>(d >= 0, "safetensors: tensor '", t.name, "' has negative dimension ",
                                               d, " in shape ", shape_string(t.shape));
    const std::uint64_t want = static_cast<std::uint64_t>(shape_numel(t.shape)) * dtype_size(t.dtype);
    detail::require<ShapeError>(t.data.size() == want, "safetensors: tensor '", t.name, "' of dtype ",
                                             dtype_name(t.dtype), " and shape ", shape_string(t.shape), " needs ",
                                             want, " bytes of data, has ", t.data.size());
  }
  for (const auto& [k, v] : metadata)
    detail::require(!std::string_view(k).starts_with(detail_st::kChecksumPrefix), "safetensors: metadata key '",
                                 k, "' uses the prefix 'crc32c.' that the writer reserves for checksums");
  // Checksums of every tensor and of the header (see the top of this file).
  std::map<std::string, std::string> meta = metadata;
  std::vector<detail_st::HeaderTensor> ht;
  {
    std::uint64_t at = 0;
    for (const Tensor* t : order) {
      meta[std::string(detail_st::kChecksumPrefix) + t->name] = detail_st::hex32(crc32c(t->data));
      ht.push_back({t->name, dtype_name(t->dtype), t->shape, at, at + t->data.size()});
      at += t->data.size();
    }
  }
  meta[detail_st::kHeaderChecksumKey] = detail_st::hex32(detail_st::header_checksum(meta, ht));
  json header = json::object();
  {
    json m = json::object();
    for (const auto& [k, v] : meta) m[k] = v;
    header["__metadata__"] = std::move(m);
  }
  std::uint64_t offset = 0;
  for (const Tensor* t : order) {
    json e = json::object();
    e["dtype"] = std::string(dtype_name(t->dtype));
    e["shape"] = t->shape;
    e["data_offsets"] = json::array({offset, offset + t->data.size()});
    offset += t->data.size();
    header[t->name] = std::move(e);
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    detail::fail<ConfigError>("safetensors: a tensor name or metadata entry is not valid UTF-8 (", e.what(),
                          ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  char len[8];
  detail_st::store_u64_le(text.size(), len);
  out.write(len, 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const Tensor* t : order)
    out.write(reinterpret_cast<const char*>(t->data.data()), static_cast<std::streamsize>(t->data.size()));
  if (!out) detail::fail<IoError>("safetensors: writing to the output stream failed");
}

/// Saves `tensors` and `metadata` to `path` atomically (temporary file, then rename): `path` holds
/// either its previous content or the complete new file, never a part of it.
inline void save_safetensors(const std::filesystem::path& path, const std::vector<Tensor>& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  write_atomically(path, [&](std::ostream& out) {
    try {
      write_safetensors(out, tensors, metadata);
    } catch (const IoError&) {
      detail::fail<IoError>("writing safetensors file ", path, " failed (disk full?)");
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Typed reads.

/// Checks that tensor `name` of `file` has dtype dtype_of<T> and shape `expected_shape`, then copies
/// its values into `out` (which must hold exactly the element count). IoError when the tensor is
/// missing; ShapeError naming the tensor, the expected and the found dtype or shape otherwise.
template <SafetensorsScalar T>
void read_into(const SafetensorsFile& file, const std::string& name, const std::vector<std::int64_t>& expected_shape,
               std::span<T> out) {
  using detail::cat;
  const TensorView v = file.view(name);
  const DType want = dtype_of<T>::value;
  if (v.dtype != want)
    detail::fail<ShapeError>(file.source(), ": tensor '", name, "' has dtype ", dtype_name(v.dtype),
                         " but ", dtype_name(want), " was expected");
  if (!std::equal(v.shape.begin(), v.shape.end(), expected_shape.begin(), expected_shape.end()))
    detail::fail<ShapeError>(file.source(), ": tensor '", name, "' has shape ", shape_string(v.shape),
                         " but ", shape_string(expected_shape), " was expected");
  const auto n = static_cast<std::size_t>(v.numel());
  if (out.size() != n)
    detail::fail<ShapeError>(file.source(), ": tensor '", name, "' has ", n,
                         " elements but the destination buffer holds ", out.size());
  detail_st::copy_le(reinterpret_cast<std::byte*>(out.data()), v.bytes.data(), n, sizeof(T));
}

/// The values of tensor `name`, checked against dtype_of<T> and `expected_shape` (see read_into).
template <SafetensorsScalar T>
std::vector<T> read_tensor(const SafetensorsFile& file, const std::string& name,
                           const std::vector<std::int64_t>& expected_shape) {
  const TensorView v = file.view(name);
  std::vector<T> out(v.dtype == dtype_of<T>::value && std::equal(v.shape.begin(), v.shape.end(),
                                                                  expected_shape.begin(), expected_shape.end())
                         ? static_cast<std::size_t>(v.numel())
                         : 0);
  read_into<T>(file, name, expected_shape, std::span<T>(out));
  return out;
}

/// read_tensor of a float (F32) tensor.
inline std::vector<float> read_f32(const SafetensorsFile& file, const std::string& name,
                                   const std::vector<std::int64_t>& expected_shape) {
  return read_tensor<float>(file, name, expected_shape);
}
/// read_tensor of a double (F64) tensor.
inline std::vector<double> read_f64(const SafetensorsFile& file, const std::string& name,
                                    const std::vector<std::int64_t>& expected_shape) {
  return read_tensor<double>(file, name, expected_shape);
}
/// read_tensor of an int64 (I64) tensor.
inline std::vector<std::int64_t> read_i64(const SafetensorsFile& file, const std::string& name,
                                          const std::vector<std::int64_t>& expected_shape) {
  return read_tensor<std::int64_t>(file, name, expected_shape);
}
/// read_tensor of a uint8 (U8) tensor.
inline std::vector<std::uint8_t> read_u8(const SafetensorsFile& file, const std::string& name,
                                         const std::vector<std::int64_t>& expected_shape) {
  return read_tensor<std::uint8_t>(file, name, expected_shape);
}

}  // namespace flowception::io
