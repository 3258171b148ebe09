// Scheduler × solver × grid ablations with the closed-form oracles (method.md §2–§4): videos
// whose lengths follow P(L) uniform on {15, 20, 25, 30} (n_start 3, anchored) and whose frames
// are N(0.5, 0.8²) in 4 dimensions. Each benchmark samples 1000 videos once and reports
//   length_tv     total-variation distance of the sampled lengths from P(L)
//   mean_error    |sample mean − μ| over every generated value
//   var_error     |sample variance − σ²|
//   NFE           model evaluations per video (mean)
// The types (κ, solver, grid) are template parameters; N, the jump mode (0 Poisson, 1
// Bernoulli) and the insertion rule (0 learned, 1 random, 2 hierarchical, 3 left-to-right) are
// arguments. Prescribed rules take each video's target length from P(L) (250 videos per length).
//   build/release/bench/ablation_bench --benchmark_format=json --benchmark_out=ablation.json
#include <benchmark/benchmark.h>

#include <flowception/oracles.hpp>
#include <flowception/sampler.hpp>

#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace {

using namespace flowception;

struct CubicKappa : PolynomialKappa {
  CubicKappa() : PolynomialKappa(3.0) {}
};
static_assert(KappaScheduler<CubicKappa>);

struct UniformGrid {
  static TimeGrid make(std::size_t n) { return TimeGrid::uniform(n); }
};
struct EndDenseGrid {
  static TimeGrid make(std::size_t n) { return TimeGrid::end_dense(n, 3.0); }
};

constexpr double kMu = 0.5, kSigma = 0.8;
constexpr std::size_t kDim = 4, kVideos = 1000;

template <class Kappa, class Solver, class Grid>
void BM_Ablation(benchmark::State& state) {
  const auto N = static_cast<std::size_t>(state.range(0));
  const bool bernoulli = state.range(1) != 0;
  const auto rule = static_cast<InsertionRule>(state.range(2));
  const auto P = LengthDistribution::uniform({15, 20, 25, 30});
  LengthOracle<Kappa, GaussianContentOracle> model(P, Kappa{}, 3, true, TimeShift{}, GaussianContentOracle(kMu, kSigma));
  std::map<std::size_t, std::size_t> lengths;
  double sum = 0, sum2 = 0, values = 0, nfe = 0;
  for (auto _ : state) {
    lengths.clear();
    sum = sum2 = values = nfe = 0;
    // Learned rule: one batch. Prescribed rules: one batch per target length of P.
    const std::vector<std::size_t> targets =
        rule == InsertionRule::learned ? std::vector<std::size_t>{0} : P.lengths();
    for (std::size_t g = 0; g < targets.size(); ++g) {
      SamplerOptions o{Grid::make(N)};
      o.frame_dim = kDim;
      o.jump = bernoulli ? JumpMode::bernoulli : JumpMode::poisson;
      o.rule = rule;
      o.target_length = targets[g];
      o.max_frames = 256;
      o.seed = 11;
      const std::size_t count = kVideos / targets.size();
      o.video_index_offset = g * count;
      auto r = sample(model, Kappa{}, Solver{}, o, std::vector<Prompt<double>>(count, Prompt<double>::unconditional(3)));
      for (const auto& v : r.videos) {
        ++lengths[v.length()];
        nfe += static_cast<double>(v.nfe);
        for (double x : v.frames) {
          sum += x;
          sum2 += x * x;
          values += 1;
        }
      }
    }
  }
  const double mean = sum / values, var = sum2 / values - mean * mean;
  state.counters["length_tv"] = total_variation(P, lengths);
  state.counters["mean_error"] = std::fabs(mean - kMu);
  state.counters["var_error"] = std::fabs(var - kSigma * kSigma);
  state.counters["NFE"] = nfe / kVideos;
  state.counters["N"] = static_cast<double>(N);
}

// κ × solver × grid at N = 25 and 100, Poisson jumps, learned (oracle) rates.
void Steps(benchmark::internal::Benchmark* b) {
  for (int n : {25, 100}) b->Args({n, 0, 0});
  b->Unit(benchmark::kMillisecond)->Iterations(1);
}
// Jump mode × insertion rule at N = 100 (linear κ, Heun).
void ModesAndRules(benchmark::internal::Benchmark* b) {
  for (int mode : {0, 1})
    for (int rule : {0, 1, 2, 3}) b->Args({100, mode, rule});
  b->Unit(benchmark::kMillisecond)->Iterations(1);
}

#define FC_ABLATE(K, S, G) BENCHMARK(BM_Ablation<K, S, G>)->Apply(Steps)
#define FC_ABLATE_GRIDS(K, S) \
  FC_ABLATE(K, S, UniformGrid);  \
  FC_ABLATE(K, S, EndDenseGrid)
#define FC_ABLATE_SOLVERS(K)         \
  FC_ABLATE_GRIDS(K, Euler);         \
  FC_ABLATE_GRIDS(K, Heun);          \
  FC_ABLATE_GRIDS(K, RungeKutta4)
FC_ABLATE_SOLVERS(LinearKappa);
FC_ABLATE_SOLVERS(CubicKappa);
FC_ABLATE_SOLVERS(CosineKappa);

BENCHMARK(BM_Ablation<LinearKappa, Heun, UniformGrid>)->Name("BM_Rules<LinearKappa, Heun, UniformGrid>")->Apply(ModesAndRules);
BENCHMARK(BM_Ablation<LinearKappa, Heun, EndDenseGrid>)->Name("BM_Rules<LinearKappa, Heun, EndDenseGrid>")->Apply(ModesAndRules);

}  // namespace

BENCHMARK_MAIN();
