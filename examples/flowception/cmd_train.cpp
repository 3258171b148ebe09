// flowception train: the training loop, checkpoints and run.json (the settings and their
// defaults are train_flags.hpp's table).
#include "commands.hpp"
#include "train_flags.hpp"

namespace fc_cli {

template <class Builder>
int train_with(const TrainFlags& f, const dit::DitConfig& cfg, const DataSource& data, Builder builder);
template <class Backend, class Builder>
int train_on(const TrainFlags& f, const dit::DitConfig& cfg, const DataSource& data, Builder builder);
template <class Backend, class Builder, class Comm>
int train_across(const TrainFlags& f, const dit::DitConfig& cfg, const DataSource& data, Builder builder, Comm comm);

/// Checks --out before any work: a folder that can be written (check_out_folder), and not one
/// holding another run's checkpoint unless --resume or --overwrite says what to do with it.
void check_train_out(const TrainFlags& f) {
  check_out_folder(f.out);
  const fs::path out(f.out);
  std::error_code ec;
  const fs::path ckpt = out / "checkpoint.safetensors";
  if (fs::exists(ckpt, ec) && f.resume.empty() && !f.overwrite)
    detail::fail<ConfigError>("--out ", out, " already holds a checkpoint (", ckpt.string(),
                                  "); continue it with --resume ", ckpt.string(), ", or pass --overwrite to replace it");
}

/// Estimated peak bytes of a training process: the weights, gradients, AdamW moments and EMA
/// (5 copies), each further replica's weights and gradients, every replica's DiT workspace with
/// backward for its share of the batch with videos of the data's longest length, the step's
/// training samples (built whole on every rank), and the data held in memory.
double training_bytes(const TrainFlags& f, const dit::DitConfig& cfg, const DataSource& data, std::size_t replicas, int ranks) {
  const double P = static_cast<double>(cfg.parameter_buffer_elements()) * sizeof(float);
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

int cmd_train(const TrainFlags& given, const CLI::App& cmd) {
  check_train_out(given);
  const DataSource data = open_data(given.data);
  const data::Video first = data.video(0);
  TrainFlags f = resolve_train_settings(given, cmd, data.kind, first);
  // A schedule that decays needs to know where the run ends: a FLOP budget alone does not say.
  detail::require(f.flop_budget == 0 || cmd.count("--steps") > 0 || (!f.cosine && f.decay_from == 0),
                  "--flop-budget with ", f.cosine ? "--cosine" : "--decay-from", " needs --steps too: the learning "
                  "rate decays to lr/10 at --steps, which a FLOP budget alone does not give");
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
int train_with(const TrainFlags& f, const dit::DitConfig& cfg, const DataSource& data, Builder builder) {
  return on_device(f.device, [&](auto backend, auto) {
    return train_on<decltype(backend)>(f, cfg, data, std::move(builder));
  });
}

template <class Backend, class Builder>
int train_on(const TrainFlags& f, const dit::DitConfig& cfg, const DataSource& data, Builder builder) {
  return with_communicator<Backend>([&](auto comm) { return train_across<Backend>(f, cfg, data, std::move(builder), comm); });
}

/// The trainer's options from the settings: batch, learning-rate schedule (constant, cosine, or
/// constant then cosine from --decay-from), AdamW, clipping, EMA, losses, seed, replicas.
inline train::TrainerOptions trainer_options(const TrainFlags& f, bool device) {
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
  return to;
}

/// What earlier segments of a run left in its checkpoint: the smoothed loss, the log and the
/// segments (so run.json tells the whole run, even across kills and resumes).
struct ResumeRecord {
  double smooth = 0;                  ///< the smoothed loss
  bool have_smooth = false;           ///< whether the checkpoint had one
  json log = json::array();           ///< a line every 10 steps
  json segments = json::array();      ///< one entry per process run of the training
};

/// The bookkeeping of the checkpoint `file` that --resume names.
inline ResumeRecord read_resume_record(const io::SafetensorsFile& file, const std::string& path) {
  ResumeRecord r;
  auto parsed = [&](const char* key) {
    if (!file.has_metadata(key)) return json();
    json j = json::parse(file.metadata_string(key), nullptr, /*allow_exceptions=*/false);
    detail::require<IoError>(j.is_array(), path, ": metadata '", key, "' is not a JSON array");
    return j;
  };
  if (file.has_metadata("train.loss_smoothed")) {
    r.smooth = file.metadata_f64("train.loss_smoothed");
    r.have_smooth = true;
  }
  if (auto j = parsed("train.log"); j.is_array()) r.log = std::move(j);
  if (auto j = parsed("train.segments"); j.is_array()) r.segments = std::move(j);
  return r;
}

/// run.json's and the checkpoint's record of the settings: every setting, resolved (the model's
/// sizes as built, the replicas used), and what the run adds (tokens per frame, parameters,
/// threads, ranks).
inline json train_config_json(const TrainFlags& f, const dit::DitConfig& cfg, std::size_t parameters,
                              std::size_t replicas, int world_size) {
  TrainFlags resolved = f;
  resolved.model = cfg.name;
  resolved.patch = cfg.patch;
  resolved.depth = cfg.depth;
  resolved.width = cfg.width_hidden;
  resolved.heads = cfg.heads;
  resolved.rope_frame_dims = static_cast<std::int64_t>(cfg.rope_frame_dims);
  resolved.replicas = replicas;
  json config = train_settings_json(resolved);
  config["anchored"] = !f.unanchored;
  config["tokens_per_frame"] = cfg.tokens_per_frame();
  config["parameters"] = parameters;
  config["threads"] = dit::CpuBackend::threads();
  config["world_size"] = world_size;
  config["causal"] = cfg.causal;
  return config;
}

/// Trains on `comm`'s ranks (one process: SingleProcess): each builds and runs its share of every
/// batch; rank 0 prints, writes the checkpoints and run.json, and decides when the time is up.
template <class Backend, class Builder, class Comm>
int train_across(const TrainFlags& f, const dit::DitConfig& cfg, const DataSource& data, Builder builder, Comm comm) {
  constexpr bool device = !std::is_same_v<Backend, dit::CpuBackend>;
  const bool root = comm.rank() == 0;
  detail::require<ConfigError>(!device || f.replicas <= 1, "--replicas ", f.replicas,
                               ": a device runs the whole batch as one replica; leave --replicas out with --device cuda");
  dit::DiT<float, Backend> model(cfg, f.seed);
  const train::TrainerOptions to = trainer_options(f, device);
  ResumeRecord record;
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
    record = read_resume_record(file, f.resume);
  }
  double smooth = record.smooth;
  bool have_smooth = record.have_smooth;
  json& log = record.log;
  json& segments = record.segments;
  train::Trainer<DataSource, Builder, Backend, Comm> trainer(model, data, builder, to, comm);
  if (resumed) trainer.load_checkpoint(*resumed);
  resumed.reset();
  // Entries of the log beyond the resumed step belong to a segment that was killed after its
  // last checkpoint: they are redone now.
  for (std::size_t i = log.size(); i-- > 0;)
    if (log[i].value("step", std::int64_t{0}) > trainer.steps_done()) log.erase(i);

  if (root) fs::create_directories(f.out);
  const fs::path ckpt = fs::path(f.out) / "checkpoint.safetensors";
  const json config = train_config_json(f, cfg, model.parameter_count(), to.replicas, comm.size());
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

}  // namespace fc_cli
