// flowception: train, sample, image-to-video, interpolate and evaluate a DiT with the
// Flowception sampler (method.md §3–§6). Every knob of the core sampler is a flag; every
// command writes a run.json with the fully resolved configuration.
//
//   flowception train --data shapes --model tiny --time-limit 480 --out runs/shapes
//   flowception sample --checkpoint runs/shapes/checkpoint.safetensors --count 8 --out runs/shapes/sample
//   flowception i2v --checkpoint ... --image-from-data 3 --out ...
//   flowception interpolate --checkpoint ... --keys-from-data 3 --out ...
//   flowception eval --checkpoint ... --data shapes --count 64 --out runs/shapes/eval
//
// Each command lives in its own file here: cmd_train.hpp, cmd_generate.hpp (sample, i2v,
// interpolate), cmd_eval.hpp, cmd_export.hpp; sampling.hpp and common.hpp hold what they share.
// One translation unit: the files are included below.
#include "cmd_eval.hpp"
#include "cmd_export.hpp"
#include "cmd_generate.hpp"
#include "cmd_train.hpp"

#include <new>

int main(int argc, char** argv) {
  try {
    init_world(&argc, &argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flowception: error: %s\n", e.what());
    return 2;
  }
  CLI::App app{"flowception: train and sample video models with coupled flow matching and frame insertion"};
  app.require_subcommand(1);
  app.fallthrough();  // --threads may follow the command
  int threads = 0;
  app.add_option("--threads", threads,
                 "threads per process, i.e. per rank under mpirun (default: OMP_NUM_THREADS, else the cores divided "
                 "among the ranks on this machine)")
      ->check(CLI::Range(1, 4096));

  TrainFlags tf;
  auto* train = app.add_subcommand("train", "train a DiT on a data set");
  train->footer(kRecipeHelp);
  add_data_flags(train, tf.data);
  train->add_option("--out", tf.out, "output directory (checkpoint.safetensors, run.json)")->capture_default_str();
  train->add_option("--model", tf.model, "tiny | S | B (default: tiny)")->check(CLI::IsMember({"tiny", "S", "B"}));
  train->add_option("--patch", tf.patch, "patch size (default: per data set, see below)")->check(within<std::size_t>(1, dit::DitConfig::kMaxFrameSide));
  train->add_option("--depth", tf.depth, "override the depth")->check(within<std::size_t>(1, dit::DitConfig::kMaxDepth));
  train->add_option("--width", tf.width, "override the width")->check(within<std::size_t>(1, dit::DitConfig::kMaxWidth));
  train->add_option("--heads", tf.heads, "override the heads")->check(within<std::size_t>(1, dit::DitConfig::kMaxHeads));
  train->add_option("--rate-head", tf.rate_head,
                    "token: a rate token per frame | pooled: the mean of the frame's patch tokens (default: pooled)")
      ->check(CLI::IsMember({"token", "pooled"}));
  train->add_flag("--length-aware,!--no-length-aware", tf.length_aware,
                  "the rate head also sees the visible-frame count n and the frame's place among the n frames");
  train->add_flag("--length-conditioning,!--no-length-conditioning", tf.length_conditioning,
                  "every frame's conditioning also gets the embedding of n and of its place among the n frames");
  train->add_option("--rope-frame-dims", tf.rope_frame_dims,
                    "rotary dimensions of the frame axis per head (default: all of them when a frame is one patch, "
                    "else the 3-D split)")
      ->check(within<std::int64_t>(-1, dit::DitConfig::kMaxWidth));
  train->add_option("--classes", tf.classes, "class-conditional with this many classes (0: unconditional)")
      ->check(within<std::size_t>(0, dit::DitConfig::kMaxClasses));
  train->add_option("--window", tf.window, "attention window ±K frames (-1: all)")->capture_default_str()
      ->check(within<std::int64_t>(-1, dit::DitConfig::kMaxWindow));
  train->add_option("--steps", tf.steps, "optimisation steps (default: 100000; --time-limit usually ends a run)")
      ->check(within<std::size_t>(1, kMaxTrainSteps));
  train->add_option("--time-limit", tf.time_limit, "stop after this many seconds (0: none)")->capture_default_str()
      ->check(within(0.0, 1e9));
  train->add_option("--batch", tf.batch, "videos per step (default: per data set)")->check(within<std::size_t>(1, 1'000'000));
  train->add_option("--lr", tf.lr, "peak learning rate (default: 1e-3)")->check(within(1e-12, 10.0));
  train->add_option("--warmup", tf.warmup, "warm-up steps (default: 200)")->check(within<std::size_t>(0, kMaxTrainSteps));
  train->add_flag("--cosine", tf.cosine, "cosine decay to lr/10 at --steps");
  train->add_option("--decay-from", tf.decay_from,
                    "keep the learning rate until this step, then decay it (cosine) to lr/10 at --steps: a cooldown "
                    "that a resumed run can enter")
      ->check(within<std::size_t>(0, kMaxTrainSteps));
  train->add_option("--weight-decay", tf.weight_decay, "AdamW weight decay")->capture_default_str()->check(within(0.0, 100.0));
  train->add_option("--clip", tf.clip, "gradient-norm clip (0: none)")->capture_default_str()->check(within(0.0, 1e6));
  train->add_option("--ema", tf.ema, "EMA decay (default: 0.999)")->check(within(0.0, 0.999999));
  train->add_option("--rate-weight", tf.rate_weight, "weight of the rate loss")->capture_default_str()->check(within(0.0, 1e6));
  train->add_option("--class-dropout", tf.class_dropout, "probability of dropping the label (for CFG)")->capture_default_str()
      ->check(within(0.0, 1.0));
  train->add_option("--seed", tf.seed, "seed of initialisation and training draws")->capture_default_str()
      ->check(within<std::uint64_t>(0, UINT64_MAX));
  train->add_option("--kappa", tf.kappa, "insertion scheduler: linear | cubic | cosine | poly:P (default: poly:5)");
  train->add_option("--tau", tf.tau, "uniform | logit_normal[:M,S] | uniform_0_2")->capture_default_str();
  train->add_option("--n-start", tf.n_start, "start frames")->capture_default_str()->check(within<std::size_t>(1, 1'000'000));
  train->add_flag("--unanchored", tf.unanchored, "the last frame is not a start frame");
  train->add_option("--shift", tf.shift, "time shift")->capture_default_str()->check(within(1e-6, 1e6));
  train->add_option("--tasks", tf.tasks,
                    "task weights: unconditional,i2v,interpolation,continuation (default: per data set)")
      ->expected(4)->delimiter(',')->check(within(0.0, 1e6));
  train->add_option("--resume", tf.resume, "continue a run from its checkpoint")->check(CLI::ExistingFile);
  train->add_flag("--overwrite", tf.overwrite, "replace the checkpoint that --out already holds (a new run)");
  add_memory_flag(train, tf.memory_limit);
  train->add_option("--device", tf.device, device_help())->capture_default_str()->check(CLI::IsMember({"cpu", "cuda"}));
  train->add_option("--replicas", tf.replicas,
                    "model replicas, each on its own thread with a share of the batch (0: one per thread, "
                    "OMP_NUM_THREADS); the step is the same up to the order of sums")
      ->check(within<std::size_t>(0, 4096));
  train->add_option("--save-every", tf.save_every, "checkpoint every K steps (0: only at the end)")->capture_default_str()
      ->check(within<std::size_t>(0, kMaxTrainSteps));
  train->add_flag("--quiet", tf.quiet, "no progress bar");
  train->add_option("--method", tf.method, "flowception | full_sequence | autoregressive (the §7 baselines)")
      ->capture_default_str()->check(CLI::IsMember({"flowception", "full_sequence", "autoregressive"}));
  train->add_option("--ar-attention", tf.ar_attention, "autoregressive: causal | bidirectional attention over the context")
      ->capture_default_str()->check(CLI::IsMember({"causal", "bidirectional"}));
  train->add_option("--flop-budget", tf.flop_budget,
                    "train until this many FLOPs are spent (equal-compute comparisons; replaces --steps)")
      ->check(within(0.0, 1e30));

  SampleFlags sf, if_, pf, ef;
  auto* sample = app.add_subcommand("sample", "sample unconditional (or class-conditional) videos");
  add_sample_flags(sample, sf);

  ConditionFlags ic, pc;
  auto* i2v = app.add_subcommand("i2v", "image-to-video: the image is frame 0, the model grows the rest");
  add_sample_flags(i2v, if_);
  add_data_flags(i2v, ic.data);
  i2v->add_option("--image-from-data", ic.from_data, "use frame 0 of this data video")->capture_default_str()
      ->check(within<std::size_t>(0, 1'000'000'000'000));
  i2v->add_option("--image", ic.file, "or frame 0 of this .npy video")->check(CLI::ExistingFile);

  auto* interp = app.add_subcommand("interpolate", "interpolation between key frames");
  add_sample_flags(interp, pf);
  add_data_flags(interp, pc.data);
  interp->add_option("--keys-from-data", pc.from_data, "take evenly spaced key frames of this data video")->capture_default_str()
      ->check(within<std::size_t>(0, 1'000'000'000'000));
  interp->add_option("--keys", pc.file, "or of this .npy video")->check(CLI::ExistingFile);
  interp->add_option("--num-keys", pc.keys, "number of key frames (first and last included)")->capture_default_str()
      ->check(within<std::size_t>(2, 1'000'000));

  DataFlags edf;
  std::size_t eval_data = 2000;
  auto* eval = app.add_subcommand("eval", "sample and score against a toy data set; writes report.html");
  add_sample_flags(eval, ef);
  add_data_flags(eval, edf);
  eval->add_option("--data-videos", eval_data, "data videos for the length histogram")->capture_default_str()
      ->check(within<std::size_t>(1, 10'000'000));
  std::size_t calibration_samples = 400;
  eval->add_option("--calibration-samples", calibration_samples,
                   "training samples on which the model's rates are compared with the length oracle and the true "
                   "counts (0: off)")->capture_default_str()->check(within<std::size_t>(0, 10'000'000));

  std::string export_in, export_out;
  bool export_no_ema = false;
  auto* exp = app.add_subcommand("export", "write a checkpoint's EMA (or trained) weights alone, for sampling");
  exp->add_option("--checkpoint", export_in, "checkpoint written by 'train'")->required()->check(CLI::ExistingFile);
  exp->add_option("--out", export_out, "output .safetensors")->required();
  exp->add_flag("--no-ema", export_no_ema, "export the trained weights instead of the EMA weights");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help prints and exits 0; every usage error exits 2, like every other refused input.
    return app.exit(e) == 0 ? 0 : 2;
  }
  set_threads(threads);
  try {
    if (*train) return cmd_train(tf, *train);
    for (auto [cmd, flags] : {std::pair{sample, &sf}, std::pair{i2v, &if_}, std::pair{interp, &pf}, std::pair{eval, &ef}})
      if (*cmd) resolve_sampling_defaults(*flags);
    if (*sample) return cmd_sample(sf);
    if (*i2v) return cmd_i2v(if_, ic);
    if (*interp) return cmd_interpolate(pf, pc);
    if (*eval) return cmd_eval(ef, edf, eval_data, calibration_samples);
    if (*exp) return world().root() ? cmd_export(export_in, export_out, export_no_ema) : 0;  // one writer
  } catch (const std::bad_alloc&) {
    // The memory plans refuse what they can foresee; this is what they could not (another
    // process took the memory, or the data is larger than its first video suggested).
    std::fprintf(stderr, "flowception: error: out of memory (rank %d of %d): the system refused an allocation; "
                         "lower --batch or --count, or set a --memory-limit below what this machine has free\n",
                 world().rank, world().size);
    if (world().size > 1) abort_world(2);
    return 2;
  } catch (const std::exception& e) {
    if (world().size > 1) {
      // Every other rank may be waiting for this one in a collective: end the whole job.
      std::fprintf(stderr, "flowception: error (rank %d of %d): %s\n", world().rank, world().size, e.what());
      std::fflush(stderr);
      abort_world(2);
    }
    std::fprintf(stderr, "flowception: error: %s\n", e.what());
    return 2;
  }
  return 1;
}
