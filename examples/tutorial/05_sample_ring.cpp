// Tutorial step 5 (docs/tutorial.md): sampling a trained DiT. One model, three tasks (§5): the
// task is only the prompt, the frames the sampler starts from. Unconditional generation starts
// from n_start noise frames; image-to-video gives frame 0; interpolation gives the first and
// the last frame. The scorer of the ring (data/rotating_ring.hpp) says which frames are ring
// frames, which videos keep one rotation, and whether the lengths follow the data's law.
//
//   05_sample_ring [--checkpoint assets/ring_tiny.safetensors] [--count 100] [--steps 100]
//                  [--seed 7] [--out runs/tutorial]
// writes OUT/unconditional.png, OUT/image_to_video.png and OUT/interpolation.png (contact sheets).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <flowception/data/rotating_ring.hpp>
#include <flowception/dit/model.hpp>
#include <flowception/io/png.hpp>
#include <flowception/io/safetensors.hpp>
#include <flowception/sampler.hpp>
#include <flowception/schedule/any_kappa.hpp>
#include <flowception/train/checkpoint.hpp>
#include <flowception/train/trainer.hpp>

#include "tutorial_args.hpp"

namespace fc = flowception;
namespace fs = std::filesystem;

namespace {

const fc::train::PixelScaling px;  // pixels in [0, 1] ↔ model units in [−1, 1]

/// The sampled videos in pixel units, as the data set's Video type (what the scorer reads).
std::vector<fc::data::Video> to_videos(const fc::SampleResult<float>& r) {
  std::vector<fc::data::Video> out;
  for (const auto& v : r.videos) {
    fc::data::Video x{3, 3, 3, v.frames, -1};
    for (auto& p : x.frames) p = px.to_pixel(p);
    out.push_back(std::move(x));
  }
  return out;
}

void report(const char* task, const std::vector<fc::data::Video>& videos, const fc::SampleResult<float>& r,
            const fs::path& picture) {
  const auto s = fc::data::score_rotating_ring(videos);
  std::printf("%s: %zu videos, %zu model calls\n", task, videos.size(), r.model_calls);
  std::printf("   valid frames %5.1f %%   consistent rotation %5.1f %%   legal lengths %5.1f %%   length TV %.3f\n",
              100 * s.valid_frame_fraction, 100 * s.consistent_fraction, 100 * s.length_legal_fraction, s.length_tv);
  std::printf("   lengths:");
  for (const auto& [L, c] : s.length_histogram) std::printf(" %zu:%zu", L, c);
  std::printf("\n");
  // A contact sheet: one row per video (the first 8), one cell per frame, clamped to [0, 1].
  std::vector<fc::data::Video> shown(videos.begin(), videos.begin() + std::min<std::ptrdiff_t>(8, std::ssize(videos)));
  std::vector<fc::io::VideoView> views;
  for (auto& v : shown) {
    for (auto& p : v.frames) p = std::clamp(p, 0.0f, 1.0f);
    views.push_back({std::span<const float>(v.frames), v.length(), v.channels, v.height, v.width});
  }
  fc::io::write_contact_sheet_png(picture, std::span<const fc::io::VideoView>(views));
}

/// Largest |a − b| between a given frame and the frame the sampler returned at its place.
double max_difference(const std::vector<float>& given, const fc::data::Video& v, std::size_t t) {
  double worst = 0;
  for (std::size_t e = 0; e < given.size(); ++e) worst = std::max(worst, std::fabs(double(given[e]) - v.frame(t)[e]));
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  return tutorial::run("05_sample_ring", [&] {
    tutorial::Args args(argc, argv,
                        "usage: 05_sample_ring [--checkpoint FILE (default assets/ring_tiny.safetensors)] [--count M (default 100)]\n"
                        "                      [--steps N (default 100)] [--seed S (default 7)] [--out DIR (default runs/tutorial)]");
    const fs::path checkpoint = args.text("checkpoint", "assets/ring_tiny.safetensors");
    const std::size_t count = args.count("count", 100, 1, 100000);
    const std::size_t N = args.count("steps", 100, 2, 100000);
    const std::uint64_t seed = args.count("seed", 7, 0, 1u << 30);
    const fs::path out = args.text("out", "runs/tutorial");
    args.done();
    fs::create_directories(out);

    // The checkpoint holds the weights and the recipe they were trained with: sampling must use
    // the same κ, number of start frames and anchoring.
    const auto file = fc::io::load_safetensors(checkpoint);
    auto model = fc::train::load_model(file);  // the EMA weights
    const auto recipe = nlohmann::json::parse(file.metadata_string("train.config"));
    const auto kappa = fc::AnyKappa::from_name(recipe.at("kappa").get<std::string>());
    const std::size_t n_start = recipe.at("n_start").get<std::size_t>();
    std::printf("%s: %zu parameters, kappa %s, %zu start frames\n\n", checkpoint.string().c_str(),
                model.parameter_count(), kappa.name().c_str(), n_start);

    fc::SamplerOptions o{fc::TimeGrid::end_dense(N, 3.0)};  // fine steps near s = 1, where lengths settle
    o.frame_dim = model.config().frame_dim();
    o.max_frames = 64;
    o.seed = seed;

    // Held-out data (a seed the training never used) for the given frames of i2v and interpolation.
    const fc::data::RotatingRing heldout{1000};
    auto model_units = [](std::vector<float> f) {
      for (auto& p : f) p = px.to_model(p);
      return f;
    };

    {  // 1. Unconditional: n_start noise frames.
      std::vector<fc::Prompt<float>> prompts(count, fc::Prompt<float>::unconditional(n_start));
      const auto r = fc::sample(model, kappa, fc::Euler{}, o, prompts);
      report("1. unconditional", to_videos(r), r, out / "unconditional.png");
    }
    std::vector<std::vector<float>> first(count), last(count);
    for (std::size_t i = 0; i < count; ++i) {
      const auto v = heldout.video(i);
      first[i].assign(v.frame(0), v.frame(0) + v.frame_size());
      last[i].assign(v.frame(v.length() - 1), v.frame(v.length() - 1) + v.frame_size());
    }
    {  // 2. Image-to-video: frame 0 given (context), n_start − 1 further start frames of noise.
      std::vector<fc::Prompt<float>> prompts;
      for (std::size_t i = 0; i < count; ++i) prompts.push_back(fc::Prompt<float>::image_to_video(model_units(first[i]), n_start));
      const auto r = fc::sample(model, kappa, fc::Euler{}, o, prompts);
      const auto videos = to_videos(r);
      report("2. image-to-video", videos, r, out / "image_to_video.png");
      double worst = 0;
      for (std::size_t i = 0; i < count; ++i) worst = std::max(worst, max_difference(first[i], videos[i], 0));
      std::printf("   frame 0 against the given image: largest difference %.1e\n", worst);
    }
    {  // 3. Interpolation: the first and the last frame given; the model fills in between.
      std::vector<fc::Prompt<float>> prompts;
      for (std::size_t i = 0; i < count; ++i)
        prompts.push_back(fc::Prompt<float>::interpolation({model_units(first[i]), model_units(last[i])}));
      const auto r = fc::sample(model, kappa, fc::Euler{}, o, prompts);
      const auto videos = to_videos(r);
      report("3. interpolation", videos, r, out / "interpolation.png");
      double worst = 0;
      for (std::size_t i = 0; i < count; ++i)
        worst = std::max({worst, max_difference(first[i], videos[i], 0),
                          max_difference(last[i], videos[i], videos[i].length() - 1)});
      std::printf("   first and last frames against the given ones: largest difference %.1e\n", worst);
    }
    std::printf("\npictures: %s, %s, %s\n", (out / "unconditional.png").string().c_str(),
                (out / "image_to_video.png").string().c_str(), (out / "interpolation.png").string().c_str());
  });
}
