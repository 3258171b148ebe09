// libFuzzer harness: the safetensors reader (header, offsets, checksums) and its typed reads.
// Any flowception::Error is a clean refusal; anything else (a crash, a sanitizer report, another
// exception, a leak) is a defect.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "flowception/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flowception;
  try {
    const auto* b = reinterpret_cast<const std::byte*>(data);
    const auto f = io::parse_safetensors(std::vector<std::byte>(b, b + size), "fuzz");
    for (const auto& name : f.names()) {
      const auto v = f.view(name);
      (void)f.tensor(name);
      const std::vector<std::int64_t> shape(v.shape.begin(), v.shape.end());
      try {
        if (v.dtype == io::DType::F32) (void)io::read_f32(f, name, shape);
        if (v.dtype == io::DType::I64) (void)io::read_i64(f, name, shape);
        (void)io::read_f64(f, name, shape);  // ShapeError unless it is F64
      } catch (const ShapeError&) {
      }
    }
    for (const auto& [k, v] : f.metadata()) {
      try {
        (void)f.metadata_i64(k);
      } catch (const IoError&) {
      }
      try {
        (void)f.metadata_f64(k);
      } catch (const IoError&) {
      }
    }
  } catch (const Error&) {
  }
  return 0;
}
