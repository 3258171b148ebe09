// libFuzzer harness: the checkpoint loader, metadata included: the DiT configuration (dit.*),
// the declared size against the tensors, unknown tensors, the weights and the EMA weights, and
// AdamW's settings. A flowception::Error is a clean refusal; anything else is a defect.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "flowception/train/checkpoint.hpp"
#include "flowception/train/optimizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flowception;
  try {
    const auto* b = reinterpret_cast<const std::byte*>(data);
    const auto f = io::parse_safetensors(std::vector<std::byte>(b, b + size), "fuzz");
    for (bool ema : {true, false}) {
      try {
        const auto model = train::load_model(f, ema);
        (void)model.parameter_count();
      } catch (const Error&) {
      }
    }
    (void)train::config_from_metadata(f);
  } catch (const Error&) {
  }
  return 0;
}
