// DiT speed on the CPU: forward and forward+backward of the tiny and S configs at about 256
// and 1024 tokens, and, in the same run, Eigen products of exactly the linear-layer shapes of
// one forward pass, so the fraction of GEMM speed the model reaches is visible. Run with
//   build/release/bench/dit_bench --benchmark_format=json --benchmark_out=dit.json
// Counters: GFLOPs (work per iteration), GFLOP/s (rate), tokens.
#include <benchmark/benchmark.h>

#include <flowception/dit/model.hpp>

#include <Eigen/Core>
#include <vector>

namespace {

using namespace flowception;
using namespace flowception::dit;

// Frames of 3×32×32 in 4×4 patches: 64 patch tokens + 1 rate token per frame.
DitConfig config(int which) {
  return which == 0 ? DitConfig::tiny(3, 32, 32, 4) : DitConfig::small(3, 32, 32, 4);
}

struct Setup {
  DiT<float> model;
  std::vector<float> frames, velocity, dvel;
  std::vector<double> times, log_rate, dlog;
  std::vector<FrameKind> kinds;
  std::vector<std::size_t> offsets;
  Setup(int which, std::size_t n_frames) : model(config(which), 1) {
    const auto& cfg = model.config();
    random::Stream rng(1, 2);
    for (auto& p : model.parameters()) p = static_cast<float>(0.02 * rng.normal());
    frames.resize(n_frames * cfg.frame_dim());
    for (auto& x : frames) x = static_cast<float>(rng.normal());
    velocity.resize(frames.size());
    dvel.assign(frames.size(), 1e-3f);
    times.resize(n_frames);
    for (auto& t : times) t = rng.uniform();
    log_rate.resize(n_frames);
    dlog.assign(n_frames, 1e-3);
    kinds.assign(n_frames, FrameKind::generated);
    offsets = {0, n_frames};
  }
  DitBatch batch() const { return {times, kinds, offsets, {}, {}}; }
  void forward() { model.forward(frames.data(), batch(), velocity.data(), log_rate.data()); }
};

void report(benchmark::State& state, double flops, std::size_t tokens) {
  state.counters["GFLOPs"] = flops * 1e-9;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens"] = static_cast<double>(tokens);
}

void BM_DitForward(benchmark::State& state) {
  Setup s(static_cast<int>(state.range(0)), static_cast<std::size_t>(state.range(1)));
  s.forward();  // warm-up: workspaces allocated once
  for (auto _ : state) {
    s.forward();
    benchmark::DoNotOptimize(s.velocity.data());
  }
  report(state, s.model.forward_flops().total(), s.model.tokens());
  state.SetLabel(s.model.config().name);
}

void BM_DitForwardBackward(benchmark::State& state) {
  Setup s(static_cast<int>(state.range(0)), static_cast<std::size_t>(state.range(1)));
  s.forward();
  s.model.backward(s.dvel.data(), s.dlog.data());
  for (auto _ : state) {
    s.forward();
    s.model.backward(s.dvel.data(), s.dlog.data());
    benchmark::DoNotOptimize(s.model.gradients().data());
  }
  report(state, s.model.forward_flops().total() + s.model.backward_flops().total(), s.model.tokens());
  state.SetLabel(s.model.config().name);
}

/// The GEMMs of one forward pass's linear layers, with Eigen directly, same shapes.
void BM_EigenGemmSameShapes(benchmark::State& state) {
  const auto cfg = config(static_cast<int>(state.range(0)));
  const auto n_frames = static_cast<Eigen::Index>(state.range(1));
  const Eigen::Index N = n_frames * static_cast<Eigen::Index>(cfg.tokens_per_frame());
  const Eigen::Index H = static_cast<Eigen::Index>(cfg.width_hidden), M = static_cast<Eigen::Index>(cfg.mlp_hidden());
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  struct Shape {
    Eigen::Index m, k, n;
  };
  std::vector<Shape> shapes;
  for (std::size_t l = 0; l < cfg.depth; ++l) {
    shapes.push_back({N, H, 3 * H});
    shapes.push_back({N, H, H});
    shapes.push_back({N, H, M});
    shapes.push_back({N, M, H});
  }
  std::vector<Mat> A, B, C;
  double flops = 0;
  for (auto s : shapes) {
    A.push_back(Mat::Random(s.m, s.k));
    B.push_back(Mat::Random(s.k, s.n));
    C.push_back(Mat::Zero(s.m, s.n));
    flops += 2.0 * static_cast<double>(s.m * s.k * s.n);
  }
  for (auto _ : state) {
    for (std::size_t i = 0; i < shapes.size(); ++i) C[i].noalias() = A[i] * B[i];
    benchmark::DoNotOptimize(C.back().data());
  }
  report(state, flops, static_cast<std::size_t>(N));
  state.SetLabel(cfg.name);
}

// range(0): 0 = tiny, 1 = S; range(1): frames (4 → 260 tokens, 16 → 1040 tokens).
BENCHMARK(BM_EigenGemmSameShapes)->Args({0, 4})->Args({0, 16})->Args({1, 4})->Args({1, 16})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_DitForward)->Args({0, 4})->Args({0, 16})->Args({1, 4})->Args({1, 16})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_DitForwardBackward)->Args({0, 4})->Args({0, 16})->Args({1, 4})->Args({1, 16})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
