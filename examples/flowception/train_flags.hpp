// The settings of `flowception train`, as one table: visit_train_settings() lists every setting
// with its flag, its help and its checks. From it the flags are registered (add_train_flags), the
// data set's recipe fills every setting the command line leaves out (resolve_train_settings), the
// help prints the defaults, and run.json records the resolved settings (train_settings_json).
// The defaults live in TrainFlags and recipe_for, nowhere else.
#pragma once

#include "common.hpp"

namespace fc_cli {

/// Every setting of a training run. The values are the defaults of every data set; recipe_for()
/// changes the few that differ per data set (patch, batch, tasks).
struct TrainFlags {
  DataFlags data;                      ///< --data, --labels, --data-seed, --data-size
  std::string out = "runs/train";      ///< output folder
  std::string model = "tiny";          ///< tiny | S | B
  std::size_t patch = 4;               ///< patch size (per data set)
  std::size_t depth = 0;               ///< 0: the model size's depth
  std::size_t width = 0;               ///< 0: the model size's width
  std::size_t heads = 0;               ///< 0: the model size's heads
  std::string rate_head = "pooled";    ///< token | pooled
  bool length_aware = true;            ///< the rate head sees (n, i, n − 1 − i)
  bool length_conditioning = true;     ///< every frame's conditioning sees them
  std::int64_t rope_frame_dims = -1;   ///< -1: every dimension on a 1×1 patch grid, else the 3-D split
  std::size_t classes = 0;             ///< 0: unconditional
  std::int64_t window = -1;            ///< attention window ±K frames (-1: all)
  std::size_t steps = 100000;          ///< optimisation steps (--flop-budget may end a run first)
  double time_limit = 0;               ///< seconds (0: none)
  std::size_t batch = 32;              ///< videos per step (per data set)
  double lr = 1e-3;                    ///< peak learning rate
  std::size_t warmup = 200;            ///< warm-up steps
  bool cosine = false;                 ///< cosine decay to lr/10 at --steps
  std::size_t decay_from = 0;          ///< > 0: constant until this step, then a cosine to lr/10 at --steps
  double weight_decay = 0.0;           ///< AdamW weight decay
  double clip = 1.0;                   ///< gradient-norm clip (0: none)
  double ema = 0.999;                  ///< EMA decay
  double rate_weight = 1.0;            ///< weight of the rate loss
  double class_dropout = 0.1;          ///< probability of dropping a label (CFG)
  std::uint64_t seed = 0;              ///< initialisation and training draws
  std::string kappa = "poly:5";        ///< insertion scheduler
  std::string tau = "uniform";         ///< τ law
  std::size_t n_start = 3;             ///< start frames
  bool unanchored = false;             ///< the last frame is not a start frame
  double shift = 1.0;                  ///< time shift
  std::vector<double> tasks{1, 0, 0, 0};  ///< task weights (per data set)
  std::string resume;                  ///< checkpoint to continue
  bool overwrite = false;              ///< replace the checkpoint --out already holds
  std::size_t save_every = 200;        ///< checkpoint every K steps (0: only at the end)
  std::size_t replicas = 0;            ///< 0: one per thread
  std::string device = "cpu";          ///< cpu | cuda
  bool quiet = false;                  ///< no progress bar
  std::string method = "flowception";  ///< flowception | full_sequence | autoregressive
  std::string ar_attention = "causal";  ///< causal | bidirectional (autoregressive)
  double flop_budget = 0;              ///< stop once the run has spent this many FLOPs (0: no budget)
  double memory_limit = 0;             ///< GiB (0: the memory available)
};

/// The recipe of a data set (kind "ring", "shapes" or "npy"; `first` is its first video): the
/// defaults of TrainFlags with what differs per data set. ring and shapes are the recipes of the
/// reference checkpoints in assets/ (assets/README.md has the measurements behind them).
inline TrainFlags recipe_for(const std::string& kind, const data::Video& first) {
  TrainFlags r;
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

namespace detail_train_flags {
/// Does nothing to an option (for settings without checks).
inline void no_checks(CLI::Option*) {}
/// The run.json key of a flag: "--data-seed" → "data_seed" (the first long name).
inline std::string key_of(const char* flags) {
  std::string s(flags);
  s = s.substr(0, s.find(','));
  if (s.rfind("--", 0) == 0) s = s.substr(2);
  for (auto& c : s) c = c == '-' ? '_' : c;
  return s;
}
}  // namespace detail_train_flags

/// Calls v(flags, help, access, checks) for every setting of train, in the order of --help:
/// `flags` as CLI11 reads them, `access(TrainFlags&)` the setting's field, `checks(CLI::Option*)`
/// its stated range or accepted names. The one table of train's flags.
template <class V>
void visit_train_settings(V&& v) {
  using detail_train_flags::no_checks;
  const auto size = [](std::size_t lo, std::size_t hi) {
    return [lo, hi](CLI::Option* o) { o->check(within<std::size_t>(lo, hi)); };
  };
  const auto real = [](double lo, double hi) { return [lo, hi](CLI::Option* o) { o->check(within(lo, hi)); }; };
  const auto one_of = [](std::vector<std::string> names) {
    return [names](CLI::Option* o) { o->check(CLI::IsMember(names)); };
  };
  using F = TrainFlags;
  v("--data", "shapes (16×16 frames) | shapes:N (N×N frames) | ring | npy:DIR (a directory of T×H×W×C .npy videos)",
    [](F& f) -> auto& { return f.data.data; }, no_checks);
  v("--labels", "for npy data: a text file of 'file label' lines", [](F& f) -> auto& { return f.data.labels; }, no_checks);
  v("--data-seed", "seed of the generated data sets", [](F& f) -> auto& { return f.data.seed; },
    [](CLI::Option* o) { o->check(within<std::uint64_t>(0, UINT64_MAX)); });
  v("--data-size", "distinct generated videos to draw from", [](F& f) -> auto& { return f.data.size; },
    size(1, 1'000'000'000'000));
  v("--out", "output directory (checkpoint.safetensors, run.json)", [](F& f) -> auto& { return f.out; }, no_checks);
  v("--model", "tiny | S | B", [](F& f) -> auto& { return f.model; }, one_of({"tiny", "S", "B"}));
  v("--patch", "patch size", [](F& f) -> auto& { return f.patch; }, size(1, dit::DitConfig::kMaxFrameSide));
  v("--depth", "override the depth (0: the model size's)", [](F& f) -> auto& { return f.depth; },
    size(0, dit::DitConfig::kMaxDepth));
  v("--width", "override the width (0: the model size's)", [](F& f) -> auto& { return f.width; },
    size(0, dit::DitConfig::kMaxWidth));
  v("--heads", "override the heads (0: the model size's)", [](F& f) -> auto& { return f.heads; },
    size(0, dit::DitConfig::kMaxHeads));
  v("--rate-head", "token: a rate token per frame | pooled: the mean of the frame's patch tokens",
    [](F& f) -> auto& { return f.rate_head; }, one_of({"token", "pooled"}));
  v("--length-aware,!--no-length-aware",
    "the rate head also sees the visible-frame count n and the frame's place among the n frames",
    [](F& f) -> auto& { return f.length_aware; }, no_checks);
  v("--length-conditioning,!--no-length-conditioning",
    "every frame's conditioning also gets the embedding of n and of its place among the n frames",
    [](F& f) -> auto& { return f.length_conditioning; }, no_checks);
  v("--rope-frame-dims",
    "rotary dimensions of the frame axis per head (-1: all of them when a frame is one patch, else the 3-D split)",
    [](F& f) -> auto& { return f.rope_frame_dims; },
    [](CLI::Option* o) { o->check(within<std::int64_t>(-1, dit::DitConfig::kMaxWidth)); });
  v("--classes", "class-conditional with this many classes (0: unconditional)", [](F& f) -> auto& { return f.classes; },
    size(0, dit::DitConfig::kMaxClasses));
  v("--window", "attention window ±K frames (-1: all)", [](F& f) -> auto& { return f.window; },
    [](CLI::Option* o) { o->check(within<std::int64_t>(-1, dit::DitConfig::kMaxWindow)); });
  v("--steps", "optimisation steps (--time-limit or --flop-budget usually ends a run first)",
    [](F& f) -> auto& { return f.steps; }, size(1, kMaxTrainSteps));
  v("--time-limit", "stop after this many seconds (0: none)", [](F& f) -> auto& { return f.time_limit; }, real(0.0, 1e9));
  v("--batch", "videos per step", [](F& f) -> auto& { return f.batch; }, size(1, 1'000'000));
  v("--lr", "peak learning rate", [](F& f) -> auto& { return f.lr; }, real(1e-12, 10.0));
  v("--warmup", "warm-up steps", [](F& f) -> auto& { return f.warmup; }, size(0, kMaxTrainSteps));
  v("--cosine", "cosine decay to lr/10 at --steps", [](F& f) -> auto& { return f.cosine; }, no_checks);
  v("--decay-from",
    "keep the learning rate until this step, then decay it (cosine) to lr/10 at --steps: a cooldown that a resumed "
    "run can enter (0: none)",
    [](F& f) -> auto& { return f.decay_from; }, size(0, kMaxTrainSteps));
  v("--weight-decay", "AdamW weight decay", [](F& f) -> auto& { return f.weight_decay; }, real(0.0, 100.0));
  v("--clip", "gradient-norm clip (0: none)", [](F& f) -> auto& { return f.clip; }, real(0.0, 1e6));
  v("--ema", "EMA decay", [](F& f) -> auto& { return f.ema; }, real(0.0, 0.999999));
  v("--rate-weight", "weight of the rate loss", [](F& f) -> auto& { return f.rate_weight; }, real(0.0, 1e6));
  v("--class-dropout", "probability of dropping the label (for CFG)", [](F& f) -> auto& { return f.class_dropout; },
    real(0.0, 1.0));
  v("--seed", "seed of initialisation and training draws", [](F& f) -> auto& { return f.seed; },
    [](CLI::Option* o) { o->check(within<std::uint64_t>(0, UINT64_MAX)); });
  v("--kappa", "insertion scheduler: linear | cubic | cosine | poly:P", [](F& f) -> auto& { return f.kappa; }, no_checks);
  v("--tau", "uniform | logit_normal[:M,S] | uniform_0_2", [](F& f) -> auto& { return f.tau; }, no_checks);
  v("--n-start", "start frames", [](F& f) -> auto& { return f.n_start; }, size(1, 1'000'000));
  v("--unanchored", "the last frame is not a start frame", [](F& f) -> auto& { return f.unanchored; }, no_checks);
  v("--shift", "time shift", [](F& f) -> auto& { return f.shift; }, real(1e-6, 1e6));
  v("--tasks", "task weights: unconditional,i2v,interpolation,continuation",
    [](F& f) -> auto& { return f.tasks; },
    [](CLI::Option* o) { o->expected(4)->delimiter(',')->check(within(0.0, 1e6)); });
  v("--resume", "continue a run from its checkpoint", [](F& f) -> auto& { return f.resume; },
    [](CLI::Option* o) { o->check(CLI::ExistingFile); });
  v("--overwrite", "replace the checkpoint that --out already holds (a new run)", [](F& f) -> auto& { return f.overwrite; },
    no_checks);
  v("--memory-limit",
    "GiB this command may use; it refuses a configuration whose estimated peak is above it, before any work (0: the "
    "memory available now)",
    [](F& f) -> auto& { return f.memory_limit; }, real(0.0, 1e6));
  v("--device", device_help(), [](F& f) -> auto& { return f.device; }, one_of({"cpu", "cuda"}));
  v("--replicas",
    "model replicas, each on its own thread with a share of the batch (0: one per thread, OMP_NUM_THREADS); the step "
    "is the same up to the order of sums",
    [](F& f) -> auto& { return f.replicas; }, size(0, 4096));
  v("--save-every", "checkpoint every K steps (0: only at the end)", [](F& f) -> auto& { return f.save_every; },
    size(0, kMaxTrainSteps));
  v("--quiet", "no progress bar", [](F& f) -> auto& { return f.quiet; }, no_checks);
  v("--method", "flowception | full_sequence | autoregressive (the §7 baselines)", [](F& f) -> auto& { return f.method; },
    one_of({"flowception", "full_sequence", "autoregressive"}));
  v("--ar-attention", "autoregressive: causal | bidirectional attention over the context",
    [](F& f) -> auto& { return f.ar_attention; }, one_of({"causal", "bidirectional"}));
  v("--flop-budget", "train until this many FLOPs are spent (equal-compute comparisons; 0: none)",
    [](F& f) -> auto& { return f.flop_budget; }, real(0.0, 1e30));
}

/// A setting's value as text, for the help ("a,b" for lists).
template <class T>
std::string setting_text(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) return v.empty() ? "\"\"" : v;
  else if constexpr (std::is_same_v<T, bool>) return v ? "on" : "off";
  else if constexpr (std::is_same_v<T, std::vector<double>>) {
    std::string s;
    for (double x : v) {
      if (!s.empty()) s += ',';
      s += shortest(x);
    }
    return s;
  } else return shortest(v);
}

/// Registers every train setting on `cmd`, storing what the command line gives into `given`; each
/// help ends with the default (TrainFlags), or with "per data set" and the recipes in the footer.
inline void add_train_flags(CLI::App* cmd, TrainFlags& given) {
  const TrainFlags defaults;
  visit_train_settings([&](const char* flags, const std::string& help, auto access, auto checks) {
    auto& field = access(given);
    using T = std::decay_t<decltype(field)>;
    const std::string key = detail_train_flags::key_of(flags);
    const bool per_data_set = key == "patch" || key == "batch" || key == "tasks";
    const std::string text =
        help + (per_data_set ? std::string(" (default: per data set, see below)")
                             : " (default: " + setting_text(access(const_cast<TrainFlags&>(defaults))) + ")");
    CLI::Option* o = nullptr;
    if constexpr (std::is_same_v<T, bool>) o = cmd->add_flag(flags, field, text);
    else o = cmd->add_option(flags, field, text);
    checks(o);
  });
  std::string footer = "Defaults per data set:";
  const data::Video frame16{3, 16, 16, {}, -1};
  for (const char* kind : {"ring", "shapes", "npy"}) {
    const TrainFlags r = recipe_for(kind, frame16);
    footer += detail::cat(" ", kind, ": --patch ", std::string(kind) == "npy" ? std::string("4|2|1 (what divides the frame)")
                                                                                : std::to_string(r.patch),
                          ", --batch ", r.batch, ", --tasks ", setting_text(r.tasks), ";");
  }
  cmd->footer(footer);
}

/// The settings of a run: the data set's recipe, with every setting the command line gave (`cmd`
/// tells which) taken from `given`.
inline TrainFlags resolve_train_settings(const TrainFlags& given, const CLI::App& cmd, const std::string& kind,
                                         const data::Video& first) {
  TrainFlags f = recipe_for(kind, first);
  visit_train_settings([&](const char* flags, const std::string&, auto access, auto) {
    std::string name(flags);
    name = name.substr(0, name.find(','));
    if (cmd.count(name) > 0) access(f) = access(const_cast<TrainFlags&>(given));
  });
  return f;
}

/// Every setting of `f` as JSON, keyed by its flag's long name ("--data-seed" → "data_seed").
inline json train_settings_json(const TrainFlags& f) {
  json j = json::object();
  visit_train_settings([&](const char* flags, const std::string&, auto access, auto) {
    j[detail_train_flags::key_of(flags)] = access(const_cast<TrainFlags&>(f));
  });
  return j;
}

}  // namespace fc_cli
