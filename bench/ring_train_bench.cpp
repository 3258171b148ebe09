// Training throughput on the rotating ring: one whole Trainer step (drawing and building the
// training samples, packing, forward, loss, backward, clipping, AdamW, EMA) with the ring recipe
// of assets/README.md at batch 64, 256 and 512, beside the earlier design (a rate token per frame:
// two tokens per 3×3 frame, the 3-D rotary split, linear κ). Counters: videos/s, GFLOP/s, tokens
// per step. Each configuration runs with one model (threads inside its products) and with one
// replica per thread (each thread a share of the batch). Threads follow OMP_NUM_THREADS:
//   OMP_NUM_THREADS=1 build/release/bench/ring_train_bench --benchmark_format=json --benchmark_out=ring1.json
//   OMP_NUM_THREADS=2 build/release/bench/ring_train_bench --benchmark_format=json --benchmark_out=ring2.json
#include <benchmark/benchmark.h>

#include <flowception/data/rotating_ring.hpp>
#include <flowception/schedule/any_kappa.hpp>
#include <flowception/train/trainer.hpp>

namespace {

using namespace flowception;

struct Ring {
  data::RotatingRing ring{0};
  std::size_t size() const { return 1000000; }
  data::Video video(std::size_t i) const { return ring.video(i); }
};

// range(0): 0 = the ring recipe (pooled, length-aware head and conditioning, all rotary dimensions
// on the frame axis, κ = s⁵); 1 = a rate token per frame, 3-D rotary split, linear κ.
// range(1): videos per step; range(2): model replicas (0: one per thread).
void BM_RingTrainStep(benchmark::State& state) {
  const bool recipe = state.range(0) == 0;
  auto cfg = dit::DitConfig::tiny(3, 3, 3, 3);
  if (recipe) {
    cfg.rate_head = dit::RateHead::pooled;
    cfg.length_aware = cfg.length_conditioning = true;
    cfg.rope_frame_dims = cfg.head_dim();
  }
  cfg.validate();
  dit::DiT<float> model(cfg, 1);
  const Ring data;
  train::TrainerOptions to;
  to.batch_videos = static_cast<std::size_t>(state.range(1));
  to.replicas = state.range(2) > 0 ? static_cast<std::size_t>(state.range(2))
                                   : static_cast<std::size_t>(dit::CpuBackend::threads());
  to.lr = train::LrSchedule::constant(1e-3, 200);
  TrainingSamplerOptions so;
  so.seed = 1;
  train::Trainer<Ring, ExtendedTimeSampler<AnyKappa>> trainer(
      model, data, ExtendedTimeSampler<AnyKappa>(recipe ? AnyKappa::from_name("poly:5") : AnyKappa::from_name("linear"), so),
      to);
  for (int i = 0; i < 3; ++i) trainer.step();  // warm-up: workspaces sized
  double flops = 0, tokens = 0, steps = 0;
  for (auto _ : state) {
    const auto s = trainer.step();
    flops += s.flops.total();
    tokens += static_cast<double>(s.tokens);
    steps += 1;
  }
  state.counters["videos/s"] =
      benchmark::Counter(static_cast<double>(to.batch_videos), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsRate);
  state.counters["tokens"] = tokens / steps;
  state.counters["threads"] = dit::CpuBackend::threads();
  state.counters["replicas"] = static_cast<double>(to.replicas);
  state.SetLabel(recipe ? "recipe (pooled, kappa s^5)" : "rate token, linear kappa");
}

BENCHMARK(BM_RingTrainStep)
    ->ArgsProduct({{0, 1}, {64, 256, 512}, {1, 0}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3.0);

}  // namespace

BENCHMARK_MAIN();
