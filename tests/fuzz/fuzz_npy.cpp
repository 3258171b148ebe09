// libFuzzer harness: the .npy reader (header dict, version, sizes, dtypes) through the video
// loader. The loader reads paths, so each input is written to one file of this process first.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "flowception/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flowception;
  static const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("flowception_fuzz_npy_" + std::to_string(::getpid()) + ".npy");
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    (void)io::read_npy_header(path);
  } catch (const Error&) {
  }
  try {
    (void)io::load_npy_video(path);
  } catch (const Error&) {
  }
  return 0;
}
