// End to end: a DiT trained on two fixed short videos must reproduce them. Sampled videos must
// have one of the two lengths, and every frame must lie within a stated RMS of the same frame of
// the training video of that length. The trainer, the model and the sampler have to agree on
// per-frame times, rotary positions, kinds and insertion counts for this to pass; a mismatch in
// any of them (a position off by one, a count for the wrong gap, a time fed on another scale)
// makes the frames land in the wrong order or the lengths wrong.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "flowception/data/rotating_ring.hpp"
#include "flowception/sampler.hpp"
#include "flowception/train/trainer.hpp"

using namespace flowception;

namespace {

/// Two ring videos of 5 and 7 frames, strides 1 and 3, with far-apart colour ramps.
struct TwoVideos {
  std::vector<data::Video> videos;
  TwoVideos() {
    videos.push_back(data::RotatingRing::render({{0.95, 0.1, 0.2}, {0.05, 0.3, 0.9}, 1, 5}));
    videos.push_back(data::RotatingRing::render({{0.2, 0.9, 0.3}, {0.9, 0.05, 0.7}, 3, 7}));
  }
  std::size_t size() const { return videos.size(); }
  data::Video video(std::size_t i) const { return videos[i]; }
};

}  // namespace

// Recipe: the ring recipe of assets/README.md on a smaller model (depth 2, width 64): pooled rate
// head, length-aware head and conditioning, insertion scheduler κ(s) = s⁵. Budget: 3000 steps of
// 16 videos (about 20 s on one core). Measured with these seeds: 40 of 40 videos legal and exact;
// over 200 videos, 190 legal and all 190 exact.
// Stated tolerances: at least 85 % of the videos have one of the two lengths, and at least 95 % of
// those reproduce their training video: every frame within RMS 0.08 (pixel units, values in
// [0, 1]) of the training frame at the same index.
TEST(Memorisation, TrainedDiTReproducesItsTwoTrainingVideos) {
#if defined(_OPENMP)
  // One thread: this model's products are tiny, and ctest runs other tests beside this one, where
  // threads waiting at OpenMP barriers on an oversubscribed machine would multiply the time.
  omp_set_num_threads(1);
#endif
  const TwoVideos data;
  auto cfg = dit::DitConfig::tiny(3, 3, 3, 3);
  cfg.depth = 2;
  cfg.width_hidden = 64;
  cfg.rate_head = dit::RateHead::pooled;
  cfg.length_aware = true;
  cfg.length_conditioning = true;
  cfg.rope_frame_dims = cfg.head_dim();
  cfg.validate();
  dit::DiT<float> model(cfg, 3);
  train::TrainerOptions to;
  to.batch_videos = 16;
  to.lr = train::LrSchedule::constant(2e-3, 50);
  to.ema_decay = 0.99;
  to.seed = 11;
  TrainingSamplerOptions so;
  so.n_start = 2;  // frame 0 and the last frame
  so.seed = 11;
  const PolynomialKappa kappa(5.0);
  train::Trainer<TwoVideos, ExtendedTimeSampler<PolynomialKappa>> trainer(
      model, data, ExtendedTimeSampler<PolynomialKappa>(kappa, so), to);
  double loss = 0;
  for (int i = 0; i < 3000; ++i) loss = 0.95 * loss + 0.05 * trainer.step().loss;
  model.set_parameters(trainer.ema_parameters());

  SamplerOptions o{TimeGrid::end_dense(100, 3.0)};
  o.frame_dim = cfg.frame_dim();
  o.seed = 5;
  o.max_frames = 32;
  const std::size_t count = 40;
  auto r = sample(model, kappa, Euler{}, o, std::vector<Prompt<float>>(count, Prompt<float>::unconditional(2)));
  const train::PixelScaling px;
  std::size_t legal = 0, exact = 0;
  double worst = 0;
  for (const auto& v : r.videos) {
    const data::Video* match = nullptr;
    for (const auto& d : data.videos)
      if (d.length() == v.length()) match = &d;
    if (!match) continue;
    ++legal;
    double video_worst = 0;
    for (std::size_t t = 0; t < v.length(); ++t) {
      double sse = 0;
      for (std::size_t e = 0; e < 27; ++e) {
        const double d = px.to_pixel(v.frames[t * 27 + e]) - match->frames[t * 27 + e];
        sse += d * d;
      }
      video_worst = std::max(video_worst, std::sqrt(sse / 27));
    }
    exact += video_worst < 0.08 ? 1 : 0;
    worst = std::max(worst, video_worst);
  }
  RecordProperty("final_loss", std::to_string(loss));
  RecordProperty("legal_videos", static_cast<int>(legal));
  RecordProperty("exact_videos", static_cast<int>(exact));
  RecordProperty("worst_frame_rms", std::to_string(worst));
  EXPECT_GE(legal * 100, count * 85) << "loss " << loss;
  EXPECT_GE(exact * 100, legal * 95) << "loss " << loss << ", legal " << legal << ", worst frame RMS " << worst;
}
