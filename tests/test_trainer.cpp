// Training the DiT: the loss falls on a fixed seed, a resumed run equals an uninterrupted one
// bit for bit, and checkpoints round-trip exactly and reject files that do not fit.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "flowception/train/trainer.hpp"
#include "support/colour_videos.hpp"
#include "support/expect_error.hpp"

using namespace flowception;
namespace fs = std::filesystem;

namespace {

/// Videos of 3..8 frames of one random colour each (3×4×4).
using fc_test::ColourVideos;

dit::DitConfig small_config() { return fc_test::colour_video_dit(); }

train::TrainerOptions options() {
  train::TrainerOptions o;
  o.batch_videos = 6;
  o.lr = train::LrSchedule::constant(2e-3, 10);
  o.ema_decay = 0.9;
  o.seed = 5;
  return o;
}

using TrainerT = train::Trainer<ColourVideos, ExtendedTimeSampler<LinearKappa>>;

ExtendedTimeSampler<LinearKappa> sampler() {
  TrainingSamplerOptions s;
  s.n_start = 2;
  s.seed = 5;
  s.tasks = TaskMixture{1, 1, 1, 0};
  return ExtendedTimeSampler<LinearKappa>(LinearKappa{}, s);
}

fs::path temp_dir(const char* name) {
  auto d = fs::temp_directory_path() / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

}  // namespace

// Loss averaged over the first and the last 20 of 200 steps: stated factor 0.6.
TEST(Trainer, LossFallsOnFixedSeed) {
  ColourVideos data;
  dit::DiT<float> model(small_config(), 1);
  TrainerT trainer(model, data, sampler(), options());
  double first = 0, last = 0;
  const int steps = 200;
  for (int i = 0; i < steps; ++i) {
    const auto s = trainer.step();
    ASSERT_TRUE(std::isfinite(s.loss));
    EXPECT_EQ(s.step, i + 1);
    if (i < 20) first += s.loss / 20;
    if (i >= steps - 20) last += s.loss / 20;
  }
  EXPECT_LT(last, 0.6 * first) << "first " << first << " last " << last;
}

TEST(Trainer, ResumeEqualsUninterruptedRunBitForBit) {
  ColourVideos data;
  const auto dir = temp_dir("fc_trainer_resume");
  dit::DiT<float> straight(small_config(), 1);
  TrainerT a(straight, data, sampler(), options());
  for (int i = 0; i < 6; ++i) a.step();

  dit::DiT<float> first_half(small_config(), 1);
  TrainerT b(first_half, data, sampler(), options());
  for (int i = 0; i < 3; ++i) b.step();
  b.save_checkpoint(dir / "ckpt.safetensors");

  dit::DiT<float> resumed(small_config(), 77);  // different initial weights: all come from the file
  TrainerT c(resumed, data, sampler(), options());
  c.load_checkpoint(dir / "ckpt.safetensors");
  EXPECT_EQ(c.steps_done(), 3);
  for (int i = 0; i < 3; ++i) c.step();
  EXPECT_EQ(resumed.parameters(), straight.parameters());
  EXPECT_EQ(c.ema_parameters(), a.ema_parameters());
  fs::remove_all(dir);
}

TEST(Trainer, CheckpointRoundTripAndRejections) {
  ColourVideos data;
  const auto dir = temp_dir("fc_trainer_ckpt");
  dit::DiT<float> model(small_config(), 1);
  TrainerT t(model, data, sampler(), options());
  t.step();
  t.save_checkpoint(dir / "c.safetensors");
  auto loaded = train::load_model(dir / "c.safetensors", /*use_ema=*/false);
  EXPECT_EQ(loaded.parameters(), model.parameters());
  EXPECT_EQ(loaded.config().width_hidden, 32u);
  auto ema = train::load_model(dir / "c.safetensors", /*use_ema=*/true);
  EXPECT_EQ(ema.host_parameters(), t.ema_parameters());
  // Truncated file.
  {
    std::ifstream in(dir / "c.safetensors", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(dir / "cut.safetensors", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  EXPECT_THROW(train::load_model(dir / "cut.safetensors"), IoError);
  // Another configuration.
  auto other_cfg = small_config();
  other_cfg.depth = 3;
  dit::DiT<float> other(other_cfg, 1);
  TrainerT o(other, data, sampler(), options());
  try {
    o.load_checkpoint(dir / "c.safetensors");
    FAIL();
  } catch (const ShapeError& e) {
    // The message names the differing field and both values.
    EXPECT_NE(std::string(e.what()).find("depth: 3 vs 2"), std::string::npos) << e.what();
  }
  // Another seed: resuming would not continue the same run.
  auto opt = options();
  opt.seed = 6;
  dit::DiT<float> m2(small_config(), 1);
  TrainerT s2(m2, data, sampler(), opt);
  EXPECT_THROW(s2.load_checkpoint(dir / "c.safetensors"), ConfigError);

  // Rewritten with one tensor too many, or declaring a DiT far larger than its tensors (a corrupt
  // dit.depth): refused by name, and the second before any model is built.
  const auto f = io::load_safetensors(dir / "c.safetensors");
  EXPECT_TRUE(f.verified());
  std::vector<io::Tensor> tensors;
  for (const auto& n : f.names()) tensors.push_back(f.tensor(n));
  auto extra = tensors;
  extra.push_back(io::make_tensor("model.blocks.9.attn.qkv.weight", {2}, std::vector<float>{1, 2}));
  io::save_safetensors(dir / "extra.safetensors", extra, f.metadata());
  for (bool use_ema : {true, false}) {
    try {
      (void)train::load_model(dir / "extra.safetensors", use_ema);
      ADD_FAILURE() << "loaded a checkpoint with an extra tensor";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("holds 1 tensor that no checkpoint of this DiT has, first "
                                           "'model.blocks.9.attn.qkv.weight'"), std::string::npos) << e.what();
    }
  }
  {
    dit::DiT<float> m3(small_config(), 1);
    TrainerT r(m3, data, sampler(), options());
    EXPECT_THROW(r.load_checkpoint(dir / "extra.safetensors"), IoError);
  }
  auto meta = f.metadata();
  meta["dit.depth"] = "4000";
  io::save_safetensors(dir / "deep.safetensors", tensors, meta);
  try {
    (void)train::load_model(dir / "deep.safetensors");
    ADD_FAILURE() << "loaded a checkpoint declaring 4000 blocks";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("declares " + std::to_string([&] { auto c = small_config(); c.depth = 4000; return c.parameter_count(); }()) +
                                         " parameters but its 'model.' tensors hold " + std::to_string(model.parameter_count()) + " values"),
              std::string::npos) << e.what();
  }
  meta["dit.depth"] = "100000000";  // beyond the configuration's range
  io::save_safetensors(dir / "deeper.safetensors", tensors, meta);
  try {
    (void)train::load_model(dir / "deeper.safetensors");
    ADD_FAILURE() << "loaded a checkpoint declaring 1e8 blocks";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("DiT depth must be in [1, 4096], got 100000000"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// The §7 baselines train through the same loop: their loss falls (stated factor 0.7 over 150
// steps), the trainer sums the FLOPs of every pass, and checkpoints record the method and
// FLOPs so a resumed run continues both and a checkpoint of another method is refused.
TEST(Trainer, BaselinesTrainThroughTheSameLoopAndCountFlops) {
  ColourVideos data;
  const auto dir = temp_dir("fc_trainer_baselines");
  BaselineTrainingOptions bo;
  bo.seed = 5;
  auto run = [&](auto builder, const char* name) {
    SCOPED_TRACE(name);
    dit::DiT<float> model(small_config(), 1);
    train::Trainer<ColourVideos, decltype(builder)> t(model, data, builder, options());
    double first = 0, last = 0, flops = 0, attention = 0;
    const int steps = 150;
    for (int i = 0; i < steps; ++i) {
      const auto s = t.step();
      EXPECT_EQ(s.rate_frames, 0u);
      EXPECT_EQ(s.rate_loss, 0.0);
      flops += s.flops.total();
      attention += s.flops.attention;
      if (i < 20) first += s.loss / 20;
      if (i >= steps - 20) last += s.loss / 20;
    }
    EXPECT_LT(last, 0.7 * first) << "first " << first << " last " << last;
    EXPECT_DOUBLE_EQ(t.flops_done().total(), flops);
    EXPECT_DOUBLE_EQ(t.flops_done().attention, attention);
    t.save_checkpoint(dir / (std::string(name) + ".safetensors"));
    dit::DiT<float> again(small_config(), 1);
    train::Trainer<ColourVideos, decltype(builder)> r(again, data, builder, options());
    r.load_checkpoint(dir / (std::string(name) + ".safetensors"));
    EXPECT_EQ(r.flops_done().total(), t.flops_done().total());
    return flops / steps;
  };
  const double fs = run(FullSequenceTrainingSampler<>(bo), "full_sequence");
  const double ar = run(AutoregressiveTrainingSampler<>(bo), "autoregressive");
  // The autoregressive sample holds k + 1 <= L frames, the full-sequence one all L.
  EXPECT_LT(ar, fs);
  dit::DiT<float> model(small_config(), 1);
  TrainerT fc(model, data, sampler(), options());
  fc_test::expect_error<ConfigError>([&] { fc.load_checkpoint(dir / "full_sequence.safetensors"); },
                                     "trained with method 'full_sequence', not 'flowception'");
  fs::remove_all(dir);
}

// The rate-head and rotary options are stored in checkpoints and round-trip; a checkpoint written
// before they existed (no such metadata) loads as the model it was (rate token, no length
// embedding, 3-D rotary split); a value that is not one of the options is refused by name.
TEST(Trainer, CheckpointsStoreTheRateHeadOptions) {
  const auto dir = temp_dir("fc_trainer_options");
  auto cfg = small_config();
  cfg.rate_head = dit::RateHead::pooled;
  cfg.length_aware = true;
  cfg.height = cfg.width = cfg.patch = 2;
  cfg.rope_frame_dims = cfg.head_dim();
  cfg.validate();
  dit::DiT<float> model(cfg, 1);
  // Weights and configuration, as `flowception export` writes them.
  auto meta = train::dit_config_metadata(cfg);
  meta["format"] = train::kCheckpointFormat;
  io::save_safetensors(dir / "o.safetensors", train::parameter_tensors(model, model.parameters(), "model."), meta);
  auto back = train::load_model(dir / "o.safetensors");
  EXPECT_EQ(back.config().difference(cfg), "");
  EXPECT_EQ(back.parameters(), model.parameters());
  EXPECT_EQ(back.config().tokens_per_frame(), 1u);

  // An old checkpoint: the same keys minus the new ones.
  auto old_cfg = small_config();
  dit::DiT<float> old_model(old_cfg, 2);
  auto old_meta = train::dit_config_metadata(old_cfg);
  old_meta["format"] = train::kCheckpointFormat;
  for (const char* k : {"dit.rope_frame_dims", "dit.rate_head", "dit.length_aware"}) old_meta.erase(k);
  io::save_safetensors(dir / "old.safetensors", train::parameter_tensors(old_model, old_model.parameters(), "model."),
                       old_meta);
  auto old_back = train::load_model(dir / "old.safetensors");
  EXPECT_EQ(old_back.config().rate_head, dit::RateHead::token);
  EXPECT_FALSE(old_back.config().length_aware);
  EXPECT_EQ(old_back.config().rope_frame_dims, 0u);
  EXPECT_EQ(old_back.parameters(), old_model.parameters());

  // Bad values are refused with the key's name.
  auto bad = meta;
  bad["dit.rate_head"] = "mean";
  io::save_safetensors(dir / "bad.safetensors", train::parameter_tensors(model, model.parameters(), "model."), bad);
  fc_test::expect_error<IoError>([&] { train::load_model(dir / "bad.safetensors"); }, "rate head 'mean'");
  bad = meta;
  bad["dit.length_aware"] = "yes";
  io::save_safetensors(dir / "bad2.safetensors", train::parameter_tensors(model, model.parameters(), "model."), bad);
  fc_test::expect_error<IoError>([&] { train::load_model(dir / "bad2.safetensors"); }, "dit.length_aware");
  bad = meta;
  bad["dit.rope_frame_dims"] = "6";  // head dim 16: leaves 10, not a multiple of 4
  io::save_safetensors(dir / "bad3.safetensors", train::parameter_tensors(model, model.parameters(), "model."), bad);
  fc_test::expect_error<IoError>([&] { train::load_model(dir / "bad3.safetensors"); }, "rope_frame_dims");
  // A checkpoint of the plain model cannot be read as a length-aware one: its tensors are missing.
  auto mismatched = old_meta;
  mismatched["dit.length_aware"] = "1";
  io::save_safetensors(dir / "mm.safetensors", train::parameter_tensors(old_model, old_model.parameters(), "model."),
                       mismatched);
  EXPECT_THROW(train::load_model(dir / "mm.safetensors"), IoError);
  fs::remove_all(dir);
}

// Replicas (data parallelism inside one process): with 2 and 3 replicas, each forward and
// backward on its own share of the batch, a run takes the same steps as with one, up to the
// order of floating-point sums: losses within 1e-5 relative, parameters within 1e-5 of their
// scale after 4 steps. A batch smaller than the replica count leaves replicas idle and still
// matches.
TEST(Trainer, ReplicasEqualOneModelWithTheWholeBatch) {
  ColourVideos data;
  auto run = [&](std::size_t replicas, std::size_t batch, std::vector<double>& losses) {
    dit::DiT<float> model(small_config(), 1);
    auto o = options();
    o.replicas = replicas;
    o.batch_videos = batch;
    TrainerT t(model, data, sampler(), o);
    losses.clear();
    for (int i = 0; i < 4; ++i) {
      const auto s = t.step();
      losses.push_back(s.loss);
      EXPECT_EQ(s.videos, batch);
    }
    return model.parameters();
  };
  for (std::size_t batch : {6u, 2u}) {
    std::vector<double> l1, lr;
    const auto p1 = run(1, batch, l1);
    for (std::size_t replicas : {2u, 3u}) {
      SCOPED_TRACE(std::to_string(replicas) + " replicas, batch " + std::to_string(batch));
      const auto pr = run(replicas, batch, lr);
      for (std::size_t i = 0; i < l1.size(); ++i) EXPECT_NEAR(lr[i], l1[i], 1e-5 * std::fabs(l1[i])) << i;
      double scale = 0, diff = 0;
      for (std::size_t i = 0; i < p1.size(); ++i) {
        scale = std::max(scale, static_cast<double>(std::fabs(p1[i])));
        diff = std::max(diff, static_cast<double>(std::fabs(p1[i] - pr[i])));
      }
      EXPECT_LT(diff, 1e-5 * scale);
    }
  }
  auto bad = options();
  bad.replicas = 0;
  dit::DiT<float> m(small_config(), 1);
  fc_test::expect_error<ConfigError>([&] { TrainerT(m, data, sampler(), bad); }, "replicas must be in [1, 256]");
}

// The loss of a batch split in parts with the whole batch's counts adds up to the loss of the
// whole batch, and so do the gradients (they are the same per frame).
TEST(Losses, PartsWithGlobalNormalisationAddUp) {
  TrainingSamplerOptions so;
  so.seed = 3;
  ExtendedTimeSampler<LinearKappa> es(LinearKappa{}, so);
  std::vector<TrainingSample<float>> samples;
  random::Stream rng(4, 5);
  for (std::size_t i = 0; i < 6; ++i) {
    std::vector<float> frames(8 * 4);
    for (auto& x : frames) x = static_cast<float>(rng.normal());
    samples.push_back(es.sample<float>(frames, 4, i, kNoCondition));
  }
  const auto whole = pack(samples);
  std::vector<float> v(whole.inputs.size());
  std::vector<double> l(whole.rows());
  for (auto& x : v) x = static_cast<float>(rng.normal());
  for (auto& x : l) x = rng.normal();
  const auto all = flowception_loss<float>(whole, v, l, 0.7);
  LossNormalisation norm{all.flowing_frames, all.rate_frames};
  double total = 0;
  std::size_t row = 0;
  for (auto [b, e] : {std::pair{0, 2}, std::pair{2, 6}}) {
    const auto part = pack(std::span<const TrainingSample<float>>(samples.data() + b, static_cast<std::size_t>(e - b)));
    const std::span<const float> pv(v.data() + row * whole.dim, part.inputs.size());
    const std::span<const double> pl(l.data() + row, part.rows());
    const auto res = flowception_loss<float>(part, pv, pl, 0.7, norm);
    total += res.total;
    for (std::size_t r = 0; r < part.rows(); ++r) EXPECT_NEAR(res.grad_log_rate[r], all.grad_log_rate[row + r], 1e-15);
    for (std::size_t i = 0; i < part.inputs.size(); ++i)
      EXPECT_NEAR(res.grad_velocity[i], all.grad_velocity[row * whole.dim + i], 1e-7);
    row += part.rows();
  }
  EXPECT_NEAR(total, all.total, 1e-12 * std::fabs(all.total));
  fc_test::expect_error<ConfigError>(
      [&] { flowception_loss<float>(whole, v, l, 0.7, LossNormalisation{1, 1}); }, "fewer than");
}
