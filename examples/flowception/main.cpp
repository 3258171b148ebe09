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
// Each command lives in its own source here: cmd_train.cpp, cmd_generate.cpp (sample, i2v,
// interpolate), cmd_eval.cpp, cmd_export.cpp; commands.hpp declares them, and the headers they
// share are sampling.hpp, train_flags.hpp (train's settings, one table) and common.hpp.
#include "commands.hpp"

#include <new>

using namespace fc_cli;

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
  add_train_flags(train, tf);

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
