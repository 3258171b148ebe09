// flowception export: the (EMA) weights alone, with the configuration.
#include "commands.hpp"

namespace fc_cli {

/// Writes the (EMA) weights alone with the configuration: a small file to sample from or ship.
int cmd_export(const std::string& checkpoint, const std::string& out, bool no_ema) {
  const auto model = train::load_model(checkpoint, !no_ema);
  auto meta = train::dit_config_metadata(model.config());
  meta["format"] = train::kCheckpointFormat;
  meta["export.source"] = checkpoint;
  meta["export.weights"] = no_ema ? "trained" : "ema";
  const auto src = io::load_safetensors(checkpoint);
  for (const char* key : {"train.config", "train.step", "train.method", "train.batch_videos", "train.flops_attention",
                          "train.flops_other"})
    if (src.has_metadata(key)) meta[key] = src.metadata_string(key);
  io::save_safetensors(out, train::parameter_tensors(model, model.parameters(), "model."), meta);
  std::printf("exported %zu parameters (%s weights) to %s\n", model.parameter_count(), no_ema ? "trained" : "EMA",
              out.c_str());
  return 0;
}

}  // namespace fc_cli
