// Samples two videos with a small untrained DiT through the installed package, writes the first
// as .npy and reads it back: the installed dit and io components compile, link and run.
#include <flowception/dit/model.hpp>
#include <flowception/io/npy.hpp>
#include <flowception/sampler.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>

int main() {
  using namespace flowception;
  dit::DitConfig cfg = dit::DitConfig::tiny(3, 8, 8, 4);
  cfg.depth = 1;
  dit::DiT<float> model(cfg, 1);
  SamplerOptions o{TimeGrid::uniform(4)};
  o.frame_dim = cfg.frame_dim();
  o.max_frames = 16;
  o.cap_policy = CapPolicy::truncate;
  auto r = sample(model, LinearKappa{}, Heun{}, o, std::vector<Prompt<float>>(2, Prompt<float>::unconditional(2)));
  const auto& v = r.videos.at(0);
  data::Video out{3, 8, 8, v.frames, -1};
  for (auto& x : out.frames) x = std::clamp(0.5f * (x + 1.0f), 0.0f, 1.0f);  // model units → pixels
  const auto path = std::filesystem::temp_directory_path() / "flowception_consumer_dit.npy";
  io::save_npy_video(path, out);
  const auto back = io::load_npy_video(path);
  std::filesystem::remove(path);
  std::printf("consumer_dit: %zu frames, %.0f FLOPs, round trip %s\n", v.length(), r.flops.total(),
              back.frames == out.frames ? "exact" : "DIFFERENT");
  return back.frames == out.frames && v.length() >= 2 && r.flops.total() > 0 ? 0 : 1;
}
