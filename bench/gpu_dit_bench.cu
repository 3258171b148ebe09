// The CUDA DiT on a GPU (nvcc builds; needs a device). In one run:
//   BM_GpuDitForward / BM_GpuDitForwardBackward   S and B at 1024 and 4096 tokens (pooled rate head,
//       3×32×32 frames in 4×4 patches: 64 tokens a frame, one video), products in FP32, TF32, BF16
//   BM_GpuLinearLayers / BM_CublasLtSameShapes     the linear layers of one forward pass through the
//       model's linear_forward (bias epilogue) against bare cuBLASLt products of the same shapes
//   BM_GpuAttention                                the online-softmax attention kernel alone
//   BM_GpuSampleRing512                            512 ring videos, 100 steps (end_dense:3, Euler), with
//       the committed ring checkpoint (FLOWCEPTION_RING_CHECKPOINT, default assets/ring_tiny.safetensors)
// Run:  build/release/bench/gpu_dit_bench --benchmark_format=json --benchmark_out=gpu_dit.json
// Counters: GFLOP/s; bf16_peak_fraction = GFLOP/s / 989 TFLOP/s (H100/H200 SXM dense BF16);
// products, fused_bias, fused_gelu and fallbacks (with each reason: fallback_<reason>) over the
// whole benchmark, from gpu::product_counts(), reset at its start.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <flowception/algebra/thrust_algebra.hpp>
#include <flowception/dit/thrust_backend.hpp>
#include <flowception/sampler.hpp>
#include <flowception/train/checkpoint.hpp>

namespace {

using namespace flowception;
using namespace flowception::dit;
using B = ThrustBackend;

constexpr double kBf16PeakGflops = 989e3;

DitConfig config(int which) {
  auto c = which == 0 ? DitConfig::small(3, 32, 32, 4) : DitConfig::base(3, 32, 32, 4);
  c.rate_head = RateHead::pooled;
  c.validate();
  return c;
}

const char* mode_name(int m) { return m == 0 ? "fp32" : m == 1 ? "tf32" : "bf16"; }

struct Setup {
  DiT<float, B> model;
  thrust::device_vector<float> frames, velocity, dvel;
  std::vector<double> times, log_rate, dlog;
  std::vector<FrameKind> kinds;
  std::vector<std::size_t> offsets;
  Setup(int which, std::size_t tokens, int mode) : model(config(which), 1) {
    gpu::Context::get().math = mode == 0 ? gpu::MathMode::fp32 : mode == 1 ? gpu::MathMode::tf32 : gpu::MathMode::bf16;
    const auto& cfg = model.config();
    const std::size_t n_frames = tokens / cfg.tokens_per_frame();
    random::Stream rng(1, 2);
    auto w = model.host_parameters();
    for (auto& p : w) p = static_cast<float>(0.02 * rng.normal());
    model.set_parameters(w);
    std::vector<float> f(n_frames * cfg.frame_dim());
    for (auto& x : f) x = static_cast<float>(rng.normal());
    frames = thrust::device_vector<float>(f.begin(), f.end());
    velocity.resize(f.size());
    dvel.assign(f.size(), 1e-3f);
    times.resize(n_frames);
    for (auto& t : times) t = rng.uniform();
    log_rate.resize(n_frames);
    dlog.assign(n_frames, 1e-3);
    kinds.assign(n_frames, FrameKind::generated);
    offsets = {0, n_frames};
  }
  ~Setup() { gpu::Context::get().math = gpu::MathMode::fp32; }
  DitBatch batch() const { return {times, kinds, offsets, {}, {}}; }
  void forward() { model.forward(B::raw(frames), batch(), B::raw(velocity), log_rate.data()); }
  void backward() {
    model.backward(B::raw(dvel), dlog.data());
    B::synchronize();
  }
};

/// The products of this benchmark (counters reset by ProductCount's constructor).
struct ProductCount {
  ProductCount() { gpu::ProductCounters::get().reset(); }
  void report(benchmark::State& state) const {
    const auto c = gpu::product_counts();
    state.counters["products"] = static_cast<double>(c.products);
    state.counters["fused_bias"] = static_cast<double>(c.fused_bias);
    state.counters["fused_gelu"] = static_cast<double>(c.fused_gelu);
    state.counters["fallbacks"] = static_cast<double>(c.fallbacks());
    state.counters["fallback_bias_alignment"] = static_cast<double>(c.fallback_bias_alignment);
    state.counters["fallback_aux_alignment"] = static_cast<double>(c.fallback_aux_alignment);
    state.counters["fallback_aux_ld"] = static_cast<double>(c.fallback_aux_ld);
    state.counters["fallback_no_algorithm"] = static_cast<double>(c.fallback_no_algorithm);
    state.counters["fallback_not_supported"] = static_cast<double>(c.fallback_not_supported);
    state.counters["descriptor_builds"] = static_cast<double>(c.descriptor_builds);
  }
};

void report(benchmark::State& state, double flops, std::size_t tokens) {
  state.counters["GFLOPs"] = flops * 1e-9;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["bf16_peak_fraction"] =
      benchmark::Counter(flops * 1e-9 / kBf16PeakGflops, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens"] = static_cast<double>(tokens);
}

void BM_GpuDitForward(benchmark::State& state) {
  const ProductCount products;
  Setup s(static_cast<int>(state.range(0)), static_cast<std::size_t>(state.range(1)), static_cast<int>(state.range(2)));
  s.forward();  // workspaces allocated once
  for (auto _ : state) s.forward();  // the log-rate download synchronises
  report(state, s.model.forward_flops().total(), s.model.tokens());
  products.report(state);
  state.SetLabel(s.model.config().name + std::string(" ") + mode_name(static_cast<int>(state.range(2))));
}

void BM_GpuDitForwardBackward(benchmark::State& state) {
  const ProductCount products;
  Setup s(static_cast<int>(state.range(0)), static_cast<std::size_t>(state.range(1)), static_cast<int>(state.range(2)));
  s.forward();
  s.backward();
  for (auto _ : state) {
    s.forward();
    s.backward();
  }
  report(state, s.model.forward_flops().total() + s.model.backward_flops().total(), s.model.tokens());
  products.report(state);
  state.SetLabel(s.model.config().name + std::string(" ") + mode_name(static_cast<int>(state.range(2))));
}

/// The linear shapes of one forward pass's blocks: (rows, in, out) for qkv, proj, fc1, fc2.
std::vector<std::array<std::ptrdiff_t, 3>> block_shapes(const DitConfig& c, std::ptrdiff_t n) {
  const auto H = static_cast<std::ptrdiff_t>(c.width_hidden), M = static_cast<std::ptrdiff_t>(c.mlp_hidden());
  std::vector<std::array<std::ptrdiff_t, 3>> out;
  for (std::size_t l = 0; l < c.depth; ++l)
    for (auto s : {std::array{n, H, 3 * H}, std::array{n, H, H}, std::array{n, H, M}, std::array{n, M, H}})
      out.push_back(s);
  return out;
}

struct LinearBuffers {
  thrust::device_vector<float> x, w, b, y;
  LinearBuffers(const std::vector<std::array<std::ptrdiff_t, 3>>& shapes) {
    std::ptrdiff_t mx = 0, mw = 0, my = 0;
    for (auto [n, in, out] : shapes) {
      mx = std::max(mx, n * in);
      mw = std::max(mw, in * out);
      my = std::max(my, n * out);
    }
    x.assign(static_cast<std::size_t>(mx), 0.01f);
    w.assign(static_cast<std::size_t>(mw), 0.02f);
    b.assign(static_cast<std::size_t>(my), 0.0f);
    y.assign(static_cast<std::size_t>(my), 0.0f);
  }
};

void BM_GpuLinearLayers(benchmark::State& state) {
  const ProductCount products;
  gpu::Context::get().math = static_cast<gpu::MathMode>(state.range(2));
  const auto shapes = block_shapes(config(static_cast<int>(state.range(0))), state.range(1));
  LinearBuffers buf(shapes);
  double flops = 0;
  for (auto [n, in, out] : shapes) flops += 2.0 * n * in * out;
  for (auto _ : state) {
    for (auto [n, in, out] : shapes)
      layers::linear_forward<B>(n, in, out, B::raw(buf.x), B::raw(buf.w), B::raw(buf.b), B::raw(buf.y));
    B::synchronize();
  }
  gpu::Context::get().math = gpu::MathMode::fp32;
  report(state, flops, static_cast<std::size_t>(state.range(1)));
  products.report(state);
}

void BM_CublasLtSameShapes(benchmark::State& state) {
  const ProductCount products;
  gpu::Context::get().math = static_cast<gpu::MathMode>(state.range(2));
  const auto shapes = block_shapes(config(static_cast<int>(state.range(0))), state.range(1));
  LinearBuffers buf(shapes);
  double flops = 0;
  for (auto [n, in, out] : shapes) flops += 2.0 * n * in * out;
  for (auto _ : state) {
    for (auto [n, in, out] : shapes)
      gpu::gemm(false, false, n, out, in, 1.0f, B::raw(buf.x), in, B::raw(buf.w), out, 0.0f, B::raw(buf.y), out);
    B::synchronize();
  }
  gpu::Context::get().math = gpu::MathMode::fp32;
  report(state, flops, static_cast<std::size_t>(state.range(1)));
  products.report(state);
}

void BM_GpuAttention(benchmark::State& state) {
  const auto cfg = config(static_cast<int>(state.range(0)));
  const std::ptrdiff_t n = state.range(1), W = static_cast<std::ptrdiff_t>(cfg.width_hidden);
  layers::AttentionShape<float> sh{n, W, static_cast<std::ptrdiff_t>(cfg.heads), static_cast<std::ptrdiff_t>(cfg.head_dim())};
  thrust::device_vector<float> qkv(static_cast<std::size_t>(n * 3 * W), 0.01f), out(static_cast<std::size_t>(n * W)),
      lse(static_cast<std::size_t>(n) * cfg.heads);
  std::vector<std::int64_t> range(static_cast<std::size_t>(2 * n));
  for (std::ptrdiff_t r = 0; r < n; ++r) range[2 * r + 1] = n;  // one video, full attention
  thrust::device_vector<std::int64_t> keys(range.begin(), range.end());
  for (auto _ : state) {
    layers::attention_forward_rows<B>(sh, B::raw(keys), B::raw(qkv), B::raw(out), B::raw(lse));
    B::synchronize();
  }
  report(state, 4.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(W),
         static_cast<std::size_t>(n));
}

void BM_GpuSampleRing512(benchmark::State& state) {
  const ProductCount products;
  const char* env = std::getenv("FLOWCEPTION_RING_CHECKPOINT");
  const std::string path = env ? env : "assets/ring_tiny.safetensors";
  auto model = train::load_model<B>(path, true);
  SamplerOptions o{TimeGrid::end_dense(100, 3.0)};
  o.frame_dim = model.config().frame_dim();
  o.max_frames = 64;
  o.cap_policy = CapPolicy::truncate;
  std::size_t frames = 0;
  for (auto _ : state) {
    auto r = sample(model, LinearKappa{}, Euler{}, o, std::vector<Prompt<float>>(512, Prompt<float>::unconditional(3)),
                    ThrustAlgebra<float>{});
    frames = 0;
    for (const auto& v : r.videos) frames += v.length();
  }
  products.report(state);
  state.counters["videos"] = 512;
  state.counters["frames"] = static_cast<double>(frames);
}

void dit_args(benchmark::internal::Benchmark* b) {
  for (int model : {0, 1})
    for (int tokens : {1024, 4096})
      for (int mode : {0, 1, 2}) b->Args({model, tokens, mode});
  b->ArgNames({"model(0=S,1=B)", "tokens", "mode(0=fp32,1=tf32,2=bf16)"})->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(BM_GpuDitForward)->Apply(dit_args);
BENCHMARK(BM_GpuDitForwardBackward)->Apply(dit_args);
BENCHMARK(BM_GpuLinearLayers)->Apply(dit_args);
BENCHMARK(BM_CublasLtSameShapes)->Apply(dit_args);
BENCHMARK(BM_GpuAttention)->Args({0, 1024})->Args({0, 4096})->Args({1, 4096})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_GpuSampleRing512)->Iterations(1)->Unit(benchmark::kSecond);

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "gpu_dit_bench: no CUDA device; nothing measured\n");
    return 77;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
