// Tutorial step 4 (docs/tutorial.md): training a tiny DiT on the rotating ring. The pieces are
// the data (a VideoDataSet), the §3 training-sample builder (ExtendedTimeSampler: start frames,
// κ delays, τ_g, visibility, per-frame times, count targets), the reference DiT (§6) and the
// Trainer (AdamW, EMA, gradient clipping). The recipe is the one of the committed checkpoint
// assets/ring_tiny.safetensors except for the budget: far fewer steps, a batch of 16 videos
// instead of 64 (early in training, more updates help more than less noisy gradients) and a
// shorter EMA.
//
//   04_train_ring [--steps 4000] [--batch 16] [--seed 1] [--ema 0.99] [--out runs/tutorial]
// writes OUT/ring.safetensors (the EMA weights with their configuration, for steps 5 and 6),
// OUT/ring_checkpoint.safetensors (the full training state) and OUT/ring_data.png (data videos).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include <flowception/data/rotating_ring.hpp>
#include <flowception/dit/model.hpp>
#include <flowception/io/png.hpp>
#include <flowception/io/safetensors.hpp>
#include <flowception/sampler.hpp>
#include <flowception/train/checkpoint.hpp>
#include <flowception/train/trainer.hpp>
#include <flowception/training.hpp>

#include "tutorial_args.hpp"

namespace fc = flowception;
namespace fs = std::filesystem;

namespace {

/// A VideoDataSet: size() and video(i). The ring is generated on demand, video i from (seed, i).
struct RingData {
  fc::data::RotatingRing ring;
  std::size_t count = 1000000;
  std::size_t size() const { return count; }
  fc::data::Video video(std::size_t i) const { return ring.video(i); }
};
static_assert(fc::train::VideoDataSet<RingData>);

fc::io::VideoView view(const fc::data::Video& v) {
  return {std::span<const float>(v.frames), v.length(), v.channels, v.height, v.width};
}

}  // namespace

int main(int argc, char** argv) {
  return tutorial::run("04_train_ring", [&] {
    tutorial::Args args(argc, argv,
                        "usage: 04_train_ring [--steps N (default 4000)] [--batch B (default 16)] [--seed S (default 1)]\n"
                        "                     [--ema DECAY (default 0.99)] [--out DIR (default runs/tutorial)]");
    const std::size_t steps = args.count("steps", 4000, 1, 10000000);
    const std::size_t batch = args.count("batch", 16, 1, 4096);
    const std::uint64_t seed = args.count("seed", 1, 0, 1u << 30);
    const double ema_decay = args.number("ema", 0.99, 0.0, 0.999999);
    const fs::path out = args.text("out", "runs/tutorial");
    args.done();
    fs::create_directories(out);

    // The data: 3×3 RGB frames, a 9-colour ramp whose border turns 1, 2 or 3 cells per frame;
    // 15, 20, 25 or 30 frames, independently of the content.
    const RingData data{fc::data::RotatingRing{seed}};
    std::vector<fc::data::Video> shown;
    for (std::size_t i = 0; i < 4; ++i) shown.push_back(data.video(i));
    std::vector<fc::io::VideoView> views;
    for (const auto& v : shown) views.push_back(view(v));
    fc::io::write_contact_sheet_png(out / "ring_data.png", std::span<const fc::io::VideoView>(views));
    std::printf("data: rotating ring, 3x3 RGB frames; first videos' lengths %zu %zu %zu %zu (picture: %s)\n",
                shown[0].length(), shown[1].length(), shown[2].length(), shown[3].length(),
                (out / "ring_data.png").string().c_str());

    // The model: the tiny DiT (depth 4, width 128, 4 heads), one 3×3 patch = one token per frame,
    // the rate read from the pooled frame tokens, and the number of frames given to the model.
    auto cfg = fc::dit::DitConfig::tiny(3, 3, 3, /*patch=*/3);
    cfg.rate_head = fc::dit::RateHead::pooled;
    cfg.length_aware = true;
    cfg.length_conditioning = true;
    cfg.rope_frame_dims = cfg.head_dim();  // one token per frame: rotary positions over frames only
    cfg.validate();
    fc::dit::DiT<float> model(cfg, seed);
    std::printf("model: tiny DiT, %zu parameters\n", model.parameter_count());

    // The §3 training examples: κ(s) = s⁵ (insertions late), 3 start frames with the last one
    // anchored, and a task mixture so that one model does all four tasks of §5.
    fc::TrainingSamplerOptions so;
    so.n_start = 3;
    so.anchor_endpoints = true;
    so.tasks = fc::TaskMixture{0.5, 0.2, 0.2, 0.1};  // unconditional, i2v, interpolation, continuation
    so.seed = seed;
    fc::ExtendedTimeSampler<fc::PolynomialKappa> builder(fc::PolynomialKappa(5.0), so);

    fc::train::TrainerOptions to;
    to.batch_videos = batch;
    to.lr = fc::train::LrSchedule::constant(1e-3, /*warmup=*/200);
    to.ema_decay = ema_decay;  // the committed checkpoint used 0.999 over 64 000 steps; a short run needs less memory
    to.seed = seed;
    to.replicas = 2;  // the batch is split over 2 model replicas (threads); fixed, so the bits are too
    fc::train::Trainer<RingData, decltype(builder)> trainer(model, data, builder, to);

    std::printf("\n%8s %10s %10s %10s\n", "step", "loss", "velocity", "rate");
    const auto t0 = std::chrono::steady_clock::now();
    double loss = 0, vel = 0, rate = 0;
    std::size_t n = 0, videos = 0;
    const std::size_t every = std::max<std::size_t>(1, steps / 5);
    for (std::size_t s = 1; s <= steps; ++s) {
      const auto st = trainer.step();
      loss += st.loss;
      vel += st.velocity_loss;
      rate += st.rate_loss;
      videos += st.videos;
      ++n;
      if (s % every == 0 || s == steps) {  // the mean loss since the last line
        std::printf("%8zu %10.4f %10.4f %10.4f\n", s, loss / static_cast<double>(n), vel / static_cast<double>(n),
                    rate / static_cast<double>(n));
        loss = vel = rate = 0;
        n = 0;
      }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("trained %zu steps, %zu videos in %.0f s (%.0f videos/s)\n", steps, videos, secs,
                static_cast<double>(videos) / secs);

    // Save the whole training state (resumable), then the EMA weights alone with what sampling
    // needs to know: the DiT's configuration and the training recipe (κ, start frames, anchoring).
    trainer.save_checkpoint(out / "ring_checkpoint.safetensors");
    const auto ema = fc::train::load_model(out / "ring_checkpoint.safetensors", /*use_ema=*/true);
    auto meta = fc::train::dit_config_metadata(ema.config());
    meta["format"] = fc::train::kCheckpointFormat;
    meta["train.method"] = "flowception";
    meta["train.step"] = std::to_string(steps);
    meta["train.config"] = nlohmann::json{{"kappa", "poly:5"}, {"n_start", 3}, {"anchored", true}, {"shift", 1.0},
                                          {"steps", steps}, {"batch", batch}, {"seed", seed}}
                               .dump();
    fc::io::save_safetensors(out / "ring.safetensors", fc::train::parameter_tensors(ema, ema.parameters(), "model."), meta);
    std::printf("wrote %s (EMA weights) and %s (training state)\n", (out / "ring.safetensors").string().c_str(),
                (out / "ring_checkpoint.safetensors").string().c_str());
  });
}
