// Writes the seed inputs of the fuzz harnesses (tests/fuzz/corpus/<name>/seed_*): valid files
// of every kind each loader reads, from which libFuzzer mutates. Run once, by hand:
//   build/fuzz/tests/fuzz/make_corpus tests/fuzz/corpus
// The committed corpus holds these seeds plus what the 10-minute fuzzing runs added.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "flowception/io/npy.hpp"
#include "flowception/io/safetensors.hpp"
#include "flowception/train/checkpoint.hpp"
#include "flowception/train/optimizer.hpp"

namespace fs = std::filesystem;
using namespace flowception;

static void put(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}
static std::string safetensors_bytes(const std::vector<io::Tensor>& t, const std::map<std::string, std::string>& m) {
  std::ostringstream out;
  io::write_safetensors(out, t, m);
  return out.str();
}

// The same file as another tool would write it: the "crc32c." entries removed from the header.
static std::string strip_checksums(const std::string& bytes) {
  std::size_t n = 0;
  for (int k = 0; k < 8; ++k) n |= static_cast<std::size_t>(static_cast<unsigned char>(bytes[static_cast<std::size_t>(k)])) << (8 * k);
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  auto& meta = header["__metadata__"];
  for (auto it = meta.begin(); it != meta.end();) it = it.key().rfind("crc32c.", 0) == 0 ? meta.erase(it) : std::next(it);
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int k = 0; k < 8; ++k) out[static_cast<std::size_t>(k)] = static_cast<char>((h.size() >> (8 * k)) & 0xFF);
  return out + h + bytes.substr(8 + n);
}

int main(int argc, char** argv) {
  const fs::path root = argc > 1 ? argv[1] : "tests/fuzz/corpus";
  // safetensors: every dtype family, scalars, empty tensors, metadata; and one without checksums.
  {
    const std::vector<float> f{1.5f, -2.0f, 0.25f, 3.0f, 0.0f, 1e-3f};
    const std::vector<std::int64_t> i{7, -1};
    const std::vector<double> d{3.25};
    const std::vector<std::uint8_t> u{0, 255, 9};
    put(root / "safetensors/seed_mixed", safetensors_bytes({io::make_tensor<float>("a", {2, 3}, f), io::make_tensor<std::int64_t>("b.c", {2}, i),
                                                            io::make_tensor<double>("s", {}, d), io::make_tensor<std::uint8_t>("u", {3}, u),
                                                            io::make_tensor<float>("empty", {0, 4}, std::vector<float>{})},
                                                           {{"format", "x"}, {"n", "12"}, {"x", "0.5"}}));
    put(root / "safetensors/seed_empty", safetensors_bytes({}, {}));
    // Another tool's file: no checksums, no metadata (hand-made header).
    std::string h = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    h.append((8 - h.size() % 8) % 8, ' ');
    std::string file(8, '\0');
    for (int k = 0; k < 8; ++k) file[static_cast<std::size_t>(k)] = static_cast<char>((h.size() >> (8 * k)) & 0xFF);
    file += h;
    file += std::string("\0\0\x80\x3f\0\0\0\x40", 8);
    put(root / "safetensors/seed_foreign", file);
  }
  // checkpoints: the smallest DiT the configuration allows, with and without EMA and optimizer.
  {
    dit::DitConfig c;
    c.channels = 1;
    c.height = c.width = 2;
    c.patch = 1;
    c.depth = 1;
    c.width_hidden = 6;
    c.heads = 1;
    c.mlp_ratio = 1;
    c.frequency_dim = 2;
    c.name = "fuzz";
    for (int variant = 0; variant < 3; ++variant) {
      if (variant == 2) {
        c.rate_head = dit::RateHead::pooled;
        c.num_classes = 2;
      }
      dit::DiT<float> model(c, 1);
      const auto w = model.host_parameters();
      auto tensors = train::parameter_tensors(model, w, "model.");
      auto meta = train::dit_config_metadata(c);
      meta["format"] = train::kCheckpointFormat;
      if (variant >= 1) {
        train::Ema ema(0.9);
        train::AdamW adam;
        for (const auto& p : model.parameter_table()) {
          ema.add_param(p.name, std::span<const float>(w.data() + p.offset, p.size));
          adam.add_param(p.name, p.size);
        }
        for (auto& t : ema.state_tensors("ema.")) tensors.push_back(std::move(t));
        for (auto& t : adam.state_tensors("optimizer.")) tensors.push_back(std::move(t));
        for (auto& [k, v] : adam.metadata("optimizer.")) meta[k] = v;
        for (auto& [k, v] : ema.metadata("ema.")) meta[k] = v;
      }
      const std::string bytes = safetensors_bytes(tensors, meta);
      for (const std::string& b : {bytes, strip_checksums(bytes)}) {  // both must load
        const auto* p = reinterpret_cast<const std::byte*>(b.data());
        (void)train::load_model(io::parse_safetensors(std::vector<std::byte>(p, p + b.size()), "seed"));
      }
      put(root / ("checkpoint/seed_" + std::to_string(variant)), bytes);
      put(root / ("checkpoint/seed_unverified_" + std::to_string(variant)), strip_checksums(bytes));
    }
  }
  // .npy videos: uint8 and float32, grey and colour, C and Fortran order, format 1.0 and 2.0.
  {
    data::Video v;
    v.channels = 1;
    v.height = 2;
    v.width = 3;
    v.frames.assign(2 * 6, 0.5f);
    const fs::path tmp = root / "npy/tmp.npy";
    fs::create_directories(tmp.parent_path());
    auto slurp = [&] {
      std::ifstream in(tmp, std::ios::binary);
      std::ostringstream s;
      s << in.rdbuf();
      return s.str();
    };
    io::save_npy_video(tmp, v, io::NpyVideoType::uint8);
    put(root / "npy/seed_u8_grey", slurp());
    v.channels = 3;
    v.frames.assign(2 * 18, 0.25f);
    io::save_npy_video(tmp, v, io::NpyVideoType::uint8);
    put(root / "npy/seed_u8_rgb", slurp());
    io::save_npy<float>(tmp, std::vector<float>(2 * 18, 0.75f), {2, 2, 3, 3});
    const std::string f32 = slurp();
    put(root / "npy/seed_f32_rgb", f32);
    std::string fortran = f32;
    fortran.replace(fortran.find("False"), 5, "True ");
    put(root / "npy/seed_f32_fortran", fortran);
    // Version 2.0: a 4-byte header length.
    const std::size_t hl = static_cast<unsigned char>(f32[8]) | static_cast<std::size_t>(static_cast<unsigned char>(f32[9])) << 8;
    std::string v2 = f32.substr(0, 6) + std::string("\x02\x00", 2);
    for (int k = 0; k < 4; ++k) v2.push_back(static_cast<char>(((hl + 2) >> (8 * k)) & 0xFF));
    v2 += f32.substr(10, hl - 1) + "  \n" + f32.substr(10 + hl);
    put(root / "npy/seed_f32_v2", v2);
    fs::remove(tmp);
  }
  // flags: selector byte (0 grid, 1 kappa, 2 tau), two bytes of steps, the text.
  {
    int k = 0;
    auto flag = [&](char which, const std::string& text) {
      put(root / ("flags/seed_" + std::to_string(k++)), std::string{which, '\x10', '\x00'} + text);
    };
    for (const char* g : {"uniform", "end_dense", "end_dense:2.5", "end_dense:1"}) flag(0, g);
    for (const char* g : {"linear", "cubic", "cosine", "poly:5", "poly:0.5"}) flag(1, g);
    for (const char* g : {"uniform", "logit_normal:0,1", "logit_normal:-0.5,1.5"}) flag(2, g);
  }
  return 0;
}
