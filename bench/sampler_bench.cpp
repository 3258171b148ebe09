// Cost of the core sampler around a model: the same sampling run with the closed-form oracles
// (so the model itself is nearly free), per solver and per frame size. Run with
//   build/release/bench/sampler_bench --benchmark_format=json --benchmark_out=sampler.json
// Counters: frames_per_s (generated frames per second), nfe (model calls per run).
#include <benchmark/benchmark.h>

#include <flowception/oracles.hpp>
#include <flowception/sampler.hpp>

namespace {

using namespace flowception;

template <class Stepper>
void BM_SampleGaussianOracle(benchmark::State& state) {
  const auto dim = static_cast<std::size_t>(state.range(0));
  const auto steps = static_cast<std::size_t>(state.range(1));
  const auto P = LengthDistribution::uniform({15, 20, 25, 30});
  LengthOracle<LinearKappa, GaussianContentOracle> model(P, LinearKappa{}, 3, true, TimeShift{},
                                                          GaussianContentOracle(0.5, 0.8));
  std::size_t frames = 0, calls = 0;
  for (auto _ : state) {
    SamplerOptions o{TimeGrid::end_dense(steps, 3.0)};
    o.frame_dim = dim;
    o.seed = 1;
    auto r = sample(model, LinearKappa{}, Stepper{}, o,
                    std::vector<Prompt<float>>(16, Prompt<float>::unconditional(3)));
    for (const auto& v : r.videos) frames += v.length();
    calls = r.model_calls;
    benchmark::DoNotOptimize(r.videos.front().frames.data());
  }
  state.counters["frames_per_s"] = benchmark::Counter(static_cast<double>(frames), benchmark::Counter::kIsRate);
  state.counters["nfe"] = static_cast<double>(calls);
}

BENCHMARK(BM_SampleGaussianOracle<Euler>)->Args({16, 50})->Args({768, 50})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SampleGaussianOracle<Heun>)->Args({16, 50})->Args({768, 50})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SampleGaussianOracle<RungeKutta4>)->Args({16, 50})->Args({768, 50})->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
