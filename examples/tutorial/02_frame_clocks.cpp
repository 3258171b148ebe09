// Tutorial step 2 (docs/tutorial.md): per-frame clocks. Every frame runs its own flow-matching
// ODE from noise (t = 0) to data (t = 1); a frame inserted at global time τ has model time
// t = s − τ, so late frames are younger and the run ends when the last one reaches t = 1 (§1, §4).
// The content comes from the Gaussian oracle, whose exact velocity turns N(0, 1) noise into
// N(μ, σ²) frames: every frame must end with that law, whenever it was inserted.
//
//   02_frame_clocks [--samples 1000] [--steps 50] [--seed 1]
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <flowception/oracles.hpp>
#include <flowception/sampler.hpp>

#include "tutorial_args.hpp"

namespace fc = flowception;

namespace {

constexpr double kMean = 0.5, kStd = 0.2;
constexpr std::size_t kStart = 3, kDim = 16;
using Oracle = fc::LengthOracle<fc::LinearKappa, fc::GaussianContentOracle>;

Oracle make_oracle() {
  return Oracle(fc::LengthDistribution::uniform({15, 20, 25, 30}), fc::LinearKappa{}, kStart, /*anchored=*/true,
                fc::TimeShift{}, fc::GaussianContentOracle(kMean, kStd));
}

/// A model that records the model time of every frame it is shown, then lets the oracle answer.
/// Any object with evaluate(in, out) is a VelocityModel: wrapping one is how you instrument it.
struct ClockRecorder {
  Oracle oracle = make_oracle();
  std::vector<std::vector<double>> times;  // per call: the times of the frames of video 0, in order
  void evaluate(const fc::ModelInput<fc::HostFrames<float>>& in, fc::ModelOutput<fc::HostFrames<float>>& out) {
    times.emplace_back(in.times.begin() + static_cast<std::ptrdiff_t>(in.offsets[0]),
                       in.times.begin() + static_cast<std::ptrdiff_t>(in.offsets[1]));
    oracle.evaluate(in, out);
  }
};

/// One character per frame: the tenths digit of its model time t, '*' once the frame is clean.
std::string clock_strip(const std::vector<double>& t) {
  std::string s;
  for (double x : t) s += x >= 1.0 ? '*' : static_cast<char>('0' + std::min(9, static_cast<int>(x * 10.0 + 1e-9)));
  return s;
}

struct Moments {
  std::size_t frames = 0;
  double sum = 0, sum2 = 0, n = 0;
  void add(const float* x) {
    ++frames;
    for (std::size_t e = 0; e < kDim; ++e) {
      sum += x[e];
      sum2 += static_cast<double>(x[e]) * x[e];
      n += 1;
    }
  }
  double mean() const { return sum / n; }
  double stddev() const { return std::sqrt(sum2 / n - mean() * mean()); }
};

}  // namespace

int main(int argc, char** argv) {
  return tutorial::run("02_frame_clocks", [&] {
    tutorial::Args args(argc, argv,
                        "usage: 02_frame_clocks [--samples M (default 1000)] [--steps N (default 50)] [--seed S (default 1)]");
    const std::size_t samples = args.count("samples", 1000, 1, 1000000);
    const std::size_t N = args.count("steps", 50, 2, 100000);
    const std::uint64_t seed = args.count("seed", 1, 0, 1u << 30);
    args.done();

    fc::SamplerOptions o{fc::TimeGrid::uniform(N)};
    o.frame_dim = kDim;
    o.seed = seed;

    // 1. One video's clocks. With Euler there is one model call per global step; the observer
    //    reports the clock s of each step.
    std::printf("1. The clocks of one video (uniform grid, N = %zu; a digit is the tenths of t, * is t = 1)\n", N);
    ClockRecorder recorder;
    std::vector<double> clock;
    auto observer = [&](const fc::StepReport& r) { clock.push_back(r.s); };
    const auto one = fc::sample(recorder, fc::LinearKappa{}, fc::Euler{}, o,
                                std::vector<fc::Prompt<float>>{fc::Prompt<float>::unconditional(kStart)}, observer);
    const std::size_t every = std::max<std::size_t>(1, N / 5);
    for (std::size_t m = 0; m < recorder.times.size(); m += every)
      std::printf("   s = %4.2f  %2zu frames  %s\n", clock[m], recorder.times[m].size(), clock_strip(recorder.times[m]).c_str());
    // The rule behind the strips: t = s − τ (clipped to [0, 1]) where τ is a grid time, the one
    // at which the frame was inserted (0 for the start frames).
    double worst = 0;
    for (std::size_t m = 0; m < recorder.times.size(); ++m)
      for (double t : recorder.times[m]) {
        if (t >= 1.0) continue;
        const double tau = clock[m] - t;  // must be one of the grid's times
        double nearest = 1e9;
        for (std::size_t k = 0; k <= N; ++k) nearest = std::min(nearest, std::fabs(tau - o.grid[k]));
        worst = std::max(worst, nearest);
      }
    std::printf("   %zu frames, %zu model calls, %zu global steps (at most 2N = %zu); largest |t - (s - tau)| = %.1e\n",
                one.videos[0].length(), one.model_calls, one.steps, 2 * N, worst);

    // 2. Content: the law of the final frames, grouped by when they were inserted.
    std::printf("\n2. %zu videos: final frame values by insertion time (exact law: mean %.2f, std %.2f)\n", samples, kMean, kStd);
    std::vector<fc::Prompt<float>> prompts(samples, fc::Prompt<float>::unconditional(kStart));
    auto oracle = make_oracle();
    const char* names[4] = {"start frames", "s in (0, 1/3]", "s in (1/3, 2/3]", "s in (2/3, 1)"};
    for (const bool rk4 : {false, true}) {
      const auto r = rk4 ? fc::sample(oracle, fc::LinearKappa{}, fc::RungeKutta4{}, o, prompts)
                         : fc::sample(oracle, fc::LinearKappa{}, fc::Euler{}, o, prompts);
      Moments by[4];
      for (const auto& v : r.videos)
        for (std::size_t f = 0; f < v.length(); ++f) {
          const std::size_t m = v.insertion_step[f];
          const double tau = o.grid[m];
          const std::size_t g = m == 0 ? 0 : tau <= 1.0 / 3 ? 1 : tau <= 2.0 / 3 ? 2 : 3;
          by[g].add(&v.frames[f * kDim]);
        }
      std::printf("   %s (%zu model calls)\n", rk4 ? "RK4 solver" : "Euler solver", r.model_calls);
      std::printf("   %-16s %7s %7s %7s\n", "inserted at", "frames", "mean", "std");
      for (int g = 0; g < 4; ++g)
        std::printf("   %-16s %7zu %7.4f %7.4f\n", names[g], by[g].frames, by[g].mean(), by[g].stddev());
    }
  });
}
