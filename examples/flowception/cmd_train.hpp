// flowception train: the data-set recipes, the training loop, checkpoints and run.json.
#pragma once

#include "common.hpp"

namespace {

struct TrainFlags {
  DataFlags data;
  std::string out = "runs/train";
  std::string model = "tiny";
  std::size_t patch = 4;
  std::size_t depth = 0, width = 0, heads = 0;
  std::string rate_head = "token";
  bool length_aware = false;
  bool length_conditioning = false;
  std::int64_t rope_frame_dims = -1;  // -1: every dimension on a 1×1 patch grid, else the 3-D split
  std::size_t classes = 0;
  std::int64_t window = -1;
  std::size_t steps = 1000;
  double time_limit = 0;
  std::size_t batch = 8;
  double lr = 3e-4;
  std::size_t warmup = 100;
  bool cosine = false;
  std::size_t decay_from = 0;  // > 0: constant until this step, then a cosine to lr/10 at --steps
  double weight_decay = 0.0, clip = 1.0, ema = 0.999, rate_weight = 1.0, class_dropout = 0.1;
  std::uint64_t seed = 0;
  std::string kappa = "linear", tau = "uniform";
  std::size_t n_start = 3;
  bool unanchored = false;
  double shift = 1.0;
  std::vector<double> tasks{1, 0, 0, 0};
  std::string resume;
  bool overwrite = false;  // replace the checkpoint --out already holds
  std::size_t save_every = 200;
  std::size_t replicas = 0;  // 0: one per thread
  std::string device = "cpu";
  bool quiet = false;
  std::string method = "flowception";
  std::string ar_attention = "causal";
  double flop_budget = 0;  // stop once the run has spent this many training FLOPs (0: no budget)
  double memory_limit = 0;  // GiB (0: the memory available)
};

template <class Builder>
int train_with(const TrainFlags& f, const dit::DitConfig& cfg, const DataSource& data, Builder sampler);
template <class Backend, class Builder>
int train_on(const TrainFlags& f, const dit::DitConfig& cfg, const DataSource& data, Builder sampler);
template <class Backend, class Builder, class Comm>
int train_across(const TrainFlags& f, const dit::DitConfig& cfg, const DataSource& data, Builder sampler, Comm comm);

/// The training recipe of each data set: what `train --data X` uses for every flag of the recipe
/// that is not given. ring and shapes are the recipes of the reference checkpoints in assets/
/// (assets/README.md has the measurements behind them).
struct Recipe {
  std::string model = "tiny";
  std::size_t patch = 4;
  std::string rate_head = "pooled";
  bool length_aware = true, length_conditioning = true;
  std::string kappa = "poly:5";
  std::size_t batch = 32, warmup = 200, steps = 100000;
  double lr = 1e-3, ema = 0.999;
  std::vector<double> tasks{1, 0, 0, 0};
};

Recipe recipe_for(const std::string& kind, const data::Video& first) {
  Recipe r;
  if (kind == "ring") {
    r.patch = 3;  // one patch, hence one token, per 3×3 frame
    r.batch = 64;
    r.tasks = {0.5, 0.2, 0.2, 0.1};  // one model for sample, i2v, interpolation (and continuation)
  } else if (kind == "shapes") {
    r.patch = 4;
    r.batch = 32;
    r.tasks = {0.5, 0.2, 0.2, 0.1};
  } else {
    // Other data: the largest of 4, 2, 1 that divides the frame.
    r.patch = first.height % 4 == 0 && first.width % 4 == 0 ? 4 : first.height % 2 == 0 && first.width % 2 == 0 ? 2 : 1;
  }
  return r;
}

const char* kRecipeHelp =
    "Defaults per data set (flags not given): ring: tiny, --patch 3, --batch 64, --tasks 0.5,0.2,0.2,0.1; "
    "shapes[:N]: tiny, --patch 4, --batch 32, --tasks 0.5,0.2,0.2,0.1; npy: tiny, --patch 4|2|1 (what divides the frame), --batch 32; all: "
    "--rate-head pooled --length-aware --length-conditioning --kappa poly:5 --lr 1e-3 --warmup 200 --ema 0.999 "
    "--steps 100000.";

/// Fills every recipe flag that the command line did not give.
void apply_recipe(TrainFlags& f, const CLI::App& cmd, const std::string& kind, const data::Video& first) {
  const Recipe r = recipe_for(kind, first);
  auto unset = [&](const char* flag) { return cmd.count(flag) == 0; };
  if (unset("--model")) f.model = r.model;
  if (unset("--patch")) f.patch = r.patch;
  if (unset("--rate-head")) f.rate_head = r.rate_head;
  if (unset("--length-aware")) f.length_aware = r.length_aware;
  if (unset("--length-conditioning")) f.length_conditioning = r.length_conditioning;
  if (unset("--kappa")) f.kappa = r.kappa;
  if (unset("--batch")) f.batch = r.batch;
  if (unset("--lr")) f.lr = r.lr;
  if (unset("--warmup")) f.warmup = r.warmup;
  if (unset("--ema")) f.ema = r.ema;
  if (unset("--steps") && unset("--flop-budget")) f.steps = r.steps;
  if (unset("--tasks")) f.tasks = r.tasks;
}

/// Checks --out before any work: a folder that can be written (check_out_folder), and not one
/// holding another run's checkpoint unless --resume or --overwrite says what to do with it.
void check_train_out(const TrainFlags& f) {
  check_out_folder(f.out);
  const fs::path out(f.out);
  std::error_code ec;
  const fs::path ckpt = out / "checkpoint.safetensors";
  if (fs::exists(ckpt, ec) && f.resume.empty() && !f.overwrite)
    throw ConfigError(detail::cat("flowception: --out ", out, " already holds a checkpoint (", ckpt.string(),
                                  "); continue it with --resume ", ckpt.string(), ", or pass --overwrite to replace it"));
}

/// Estimated peak bytes of a training process: the weights, gradients, AdamW moments and EMA
/// (5 copies), each further replica's weights and gradients, every replica's DiT workspace with
/// backward for its share of the batch with videos of the data's longest length, the step's
/// training samples (built whole on every rank), and the data held in memory.
double training_bytes(const TrainFlags& f, const dit::DitConfig& cfg, const DataSource& data, std::size_t replicas, int ranks) {
  const double P = static_cast<double>(cfg.parameter_count()) * sizeof(float);
  const std::size_t share = (f.batch + static_cast<std::size_t>(ranks) - 1) / static_cast<std::size_t>(ranks);
  const std::size_t per_replica = (share + replicas - 1) / replicas;
  const std::size_t L = std::max<std::size_t>(1, data.max_length);
  const double frame = static_cast<double>(cfg.frame_dim()) * sizeof(float);
  return P * (5 + 2 * static_cast<double>(replicas - 1)) +
         static_cast<double>(replicas) * static_cast<double>(cfg.workspace_bytes(per_replica * L, per_replica, true)) +
         static_cast<double>(f.batch) * static_cast<double>(L) * frame * 6 + static_cast<double>(data.bytes_held);
}

/// Refuses, before any work, a training configuration whose estimated peak is above
/// --memory-limit (default: the memory available). CPU only: a device checks its own memory for
/// the weights when the model is built.
void check_train_memory(const TrainFlags& f, const dit::DitConfig& cfg, const DataSource& data) {
  if (f.device != "cpu") return;
  const std::size_t replicas = f.replicas ? f.replicas : static_cast<std::size_t>(std::max(1, dit::CpuBackend::threads()));
  const double need = training_bytes(f, cfg, data, replicas, world().size);
  const double limit = memory_limit_bytes(f.memory_limit);
  detail::require(need <= limit, "training needs about ", gib(need), " (", cfg.parameter_count(), " parameters; --batch ",
                  f.batch, " videos of up to ", data.max_length, " frames on ", replicas, " replica(s)), above ",
                  f.memory_limit > 0 ? "--memory-limit " + shortest(f.memory_limit) + " GiB"
                                     : "the memory available (" + gib(limit) + "; set --memory-limit to change it)",
                  "; lower --batch, --replicas, --depth or --width");
}

int cmd_train(TrainFlags f, const CLI::App& cmd) {
  check_train_out(f);
  const DataSource data = open_data(f.data);
  const data::Video first = data.video(0);
  apply_recipe(f, cmd, data.kind, first);
  dit::DitConfig cfg = f.model == "S"   ? dit::DitConfig::small(first.channels, first.height, first.width, f.patch)
                       : f.model == "B" ? dit::DitConfig::base(first.channels, first.height, first.width, f.patch)
                                        : dit::DitConfig::tiny(first.channels, first.height, first.width, f.patch);
  if (f.depth) cfg.depth = f.depth;
  if (f.width) cfg.width_hidden = f.width;
  if (f.heads) cfg.heads = f.heads;
  cfg.rate_head = dit::rate_head_from_name(f.rate_head);
  cfg.length_aware = f.length_aware;
  cfg.length_conditioning = f.length_conditioning;
  cfg.rope_frame_dims = f.rope_frame_dims >= 0 ? static_cast<std::size_t>(f.rope_frame_dims)
                        : cfg.patch_tokens() == 1 ? cfg.head_dim() : 0;
  cfg.num_classes = f.classes;
  cfg.window = f.window;
  cfg.causal = f.method == "autoregressive" && f.ar_attention == "causal";
  cfg.validate();
  detail::require(f.flop_budget >= 0 && std::isfinite(f.flop_budget), "--flop-budget must be >= 0, got ", f.flop_budget);
  detail::require(f.flop_budget > 0 || f.steps > 0, "--steps must be >= 1");

  check_train_memory(f, cfg, data);

  TrainingSamplerOptions so;
  so.n_start = f.n_start;
  so.anchor_endpoints = !f.unanchored;
  so.shift = TimeShift(f.shift);
  detail::require(f.tasks.size() == 4, "--tasks needs 4 weights: unconditional,i2v,interpolation,continuation");
  so.tasks = TaskMixture{f.tasks[0], f.tasks[1], f.tasks[2], f.tasks[3]};
  so.seed = f.seed;
  BaselineTrainingOptions bo;
  bo.shift = so.shift;
  bo.tasks = so.tasks;
  bo.seed = f.seed;
  if (f.method == "full_sequence")
    return train_with(f, cfg, data, FullSequenceTrainingSampler<AnyTau>(bo, AnyTau::from_name(f.tau)));
  if (f.method == "autoregressive")
    return train_with(f, cfg, data, AutoregressiveTrainingSampler<AnyTau>(bo, AnyTau::from_name(f.tau)));
  return train_with(f, cfg, data, ExtendedTimeSampler<AnyKappa, AnyTau>(AnyKappa::from_name(f.kappa), so, AnyTau::from_name(f.tau)));
}

template <class Builder>
int train_with(const TrainFlags& f, const dit::DitConfig& cfg, const DataSource& data, Builder sampler) {
  return on_device(f.device, [&](auto backend, auto) {
    return train_on<decltype(backend)>(f, cfg, data, std::move(sampler));
  });
}

template <class Backend, class Builder>
int train_on(const TrainFlags& f, const dit::DitConfig& cfg, const DataSource& data, Builder sampler) {
  return with_communicator<Backend>([&](auto comm) { return train_across<Backend>(f, cfg, data, std::move(sampler), comm); });
}

/// Trains on `comm`'s ranks (one process: SingleProcess): each builds and runs its share of every
/// batch; rank 0 prints, writes the checkpoints and run.json, and decides when the time is up.
template <class Backend, class Builder, class Comm>
int train_across(const TrainFlags& f, const dit::DitConfig& cfg, const DataSource& data, Builder sampler, Comm comm) {
  constexpr bool device = !std::is_same_v<Backend, dit::CpuBackend>;
  const bool root = comm.rank() == 0;
  detail::require<ConfigError>(!device || f.replicas <= 1, "--replicas ", f.replicas,
                               ": a device runs the whole batch as one replica; leave --replicas out with --device cuda");
  dit::DiT<float, Backend> model(cfg, f.seed);
  train::TrainerOptions to;
  to.batch_videos = f.batch;
  const auto warmup = static_cast<std::int64_t>(f.warmup), total = static_cast<std::int64_t>(std::max(f.steps, f.warmup + 1));
  to.lr = f.decay_from > 0 ? train::LrSchedule::stable_decay(f.lr, warmup, static_cast<std::int64_t>(f.decay_from), total,
                                                              0.1 * f.lr)
          : f.cosine       ? train::LrSchedule::cosine(f.lr, warmup, total, 0.1 * f.lr)
                           : train::LrSchedule::constant(f.lr, warmup);
  to.adam.weight_decay = f.weight_decay;
  to.grad_clip = f.clip;
  to.ema_decay = f.ema;
  to.rate_loss_weight = f.rate_weight;
  to.class_dropout = f.class_dropout;
  to.seed = f.seed;
  to.replicas = device ? 1 : f.replicas ? f.replicas : static_cast<std::size_t>(std::max(1, dit::CpuBackend::threads()));
  // What earlier segments of this run left in the checkpoint: the smoothed loss, the log and the
  // segments (so run.json tells the whole run, even across kills and resumes).
  double smooth = 0;
  bool have_smooth = false;
  json log = json::array(), segments = json::array();
  std::optional<io::SafetensorsFile> resumed;  // read once: its metadata here, its state below
  if (!f.resume.empty()) {
    const auto& file = resumed.emplace(io::load_safetensors(f.resume));
    if (!file.verified() && root)
      std::fprintf(stderr, "flowception: note: %s carries no checksums (written by another tool or an older "
                           "version): its tensors were not verified\n", f.resume.c_str());
    const std::int64_t at = file.has_metadata("train.step") ? file.metadata_i64("train.step") : 0;
    if (f.flop_budget == 0 && at >= static_cast<std::int64_t>(f.steps)) {
      if (root)
        std::printf("%s is already at step %lld, at or past --steps %zu: nothing to train, nothing written\n",
                    f.resume.c_str(), static_cast<long long>(at), f.steps);
      return 0;
    }
    auto parsed = [&](const char* key) {
      if (!file.has_metadata(key)) return json();
      json j = json::parse(file.metadata_string(key), nullptr, /*allow_exceptions=*/false);
      detail::require<IoError>(j.is_array(), f.resume, ": metadata '", key, "' is not a JSON array");
      return j;
    };
    if (file.has_metadata("train.loss_smoothed")) {
      smooth = file.metadata_f64("train.loss_smoothed");
      have_smooth = true;
    }
    if (auto j = parsed("train.log"); j.is_array()) log = std::move(j);
    if (auto j = parsed("train.segments"); j.is_array()) segments = std::move(j);
  }
  train::Trainer<DataSource, Builder, Backend, Comm> trainer(model, data, sampler, to, comm);
  if (resumed) trainer.load_checkpoint(*resumed);
  resumed.reset();
  // Entries of the log beyond the resumed step belong to a segment that was killed after its
  // last checkpoint: they are redone now.
  for (std::size_t i = log.size(); i-- > 0;)
    if (log[i].value("step", std::int64_t{0}) > trainer.steps_done()) log.erase(i);

  if (root) fs::create_directories(f.out);
  const fs::path ckpt = fs::path(f.out) / "checkpoint.safetensors";
  json config = {{"data", f.data.data}, {"data_seed", f.data.seed}, {"model", cfg.name}, {"patch", cfg.patch},
                 {"depth", cfg.depth}, {"width", cfg.width_hidden}, {"heads", cfg.heads}, {"classes", cfg.num_classes},
                 {"window", cfg.window}, {"rate_head", dit::rate_head_name(cfg.rate_head)},
                 {"length_aware", cfg.length_aware}, {"length_conditioning", cfg.length_conditioning},
                 {"rope_frame_dims", cfg.rope_frame_dims},
                 {"tokens_per_frame", cfg.tokens_per_frame()}, {"parameters", model.parameter_count()}, {"steps", f.steps},
                 {"time_limit", f.time_limit}, {"batch", f.batch}, {"lr", f.lr}, {"warmup", f.warmup},
                 {"cosine", f.cosine}, {"decay_from", f.decay_from}, {"weight_decay", f.weight_decay}, {"clip", f.clip}, {"ema", f.ema},
                 {"rate_weight", f.rate_weight}, {"class_dropout", f.class_dropout}, {"seed", f.seed},
                 {"kappa", f.kappa}, {"tau", f.tau}, {"n_start", f.n_start}, {"anchored", !f.unanchored},
                 {"shift", f.shift}, {"tasks", f.tasks}, {"resume", f.resume}, {"threads", dit::CpuBackend::threads()}, {"world_size", comm.size()}, {"replicas", to.replicas}, {"device", f.device},
                 {"method", f.method}, {"causal", cfg.causal}, {"flop_budget", f.flop_budget}, {"memory_limit", f.memory_limit}};
  std::map<std::string, std::string> meta{{"train.config", config.dump()}};
  fc_cli::ProgressBar bar("train", static_cast<double>(f.steps), !f.quiet && root);
  double flops = 0, attention_flops = 0;
  std::size_t videos = 0;
  bool budget_reached = false;
  const std::int64_t first = trainer.steps_done();
  segments.push_back({{"from_step", first}, {"to_step", first}, {"seconds", 0.0}, {"resume", f.resume},
                      {"world_size", comm.size()}, {"threads", dit::CpuBackend::threads()}, {"device", f.device}});
  const auto start = std::chrono::steady_clock::now();
  // The checkpoint carries the run's bookkeeping too (metadata), so a resume continues it.
  auto save = [&] {
    segments.back()["to_step"] = trainer.steps_done();
    segments.back()["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    meta["train.loss_smoothed"] = io::format_metadata_double(smooth);
    meta["train.log"] = log.dump();
    meta["train.segments"] = segments.dump();
    trainer.save_checkpoint(ckpt, meta);  // rank 0 only
  };
  while (f.flop_budget > 0 || trainer.steps_done() < static_cast<std::int64_t>(f.steps)) {
    const auto s = trainer.step();
    smooth = have_smooth ? 0.98 * smooth + 0.02 * s.loss : s.loss;  // from the run's first loss
    have_smooth = true;
    flops += s.flops.total();
    attention_flops += s.flops.attention;
    videos += s.videos;
    const double so_far = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    char extra[160];
    std::snprintf(extra, sizeof extra, "loss %.4f (v %.3f r %.3f) lr %.2e  %.0f videos/s", smooth, s.velocity_loss,
                  s.rate_loss, s.lr, so_far > 0 ? static_cast<double>(videos) / so_far : 0.0);
    bar.update(static_cast<double>(s.step), extra);
    if (s.step % 10 == 0)
      log.push_back({{"step", s.step}, {"loss", s.loss}, {"velocity", s.velocity_loss}, {"rate", s.rate_loss},
                     {"grad_norm", s.grad_norm}, {"lr", s.lr}, {"frames", s.frames}, {"tokens", s.tokens}});
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (f.time_limit > 0 && comm.size() > 1)  // rank 0's clock decides for every rank
      comm.broadcast(std::as_writable_bytes(std::span<double>(&elapsed, 1)), 0);
    // The last step is saved once, after run.json (below), so that no kill can leave a final
    // checkpoint without the run.json that describes it.
    budget_reached = f.flop_budget > 0 && trainer.flops_done().total() >= f.flop_budget;  // the same sums on every rank
    const bool timed_out = f.time_limit > 0 && elapsed >= f.time_limit;
    const bool last = budget_reached || timed_out || (f.flop_budget == 0 && s.step >= static_cast<std::int64_t>(f.steps));
    if (!last && f.save_every && s.step % static_cast<std::int64_t>(f.save_every) == 0) save();
    if (timed_out && !budget_reached && !f.quiet && root)
      std::fprintf(stderr, "\ntime limit %.0f s reached after %lld steps\n", f.time_limit, static_cast<long long>(s.step));
    if (last) break;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  segments.back()["to_step"] = trainer.steps_done();
  segments.back()["seconds"] = seconds;
  if (root) {
    json run = {{"command", "train"}, {"config", config}, {"steps_done", trainer.steps_done()}, {"seconds", seconds},
                {"videos", videos}, {"videos_per_second", seconds > 0 ? static_cast<double>(videos) / seconds : 0.0},
                {"videos_seen_total", static_cast<std::uint64_t>(trainer.steps_done()) * f.batch},
                {"final_loss_smoothed", smooth}, {"train_flops", flops}, {"attention_flops", attention_flops},
                {"run_flops_total", trainer.flops_done().total()}, {"flop_budget_reached", budget_reached},
                {"checkpoint", ckpt.string()}, {"world_size", comm.size()}, {"segments", segments}, {"log", log}};
    const json device = device_record(f.device);  // (a named object: items() refers to it)
    for (auto& [k, v] : device.items()) run[k] = v;
    io::write_file_atomically(fs::path(f.out) / "run.json", run.dump(2));
  }
  save();
  if (!root) return 0;
  std::printf("trained to step %lld (%lld steps) in %.1f s (%.2f GFLOP/s, %.0f videos/s); loss %.4f; checkpoint %s\n",
              static_cast<long long>(trainer.steps_done()), static_cast<long long>(trainer.steps_done() - first), seconds,
              flops / seconds * 1e-9,
              seconds > 0 ? static_cast<double>(videos) / seconds : 0.0, smooth, ckpt.string().c_str());
  return 0;
}

}  // namespace
