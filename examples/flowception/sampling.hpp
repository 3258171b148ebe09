// The sampling flags and the sampler run shared by sample, i2v, interpolate and eval, and the
// files every sampling command writes.
#pragma once

#include "common.hpp"

#include <flowception/distributed/gather_samples.hpp>

namespace fc_cli {

// ---- Sampling flags ---------------------------------------------------------------------------

struct SampleFlags {
  std::string checkpoint;
  std::string out = "out";
  std::size_t count = 8;
  std::size_t steps = 100;
  std::string grid = "end_dense:3";
  std::uint64_t seed = 0;
  std::string kappa;  // empty: the checkpoint's training κ (linear when it records none)
  std::string solver = "heun";
  std::string final_step = "euler";
  double shift = 1.0;
  std::optional<double> shift_flag;  // not given: the checkpoint's training shift (1 when it records none)
  std::string jump = "poisson";
  std::string rule = "learned";
  std::size_t target_length = 0;
  bool unanchored = false;
  double cfg = 1.0, insertion_guidance = 1.0;
  std::int64_t class_label = kNoCondition;
  std::size_t n_start = 0;  // 0: the checkpoint's training n_start (3 when it records none)
  std::size_t max_frames = 64;
  std::string cap = "truncate";
  std::int64_t window = -2;  // -2: keep the checkpoint's
  bool no_ema = false;
  bool quiet = false;
  std::size_t gif_scale = 0;
  std::size_t length = 0;  // baselines: frames per video (0: drawn from the data's lengths where known)
  std::string device = "cpu";
  std::size_t batch = 0;     // videos sampled together (0: as many as the memory limit allows)
  double memory_limit = 0;   // GiB (0: the memory available)
};

inline void add_sample_flags(CLI::App* app, SampleFlags& f) {
  app->add_option("--checkpoint", f.checkpoint, "checkpoint written by 'train'")->required()->check(CLI::ExistingFile);
  app->add_option("--out", f.out, "output directory")->capture_default_str();
  app->add_option("--count", f.count, "videos to sample")->capture_default_str()->check(within<std::size_t>(1, 1'000'000'000));
  app->add_option("--steps", f.steps, "N: insertion-phase steps (the run takes up to 2N)")->capture_default_str()
      ->check(within<std::size_t>(1, TimeGrid::kMaxSteps));
  app->add_option("--grid", f.grid, "uniform | end_dense:P")->capture_default_str();
  app->add_option("--seed", f.seed, "sampling seed")->capture_default_str()->check(within<std::uint64_t>(0, UINT64_MAX));
  app->add_option("--kappa", f.kappa, "linear | cubic | cosine | poly:P (default: the one the checkpoint was trained with)");
  app->add_option("--solver", f.solver, "euler | midpoint | heun | rk4")->capture_default_str()
      ->check(CLI::IsMember({"euler", "midpoint", "heun", "rk4"}));
  app->add_option("--final-step", f.final_step,
                  "a frame's last step (ending at t = 1): euler (default; the model is never evaluated at t = 1) | "
                  "full (the solver's own stages)")
      ->capture_default_str()->check(CLI::IsMember({"euler", "full"}));
  app->add_option("--shift", f.shift_flag, "time shift s > 0 (1: none; default: the checkpoint's training shift)")
      ->check(within(1e-6, 1e6));
  app->add_option("--jump", f.jump,
                  "poisson | bernoulli (at most one per gap and step) | binomial (Binomial(ceil λ, λq/ceil λ): exact when "
                  "the model is certain of a gap's count)")
      ->capture_default_str()->check(CLI::IsMember({"poisson", "bernoulli", "binomial"}));
  app->add_option("--rule", f.rule, "learned | random | hierarchical | left_to_right")->capture_default_str()
      ->check(CLI::IsMember({"learned", "random", "hierarchical", "left_to_right"}));
  app->add_option("--target-length", f.target_length, "final length for prescribed insertion rules")
      ->check(within<std::size_t>(0, kMaxVideoFrames));
  app->add_flag("--unanchored", f.unanchored,
                "the last start frame does not end the video (default: as the checkpoint was trained)");
  app->add_option("--cfg", f.cfg, "velocity guidance w (1: off)")->capture_default_str()->check(within(-1e3, 1e3));
  app->add_option("--insertion-guidance", f.insertion_guidance, "insertion guidance g (1: off)")->capture_default_str()
      ->check(within(-1e3, 1e3));
  app->add_option("--class", f.class_label, "class label for class-conditional models")
      ->check(within<std::int64_t>(0, dit::DitConfig::kMaxClasses - 1));
  app->add_option("--n-start", f.n_start, "start frames (default: the checkpoint's training n_start)")
      ->check(within<std::size_t>(1, kMaxVideoFrames));
  app->add_option("--device", f.device, device_help())->capture_default_str()->check(CLI::IsMember({"cpu", "cuda"}));
  app->add_option("--max-frames", f.max_frames, "length cap per video")->capture_default_str()
      ->check(within<std::size_t>(1, kMaxVideoFrames));
  app->add_option("--cap", f.cap, "error | truncate: what the cap does")->capture_default_str()->check(CLI::IsMember({"error", "truncate"}));
  app->add_option("--window", f.window, "attention window ±K frames (-1: all; default: the checkpoint's)")
      ->check(within<std::int64_t>(-1, dit::DitConfig::kMaxWindow));
  app->add_flag("--no-ema", f.no_ema, "use the trained weights instead of the EMA weights");
  app->add_flag("--quiet", f.quiet, "no progress bar");
  app->add_option("--gif-scale", f.gif_scale, "GIF upscaling (0: automatic)")->check(within<std::size_t>(0, 64));
  app->add_option("--batch", f.batch,
                  "videos sampled together; more are sampled in chunks of this many, with the same results "
                  "(default: as many as --memory-limit allows)")
      ->check(within<std::size_t>(0, 1'000'000));
  add_memory_flag(app, f.memory_limit);
  app->add_option("--length", f.length,
                  "baseline checkpoints (full_sequence, autoregressive): frames per video; eval draws them from "
                  "the data's lengths when not given")
      ->check(within<std::size_t>(0, kMaxVideoFrames));
}

/// The checkpoint at `path`, read and verified once per process: every sampling step that needs
/// its metadata or its weights (defaults, the memory plan, the model) shares this copy.
inline const io::SafetensorsFile& checkpoint_file(const std::string& path) {
  static std::map<std::string, io::SafetensorsFile> files;
  auto it = files.find(path);
  if (it == files.end()) it = files.emplace(path, io::load_safetensors(path)).first;
  return it->second;
}

/// Sampling settings that must match training default to what the checkpoint was trained with
/// (its train.config): κ, n_start, anchoring and the time shift. Flags given win.
inline void resolve_sampling_defaults(SampleFlags& f) {
  check_out_folder(f.out);  // a file in the way, or a folder we cannot write, before any sampling
  const auto& file = checkpoint_file(f.checkpoint);
  if (!file.verified())
    std::fprintf(stderr, "flowception: note: %s carries no checksums (written by another tool or an older "
                         "version): its tensors were not verified\n", f.checkpoint.c_str());
  if (f.gif_scale > 0 && file.has_metadata("dit.height") && file.has_metadata("dit.width")) {
    const std::uint64_t side = std::max(file.metadata_u64("dit.height"), file.metadata_u64("dit.width"));
    detail::require(f.gif_scale * side <= 65535, "--gif-scale ", f.gif_scale, " makes GIF frames of ", f.gif_scale * side,
                    " pixels a side from ", side, "-pixel frames; GIF allows at most 65535");
  }
  if (f.class_label != kNoCondition) {
    const std::uint64_t classes = file.has_metadata("dit.num_classes") ? file.metadata_u64("dit.num_classes") : 0;
    detail::require(classes > 0, "--class ", f.class_label, ": the model of ", f.checkpoint,
                    " is unconditional (dit.num_classes = 0); leave --class out");
    detail::require(static_cast<std::uint64_t>(f.class_label) < classes, "--class ", f.class_label, " is not in [0, ",
                    classes - 1, "]: the model of ", f.checkpoint, " has ", classes, " classes");
  }
  json cfg = json::object();
  if (file.has_metadata("train.config")) {
    cfg = json::parse(file.metadata_string("train.config"), nullptr, /*allow_exceptions=*/false);
    detail::require(cfg.is_object(), f.checkpoint, ": metadata 'train.config' is not a JSON object");
  }
  auto get = [&](const char* key, auto fallback) {
    using V = decltype(fallback);
    if (!cfg.contains(key)) return fallback;
    try {
      return cfg.at(key).template get<V>();
    } catch (const json::exception&) {
      detail::fail<IoError>(f.checkpoint, ": train.config field '", key, "' has the wrong type");
    }
  };
  if (f.kappa.empty()) f.kappa = get("kappa", std::string("linear"));
  if (f.n_start == 0) {
    f.n_start = get("n_start", std::size_t{3});
    detail::require<IoError>(f.n_start >= 1 && f.n_start <= f.max_frames, f.checkpoint, ": train.config field 'n_start' = ",
                             f.n_start, " is not in [1, --max-frames ", f.max_frames, "]");
  }
  detail::require(f.n_start <= f.max_frames, "--n-start ", f.n_start, " is above --max-frames ", f.max_frames);
  f.shift = f.shift_flag ? *f.shift_flag : get("shift", 1.0);
  TimeShift{f.shift};  // validates: finite and > 0
  if (!f.unanchored) f.unanchored = !get("anchored", true);
}

/// Calls f(solver) for --solver and --final-step (the library's names; a typo is a ConfigError
/// listing them).
template <class F>
void with_solver(const std::string& name, const std::string& final_step, F&& f) {
  with_solver_named(name, final_step_from_name(final_step), std::forward<F>(f));
}

inline json sample_flags_json(const SampleFlags& f) {
  return {{"checkpoint", f.checkpoint}, {"device", f.device}, {"count", f.count}, {"steps", f.steps}, {"grid", f.grid}, {"seed", f.seed},
          {"kappa", f.kappa}, {"solver", f.solver}, {"final_step", f.final_step}, {"shift", f.shift}, {"jump", f.jump}, {"rule", f.rule},
          {"target_length", f.target_length}, {"anchored", !f.unanchored}, {"cfg", f.cfg},
          {"insertion_guidance", f.insertion_guidance}, {"class", f.class_label}, {"n_start", f.n_start},
          {"max_frames", f.max_frames}, {"cap", f.cap}, {"window", f.window}, {"ema", !f.no_ema}, {"length", f.length},
          {"batch", f.batch}, {"memory_limit", f.memory_limit}};
}

// ---- Outputs ----------------------------------------------------------------------------------

struct Generated {
  std::vector<data::Video> videos;  // pixels in [0, 1] (clamped for display only)
  SampleResult<float> raw;
  std::vector<std::size_t> index;   // raw.videos[k] is prompt index[k] (this rank's share, before the gather)
  std::size_t channels = 0, height = 0, width = 0;
  double seconds = 0;
  std::string method = "flowception";
  std::size_t chunk = 0;       // videos sampled together (the plan's chunk)
  double memory_estimate = 0;  // the plan's estimated peak, bytes
};

/// The training method recorded in a checkpoint (files from before baselines existed: flowception).
inline std::string checkpoint_method(const std::string& path) {
  const auto& f = checkpoint_file(path);
  return f.has_metadata("train.method") ? f.metadata_string("train.method") : "flowception";
}

/// Baselines cannot choose their length: --length, else a draw from the data's lengths keyed by
/// (seed, video), else an error that says so.
inline std::vector<std::size_t> baseline_lengths(const SampleFlags& f, std::size_t count, const std::vector<std::size_t>* data_lengths,
                                          const std::string& method) {
  std::vector<std::size_t> out(count, f.length);
  if (f.length > 0) return out;
  detail::require(data_lengths && !data_lengths->empty(), "the ", method,
                  " baseline cannot choose the length of its videos: give --length");
  constexpr std::uint64_t kLengthStreamTag = 0x6c656e67ULL;  // "leng": the length drawn for video v
  for (std::size_t v = 0; v < count; ++v) {
    random::Stream rng(f.seed, random::derive_stream(kLengthStreamTag, v));
    out[v] = (*data_lengths)[static_cast<std::size_t>(rng.below(data_lengths->size()))];
  }
  return out;
}

/// The checkpoint's model on `Backend` (its EMA weights unless --no-ema), rebuilt with --window
/// when one is given.
template <class Backend>
dit::DiT<float, Backend> load_sampling_model(const SampleFlags& f) {
  auto model = train::load_model<Backend>(checkpoint_file(f.checkpoint), !f.no_ema);
  if (f.window != -2) {
    auto cfg = model.config();
    cfg.window = f.window;
    cfg.validate();
    dit::DiT<float, Backend> windowed(cfg);
    windowed.set_parameters(model.host_parameters());
    model = std::move(windowed);
  }
  return model;
}

/// Samples the prompts at positions `slice` of the run's video order (all of them in one
/// process) with `model` (from load_sampling_model) on `Backend`, frames in `Algebra`'s memory;
/// `prompts` are in the model's units. The order is the prompts' for the baselines and the learned
/// rule, and grouped by target length for the prescribed rules; each video draws its noise by its
/// position, so any slice reproduces the bits of one whole run.
template <class Backend, class Algebra>
Generated run_sampler_on(const SampleFlags& f, dit::DiT<float, Backend>& model, const std::vector<Prompt<float>>& prompts,
                         const std::vector<std::size_t>* data_lengths, Algebra algebra, distributed::Share slice) {
  const auto& cfg = model.config();
  SamplerOptions o{TimeGrid::from_name(f.grid, f.steps)};
  o.frame_dim = cfg.frame_dim();
  o.shift = TimeShift(f.shift);
  o.jump = jump_mode_from_name(f.jump);
  o.rule = insertion_rule_from_name(f.rule);
  o.target_length = f.target_length;
  o.anchor_endpoints = !f.unanchored;
  o.velocity_guidance = f.cfg;
  o.insertion_guidance = f.insertion_guidance;
  o.max_frames = f.max_frames;
  o.cap_policy = cap_policy_from_name(f.cap);
  o.seed = f.seed;
  Generated g;
  g.channels = cfg.channels;
  g.height = cfg.height;
  g.width = cfg.width;
  g.method = checkpoint_method(f.checkpoint);
  const auto t0 = std::chrono::steady_clock::now();
  if (g.method != "flowception") {
    detail::require(g.method == "full_sequence" || g.method == "autoregressive", f.checkpoint,
                    " was trained with an unknown method '", g.method, "'");
    const bool ar = g.method == "autoregressive";
    const auto lengths = baseline_lengths(f, prompts.size(), data_lengths, g.method);
    // This rank's videos: prompts slice.begin .. slice.end − 1, numbered from slice.begin. Keep
    // each prompt's context frames (e.g. the image of image-to-video); the baseline adds the
    // generated frames itself (autoregressive) or as noise frames up to the length.
    std::vector<Prompt<float>> base(slice.size());
    for (std::size_t v = slice.begin; v < slice.end; ++v) {
      auto& b = base[v - slice.begin];
      b.condition = prompts[v].condition;
      for (const auto& fr : prompts[v].frames) {
        if (fr.kind == FrameKind::generated) continue;
        detail::require(fr.kind == FrameKind::active_context || b.frames.empty(), "the ", g.method,
                        " baseline takes only a prefix of given frames (image-to-video); interpolation needs Flowception");
        b.frames.push_back(fr);
      }
      detail::require(lengths[v] > b.frames.size(), "--length ", lengths[v], " leaves no frame to generate after ",
                      b.frames.size(), " given frames");
      if (!ar) b.frames.resize(lengths[v]);
    }
    const std::vector<std::size_t> my_lengths(lengths.begin() + static_cast<std::ptrdiff_t>(slice.begin),
                                              lengths.begin() + static_cast<std::ptrdiff_t>(slice.end));
    for (std::size_t v = slice.begin; v < slice.end; ++v) g.index.push_back(v);
    BaselineSamplerOptions bo{TimeGrid::from_name(f.grid, f.steps)};
    bo.frame_dim = cfg.frame_dim();
    bo.shift = TimeShift(f.shift);
    bo.velocity_guidance = f.cfg;
    bo.max_frames = f.max_frames;
    bo.seed = f.seed;
    bo.video_index_offset = slice.begin;
    std::size_t total_steps = f.steps;
    if (ar) {
      std::size_t rounds = 0;
      for (std::size_t v = 0; v < base.size(); ++v) rounds = std::max(rounds, my_lengths[v] - base[v].frames.size());
      total_steps *= rounds;
    }
    fc_cli::ProgressBar bar("sample", static_cast<double>(total_steps), !f.quiet && world().root());
    with_solver(f.solver, f.final_step, [&](auto solver) {
      BaselineSampler sampler(model, ar ? BaselineMethod::autoregressive : BaselineMethod::full_sequence, solver, bo, base,
                              ar ? my_lengths : std::vector<std::size_t>{}, algebra);
      while (!sampler.done())
        sampler.step([&](const StepReport& r) { bar.update(static_cast<double>(r.step + 1), g.method); });
      bar.finish(static_cast<double>(sampler.step_index()));
      g.raw = sampler.take_result();
    });
  } else {
    // Prescribed insertion rules need a target length; without --target-length each video draws
    // one from the data's lengths, and videos of one target are sampled together.
    std::vector<std::size_t> targets(prompts.size(), f.target_length);
    if (o.rule != InsertionRule::learned && f.target_length == 0) {
      detail::require(data_lengths && !data_lengths->empty(), "insertion rule '", f.rule,
                      "' needs --target-length (or, in eval, the data's lengths)");
      SampleFlags drawn = f;
      drawn.length = 0;
      targets = baseline_lengths(drawn, prompts.size(), data_lengths, "prescribed rule");
    }
    std::map<std::size_t, std::vector<std::size_t>> groups;
    for (std::size_t v = 0; v < prompts.size(); ++v) groups[targets[v]].push_back(v);
    fc_cli::ProgressBar bar("sample", static_cast<double>(2 * f.steps * groups.size()), !f.quiet && world().root());
    std::size_t done_steps = 0, first = 0;
    for (const auto& [target, all_members] : groups) {
      // Videos are numbered in group order; this rank samples positions slice.begin .. slice.end − 1.
      const std::size_t lo = std::max(first, slice.begin), hi = std::min(first + all_members.size(), slice.end);
      const std::size_t group_first = first;
      first += all_members.size();
      if (lo >= hi) continue;
      SamplerOptions go = o;
      go.target_length = target;
      go.video_index_offset = lo;
      const std::vector<std::size_t> members(all_members.begin() + static_cast<std::ptrdiff_t>(lo - group_first),
                                             all_members.begin() + static_cast<std::ptrdiff_t>(hi - group_first));
      std::vector<Prompt<float>> part;
      for (std::size_t v : members) part.push_back(prompts[v]);
      with_solver(f.solver, f.final_step, [&](auto solver) {
        CoupledSampler sampler(model, AnyKappa::from_name(f.kappa), solver, go, part, algebra);
        while (!sampler.done()) {
          sampler.step([&](const StepReport& r) {
            std::size_t frames = 0;
            for (const auto& v : r.videos) frames += v.trace.length;
            bar.update(static_cast<double>(done_steps + r.step + 1), std::to_string(frames) + " frames in flight");
          });
        }
        done_steps += sampler.step_index();
        auto r = sampler.take_result();
        for (std::size_t k = 0; k < members.size(); ++k) {
          g.raw.videos.push_back(std::move(r.videos[k]));
          g.index.push_back(members[k]);
        }
        g.raw.model_calls += r.model_calls;
        g.raw.steps += r.steps;
        g.raw.flops += r.flops;
      });
    }
    bar.finish(static_cast<double>(done_steps));
  }
  g.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return g;
}

/// How a sampling command fits its memory limit: videos per chunk and the estimated peak.
struct SamplePlan {
  std::size_t chunk = 1;
  double bytes = 0;
};

/// Estimated peak bytes of sampling `videos` videos in chunks of `chunk`: the weights (twice with
/// --window, which rebuilds the model), the DiT workspace for a chunk whose videos all reach
/// --max-frames (twice the frames under guidance, which also runs the unconditional model), the
/// solver's and the sampler's frame buffers, and the results of all the videos (raw, pixels, and
/// the gathered copy).
inline double sampling_bytes(const SampleFlags& f, const dit::DitConfig& cfg, std::size_t videos, std::size_t chunk) {
  double stages = 0;
  with_solver(f.solver, f.final_step, [&](const auto& solver) { stages = std::decay_t<decltype(solver)>::stages; });
  const double guided = f.cfg != 1.0 || f.insertion_guidance != 1.0 ? 2 : 1;
  const std::size_t per_video = std::max(f.max_frames, f.length);
  const double frame = static_cast<double>(cfg.frame_dim()) * sizeof(float);
  const double frames = static_cast<double>(chunk) * static_cast<double>(per_video);
  return static_cast<double>(cfg.parameter_buffer_elements()) * sizeof(float) * (f.window != -2 ? 2 : 1) +
         static_cast<double>(cfg.workspace_bytes(static_cast<std::size_t>(frames * guided), chunk * static_cast<std::size_t>(guided), false)) +
         frames * frame * (stages + 6) + static_cast<double>(videos) * static_cast<double>(per_video) * frame * 3;
}

/// The chunk size: --batch when given (refused when it does not fit), else the largest that fits
/// --memory-limit; an error before any work when not even one video fits.
inline SamplePlan plan_sampling(const SampleFlags& f, std::size_t videos) {
  const auto& file = checkpoint_file(f.checkpoint);
  const auto cfg = train::dit_config_from_metadata(file);
  double held = 0;  // the checkpoint itself stays in memory (checkpoint_file)
  for (const auto& name : file.names()) held += static_cast<double>(file.view(name).bytes.size());
  const double limit = memory_limit_bytes(f.memory_limit);
  const std::size_t most = std::max<std::size_t>(1, videos);
  auto need = [&](std::size_t chunk) { return held + sampling_bytes(f, cfg, videos, chunk); };
  const std::string why = detail::cat(" (the checkpoint, the model's weights, its workspace and the frames of ", "videos of up to --max-frames ",
                                      std::max(f.max_frames, f.length), " frames, and the results of ", videos, " videos)");
  const std::string limit_text = f.memory_limit > 0 ? "--memory-limit " + shortest(f.memory_limit) + " GiB"
                                                    : "the memory available (" + gib(limit) + "; set --memory-limit to change it)";
  if (f.batch > 0) {
    const std::size_t chunk = std::min(f.batch, most);
    detail::require(need(chunk) <= limit, "--batch ", f.batch, ": sampling needs about ", gib(need(chunk)), why,
                    ", above ", limit_text, "; lower --batch, --count or --max-frames");
    return {chunk, need(chunk)};
  }
  detail::require(need(1) <= limit, "sampling needs about ", gib(need(1)), " even one video at a time", why, ", above ",
                  limit_text, "; lower --count or --max-frames");
  std::size_t lo = 1, hi = most;  // the largest chunk that fits
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo + 1) / 2;
    if (need(mid) <= limit) lo = mid;
    else hi = mid - 1;
  }
  return {lo, need(lo)};
}

/// Samples `prompts` with the checkpoint's model and the flags; frames back in pixel units, in
/// prompt order. Under mpirun each rank samples its share of the videos and rank 0 gathers them
/// (the same bits as one process); the other ranks get no videos and write nothing.
inline Generated run_sampler(const SampleFlags& f, std::vector<Prompt<float>> prompts,
                      const std::vector<std::size_t>* data_lengths = nullptr) {
  return on_device(f.device, [&](auto backend, auto algebra) {
    using Backend = decltype(backend);
    return with_communicator<Backend>([&](auto comm) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::size_t n = prompts.size();
      // This rank's share, sampled in chunks of plan.chunk videos: each video draws its noise by
      // its position, so chunks give the same bits as one batch (tested).
      const distributed::Share share = distributed::share_of(n, comm.rank(), comm.size());
      const SamplePlan plan = plan_sampling(f, share.size());
      const train::PixelScaling px;
      for (auto& p : prompts)
        for (auto& fr : p.frames)
          for (auto& x : fr.values) x = px.to_model(x);
      auto model = load_sampling_model<Backend>(f);
      Generated g;
      for (std::size_t b = share.begin; b < share.end; b += plan.chunk) {
        Generated part = run_sampler_on<Backend>(f, model, prompts, data_lengths, algebra,
                                                 distributed::Share{b, std::min(share.end, b + plan.chunk)});
        if (b == share.begin) {
          g = std::move(part);
          continue;
        }
        for (auto& v : part.raw.videos) g.raw.videos.push_back(std::move(v));
        g.index.insert(g.index.end(), part.index.begin(), part.index.end());
        g.raw.model_calls += part.raw.model_calls;
        g.raw.steps += part.raw.steps;
        g.raw.flops += part.raw.flops;
      }
      g.chunk = plan.chunk;
      g.memory_estimate = plan.bytes;
      g.raw = distributed::gather_sample_results(comm, g.index, std::move(g.raw), n);
      g.index.clear();
      g.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      for (const auto& v : g.raw.videos) {
        data::Video out{g.channels, g.height, g.width, v.frames, -1};
        for (auto& x : out.frames) x = px.to_pixel(x);
        g.videos.push_back(std::move(out));
      }
      return g;
    });
  });
}

inline io::VideoView view_of(const data::Video& v) {
  return io::VideoView{std::span<const float>(v.frames), v.length(), v.channels, v.height, v.width};
}

inline data::Video clamped(const data::Video& v) {
  data::Video c = v;
  for (auto& x : c.frames) x = std::clamp(x, 0.0f, 1.0f);
  return c;
}

/// Writes every promised file of a sampling command: per video the frames (.npy, T×H×W×C
/// float32), the insertion steps and the trace (.npy), a GIF; a contact sheet; run.json.
inline json write_outputs(const fs::path& dir, const Generated& g, const SampleFlags& f, const std::string& command,
                   json extra = json::object()) {
  fs::create_directories(dir / "videos");
  fs::create_directories(dir / "gifs");
  std::vector<data::Video> shown;
  json lengths = json::array(), nfe = json::array(), refused = json::array();
  for (std::size_t i = 0; i < g.videos.size(); ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "video_%03zu", i);
    const auto& raw = g.raw.videos[i];
    io::save_npy_video(dir / "videos" / (std::string(name) + ".npy"), clamped(g.videos[i]));
    std::vector<std::int64_t> steps(raw.insertion_step.begin(), raw.insertion_step.end());
    io::save_npy(dir / "videos" / (std::string(name) + "_insertion_step.npy"), steps, {steps.size()});
    std::vector<double> trace;  // rows: step, s, length, expected final length, inserted, refused, nfe
    for (const auto& t : raw.trace)
      for (double x : {static_cast<double>(t.step), t.s, static_cast<double>(t.length), t.expected_final_length,
                       static_cast<double>(t.inserted), static_cast<double>(t.refused), static_cast<double>(t.nfe)})
        trace.push_back(x);
    io::save_npy(dir / "videos" / (std::string(name) + "_trace.npy"), trace.data(), {raw.trace.size(), 7});
    shown.push_back(clamped(g.videos[i]));
    io::GifOptions go;
    go.scale = f.gif_scale;
    io::write_gif(dir / "gifs" / (std::string(name) + ".gif"), view_of(shown.back()), go);
    lengths.push_back(raw.length());
    nfe.push_back(raw.nfe);
    refused.push_back(raw.refused_insertions);
  }
  std::vector<io::VideoView> views;
  for (const auto& v : shown) views.push_back(view_of(v));
  io::write_contact_sheet_png(dir / "contact_sheet.png", std::span<const io::VideoView>(views));
  json run = {{"command", command},
              {"config", sample_flags_json(f)},
              {"method", g.method},
              {"flops", {{"attention", g.raw.flops.attention}, {"other", g.raw.flops.other}, {"total", g.raw.flops.total()}}},
              {"model_calls", g.raw.model_calls},
              {"steps", g.raw.steps},
              {"lengths", lengths},
              {"nfe", nfe},
              {"refused_insertions", refused},
              {"seconds", g.seconds},
              {"videos_per_chunk", g.chunk},
              {"memory_estimate_bytes", g.memory_estimate},
              {"files", {"videos/video_XXX.npy (T×H×W×C float32)", "videos/video_XXX_insertion_step.npy (int64)",
                         "videos/video_XXX_trace.npy (float64 [steps × 7]: step, s, length, expected final length, "
                         "inserted, refused, nfe)", "gifs/video_XXX.gif", "contact_sheet.png"}}};
  for (auto& [k, v] : extra.items()) run[k] = v;
  const json device = device_record(f.device);  // (a named object: items() refers to it)
  for (auto& [k, v] : device.items()) run[k] = v;
  io::write_file_atomically(dir / "run.json", run.dump(2));
  return run;
}

}  // namespace fc_cli
