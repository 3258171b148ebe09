// Tutorial step 6 (docs/tutorial.md): reading the rate calibration. The model's log-rate says how
// many frames are still missing to the right of each frame (λ = exp ℓ, §3). On training examples
// of the insertion phase (τ_g < 1), grouped by τ_g, the calibration compares
//   - the model's expected missing frames Σλ,
//   - the same from the content-free length oracle of the data's length law (the best a model
//     that ignores the frames' content can do),
//   - the frames actually missing, Σk,
// and the Poisson negative log-likelihood of k under both. First the oracle is compared with
// itself (a check that the reading is right), then the trained DiT with the oracle.
//
//   06_rate_calibration [--checkpoint assets/ring_tiny.safetensors] [--videos 1000] [--seed 3]
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <flowception/data/rotating_ring.hpp>
#include <flowception/dit/model.hpp>
#include <flowception/io/safetensors.hpp>
#include <flowception/oracles.hpp>
#include <flowception/schedule/any_kappa.hpp>
#include <flowception/train/checkpoint.hpp>
#include <flowception/train/trainer.hpp>
#include <flowception/training.hpp>

#include "tutorial_args.hpp"

namespace fc = flowception;

namespace {

void print(const char* title, const std::vector<fc::RateCalibrationBin>& bins) {
  std::printf("%s\n", title);
  std::printf("   %-11s %7s %9s %9s %9s %9s %9s\n", "tau_g", "samples", "model", "oracle", "true", "model", "oracle");
  std::printf("   %-11s %7s %9s %9s %9s %9s %9s\n", "", "", "missing", "missing", "missing", "NLL", "NLL");
  double mn = 0, on = 0;
  std::size_t total = 0;
  for (const auto& b : bins) {
    if (b.samples == 0) continue;
    std::printf("   %.1f - %.1f  %7zu %9.2f %9.2f %9.2f %9.4f %9.4f\n", b.tau_begin, b.tau_end, b.samples, b.model_missing,
                b.reference_missing, b.true_missing, b.model_nll, b.reference_nll);
    mn += b.model_nll * static_cast<double>(b.samples);
    on += b.reference_nll * static_cast<double>(b.samples);
    total += b.samples;
  }
  std::printf("   mean NLL over %zu samples: model %.4f, oracle %.4f\n", total, mn / static_cast<double>(total),
              on / static_cast<double>(total));
}

}  // namespace

int main(int argc, char** argv) {
  return tutorial::run("06_rate_calibration", [&] {
    tutorial::Args args(argc, argv,
                        "usage: 06_rate_calibration [--checkpoint FILE (default assets/ring_tiny.safetensors)]\n"
                        "                           [--videos M (default 1000)] [--seed S (default 3)]");
    const std::filesystem::path checkpoint = args.text("checkpoint", "assets/ring_tiny.safetensors");
    const std::size_t count = args.count("videos", 1000, 1, 1000000);
    const std::uint64_t seed = args.count("seed", 3, 0, 1u << 30);
    args.done();

    const auto file = fc::io::load_safetensors(checkpoint);
    auto model = fc::train::load_model(file);
    const auto recipe = nlohmann::json::parse(file.metadata_string("train.config"));
    const auto kappa = fc::AnyKappa::from_name(recipe.at("kappa").get<std::string>());
    const std::size_t n_start = recipe.at("n_start").get<std::size_t>();
    const bool anchored = recipe.value("anchored", true);

    // Training examples built exactly as in training (§3), from ring videos in model units.
    fc::TrainingSamplerOptions so;
    so.n_start = n_start;
    so.anchor_endpoints = anchored;
    so.seed = seed;
    fc::ExtendedTimeSampler<fc::AnyKappa> builder(kappa, so);
    const fc::data::RotatingRing ring{1000};  // held-out videos
    const fc::train::PixelScaling px;
    std::vector<std::vector<float>> videos;
    for (std::size_t i = 0; i < count; ++i) {
      auto v = ring.video(i);
      for (auto& p : v.frames) p = px.to_model(p);
      videos.push_back(std::move(v.frames));
    }
    // The content-free oracle: the ring's lengths are 15, 20, 25, 30 whatever the content.
    fc::LengthOracle<fc::AnyKappa> oracle(fc::data::RotatingRing::length_distribution(), kappa, n_start, anchored);
    const std::size_t dim = fc::data::RotatingRing::frame_size;
    const std::span<const std::vector<float>> all(videos);

    std::printf("%zu held-out ring videos, kappa %s, %zu start frames; missing = mean over samples of the sum over frames\n\n",
                count, kappa.name().c_str(), n_start);
    print("1. The oracle against itself (model = oracle)", fc::rate_calibration(oracle, oracle, builder, all, dim, 5));
    std::printf("\n");
    print(("2. " + checkpoint.string() + " against the oracle").c_str(),
          fc::rate_calibration(model, oracle, builder, all, dim, 5));
  });
}
