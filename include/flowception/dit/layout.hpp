// The DiT's memory, declared once (as llm.c declares ParameterTensors and ActivationTensors):
//   parameter_layout(cfg)   every parameter tensor: name, shape, initialisation, offset in the flat
//                           buffer (each on a kBufferAlignment boundary), and its index by name
//                           (ParameterIndex); DitConfig::parameter_count() sums it.
//   Workspace<T, Buffer>    every activation, gradient scratch and index table of a forward and
//                           backward pass, each with its shape; visit_workspace() lists them with
//                           their element counts for a batch, and is the one list that DiT resizes
//                           from, that DiT::workspace_bytes() measures and that
//                           DitConfig::workspace_bytes() estimates.
// Adding a buffer is one field and one line of visit_workspace; adding a parameter is one line of
// parameter_layout and one field of ParameterIndex.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "flowception/dit/config.hpp"

namespace flowception::dit {

/// Every buffer of the DiT (weights, gradients, moments, activations, scratch) and every tensor
/// inside the flat parameter buffers starts on a boundary of this many bytes: what cuBLASLt's
/// heuristic assumes by default (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*_BYTES) and what cudaMalloc
/// guarantees on a GPU.
inline constexpr std::size_t kBufferAlignment = 256;

/// One named parameter tensor inside the flat parameter buffer.
struct ParameterInfo {
  std::string name;                ///< Tensor name, as in checkpoints (e.g. `blocks.0.attn.qkv.weight`; `docs/dit.md`).
  std::vector<std::size_t> shape;  ///< Shape; [in, out] for linear weights (row-major, y = x·W + b).
  /// First element in the flat buffer: a multiple of kBufferAlignment bytes, so every tensor of
  /// the parameter, gradient, moment and EMA buffers starts on that boundary (padding between
  /// tensors is zero and belongs to no tensor; checkpoints store the tensors unpadded).
  std::size_t offset = 0;
  std::size_t size = 0;    ///< Element count (product of shape).
  /// Initialisation (§6): Xavier uniform (`xavier`), N(0, 0.02²) (`normal002`) or zeros (`zero`).
  enum class Init { xavier, normal002, zero } init = Init::zero;  ///< How init_parameters() draws this tensor.
};

/// The index in the parameter table of a tensor that the configuration leaves out.
inline constexpr std::size_t kNoTensor = static_cast<std::size_t>(-1);

/// Indices into the parameter table of one block's tensors (Hd: width, M: MLP width).
struct BlockParameters {
  std::size_t adaln_w = kNoTensor;  ///< [Hd, 6·Hd] adaLN-Zero modulation (the six slices of Modulation)
  std::size_t adaln_b = kNoTensor;  ///< [6·Hd]
  std::size_t qkv_w = kNoTensor;    ///< [Hd, 3·Hd] queries, keys, values
  std::size_t qkv_b = kNoTensor;    ///< [3·Hd]
  std::size_t proj_w = kNoTensor;   ///< [Hd, Hd] attention output projection
  std::size_t proj_b = kNoTensor;   ///< [Hd]
  std::size_t fc1_w = kNoTensor;    ///< [Hd, M] first MLP layer (GELU follows)
  std::size_t fc1_b = kNoTensor;    ///< [M]
  std::size_t fc2_w = kNoTensor;    ///< [M, Hd] second MLP layer
  std::size_t fc2_b = kNoTensor;    ///< [Hd]
};

/// Indices into the parameter table of every tensor, in table order (P: patch values, FD: the
/// time embedding's size, LF: length features, K: classes); kNoTensor where an option is off.
struct ParameterIndex {
  std::size_t patch_w = kNoTensor;        ///< [P, Hd] patch embedding
  std::size_t patch_b = kNoTensor;        ///< [Hd]
  std::size_t rate_token = kNoTensor;     ///< [Hd] the learned rate token (rate head `token` only)
  std::size_t time1_w = kNoTensor;        ///< [FD, Hd] time MLP, first layer (SiLU follows)
  std::size_t time1_b = kNoTensor;        ///< [Hd]
  std::size_t time2_w = kNoTensor;        ///< [Hd, Hd] time MLP, second layer
  std::size_t time2_b = kNoTensor;        ///< [Hd]
  std::size_t kind_embed = kNoTensor;     ///< [3, Hd] one row per FrameKind
  std::size_t class_embed = kNoTensor;    ///< [K + 1, Hd] class table, last row the null class (classes > 0)
  std::size_t length_cond_w = kNoTensor;  ///< [LF, Hd] length conditioning of every frame (length_conditioning)
  std::size_t length_cond_b = kNoTensor;  ///< [Hd]
  std::vector<BlockParameters> blocks;    ///< [depth]
  std::size_t final_adaln_w = kNoTensor;  ///< [Hd, 2·Hd] final adaLN (shift, scale)
  std::size_t final_adaln_b = kNoTensor;  ///< [2·Hd]
  std::size_t final_w = kNoTensor;        ///< [Hd, P] velocity head
  std::size_t final_b = kNoTensor;        ///< [P]
  std::size_t rate1_w = kNoTensor;        ///< [Hd, Hd] rate head, first layer (SiLU follows)
  std::size_t rate1_b = kNoTensor;        ///< [Hd]
  std::size_t rate2_w = kNoTensor;        ///< [Hd, 1] rate head, the log-rate
  std::size_t rate2_b = kNoTensor;        ///< [1]
  std::size_t length_embed_w = kNoTensor; ///< [LF, Hd] the rate head's length embedding (length_aware)
  std::size_t length_embed_b = kNoTensor; ///< [Hd]
};

/// The parameter tensors of a configuration, laid out in a flat buffer of elements of a given size.
struct ParameterLayout {
  std::vector<ParameterInfo> table;  ///< every tensor, in buffer order
  ParameterIndex index;              ///< where each tensor is in `table`
  std::size_t count = 0;             ///< parameters (padding excluded)
  std::size_t buffer_elements = 0;   ///< elements of the flat buffer (parameters and padding)
};

/// The tensors of `cfg` (§6, `docs/dit.md`), each at an offset that is a multiple of
/// kBufferAlignment bytes for elements of `element_bytes`. The order is the checkpoints' and the
/// gradient buckets': embeddings and conditioning, the blocks, the heads.
inline ParameterLayout parameter_layout(const DitConfig& cfg, std::size_t element_bytes = 4) {
  using I = ParameterInfo::Init;
  ParameterLayout out;
  const std::size_t align = kBufferAlignment / element_bytes;
  const auto round_up = [align](std::size_t n) { return (n + align - 1) / align * align; };
  auto add = [&](std::string name, std::vector<std::size_t> shape, I init) {
    std::size_t size = 1;
    for (auto s : shape) size *= s;
    const std::size_t offset = out.table.empty() ? 0 : round_up(out.table.back().offset + out.table.back().size);
    out.table.push_back({std::move(name), std::move(shape), offset, size, init});
    out.count += size;
    return out.table.size() - 1;
  };
  const std::size_t Hd = cfg.width_hidden, P = cfg.patch_dim(), M = cfg.mlp_hidden(), LF = cfg.length_features();
  ParameterIndex& x = out.index;
  x.patch_w = add("patch_embed.weight", {P, Hd}, I::xavier);
  x.patch_b = add("patch_embed.bias", {Hd}, I::zero);
  if (cfg.rate_head == RateHead::token) x.rate_token = add("rate_token", {Hd}, I::normal002);
  x.time1_w = add("time_mlp.0.weight", {cfg.frequency_dim, Hd}, I::normal002);
  x.time1_b = add("time_mlp.0.bias", {Hd}, I::zero);
  x.time2_w = add("time_mlp.2.weight", {Hd, Hd}, I::normal002);
  x.time2_b = add("time_mlp.2.bias", {Hd}, I::zero);
  x.kind_embed = add("kind_embed", {3, Hd}, I::normal002);
  if (cfg.num_classes > 0) x.class_embed = add("class_embed", {cfg.num_classes + 1, Hd}, I::normal002);
  if (cfg.length_conditioning) {  // zero-initialised like the length embedding of the rate head
    x.length_cond_w = add("length_cond.weight", {LF, Hd}, I::zero);
    x.length_cond_b = add("length_cond.bias", {Hd}, I::zero);
  }
  for (std::size_t l = 0; l < cfg.depth; ++l) {
    const std::string b = "blocks." + std::to_string(l) + ".";
    BlockParameters& bp = x.blocks.emplace_back();
    bp.adaln_w = add(b + "adaLN.weight", {Hd, 6 * Hd}, I::zero);
    bp.adaln_b = add(b + "adaLN.bias", {6 * Hd}, I::zero);
    bp.qkv_w = add(b + "attn.qkv.weight", {Hd, 3 * Hd}, I::xavier);
    bp.qkv_b = add(b + "attn.qkv.bias", {3 * Hd}, I::zero);
    bp.proj_w = add(b + "attn.proj.weight", {Hd, Hd}, I::xavier);
    bp.proj_b = add(b + "attn.proj.bias", {Hd}, I::zero);
    bp.fc1_w = add(b + "mlp.fc1.weight", {Hd, M}, I::xavier);
    bp.fc1_b = add(b + "mlp.fc1.bias", {M}, I::zero);
    bp.fc2_w = add(b + "mlp.fc2.weight", {M, Hd}, I::xavier);
    bp.fc2_b = add(b + "mlp.fc2.bias", {Hd}, I::zero);
  }
  x.final_adaln_w = add("final.adaLN.weight", {Hd, 2 * Hd}, I::zero);
  x.final_adaln_b = add("final.adaLN.bias", {2 * Hd}, I::zero);
  x.final_w = add("final.linear.weight", {Hd, P}, I::zero);
  x.final_b = add("final.linear.bias", {P}, I::zero);
  x.rate1_w = add("rate_head.0.weight", {Hd, Hd}, I::xavier);
  x.rate1_b = add("rate_head.0.bias", {Hd}, I::zero);
  x.rate2_w = add("rate_head.2.weight", {Hd, 1}, I::zero);
  x.rate2_b = add("rate_head.2.bias", {1}, I::zero);
  if (cfg.length_aware) {  // zero-initialised: switching the option on does not change the model at initialisation
    x.length_embed_w = add("rate_head.length_embed.weight", {LF, Hd}, I::zero);
    x.length_embed_b = add("rate_head.length_embed.bias", {Hd}, I::zero);
  }
  out.buffer_elements = round_up(out.table.back().offset + out.table.back().size);
  return out;
}

namespace layers {
/// Query rows of attention are processed in tiles of at most this many token rows.
inline constexpr std::ptrdiff_t kTileRows = 64;

/// A block of query rows and the key rows it may attend to.
struct AttentionTile {
  std::ptrdiff_t q_begin;  ///< First query row.
  std::ptrdiff_t q_end;    ///< One past the last query row.
  std::ptrdiff_t k_begin;  ///< First key row.
  std::ptrdiff_t k_end;    ///< One past the last key row.
};
}  // namespace layers

/// The six slices of a block's adaLN modulation, each Hd wide, in the order of `mod`'s columns.
enum class Modulation : std::ptrdiff_t { shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp, count };
/// The two slices of the final layer's modulation, each Hd wide.
enum class FinalModulation : std::ptrdiff_t { shift, scale, count };

/// When a workspace buffer is sized, and how its count is known.
enum class BufferRole {
  index,       ///< per-batch tables built from the batch's structure (sized in forward)
  activation,  ///< kept from forward for backward, or forward scratch (sized in forward)
  gradient,    ///< backward scratch (sized in backward; not in a forward-only estimate)
  built,       ///< filled by push_back or by a table builder: never resized from here; its count is an upper bound
};

/// The sizes a batch gives every workspace buffer.
struct WorkspaceDims {
  std::size_t frames = 0;   ///< F: frames of the packed batch
  std::size_t tokens = 0;   ///< N: token rows (F · tokens_per_frame)
  std::size_t videos = 0;   ///< videos of the batch
  bool row_kernels = true;  ///< per-token attention ranges for the row kernels (device backends)
};

/// One block's activations, kept from forward for backward (F frames, N tokens, Hd width,
/// M MLP width, heads attention heads).
template <class T, template <class> class Buffer>
struct BlockActivations {
  Buffer<T> mod;    ///< [F, 6·Hd] adaLN modulation, Modulation's six slices
  Buffer<T> n1;     ///< [N, Hd] LayerNorm of the residual stream before attention
  Buffer<T> rstd1;  ///< [N] its reciprocal standard deviations
  Buffer<T> m1;     ///< [N, Hd] n1 modulated (shift_msa, scale_msa)
  Buffer<T> qkv;    ///< [N, 3·Hd] queries, keys, values, rotary positions applied to q and k
  Buffer<T> o;      ///< [N, Hd] attention output, heads side by side
  Buffer<T> lse;    ///< [N, heads] log-sum-exp of each row's attention, for backward
  Buffer<T> a;      ///< [N, Hd] o projected (added to the stream through gate_msa)
  Buffer<T> n2;     ///< [N, Hd] LayerNorm of the stream before the MLP
  Buffer<T> rstd2;  ///< [N] its reciprocal standard deviations
  Buffer<T> m2;     ///< [N, Hd] n2 modulated (shift_mlp, scale_mlp)
  Buffer<T> h;      ///< [N, M] first MLP layer, before GELU
  Buffer<T> gl;     ///< [N, M] GELU(h)
  Buffer<T> y;      ///< [N, Hd] second MLP layer (added to the stream through gate_mlp)
};

/// Everything a forward and backward pass keeps besides the weights: the per-batch index tables
/// (host copies built by DiT::prepare, and the backend's copies the kernels read), the
/// activations and the gradient scratch. `Buffer` is the backend's storage; host tables are
/// std::vector. Shapes: F frames, N tokens, Hd width, P patch values, M MLP width, FD time
/// embedding size, LF length features, R rotary pairs per head.
template <class T, template <class> class Buffer>
struct Workspace {
  // Index tables, on the host.
  std::vector<std::int32_t> host_token_frame;        ///< [N] the frame of each token row
  std::vector<std::int64_t> host_frame_token_begin;  ///< [F + 1] the first token row of each frame
  std::vector<std::int64_t> host_kind_index;         ///< [F] the FrameKind of each frame
  std::vector<std::int64_t> host_class_index;        ///< [F] the class row of each frame (K: the null class)
  std::vector<std::int64_t> host_key_range;          ///< [N, 2] keys [begin, end) of each query row (row kernels)
  std::vector<std::int64_t> host_query_range;        ///< [N, 2] queries [min, max) that see each key row (row kernels)
  std::vector<T> host_length_features;               ///< [F, LF] sinusoids of (n, i, n − 1 − i)
  std::vector<T> host_time_embedding;                ///< [F, FD] sinusoids of 1000·t
  std::vector<T> host_scalars;                       ///< [F] log-rates and their gradients crossing to or from the host
  std::vector<std::array<double, 3>> positions;      ///< [N] rotary positions (frame, row, column)
  std::vector<layers::AttentionTile> tiles;          ///< [at most F + N/64 + 1] query tiles and their key ranges
  std::vector<T> host_rope_cos;                      ///< [N, R] cos of each token's rotary angles
  std::vector<T> host_rope_sin;                      ///< [N, R] sin of them
  // The same tables in the backend's memory.
  Buffer<std::int32_t> token_frame;        ///< [N]
  Buffer<std::int64_t> frame_token_begin;  ///< [F + 1]
  Buffer<std::int64_t> kind_index;         ///< [F]
  Buffer<std::int64_t> class_index;        ///< [F]
  Buffer<std::int64_t> key_range;          ///< [N, 2] (row kernels)
  Buffer<std::int64_t> query_range;        ///< [N, 2] (row kernels)
  Buffer<T> rope_cos;                      ///< [N, R]
  Buffer<T> rope_sin;                      ///< [N, R]
  Buffer<T> length_features;               ///< [F, LF]
  Buffer<T> time_embedding;                ///< [F, FD]
  // Activations.
  Buffer<T> patches;      ///< [N, P] patch values of each token (zero in rate-token rows)
  Buffer<T> x;            ///< [N, Hd] the residual stream
  Buffer<T> time_hidden;  ///< [F, Hd] time MLP, first layer
  Buffer<T> time_act;     ///< [F, Hd] SiLU of it
  Buffer<T> cond;         ///< [F, Hd] conditioning c: time MLP + kind (+ class, + length)
  Buffer<T> cond_act;     ///< [F, Hd] SiLU(c), read by every adaLN
  Buffer<T> length_cond;  ///< [F, Hd] length conditioning added to c (length_conditioning; else empty)
  Buffer<T> final_mod;    ///< [F, 2·Hd] final adaLN modulation, FinalModulation's slices
  Buffer<T> final_norm;   ///< [N, Hd] LayerNorm of the stream after the last block
  Buffer<T> final_rstd;   ///< [N] its reciprocal standard deviations
  Buffer<T> final_mod_out;  ///< [N, Hd] final_norm modulated
  Buffer<T> out;          ///< [N, P] velocity head output (patches)
  Buffer<T> rate_in;      ///< [F, Hd] rate-head input: the rate token, or the frame's mean patch token (+ length)
  Buffer<T> length_emb;   ///< [F, Hd] the rate head's length embedding (length_aware; else empty)
  Buffer<T> rate_hidden;  ///< [F, Hd] rate head, first layer
  Buffer<T> rate_act;     ///< [F, Hd] SiLU of it
  Buffer<T> log_rate;     ///< [F] ℓ
  std::vector<BlockActivations<T, Buffer>> blocks;  ///< [depth]
  // Gradient scratch (backward).
  Buffer<T> d_log_rate;    ///< [F] ∂L/∂ℓ uploaded from the host
  Buffer<T> d_rate_act;    ///< [F, Hd]
  Buffer<T> d_rate_hidden; ///< [F, Hd]
  Buffer<T> d_rate_in;     ///< [F, Hd]
  Buffer<T> d_out;         ///< [N, P] ∂L/∂velocity as patches (zero in rate-token rows)
  Buffer<T> d_final_mod_out;  ///< [N, Hd]
  Buffer<T> d_final_mod;   ///< [F, 2·Hd]
  Buffer<T> d_final_norm;  ///< [N, Hd]
  Buffer<T> dx;            ///< [N, Hd] ∂L/∂ of the residual stream, carried down the blocks
  Buffer<T> d_cond_act;    ///< [F, Hd] summed over every adaLN
  Buffer<T> d_cond;        ///< [F, Hd]
  Buffer<T> d_time_act;    ///< [F, Hd]
  Buffer<T> d_time_hidden; ///< [F, Hd]
  Buffer<T> d_mod;         ///< [F, 6·Hd] one block's modulation gradient
  Buffer<T> d_tmp;         ///< [N, Hd] block scratch
  Buffer<T> d_tmp2;        ///< [N, Hd] block scratch
  Buffer<T> d_mlp;         ///< [N, M] block scratch of the MLP's hidden width
  Buffer<T> d_qkv;         ///< [N, 3·Hd]
  Buffer<T> d_attention;   ///< [N, heads] attention backward's per-row scratch
};

/// Calls visit(role, buffer, count) for every buffer of `w` (a Workspace whose `blocks` has
/// cfg.depth entries; const or not): the element count each holds for a batch of `d` under `cfg`.
/// The one list of the DiT's workspace (see the file comment).
template <class W, class Visit>
void visit_workspace(W& w, const DitConfig& cfg, const WorkspaceDims& d, Visit&& visit) {
  using R = BufferRole;
  const std::size_t F = d.frames, N = d.tokens, Hd = cfg.width_hidden, P = cfg.patch_dim(), M = cfg.mlp_hidden();
  const std::size_t FD = cfg.frequency_dim, LF = cfg.length_features(), heads = cfg.heads;
  const std::size_t pairs = cfg.head_dim() / 2, ranges = d.row_kernels ? 2 * N : 0;
  const std::size_t tile_bound = 2 * (F + N / static_cast<std::size_t>(layers::kTileRows) + 1);  // (doubling capacity)
  visit(R::index, w.host_token_frame, N);
  visit(R::index, w.host_frame_token_begin, F + 1);
  visit(R::index, w.host_kind_index, F);
  visit(R::index, w.host_class_index, F);
  visit(R::index, w.host_key_range, ranges);
  visit(R::index, w.host_query_range, ranges);
  visit(R::index, w.host_length_features, F * LF);
  visit(R::index, w.host_time_embedding, F * FD);
  visit(R::index, w.host_scalars, F);
  visit(R::index, w.positions, N);
  visit(R::built, w.tiles, tile_bound);
  visit(R::index, w.host_rope_cos, N * pairs);
  visit(R::index, w.host_rope_sin, N * pairs);
  visit(R::index, w.token_frame, N);
  visit(R::index, w.frame_token_begin, F + 1);
  visit(R::index, w.kind_index, F);
  visit(R::index, w.class_index, F);
  visit(R::index, w.key_range, ranges);
  visit(R::index, w.query_range, ranges);
  visit(R::index, w.rope_cos, N * pairs);
  visit(R::index, w.rope_sin, N * pairs);
  visit(R::index, w.length_features, F * LF);
  visit(R::index, w.time_embedding, F * FD);
  visit(R::activation, w.patches, N * P);
  visit(R::activation, w.x, N * Hd);
  visit(R::activation, w.time_hidden, F * Hd);
  visit(R::activation, w.time_act, F * Hd);
  visit(R::activation, w.cond, F * Hd);
  visit(R::activation, w.cond_act, F * Hd);
  visit(R::activation, w.length_cond, cfg.length_conditioning ? F * Hd : 0);
  visit(R::activation, w.final_mod, F * 2 * Hd);
  visit(R::activation, w.final_norm, N * Hd);
  visit(R::activation, w.final_rstd, N);
  visit(R::activation, w.final_mod_out, N * Hd);
  visit(R::activation, w.out, N * P);
  visit(R::activation, w.rate_in, F * Hd);
  visit(R::activation, w.length_emb, cfg.length_aware ? F * Hd : 0);
  visit(R::activation, w.rate_hidden, F * Hd);
  visit(R::activation, w.rate_act, F * Hd);
  visit(R::activation, w.log_rate, F);
  for (auto& b : w.blocks) {
    visit(R::activation, b.mod, F * 6 * Hd);
    visit(R::activation, b.n1, N * Hd);
    visit(R::activation, b.rstd1, N);
    visit(R::activation, b.m1, N * Hd);
    visit(R::activation, b.qkv, N * 3 * Hd);
    visit(R::activation, b.o, N * Hd);
    visit(R::activation, b.lse, N * heads);
    visit(R::activation, b.a, N * Hd);
    visit(R::activation, b.n2, N * Hd);
    visit(R::activation, b.rstd2, N);
    visit(R::activation, b.m2, N * Hd);
    visit(R::activation, b.h, N * M);
    visit(R::activation, b.gl, N * M);
    visit(R::activation, b.y, N * Hd);
  }
  visit(R::gradient, w.d_log_rate, F);
  visit(R::gradient, w.d_rate_act, F * Hd);
  visit(R::gradient, w.d_rate_hidden, F * Hd);
  visit(R::gradient, w.d_rate_in, F * Hd);
  visit(R::gradient, w.d_out, N * P);
  visit(R::gradient, w.d_final_mod_out, N * Hd);
  visit(R::gradient, w.d_final_mod, F * 2 * Hd);
  visit(R::gradient, w.d_final_norm, N * Hd);
  visit(R::gradient, w.dx, N * Hd);
  visit(R::gradient, w.d_cond_act, F * Hd);
  visit(R::gradient, w.d_cond, F * Hd);
  visit(R::gradient, w.d_time_act, F * Hd);
  visit(R::gradient, w.d_time_hidden, F * Hd);
  visit(R::gradient, w.d_mod, F * 6 * Hd);
  visit(R::gradient, w.d_tmp, N * Hd);
  visit(R::gradient, w.d_tmp2, N * Hd);
  visit(R::gradient, w.d_mlp, N * M);
  visit(R::gradient, w.d_qkv, N * 3 * Hd);
  visit(R::gradient, w.d_attention, N * heads);
}

namespace detail_layout {
template <class U>
using HostVector = std::vector<U>;

template <class T>
std::size_t estimate_workspace(const DitConfig& cfg, const WorkspaceDims& d, bool training) {
  Workspace<T, HostVector> w;  // empty buffers: only the element types and counts are read
  w.blocks.resize(cfg.depth);
  std::size_t bytes = 0;
  visit_workspace(w, cfg, d, [&](BufferRole role, const auto& buf, std::size_t count) {
    if (role == BufferRole::gradient && !training) return;
    bytes += count * sizeof(typename std::decay_t<decltype(buf)>::value_type);
  });
  return bytes;
}
}  // namespace detail_layout

inline std::size_t DitConfig::parameter_count() const { return parameter_layout(*this).count; }

inline std::size_t DitConfig::parameter_buffer_elements(std::size_t value_bytes) const {
  return parameter_layout(*this, value_bytes).buffer_elements;
}

inline std::size_t DitConfig::workspace_bytes(std::size_t frames, std::size_t videos, bool training,
                                              std::size_t value_bytes, bool row_kernels) const {
  const WorkspaceDims d{frames, frames * tokens_per_frame(), videos, row_kernels};
  return value_bytes == 8 ? detail_layout::estimate_workspace<double>(*this, d, training)
                          : detail_layout::estimate_workspace<float>(*this, d, training);
}

}  // namespace flowception::dit
