// Training cost of Flowception against the §7 baselines, measured in one run on the same videos:
// one full training step (sample building, packing, DiT forward and backward, loss, AdamW, EMA)
// for videos of 16, 32 and 64 frames of 3×16×16 (17 tokens per frame) with the tiny and S DiT.
// Flowception is measured with τ_g over its whole range [0, τ_max) and over [0, 1) only, where
// the paper's "one third of the attention FLOPs" argument lives (method.md §3).
//   build/release/bench/training_cost_bench --benchmark_format=json --benchmark_out=training_cost.json
// Counters per step: GFLOPs_expected (forward + backward FLOPs averaged over 512 drawn samples,
// from the shapes alone), attention_share (of those), GFLOPs_measured (the timed steps),
// frames (visible frames per timed step), GFLOP/s. Ratios are formed by bench/plot_benchmarks.py.
#include <benchmark/benchmark.h>

#include <flowception/baselines.hpp>
#include <flowception/train/trainer.hpp>

#include <string>
#include <vector>

namespace {

using namespace flowception;

struct FixedLengthVideos {
  std::size_t length = 16;
  std::size_t size() const { return 8; }
  data::Video video(std::size_t i) const {
    data::Video v{3, 16, 16, {}, -1};
    random::Stream rng(5, i);
    v.frames.resize(length * 3 * 16 * 16);
    for (auto& x : v.frames) x = static_cast<float>(rng.uniform());
    return v;
  }
};

dit::DitConfig config(int which, bool causal) {
  auto c = which == 0 ? dit::DitConfig::tiny(3, 16, 16, 4) : dit::DitConfig::small(3, 16, 16, 4);
  c.causal = causal;
  return c;
}

enum Method { kFlowception, kFlowceptionBelowOne, kFullSequence, kAutoregressive, kAutoregressiveCausal };

template <class Builder>
void run_training_step(benchmark::State& state, Builder builder, bool causal = false) {
  const int which = static_cast<int>(state.range(0));
  FixedLengthVideos data{static_cast<std::size_t>(state.range(1))};
  dit::DiT<float> model(config(which, causal), 1);
  // Expected FLOPs per step: the DiT's count from the shapes of 512 drawn samples.
  FlopCount expected;
  const int draws = 512;
  for (int i = 0; i < draws; ++i) {
    const auto v = data.video(static_cast<std::size_t>(i) % data.size());
    std::vector<TrainingSample<float>> s{builder.template sample<float>(v.frames, v.frame_size(), static_cast<std::uint64_t>(i))};
    const auto batch = pack(s);
    const auto f = model.planned_flops({batch.times, batch.kinds, batch.offsets, batch.conditions, {}});
    expected += f.forward + f.backward;
  }
  train::TrainerOptions to;
  to.batch_videos = 1;
  to.seed = 3;
  train::Trainer<FixedLengthVideos, Builder> trainer(model, data, builder, to);
  trainer.step();  // warm-up: workspaces allocated once
  const FlopCount before = trainer.flops_done();
  double frames = 0;
  for (auto _ : state) frames += static_cast<double>(trainer.step().frames);
  const double n = static_cast<double>(state.iterations());
  const double measured = (trainer.flops_done().total() - before.total()) / n;
  state.counters["GFLOPs_expected"] = expected.total() / draws * 1e-9;
  state.counters["attention_share"] = expected.attention / expected.total();
  state.counters["GFLOPs_measured"] = measured * 1e-9;
  state.counters["frames"] = frames / n;
  state.counters["GFLOP/s"] = benchmark::Counter(measured * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(which == 0 ? "tiny" : "S") + " L=" + std::to_string(data.length));
}

void BM_TrainStep(benchmark::State& state, Method method) {
  TrainingSamplerOptions so;
  so.seed = 7;
  BaselineTrainingOptions bo;
  bo.seed = 7;
  switch (method) {
    case kFlowception: return run_training_step(state, ExtendedTimeSampler<LinearKappa>(LinearKappa{}, so));
    case kFlowceptionBelowOne:
      return run_training_step(state, ExtendedTimeSampler<LinearKappa, UniformBelowOneTau>(LinearKappa{}, so));
    case kFullSequence: return run_training_step(state, FullSequenceTrainingSampler<>(bo));
    case kAutoregressive: return run_training_step(state, AutoregressiveTrainingSampler<>(bo));
    case kAutoregressiveCausal: return run_training_step(state, AutoregressiveTrainingSampler<>(bo), true);
  }
}

// Steps of random length (Flowception's depend on τ_g) need many iterations for a stable mean.
void Sizes(benchmark::internal::Benchmark* b) {
  for (int which : {0, 1})
    for (int L : {16, 32, 64}) b->Args({which, L});
  b->Unit(benchmark::kMillisecond)->Iterations(24);
}

BENCHMARK_CAPTURE(BM_TrainStep, flowception, kFlowception)->Apply(Sizes);
BENCHMARK_CAPTURE(BM_TrainStep, flowception_tau_below_1, kFlowceptionBelowOne)->Apply(Sizes);
BENCHMARK_CAPTURE(BM_TrainStep, full_sequence, kFullSequence)->Apply(Sizes);
BENCHMARK_CAPTURE(BM_TrainStep, autoregressive, kAutoregressive)->Apply(Sizes);
BENCHMARK_CAPTURE(BM_TrainStep, autoregressive_causal, kAutoregressiveCausal)->Apply(Sizes);

}  // namespace

BENCHMARK_MAIN();
