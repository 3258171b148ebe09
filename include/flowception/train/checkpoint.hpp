// Model checkpoints in safetensors. Tensor names: "model.<parameter>" for the weights (the
// names of DiT::parameter_table(), e.g. "model.blocks.0.attn.qkv.weight"), "ema.<parameter>"
// for the EMA weights, "optimizer.m.<parameter>", "optimizer.v.<parameter>", "optimizer.step"
// for AdamW. Metadata: "format", the DiT configuration as "dit.<field>", and whatever the
// writer adds (the trainer adds "train.*" and "rng.*").
#pragma once

#include <map>
#include <set>
#include <span>
#include <type_traits>
#include <utility>
#include <string>
#include <vector>

#include "flowception/core/errors.hpp"
#include "flowception/dit/model.hpp"
#include "flowception/io/safetensors.hpp"

namespace flowception::train {

/// The value of a checkpoint's metadata entry "format"; dit_config_from_metadata refuses any other.
inline constexpr const char* kCheckpointFormat = "flowception-checkpoint-1";

/// The configuration `c` as checkpoint metadata. Each field goes under `dit.<field>`: integers in
/// decimal, rope_base exact, flags as "0" or "1", the rate head by name (read back by
/// dit_config_from_metadata).
inline std::map<std::string, std::string> dit_config_metadata(const dit::DitConfig& c) {
  return {{"dit.name", c.name},
          {"dit.channels", std::to_string(c.channels)},
          {"dit.height", std::to_string(c.height)},
          {"dit.width", std::to_string(c.width)},
          {"dit.patch", std::to_string(c.patch)},
          {"dit.depth", std::to_string(c.depth)},
          {"dit.width_hidden", std::to_string(c.width_hidden)},
          {"dit.heads", std::to_string(c.heads)},
          {"dit.mlp_ratio", std::to_string(c.mlp_ratio)},
          {"dit.frequency_dim", std::to_string(c.frequency_dim)},
          {"dit.num_classes", std::to_string(c.num_classes)},
          {"dit.window", std::to_string(c.window)},
          {"dit.causal", c.causal ? "1" : "0"},
          {"dit.rope_base", io::format_metadata_double(c.rope_base)},
          {"dit.rope_frame_dims", std::to_string(c.rope_frame_dims)},
          {"dit.rate_head", dit::rate_head_name(c.rate_head)},
          {"dit.length_aware", c.length_aware ? "1" : "0"},
          {"dit.length_conditioning", c.length_conditioning ? "1" : "0"}};
}

/// The DiT configuration a checkpoint's metadata holds. IoError when "format" is not
/// kCheckpointFormat, an entry is missing or malformed, or the configuration is invalid. Entries
/// that older checkpoints lack (causal, rope_frame_dims, rate_head, length_aware,
/// length_conditioning) take the values of the model those checkpoints were written for.
inline dit::DitConfig dit_config_from_metadata(const io::SafetensorsFile& f) {
  detail::require<IoError>(f.has_metadata("format") && f.metadata_string("format") == kCheckpointFormat, f.source(),
                           " is not a flowception checkpoint (metadata 'format' is not '", kCheckpointFormat, "')");
  dit::DitConfig c;
  c.name = f.metadata_string("dit.name");
  auto u = [&](const char* k) { return static_cast<std::size_t>(f.metadata_u64(k)); };
  c.channels = u("dit.channels");
  c.height = u("dit.height");
  c.width = u("dit.width");
  c.patch = u("dit.patch");
  c.depth = u("dit.depth");
  c.width_hidden = u("dit.width_hidden");
  c.heads = u("dit.heads");
  c.mlp_ratio = u("dit.mlp_ratio");
  c.frequency_dim = u("dit.frequency_dim");
  c.num_classes = u("dit.num_classes");
  c.window = f.metadata_i64("dit.window");
  // Checkpoints written before the causal flag existed are bidirectional.
  c.causal = f.has_metadata("dit.causal") && f.metadata_u64("dit.causal") != 0;
  c.rope_base = f.metadata_f64("dit.rope_base");
  // Checkpoints written before these options existed have a rate token, no length embedding
  // and the 3-D rotary split: absent keys mean exactly that model.
  if (f.has_metadata("dit.rope_frame_dims")) c.rope_frame_dims = u("dit.rope_frame_dims");
  try {
    if (f.has_metadata("dit.rate_head")) c.rate_head = dit::rate_head_from_name(f.metadata_string("dit.rate_head"));
    for (auto [key, field] : {std::pair{"dit.length_aware", &c.length_aware},
                              std::pair{"dit.length_conditioning", &c.length_conditioning}}) {
      if (!f.has_metadata(key)) continue;
      const std::string v = f.metadata_string(key);
      detail::require(v == "0" || v == "1", key, " must be 0 or 1, got '", v, "'");
      *field = v == "1";
    }
    c.validate();
  } catch (const ConfigError& e) {
    detail::fail<IoError>(f.source(), " holds an invalid DiT configuration: ", e.what());
  }
  return c;
}

/// Checks, before any model is built, that the "model." tensors of `f` hold at least as many
/// values as the DiT of `cfg` has parameters; a checkpoint declaring a huge model (a corrupt or
/// hostile `dit.depth`) is refused here rather than allocated.
inline void check_declared_size(const io::SafetensorsFile& f, const dit::DitConfig& cfg) {
  std::uint64_t held = 0;
  for (const auto& n : f.names())
    if (n.starts_with("model.")) held += static_cast<std::uint64_t>(f.view(n).numel());
  // More values than parameters is left to check_no_unknown_tensors, which names the extra one.
  detail::require<IoError>(held >= cfg.parameter_count(), f.source(), ": its DiT configuration (dit.*) declares ",
                           cfg.parameter_count(), " parameters but its 'model.' tensors hold ", held, " values");
}

/// The names of every tensor a checkpoint of `model` may hold: the weights ("model."), the EMA
/// weights and count ("ema."), AdamW's moments and step ("optimizer.").
template <class T, class Backend>
std::set<std::string> checkpoint_tensor_names(const dit::DiT<T, Backend>& model) {
  std::set<std::string> names{"ema.updates", "optimizer.step"};
  for (const auto& p : model.parameter_table())
    for (const char* prefix : {"model.", "ema.", "optimizer.m.", "optimizer.v."}) names.insert(prefix + p.name);
  return names;
}

/// IoError naming the first tensor of `f` that no checkpoint of `model` holds (an extra tensor
/// means another model, another tool's file or a corruption: loading it silently would hide that).
template <class T, class Backend>
void check_no_unknown_tensors(const io::SafetensorsFile& f, const dit::DiT<T, Backend>& model) {
  const auto known = checkpoint_tensor_names(model);
  std::size_t unknown = 0;
  std::string first;
  for (const auto& n : f.names())
    if (!known.count(n) && unknown++ == 0) first = n;
  detail::require<IoError>(unknown == 0, f.source(), " holds ", unknown, " tensor", unknown == 1 ? "" : "s",
                           " that no checkpoint of this DiT has, first '", first, "'");
}

/// The weights of `model` as tensors named prefix + parameter name, with their shapes.
template <class T, class Backend>
std::vector<io::Tensor> parameter_tensors(const dit::DiT<T, Backend>& model, std::type_identity_t<std::span<const T>> values,
                                          const std::string& prefix) {
  detail::require<ShapeError>(values.size() == model.parameter_buffer_size(), "parameter_tensors: expected ",
                              model.parameter_buffer_size(), " values laid out as the model's flat buffer, got ",
                              values.size());
  std::vector<io::Tensor> out;
  for (const auto& p : model.parameter_table()) {
    std::vector<std::int64_t> shape(p.shape.begin(), p.shape.end());
    out.push_back(io::make_tensor<T>(prefix + p.name, shape,
                                     std::span<const T>(values.data() + p.offset, p.size)));
  }
  return out;
}

/// Reads prefix + parameter name for every parameter of `model` into `values` (checked shapes;
/// `flat` for tensors stored as one dimension, as the EMA state is).
template <class Backend>
void read_parameters(const io::SafetensorsFile& f, const dit::DiT<float, Backend>& model, const std::string& prefix,
                     std::vector<float>& values, bool flat = false) {
  std::vector<float> out(model.parameter_buffer_size());
  for (const auto& p : model.parameter_table()) {
    std::vector<std::int64_t> shape(p.shape.begin(), p.shape.end());
    if (flat) shape = {static_cast<std::int64_t>(p.size)};
    const auto v = io::read_f32(f, prefix + p.name, shape);
    std::copy(v.begin(), v.end(), out.begin() + static_cast<std::ptrdiff_t>(p.offset));
  }
  values = std::move(out);
}

/// A DiT from a checkpoint: its configuration and either the trained or the EMA weights, on any
/// backend (one checkpoint format: weights trained on a GPU sample on the CPU and back).
template <class Backend = dit::CpuBackend>
dit::DiT<float, Backend> load_model(const io::SafetensorsFile& f, bool use_ema = true) {
  const auto cfg = dit_config_from_metadata(f);
  check_declared_size(f, cfg);
  dit::DiT<float, Backend> model(cfg);
  check_no_unknown_tensors(f, model);
  const bool have_ema = f.contains("ema." + model.parameter_table().front().name);
  std::vector<float> values;
  if (use_ema && have_ema)
    read_parameters(f, model, "ema.", values, /*flat=*/true);
  else
    read_parameters(f, model, "model.", values);
  model.set_parameters(values);
  return model;
}

/// The same, from the checkpoint file at `path`.
template <class Backend = dit::CpuBackend>
dit::DiT<float, Backend> load_model(const std::filesystem::path& path, bool use_ema = true) {
  return load_model<Backend>(io::load_safetensors(path), use_ema);
}

}  // namespace flowception::train
