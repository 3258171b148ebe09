// Sampling cost per generated video against its length for Flowception and the §7 baselines,
// with the same tiny DiT (3×16×16 frames, 17 tokens per frame), solver (Euler) and N = 20 steps:
//  - Flowception: the coupled ODE–jump sampler from 3 start frames. So that every method makes
//    videos of the same length, frames are placed by the prescribed random rule with the target
//    length; when they appear follows κ exactly as with learned rates, so the cost is the same;
//  - full-sequence: L frames flow together for N steps;
//  - autoregressive: L rounds of N steps, round k over k frames (bidirectional and causal).
//   build/release/bench/sampling_cost_bench --benchmark_format=json --benchmark_out=sampling_cost.json
// Counters per video: NFE (model calls), GFLOPs (model FLOPs), frames; time is the wall time.
#include <benchmark/benchmark.h>

#include <flowception/baselines.hpp>
#include <flowception/dit/model.hpp>
#include <flowception/sampler.hpp>

#include <string>
#include <vector>

namespace {

using namespace flowception;

constexpr std::size_t kSteps = 20;

dit::DiT<float> make_model(bool causal) {
  auto c = dit::DitConfig::tiny(3, 16, 16, 4);
  c.causal = causal;
  dit::DiT<float> m(c, 1);
  random::Stream rng(1, 2);
  for (auto& p : m.parameters()) p = static_cast<float>(0.02 * rng.normal());
  return m;
}

void report(benchmark::State& state, const SampleResult<float>& r, std::size_t L) {
  state.counters["NFE"] = static_cast<double>(r.model_calls);
  state.counters["GFLOPs"] = r.flops.total() * 1e-9;
  state.counters["attention_share"] = r.flops.attention / r.flops.total();
  state.counters["frames"] = static_cast<double>(r.videos.at(0).length());
  state.SetLabel("L=" + std::to_string(L));
}

void BM_SampleFlowception(benchmark::State& state) {
  const auto L = static_cast<std::size_t>(state.range(0));
  auto model = make_model(false);
  SamplerOptions o{TimeGrid::uniform(kSteps)};
  o.frame_dim = model.config().frame_dim();
  o.rule = InsertionRule::random_gap;
  o.target_length = L;
  o.max_frames = L;
  SampleResult<float> r;
  for (auto _ : state)
    r = sample(model, LinearKappa{}, Euler{}, o, std::vector<Prompt<float>>{Prompt<float>::unconditional(3)});
  report(state, r, L);
}

void BM_SampleFullSequence(benchmark::State& state) {
  const auto L = static_cast<std::size_t>(state.range(0));
  auto model = make_model(false);
  BaselineSamplerOptions o{TimeGrid::uniform(kSteps)};
  o.frame_dim = model.config().frame_dim();
  SampleResult<float> r;
  for (auto _ : state)
    r = sample_full_sequence(model, Euler{}, o, std::vector<Prompt<float>>{Prompt<float>::unconditional(L)});
  report(state, r, L);
}

void BM_SampleAutoregressive(benchmark::State& state, bool causal) {
  const auto L = static_cast<std::size_t>(state.range(0));
  auto model = make_model(causal);
  BaselineSamplerOptions o{TimeGrid::uniform(kSteps)};
  o.frame_dim = model.config().frame_dim();
  SampleResult<float> r;
  for (auto _ : state)
    r = sample_autoregressive(model, Euler{}, o, std::vector<Prompt<float>>{Prompt<float>{}}, std::vector<std::size_t>{L});
  report(state, r, L);
}

void Lengths(benchmark::internal::Benchmark* b) {
  for (int L : {8, 16, 32, 64}) b->Arg(L);
  b->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(3)->ReportAggregatesOnly(true);
}

BENCHMARK(BM_SampleFlowception)->Apply(Lengths);
BENCHMARK(BM_SampleFullSequence)->Apply(Lengths);
BENCHMARK_CAPTURE(BM_SampleAutoregressive, bidirectional, false)->Apply(Lengths);
BENCHMARK_CAPTURE(BM_SampleAutoregressive, causal, true)->Apply(Lengths);

}  // namespace

BENCHMARK_MAIN();
