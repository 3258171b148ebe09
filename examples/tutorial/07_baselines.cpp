// Tutorial step 7 (docs/tutorial.md): Flowception against the two baselines of §7, full-sequence
// and autoregressive flow matching, driven by the same exact model (the Gaussian content oracle,
// with the length oracle's rates for Flowception) so that every difference comes from the
// sampling scheme. A wrapper counts what each scheme asks of the model: frame evaluations (rows
// of all calls; the cost of the per-frame layers) and attention pairs (Σ n² over the videos of
// each call; the cost of attention).
//
//   07_baselines [--samples 1000] [--steps 50] [--seed 1]
#include <cmath>
#include <cstdio>
#include <map>
#include <vector>

#include <flowception/baselines.hpp>
#include <flowception/oracles.hpp>
#include <flowception/random/stream.hpp>
#include <flowception/sampler.hpp>

#include "tutorial_args.hpp"

namespace fc = flowception;

namespace {

constexpr double kMean = 0.5, kStd = 0.2;
constexpr std::size_t kStart = 3, kDim = 16;
const fc::LengthDistribution P = fc::LengthDistribution::uniform({15, 20, 25, 30});

/// Wraps any model and counts the work asked of it.
template <class Model>
struct Counting {
  Model model;
  double frames = 0, pairs = 0;
  void evaluate(const fc::ModelInput<fc::HostFrames<float>>& in, fc::ModelOutput<fc::HostFrames<float>>& out) {
    frames += static_cast<double>(in.total_frames());
    for (std::size_t v = 0; v < in.videos(); ++v) {
      const double n = static_cast<double>(in.offsets[v + 1] - in.offsets[v]);
      pairs += n * n;
    }
    model.evaluate(in, out);
  }
};

struct Row {
  std::map<std::size_t, std::size_t> lengths;
  double mean = 0, stddev = 0;
  std::size_t calls = 0;
  double frames = 0, pairs = 0;
};

template <class M>
Row summarise(const fc::SampleResult<float>& r, const Counting<M>& counter) {
  Row row;
  double s = 0, s2 = 0, n = 0;
  for (const auto& v : r.videos) {
    ++row.lengths[v.length()];
    for (float x : v.frames) {
      s += x;
      s2 += static_cast<double>(x) * x;
      n += 1;
    }
  }
  row.mean = s / n;
  row.stddev = std::sqrt(s2 / n - row.mean * row.mean);
  row.calls = r.model_calls;
  row.frames = counter.frames / static_cast<double>(r.videos.size());
  row.pairs = counter.pairs / static_cast<double>(r.videos.size());
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  return tutorial::run("07_baselines", [&] {
    tutorial::Args args(argc, argv,
                        "usage: 07_baselines [--samples M (default 1000)] [--steps N (default 50)] [--seed S (default 1)]");
    const std::size_t samples = args.count("samples", 1000, 1, 1000000);
    const std::size_t N = args.count("steps", 50, 2, 100000);
    const std::uint64_t seed = args.count("seed", 1, 0, 1u << 30);
    args.done();

    const fc::GaussianContentOracle content(kMean, kStd);

    // Flowception: n_start noise frames; the length comes out of the jump process.
    Counting<fc::LengthOracle<fc::LinearKappa, fc::GaussianContentOracle>> flow{
        {P, fc::LinearKappa{}, kStart, /*anchored=*/true, fc::TimeShift{}, content}};
    fc::SamplerOptions so{fc::TimeGrid::end_dense(N, 3.0)};
    so.frame_dim = kDim;
    so.seed = seed;
    const auto rf = fc::sample(flow, fc::LinearKappa{}, fc::Euler{}, so,
                               std::vector<fc::Prompt<float>>(samples, fc::Prompt<float>::unconditional(kStart)));
    // The same with κ(s) = s⁵ (the ring recipe's): frames appear late, so fewer are carried early.
    Counting<fc::LengthOracle<fc::PolynomialKappa, fc::GaussianContentOracle>> late{
        {P, fc::PolynomialKappa(5.0), kStart, true, fc::TimeShift{}, content}};
    const auto rl = fc::sample(late, fc::PolynomialKappa(5.0), fc::Euler{}, so,
                               std::vector<fc::Prompt<float>>(samples, fc::Prompt<float>::unconditional(kStart)));

    // The baselines cannot choose a length: it is drawn from P(L) and given to them.
    fc::random::Stream rng(seed, 0x6c656e67ULL);
    std::vector<std::size_t> lengths(samples);
    double sum_L = 0, sum_L2 = 0, sum_tri = 0, sum_sq = 0;
    for (auto& L : lengths) {
      L = P.lengths()[rng.below(P.lengths().size())];
      const double l = static_cast<double>(L);
      sum_L += l;
      sum_L2 += l * l;
      sum_tri += l * (l + 1) / 2;                 // Σ_{k=1..L} k
      sum_sq += l * (l + 1) * (2 * l + 1) / 6;    // Σ_{k=1..L} k²
    }
    fc::BaselineSamplerOptions bo{fc::TimeGrid::end_dense(N, 3.0)};
    bo.frame_dim = kDim;
    bo.seed = seed;
    // Full sequence: all L frames flow together with one shared time.
    Counting<fc::GaussianContentOracle> full{content};
    std::vector<fc::Prompt<float>> whole;
    for (std::size_t L : lengths) whole.push_back(fc::Prompt<float>::unconditional(L));
    const auto rs = fc::sample_full_sequence(full, fc::Euler{}, bo, whole);
    // Autoregressive: one frame at a time, the earlier frames as clean context.
    Counting<fc::GaussianContentOracle> ar{content};
    const auto ra = fc::sample_autoregressive(ar, fc::Euler{}, bo, std::vector<fc::Prompt<float>>(samples), lengths);

    const Row rows[4] = {summarise(rf, flow), summarise(rs, full), summarise(ra, ar), summarise(rl, late)};
    const char* names[4] = {"flowception", "full sequence", "autoregressive", "flowception s^5"};
    const double m = static_cast<double>(samples);
    std::printf("%zu videos, end_dense:3 grid, N = %zu, Euler; data: lengths 15/20/25/30, frames N(%.1f, %.1f^2)\n\n",
                samples, N, kMean, kStd);
    std::printf("%-16s %9s %8s %8s %8s %12s %14s\n", "method", "length TV", "mean L", "mean", "std", "model calls",
                "frame evals");
    for (int k : {0, 3, 1, 2}) {
      double L = 0;
      for (auto [l, c] : rows[k].lengths) L += static_cast<double>(l * c) / m;
      std::printf("%-16s %9.4f %8.2f %8.4f %8.4f %12zu %14.1f\n", names[k], fc::total_variation(P, rows[k].lengths), L,
                  rows[k].mean, rows[k].stddev, rows[k].calls, rows[k].frames);
    }
    const double n = static_cast<double>(N);
    std::printf("\nPer video, against the closed forms for the baselines' given lengths L:\n");
    std::printf("   frame evaluations: full sequence %.1f = N E[L] = %.1f; autoregressive %.1f = N E[L(L+1)/2] = %.1f\n",
                rows[1].frames, n * sum_L / m, rows[2].frames, n * sum_tri / m);
    std::printf("   attention pairs:   full sequence %.0f = N E[L^2] = %.0f; autoregressive %.0f = N E[sum k^2] = %.0f\n",
                rows[1].pairs, n * sum_L2 / m, rows[2].pairs, n * sum_sq / m);
    for (int k : {0, 3})
      std::printf("   %-15s %.1f frame evaluations (%.2f x full sequence), %.0f attention pairs (%.2f x)\n", names[k],
                  rows[k].frames, rows[k].frames / rows[1].frames, rows[k].pairs, rows[k].pairs / rows[1].pairs);
  });
}
