// flowception sample, i2v and interpolate.
#include "commands.hpp"

namespace fc_cli {

int cmd_sample(const SampleFlags& f) {
  std::vector<Prompt<float>> prompts(f.count, Prompt<float>::unconditional(f.n_start, f.class_label));
  const auto g = run_sampler(f, prompts);
  if (!world().root()) return 0;  // rank 0 gathered the videos and writes them
  const auto run = write_outputs(f.out, g, f, "sample");
  std::printf("sampled %zu videos (lengths %s) in %.1f s -> %s\n", f.count, run["lengths"].dump().c_str(), g.seconds,
              f.out.c_str());
  return 0;
}


/// The conditioning video (a file or a data video), checked against the checkpoint's frame size
/// before any sampling; `flag` names where it came from in the error.
data::Video condition_video(const ConditionFlags& c, const SampleFlags& f, const char* flag) {
  data::Video v;
  std::string from;
  if (!c.file.empty()) {
    v = io::load_npy_video(c.file);
    from = detail::cat(flag, " ", c.file);
  } else {
    const DataSource d = open_data(c.data);
    detail::require(c.from_data < d.size(), flag, "-from-data ", c.from_data, " is not in [0, ", d.size() - 1, "] for --data ", c.data.data);
    v = d.video(c.from_data);
    from = detail::cat(flag, "-from-data ", c.from_data, " (--data ", c.data.data, ")");
  }
  const auto cfg = train::dit_config_from_metadata(checkpoint_file(f.checkpoint));
  detail::require<ShapeError>(v.channels == cfg.channels && v.height == cfg.height && v.width == cfg.width, from,
                              " has frames of H×W×C = ", v.height, "x", v.width, "x", v.channels, ", but the model of ",
                              f.checkpoint, " makes frames of ", cfg.height, "x", cfg.width, "x", cfg.channels);
  detail::require<ShapeError>(v.length() >= 1, from, " holds no frames");
  return v;
}

int cmd_i2v(const SampleFlags& f, const ConditionFlags& c) {
  const data::Video src = condition_video(c, f, "--image");
  std::vector<float> image(src.frame(0), src.frame(0) + src.frame_size());
  std::vector<Prompt<float>> prompts(f.count, Prompt<float>::image_to_video(image, f.n_start, f.class_label));
  const auto g = run_sampler(f, prompts);
  if (!world().root()) return 0;  // rank 0 gathered the videos and writes them
  write_outputs(f.out, g, f, "i2v", {{"image", c.file.empty() ? "data video " + std::to_string(c.from_data) + " frame 0" : c.file}});
  std::printf("image-to-video: %zu videos in %.1f s -> %s\n", f.count, g.seconds, f.out.c_str());
  return 0;
}

int cmd_interpolate(const SampleFlags& f, const ConditionFlags& c) {
  const data::Video src = condition_video(c, f, "--keys");
  const std::size_t L = src.length();
  detail::require(c.keys >= 2 && c.keys <= L, "--num-keys must be in [2, ", L, "] for this video");
  std::vector<std::vector<float>> keys;
  std::vector<std::size_t> at;
  for (std::size_t k = 0; k < c.keys; ++k) {
    const std::size_t t = k * (L - 1) / (c.keys - 1);
    at.push_back(t);
    keys.emplace_back(src.frame(t), src.frame(t) + src.frame_size());
  }
  std::vector<Prompt<float>> prompts(f.count, Prompt<float>::interpolation(keys, f.class_label));
  const auto g = run_sampler(f, prompts);
  if (!world().root()) return 0;  // rank 0 gathered the videos and writes them
  write_outputs(f.out, g, f, "interpolate", {{"key_frames_at", at}, {"source_length", L}});
  std::printf("interpolation: %zu videos between %zu key frames in %.1f s -> %s\n", f.count, c.keys, g.seconds, f.out.c_str());
  return 0;
}

}  // namespace fc_cli
