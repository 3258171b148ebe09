// Training the DiT with the core's extended-time sampler and losses (method.md §3): each step
// draws videos, builds their training samples, packs them into one variable-length batch, runs
// forward and backward, clips the global gradient norm, takes an AdamW step with a warm-up
// schedule and updates the EMA weights. Every random choice is keyed by (seed, sample number),
// so the state of a run is its weights, optimizer, EMA and step count: resuming a checkpoint
// continues the same run bit for bit.
#pragma once

#include <chrono>
#include <exception>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <array>
#include <map>
#include <optional>
#include <type_traits>
#include <span>
#include <string>
#include <vector>

#include "flowception/core/errors.hpp"
#include "flowception/core/threading.hpp"
#include "flowception/data/video.hpp"
#include "flowception/distributed/communicator.hpp"
#include "flowception/distributed/gradient_buckets.hpp"
#include "flowception/dit/model.hpp"
#include "flowception/io/safetensors.hpp"
#include "flowception/train/checkpoint.hpp"
#include "flowception/train/device_loss.hpp"
#include "flowception/train/device_optimizer.hpp"
#include "flowception/train/optimizer.hpp"
#include "flowception/baselines/baseline_training.hpp"
#include "flowception/training.hpp"

namespace flowception::train {

/// Pixels in [0, 1] are fed to the model as scale·pixel + offset (default [−1, 1]).
struct PixelScaling {
  double scale = 2.0;    ///< factor applied to a pixel (non-zero)
  double offset = -1.0;  ///< added after the factor
  /// The model value of pixel `p`: scale·p + offset.
  float to_model(float p) const { return static_cast<float>(scale * p + offset); }
  /// The pixel of model value `x`: (x − offset) / scale, not clamped to [0, 1].
  float to_pixel(float x) const { return static_cast<float>((x - offset) / scale); }
};

/// Options of Trainer. A checkpoint resumes only with the same seed and batch_videos.
struct TrainerOptions {
  std::size_t batch_videos = 8;    ///< videos of the global batch of each step (over all ranks and replicas)
  LrSchedule lr = LrSchedule::constant(3e-4, 100);  ///< the learning rate of every update
  AdamWConfig adam{};              ///< AdamW's hyper-parameters; its lr is unused (lr above gives the rate)
  double grad_clip = 1.0;          ///< global gradient-norm limit (<= 0: no clipping)
  double ema_decay = 0.999;        ///< decay of the EMA weights, in [0, 1) (Ema)
  double rate_loss_weight = 1.0;   ///< w in velocity + w·rate
  double class_dropout = 0.1;      ///< probability of training a labelled video unconditionally
  PixelScaling pixels{};           ///< how the data's pixels become model values
  std::uint64_t seed = 0;          ///< keys every random choice of the run, with the sample number
  /// Model replicas, each running forward and backward on a contiguous share of the batch (about
  /// equal frame counts) on its own thread with single-threaded products; their gradients are
  /// summed and the losses normalised by the counts of the whole batch, so a step equals the
  /// one-replica step up to the order of floating-point sums. Small models on short videos keep
  /// every thread busy this way, where threads inside each product would mostly wait.
  std::size_t replicas = 1;
  /// Data parallelism across processes (a Communicator of K > 1 ranks): reduce gradient buckets
  /// of `bucket_elements` floats while the backward pass runs (one replica per rank only; with
  /// more, or when off, the whole gradient is reduced after backward).
  bool overlap_reduction = true;
  std::size_t bucket_elements = std::size_t(1) << 18;  ///< floats per gradient bucket, at least (2^18: 1 MiB)
  /// Ranks take contiguous shares of about equal frame counts (true), for which every rank builds
  /// every training sample of the step (data and time draws only: no model work), or shares of
  /// equal video counts, each rank building only its own (false). Either way the union is the
  /// one-process batch; equal frames keep ranks from waiting for each other.
  bool balance_ranks = true;
  /// Every this many steps the ranks compare fingerprints of their parameters and stop with an
  /// error naming the step if any differs from rank 0 (0: only at start and after a resume).
  std::int64_t replica_check_every = 100;

  /// ConfigError naming the option unless batch_videos >= 1, replicas in [1, 256],
  /// bucket_elements >= 1, replica_check_every >= 0, lr and adam are valid, grad_clip is finite,
  /// rate_loss_weight is finite and >= 0, class_dropout is in [0, 1] and the pixel scaling is
  /// finite with a non-zero scale.
  void validate() const {
    detail::require(batch_videos >= 1, "batch_videos must be >= 1, got ", batch_videos);
    detail::require(replicas >= 1 && replicas <= 256, "replicas must be in [1, 256], got ", replicas);
    detail::require(bucket_elements >= 1, "bucket_elements must be >= 1, got ", bucket_elements);
    detail::require(replica_check_every >= 0, "replica_check_every must be >= 0, got ", replica_check_every);
    lr.validate();
    adam.validate();
    detail::require(std::isfinite(grad_clip), "grad_clip must be finite, got ", grad_clip);
    detail::require(std::isfinite(rate_loss_weight) && rate_loss_weight >= 0, "rate loss weight must be >= 0");
    detail::require(class_dropout >= 0.0 && class_dropout <= 1.0, "class_dropout must be in [0, 1], got ", class_dropout);
    detail::require(std::isfinite(pixels.scale) && pixels.scale != 0.0 && std::isfinite(pixels.offset),
                    "pixel scaling must be finite with a non-zero scale");
  }
};

/// What one Trainer::step did; losses and counts cover the whole global batch (every replica and rank).
struct TrainStepStats {
  std::int64_t step = 0;  ///< updates done after this step
  double loss = 0;           ///< the total loss, velocity + w·rate (§3 step 7)
  double velocity_loss = 0;  ///< the velocity loss
  double rate_loss = 0;      ///< the rate loss, not weighted by w
  double grad_norm = 0;   ///< before clipping
  double lr = 0;          ///< the learning rate of this update
  std::size_t videos = 0;          ///< videos of the batch (batch_videos)
  std::size_t frames = 0;          ///< visible frames of the batch
  std::size_t tokens = 0;          ///< token rows of the forward passes
  std::size_t flowing_frames = 0;  ///< frames with the velocity loss
  std::size_t rate_frames = 0;     ///< frames with the rate loss
  dit::FlopCount flops;   ///< forward + backward of this step
  double seconds = 0;     ///< wall-clock time of the step
  /// Data-parallel runs: time spent waiting for the gradient all-reduce after backward (with
  /// overlap, only the part the backward pass did not hide), and the buckets it was split into.
  double reduce_seconds = 0;
  std::size_t buckets = 0;  ///< all-reduces started for the gradient (1 when reduced after backward; 0 in one process)
};

/// A data set: `size()` videos, `video(i)` for i < size().
template <class D>
concept VideoDataSet = requires(const D d, std::size_t i) {
  { d.size() } -> std::convertible_to<std::size_t>;
  { d.video(i) } -> std::convertible_to<data::Video>;
};

/// Trains with any training-sample builder: the extended-time sampler of §3 (Flowception) or a
/// baseline of §7 (baselines/baseline_training.hpp); the method's name goes into checkpoints.
///
/// Across K processes (a distributed::Communicator, e.g. MpiCommunicator), rank r runs forward
/// and backward on its contiguous share of the global batch: the samples a single process would
/// build for those positions, keyed by the same sample numbers. Shares have about equal frame
/// counts (every rank builds every sample to find them, options.balance_ranks) or equal video
/// counts (distributed::share_of; the loss counts are then all-reduced first). Either way each
/// rank's losses are parts of the global means, gradients are summed across ranks, and every
/// rank takes the identical step: the one a single process takes with the whole batch, up to
/// the order of floating-point sums. Only rank 0 writes checkpoints.
///
/// On a device backend (DiT<float, ThrustBackend>) the weights, gradients, AdamW moments and EMA
/// stay in device memory (train/device_optimizer.hpp). Training samples are built on the host
/// and each step uploads the packed inputs; the predicted velocities come back for the loss
/// (§3's losses are host code) and their gradient goes up again: O(frames·frame_dim) numbers a
/// step, against O(parameters·tokens) of compute. One replica only: a device runs the batch whole.
template <VideoDataSet DataSet, TrainingSampleBuilder Builder, dit::DitBackend Backend = dit::CpuBackend,
          distributed::Communicator Comm = distributed::SingleProcess>
class Trainer {
 public:
  using Model = dit::DiT<float, Backend>;  ///< the model trained, float weights on Backend
  /// Whether the weights, gradients, moments and EMA live in the backend's (device) memory.
  static constexpr bool kDevice = !std::is_same_v<Backend, dit::CpuBackend>;
  static_assert(std::is_same_v<Comm, distributed::SingleProcess> ||
                    (Comm::kGradientMemory == distributed::MemorySpace::host) == Backend::kHostMemory,
                "the communicator must reduce gradients where the backend keeps them: MPI for host memory, "
                "NCCL for CUDA device memory");

  /// Registers every parameter tensor with AdamW (weight decay for matrices whose name has no
  /// "embed") and the EMA, then checks that the ranks agree. `model` and `data` are referenced, not
  /// copied, and must outlive the trainer. ConfigError for invalid options, an empty data set or
  /// replicas > 1 on a device backend; Error on every rank when the ranks disagree.
  Trainer(Model& model, const DataSet& data, Builder builder, TrainerOptions opts, Comm comm = Comm{})
      : model_(&model), data_(&data), builder_(std::move(builder)), opts_(opts), adam_(opts.adam), ema_(opts.ema_decay),
        comm_(std::move(comm)) {
    opts_.validate();
    detail::require(data.size() >= 1, "the training data set is empty");
    if constexpr (kDevice)
      detail::require(opts_.replicas == 1, "replicas must be 1 on the ", Backend::name(),
                      " backend (a device runs the whole batch), got ", opts_.replicas);
    const auto host = model.host_parameters();
    for (const auto& p : model.parameter_table()) {
      // Decay matrices only: biases, embeddings and the rate token are exempt.
      const bool decay = p.shape.size() == 2 && p.name.find("embed") == std::string::npos;
      adam_.add_param(p.name, p.size, decay);
      ema_.add_param(p.name, std::span<const float>(host.data() + p.offset, p.size));
    }
    if constexpr (kDevice) device_.emplace(model, adam_, ema_);
    check_ranks_agree("at the start");
  }

  /// The ranks of a data-parallel run (1 and 0 in one process).
  int world_size() const { return comm_.size(); }
  int rank() const { return comm_.rank(); }  ///< this process's rank; 0 writes checkpoints
  /// The communicator the ranks reduce over.
  Comm& communicator() { return comm_; }

  /// Updates done so far (AdamW's step count, restored with a checkpoint).
  std::int64_t steps_done() const { return adam_.step_count(); }
  /// FLOPs of every forward and backward pass so far (restored with a checkpoint).
  const FlopCount& flops_done() const { return flops_done_; }
  /// The training-sample builder.
  const Builder& builder() const { return builder_; }
  /// The EMA's state, a copy (on a device backend the averages are downloaded first).
  Ema ema() const {
    Ema ema = ema_;
    if constexpr (kDevice) {
      AdamW adam = adam_;
      device_->sync_to_host(*model_, adam, ema);
    }
    return ema;
  }
  /// The options given to the constructor.
  const TrainerOptions& options() const { return opts_; }

  /// The EMA weights as one flat buffer in the model's parameter order.
  std::vector<float> ema_parameters() const {
    if constexpr (kDevice) return device_->ema_parameters();
    std::vector<float> out(model_->parameter_buffer_size());
    for (std::size_t i = 0; i < model_->parameter_table().size(); ++i) {
      const auto s = ema_.shadow(i);
      std::copy(s.begin(), s.end(), out.begin() + static_cast<std::ptrdiff_t>(model_->parameter_table()[i].offset));
    }
    return out;
  }

  /// One optimisation step, in the order llm.c splits one: build this step's samples, take this
  /// rank's share, run forward, losses and backward on each replica, reduce across ranks, update.
  TrainStepStats step() {
    const auto t0 = std::chrono::steady_clock::now();
    const std::int64_t k = adam_.step_count();  // samples k·B .. k·B + B − 1
    const LossNormalisation norm = build_samples(k);
    take_rank_share();
    // With one replica the gradient buckets are reduced while backward runs.
    distributed::GradientBuckets<Comm> buckets(comm_, Backend::raw(model_->gradients()), model_->parameter_buffer_size(),
                                               opts_.bucket_elements);
    TrainStepStats s;
    StepSums sums = run_replicas(norm, buckets);
    reduce_across_ranks(sums, buckets, s);
    apply_update(k, sums, s);
    s.step = adam_.step_count();
    s.loss = sums.loss;
    s.velocity_loss = sums.velocity;
    s.rate_loss = sums.rate;
    s.flops = sums.flops;
    s.tokens = static_cast<std::size_t>(sums.tokens);
    s.frames = static_cast<std::size_t>(sums.frames);
    s.videos = opts_.batch_videos;
    s.flowing_frames = norm.flowing_frames;
    s.rate_frames = norm.rate_frames;
    flops_done_ += s.flops;
    if (comm_.size() > 1 && opts_.replica_check_every > 0 && s.step % opts_.replica_check_every == 0)
      check_ranks_agree(detail::cat("after step ", s.step).c_str());
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return s;
  }

  /// Writes weights, EMA weights, optimizer state, step and configuration atomically. In a
  /// data-parallel run only rank 0 writes (every rank holds the same state); the others return.
  void save_checkpoint(const std::filesystem::path& path, std::map<std::string, std::string> extra = {}) const {
    if (comm_.rank() != 0) return;
    auto tensors = parameter_tensors(*model_, model_->host_parameters(), "model.");
    auto add_state = [&](const AdamW& adam, const Ema& ema) {
      for (auto& t : ema.state_tensors("ema.")) tensors.push_back(std::move(t));
      for (auto& t : adam.state_tensors("optimizer.")) tensors.push_back(std::move(t));
    };
    if constexpr (kDevice) {  // the moments and averages live on the device: download them first
      AdamW adam = adam_;
      Ema ema = ema_;
      device_->sync_to_host(*model_, adam, ema);
      add_state(adam, ema);
    } else {
      add_state(adam_, ema_);
    }
    auto meta = dit_config_metadata(model_->config());
    meta["format"] = kCheckpointFormat;
    for (auto& [key, value] : adam_.metadata("optimizer.")) meta[key] = value;
    for (auto& [key, value] : ema_.metadata("ema.")) meta[key] = value;
    meta["train.step"] = std::to_string(adam_.step_count());
    meta["train.seed"] = std::to_string(opts_.seed);
    meta["train.batch_videos"] = std::to_string(opts_.batch_videos);
    meta["rng.next_sample"] = std::to_string(static_cast<std::uint64_t>(adam_.step_count()) * opts_.batch_videos);
    meta["train.method"] = std::string(builder_.method_name());
    meta["train.flops_attention"] = io::format_metadata_double(flops_done_.attention);
    meta["train.flops_other"] = io::format_metadata_double(flops_done_.other);
    for (auto& [key, value] : extra) meta[key] = value;
    io::save_safetensors(path, tensors, meta);
  }

  /// Restores a checkpoint written by save_checkpoint for the same model configuration.
  void load_checkpoint(const std::filesystem::path& path) { load_checkpoint(io::load_safetensors(path)); }

  /// The same, from a file already read (e.g. one whose metadata the caller also needs).
  void load_checkpoint(const io::SafetensorsFile& f) {
    const std::filesystem::path path(f.source());
    const auto cfg = dit_config_from_metadata(f);
    const auto& mine = model_->config();
    // Every field but the name and the attention window (a sampling-time choice) must agree.
    auto theirs = cfg;
    theirs.name = mine.name;
    theirs.window = mine.window;
    const std::string diff = mine.difference(theirs);
    detail::require<ShapeError>(diff.empty(), path.string(), " holds another DiT configuration than the model being "
                                "trained; ", diff, " (model vs checkpoint)");
    detail::require<ConfigError>(f.metadata_u64("train.batch_videos") == opts_.batch_videos && f.metadata_u64("train.seed") == opts_.seed,
                                 path.string(), " was written with another seed or batch size; resuming would not "
                                 "continue the same run");
    check_declared_size(f, cfg);
    check_no_unknown_tensors(f, *model_);
    const std::string method = f.has_metadata("train.method") ? f.metadata_string("train.method") : "flowception";
    detail::require<ConfigError>(method == builder_.method_name(), path.string(), " was trained with method '", method,
                                 "', not '", builder_.method_name(), "'");
    std::vector<float> params;
    read_parameters(f, *model_, "model.", params);
    flops_done_ = {};
    if (f.has_metadata("train.flops_attention"))
      flops_done_ = {f.metadata_f64("train.flops_attention"), f.metadata_f64("train.flops_other")};
    for (double x : {flops_done_.attention, flops_done_.other})
      detail::require<IoError>(std::isfinite(x) && x >= 0, path.string(), ": metadata train.flops_* holds ", x,
                               ", not a finite count >= 0");
    ema_.load_state(f, "ema.");
    adam_.load_state(f, "optimizer.");
    model_->set_parameters(params);
    if constexpr (kDevice) device_->load_from_host(*model_, adam_, ema_);
    check_ranks_agree(detail::cat("after loading ", path.string()).c_str());
  }

 private:
  /// The random stream family of the training draws ("trai").
  static constexpr std::uint64_t kSampleStreamTag = 0x74726169ULL;
  /// Any communicator but SingleProcess goes through the reductions, even with one rank (where
  /// they are the identity): a one-rank MPI or NCCL run tests the same path as K ranks.
  static constexpr bool kSpread = !std::is_same_v<Comm, distributed::SingleProcess>;

  /// What a step sums over replicas and then over ranks (all-reduced as one array of doubles).
  struct StepSums {
    double loss = 0;      ///< total loss (each part's share of the global means)
    double velocity = 0;  ///< velocity loss
    double rate = 0;      ///< rate loss, not weighted
    FlopCount flops;      ///< forward + backward
    double tokens = 0;    ///< token rows
    double frames = 0;    ///< visible frames
    static constexpr std::size_t kValues = 7;  ///< doubles in as_array()
    std::array<double, kValues> as_array() const {
      return {loss, velocity, rate, flops.attention, flops.other, tokens, frames};
    }
    void set(const std::array<double, kValues>& a) {
      loss = a[0];
      velocity = a[1];
      rate = a[2];
      flops = {a[3], a[4]};
      tokens = a[5];
      frames = a[6];
    }
  };

  /// Whether every rank builds every sample of the step (to cut shares of equal frame counts).
  bool builds_every_sample() const { return comm_.size() == 1 || opts_.balance_ranks; }

  /// Builds the training samples of step k that this rank needs (all of them, or its share of
  /// equal video counts) into samples_, and returns the whole batch's loss denominators. Every
  /// sample is keyed by (seed, sample number): building them in parallel changes nothing.
  LossNormalisation build_samples(std::int64_t k) {
    const std::size_t B = opts_.batch_videos;
    const auto& cfg = model_->config();
    const distributed::Share share =
        builds_every_sample() ? distributed::Share{0, B} : distributed::share_of(B, comm_.rank(), comm_.size());
    samples_.resize(share.size());
    threading::parallel_or_serial(share.size(), opts_.replicas > 1, [&](std::size_t i) {
      const std::size_t b = share.begin + i;
      const std::uint64_t sample = static_cast<std::uint64_t>(k) * B + b;
      random::Stream rng(opts_.seed, random::derive_stream(kSampleStreamTag, sample));
      const std::size_t index = static_cast<std::size_t>(rng.below(data_->size()));
      data::Video v = data_->video(index);
      detail::require<ShapeError>(v.channels == cfg.channels && v.height == cfg.height && v.width == cfg.width,
                                  "data video ", index, " has frames ", v.channels, "x", v.height, "x", v.width,
                                  ", the model expects ", cfg.channels, "x", cfg.height, "x", cfg.width);
      for (auto& x : v.frames) x = opts_.pixels.to_model(x);
      std::int64_t cond = kNoCondition;
      if (cfg.num_classes > 0 && v.label >= 0 && rng.uniform() >= opts_.class_dropout) cond = v.label;
      samples_[i] = builder_.template sample<float>(v.frames, v.frame_size(), sample, cond);
    });
    // Global counts first: every part's losses are means over the whole batch.
    LossNormalisation norm;
    for (const auto& smp : samples_) {
      for (auto m : smp.flow_mask) norm.flowing_frames += m ? 1u : 0u;
      for (auto m : smp.rate_mask) norm.rate_frames += m ? 1u : 0u;
    }
    if (!builds_every_sample()) {  // the counts of the whole batch, over every rank's share
      double counts[2] = {static_cast<double>(norm.flowing_frames), static_cast<double>(norm.rate_frames)};
      comm_.all_reduce_sum(std::span<double>(counts));
      norm.flowing_frames = static_cast<std::size_t>(counts[0]);
      norm.rate_frames = static_cast<std::size_t>(counts[1]);
    }
    return norm;
  }

  /// When every rank built every sample: keeps this rank's contiguous share of about equal frame counts.
  void take_rank_share() {
    const int K = comm_.size();
    if (K == 1 || !builds_every_sample()) return;
    const auto ranks = frame_balanced_cuts(samples_, static_cast<std::size_t>(K));
    const distributed::Share share{ranks[static_cast<std::size_t>(comm_.rank())],
                                   ranks[static_cast<std::size_t>(comm_.rank()) + 1]};
    samples_.erase(samples_.begin() + static_cast<std::ptrdiff_t>(share.end), samples_.end());
    samples_.erase(samples_.begin(), samples_.begin() + static_cast<std::ptrdiff_t>(share.begin));
  }

  /// Forward, losses and backward of this rank's samples on R replicas, each a contiguous share
  /// of about equal frame counts on its own thread; replica gradients are summed into the model's.
  /// With one replica in a data-parallel run, backward hands each final gradient range to
  /// `buckets`, whose all-reduces start at once.
  StepSums run_replicas(const LossNormalisation& norm, distributed::GradientBuckets<Comm>& buckets) {
    const auto& cfg = model_->config();
    const std::size_t R = std::max<std::size_t>(1, std::min(opts_.replicas, samples_.size()));
    const std::vector<std::size_t> cut = frame_balanced_cuts(samples_, R);
    while (replicas_.size() + 1 < R) replicas_.emplace_back(cfg, 0);
    parts_.resize(R);
    overlap_ = kSpread && R == 1 && opts_.overlap_reduction;
    announced_ = false;
    auto ready = [&](std::size_t begin, std::size_t end) {
      announced_ = true;
      buckets(begin, end);
    };
    threading::parallel_or_serial(R, R > 1, [&](std::size_t r) {
      Model& m = r == 0 ? *model_ : replicas_[r - 1];
      if (r > 0) m.parameters() = model_->parameters();
      Part& part = parts_[r];
      part = Part{};
      if (cut[r] == cut[r + 1]) {
        m.zero_grad();
        return;
      }
      const TrainingBatch<float> batch =
          pack(std::span<const TrainingSample<float>>(samples_.data() + cut[r], cut[r + 1] - cut[r]));
      dit::DitBatch db{batch.times, batch.kinds, batch.offsets, batch.conditions, {}};
      if constexpr (kDevice) {
        // Velocities, log-rates and their gradients stay on the device (train/device_loss.hpp):
        // the inputs and the loss's targets go up, the loss values come back.
        upload(batch.inputs, inputs_dev_);
        velocity_dev_.resize(batch.inputs.size());
        m.forward(Backend::raw(inputs_dev_), db, Backend::raw(velocity_dev_), nullptr);
        part.loss = device_loss_.compute(batch, Backend::raw(velocity_dev_), m.device_log_rate(), opts_.rate_loss_weight,
                                         norm);
        m.zero_grad();
        if (overlap_) m.backward_device(device_loss_.grad_velocity(), device_loss_.grad_log_rate(), ready);
        else m.backward_device(device_loss_.grad_velocity(), device_loss_.grad_log_rate());
      } else {
        part.velocity.resize(batch.inputs.size());
        part.log_rate.resize(batch.rows());
        m.forward(batch.inputs.data(), db, part.velocity.data(), part.log_rate.data());
        part.loss = flowception_loss<float>(batch, part.velocity, part.log_rate, opts_.rate_loss_weight, norm);
        m.zero_grad();
        if (overlap_) m.backward(part.loss.grad_velocity.data(), part.loss.grad_log_rate.data(), ready);
        else m.backward(part.loss.grad_velocity.data(), part.loss.grad_log_rate.data());
      }
      const auto f = m.forward_flops(), bw = m.backward_flops();
      part.flops = {f.attention + bw.attention, f.other + bw.other};
      part.tokens = m.tokens();
      part.frames = batch.rows();
    });
    StepSums sums;
    std::size_t tokens = 0, frames = 0;
    for (std::size_t r = 0; r < R; ++r) {
      const Part& part = parts_[r];
      sums.loss += part.loss.total;
      sums.velocity += part.loss.velocity;
      sums.rate += part.loss.rate;
      sums.flops += part.flops;
      tokens += part.tokens;
      frames += part.frames;
      if constexpr (!kDevice) {
        if (r > 0) {
          auto& g = model_->gradients();
          const auto& gr = replicas_[r - 1].gradients();
          for (std::size_t i = 0; i < g.size(); ++i) g[i] += gr[i];
        }
      }
    }
    sums.tokens = static_cast<double>(tokens);
    sums.frames = static_cast<double>(frames);
    return sums;
  }

  /// Gradients summed over ranks (every rank then holds the whole batch's gradient: the buckets
  /// started during backward, or one all-reduce now), and the step's sums over ranks.
  void reduce_across_ranks(StepSums& sums, distributed::GradientBuckets<Comm>& buckets, TrainStepStats& s) {
    if constexpr (kSpread) {
      const auto r0 = std::chrono::steady_clock::now();
      const std::size_t n_params = model_->parameter_buffer_size();
      if (overlap_) {
        if (!announced_) buckets(0, n_params);  // an empty share ran no backward: its zeros still count
        buckets.finish();
        s.buckets = buckets.buckets_started();
      } else {
        comm_.all_reduce_gradients(Backend::raw(model_->gradients()), n_params);
        comm_.finish_all_reduces();  // (a device communicator's reduction runs on its own stream)
        s.buckets = 1;
      }
      s.reduce_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count();
      auto a = sums.as_array();
      comm_.all_reduce_sum(std::span<double>(a));
      sums.set(a);
    } else {
      (void)buckets;
      (void)s;
    }
  }

  /// The update of step k + 1: a diverged run says so, with the step and the learning rate,
  /// before any change (the parameters stay those of step k and of the last checkpoint); then
  /// clipping, AdamW and the EMA (on the device for a device backend).
  void apply_update(std::int64_t k, const StepSums& sums, TrainStepStats& s) {
    s.lr = opts_.lr(k + 1);
    auto diverged = [&](std::string what) {
      if (what.starts_with("flowception: ")) what.erase(0, 13);
      return ModelOutputError(detail::cat("flowception: training diverged at step ", k + 1, ": ", what,
                                          "; the learning rate of this step is ", s.lr, " (", k, " steps done). "
                                          "Lower the learning rate or lengthen its warm-up, and resume from the "
                                          "last checkpoint"));
    };
    if (!std::isfinite(sums.loss))
      throw diverged(detail::cat("the loss is ", sums.loss, " (velocity ", sums.velocity, ", rate ", sums.rate, ")"));
    if constexpr (kDevice) {
      try {
        s.grad_norm = device_->clip(*model_, opts_.grad_clip);
      } catch (const ModelOutputError& e) {
        throw diverged(e.what());
      }
      device_->step(*model_, adam_, ema_, s.lr);
    } else {
      std::vector<std::span<float>> params, grads;
      for (const auto& p : model_->parameter_table()) {
        params.emplace_back(model_->parameters().data() + p.offset, p.size);
        grads.emplace_back(model_->gradients().data() + p.offset, p.size);
      }
      if (grad_names_.empty())  // (once: the names only serve the error of a non-finite gradient)
        for (const auto& p : model_->parameter_table()) grad_names_.push_back(p.name);
      try {
        s.grad_norm = opts_.grad_clip > 0
                          ? clip_grad_norm(grads, opts_.grad_clip, grad_names_)
                          : global_grad_norm(std::vector<std::span<const float>>(grads.begin(), grads.end()), grad_names_);
      } catch (const ModelOutputError& e) {
        throw diverged(e.what());
      }
      adam_.step(params, grads, s.lr);
      ema_.update(params);
    }
  }

  /// parts + 1 cut points splitting `s` into contiguous parts of about equal frame counts (a part
  /// may be empty only when there are fewer samples than parts).
  static std::vector<std::size_t> frame_balanced_cuts(const std::vector<TrainingSample<float>>& s, std::size_t parts) {
    std::size_t total = 0;
    for (const auto& smp : s) total += smp.times.size();
    std::vector<std::size_t> cut{0};
    std::size_t acc = 0;
    for (std::size_t b = 0; b < s.size() && cut.size() < parts; ++b) {
      acc += s[b].times.size();
      if (acc * parts >= cut.size() * total && s.size() - (b + 1) >= parts - cut.size()) cut.push_back(b + 1);
    }
    while (cut.size() < parts) cut.push_back(cut.back());  // (only when shares would be empty)
    cut.push_back(s.size());
    return cut;
  }

  /// Data-parallel runs: stops with an error on every rank when any rank's parameters, step or
  /// options differ from rank 0's (a replica that drifted, another seed, another checkpoint).
  void check_ranks_agree(const char* when) {
    if (comm_.size() == 1) return;
    const auto host = model_->host_parameters();
    const std::uint64_t head[4] = {static_cast<std::uint64_t>(adam_.step_count()), opts_.batch_videos, opts_.seed,
                                   host.size()};
    const std::uint64_t h = distributed::fingerprint(host.data(), host.size() * sizeof(float),
                                                     distributed::fingerprint(head, sizeof head));
    const auto differ = distributed::ranks_differing_from_root(comm_, h);
    if (differ.empty()) return;
    std::string list;
    for (int r : differ) list += (list.empty() ? "" : ", ") + std::to_string(r);
    detail::fail<Error>("data-parallel ranks disagree ", when, " (step ", adam_.step_count(),
                            "): rank(s) ", list, " hold other parameters, step, seed or batch size than rank 0");
  }

  template <class U>
  static void upload(const std::vector<U>& host, typename Backend::template buffer<U>& dst) {
    dst.resize(host.size());
    if (!host.empty()) Backend::upload(host.data(), host.size(), Backend::raw(dst));
  }

  Model* model_;                  ///< the model trained (replica 0)
  const DataSet* data_;           ///< the training videos
  Builder builder_;               ///< builds each video's training sample (§3, or a §7 baseline)
  FlopCount flops_done_;
  TrainerOptions opts_;
  AdamW adam_;
  Ema ema_;
  Comm comm_;
  /// One replica's share of a step.
  struct Part {
    std::vector<float> velocity;    ///< [frames, frame_dim] predicted velocities (CPU backend)
    std::vector<double> log_rate;   ///< [frames] predicted log-rates (CPU backend)
    LossResult<float> loss;         ///< its losses (parts of the whole batch's means) and gradients
    dit::FlopCount flops;           ///< forward + backward
    std::size_t tokens = 0;         ///< token rows
    std::size_t frames = 0;         ///< visible frames
  };
  bool overlap_ = false;    ///< this step reduces gradient buckets during backward
  bool announced_ = false;  ///< backward announced at least one range this step
  std::vector<TrainingSample<float>> samples_;
  std::vector<Model> replicas_;  ///< replicas 1..R−1 (replica 0 is the model itself)
  std::vector<std::string> grad_names_;  ///< parameter names, for the error of a diverged step
  std::vector<Part> parts_;
  std::optional<DeviceOptimizer<Backend>> device_;  ///< moments and EMA in device memory
  DeviceLoss<Backend> device_loss_;                   ///< the losses on the device (kDevice only)
  typename Backend::template buffer<float> inputs_dev_;    ///< [frames, frame_dim] the packed inputs (device backends)
  typename Backend::template buffer<float> velocity_dev_;  ///< [frames, frame_dim] the predicted velocities (device backends)
};

}  // namespace flowception::train
