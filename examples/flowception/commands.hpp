// The commands of the flowception program, one source each: cmd_train.cpp (train),
// cmd_generate.cpp (sample, i2v, interpolate), cmd_eval.cpp (eval), cmd_export.cpp (export);
// main.cpp registers their flags and dispatches. The headers they share (common.hpp,
// sampling.hpp, train_flags.hpp, world.hpp, progress.hpp) define their functions inline in
// namespace fc_cli.
#pragma once

#include "sampling.hpp"
#include "train_flags.hpp"

namespace fc_cli {

/// The conditioning of i2v and interpolate: a data video or a .npy file, and the key count.
struct ConditionFlags {
  DataFlags data;          ///< --data and friends, for --image-from-data / --keys-from-data
  std::size_t from_data = 0;  ///< the data video whose frames condition
  std::string file;        ///< or a .npy video
  std::size_t keys = 2;    ///< interpolate: key frames, first and last included
};

/// flowception train with the flags `given` (`cmd` tells which were given; the rest come from the
/// data set's recipe).
int cmd_train(const TrainFlags& given, const CLI::App& cmd);
/// flowception sample: unconditional (or class-conditional) videos.
int cmd_sample(const SampleFlags& f);
/// flowception i2v: frame 0 given, the rest grown by the model.
int cmd_i2v(const SampleFlags& f, const ConditionFlags& c);
/// flowception interpolate: evenly spaced key frames given.
int cmd_interpolate(const SampleFlags& f, const ConditionFlags& c);
/// flowception eval: sample, score against the data, rate calibration, report.html.
int cmd_eval(const SampleFlags& f, const DataFlags& df, std::size_t data_count, std::size_t calibration_samples);
/// flowception export: a checkpoint's EMA (or trained) weights alone.
int cmd_export(const std::string& checkpoint, const std::string& out, bool no_ema);

}  // namespace fc_cli
