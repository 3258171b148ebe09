// Tutorial step 1 (docs/tutorial.md): the length oracle, and what κ and the grid do to the law of
// video lengths. No neural network: the oracle knows the exact expected number of missing frames
// (§2, §4), so every deviation printed here is the sampler's, not a model's.
//
//   01_length_law [--samples 2000] [--seed 1]
#include <cstdio>
#include <map>
#include <vector>

#include <flowception/oracles.hpp>
#include <flowception/sampler.hpp>

#include "tutorial_args.hpp"

namespace fc = flowception;

namespace {

// P(L): the rotating ring's lengths, equally likely. Three start frames, the last one anchored
// (frame 0 and the last frame exist from the start; 1 more start frame lies between them).
const fc::LengthDistribution P = fc::LengthDistribution::uniform({15, 20, 25, 30});
constexpr std::size_t kStart = 3;

fc::SamplerOptions options(const fc::TimeGrid& grid, std::uint64_t seed) {
  fc::SamplerOptions o{grid};
  o.frame_dim = 1;  // the length oracle ignores content: one value per frame is enough
  o.seed = seed;
  return o;
}

/// Part 1: the mean number of frames at global time s, sampled and exact. A frame that is not a
/// start frame has appeared by time s with probability κ(s), so E[n(s)] = n_start + (E[L] − n_start)·κ(s).
template <class Kappa>
std::vector<double> mean_length_at(const Kappa& kappa, const std::vector<double>& at, std::size_t samples,
                                   std::uint64_t seed) {
  const std::size_t N = 100;
  fc::LengthOracle<Kappa> oracle(P, kappa, kStart, /*anchored=*/true);
  std::vector<double> sum(at.size(), 0.0);
  // An observer sees every global step: after step m of a uniform grid the clock is (m + 1)/N.
  auto observer = [&](const fc::StepReport& r) {
    for (std::size_t k = 0; k < at.size(); ++k)
      if (r.step + 1 == static_cast<std::size_t>(at[k] * N + 0.5))
        for (const auto& v : r.videos) sum[k] += static_cast<double>(v.trace.length);
  };
  std::vector<fc::Prompt<float>> prompts(samples, fc::Prompt<float>::unconditional(kStart));
  fc::sample(oracle, kappa, fc::Euler{}, options(fc::TimeGrid::uniform(N), seed), prompts, observer);
  for (auto& x : sum) x /= static_cast<double>(samples);
  return sum;
}

struct LengthLaw {
  std::map<std::size_t, std::size_t> histogram;
  double mean = 0, tv = 0;
};

/// Part 2: the law of final lengths with the linear κ on a given grid.
LengthLaw final_lengths(const fc::TimeGrid& grid, std::size_t samples, std::uint64_t seed) {
  fc::LengthOracle<fc::LinearKappa> oracle(P, fc::LinearKappa{}, kStart, true);
  std::vector<fc::Prompt<float>> prompts(samples, fc::Prompt<float>::unconditional(kStart));
  const auto r = fc::sample(oracle, fc::LinearKappa{}, fc::Euler{}, options(grid, seed), prompts);
  LengthLaw law;
  for (const auto& v : r.videos) {
    ++law.histogram[v.length()];
    law.mean += static_cast<double>(v.length()) / static_cast<double>(samples);
  }
  law.tv = fc::total_variation(P, law.histogram);
  return law;
}

}  // namespace

int main(int argc, char** argv) {
  return tutorial::run("01_length_law", [&] {
    tutorial::Args args(argc, argv, "usage: 01_length_law [--samples M (default 2000)] [--seed S (default 1)]");
    const std::size_t samples = args.count("samples", 2000, 1, 1000000);
    const std::uint64_t seed = args.count("seed", 1, 0, 1u << 30);
    args.done();

    std::printf("P(L): lengths 15, 20, 25, 30 equally likely (mean %.1f); %zu start frames, anchored; %zu videos\n\n",
                P.mean(), kStart, samples);

    std::printf("1. Mean number of frames at global time s (uniform grid, N = 100): sampled / exact\n");
    const std::vector<double> at{0.25, 0.5, 0.75, 1.0};
    const auto lin = mean_length_at(fc::LinearKappa{}, at, samples, seed);
    const auto cub = mean_length_at(fc::PolynomialKappa(3.0), at, samples, seed);
    const auto cos = mean_length_at(fc::CosineKappa{}, at, samples, seed);
    std::printf("   %5s  %15s  %15s  %15s\n", "s", "linear", "cubic", "cosine");
    for (std::size_t k = 0; k < at.size(); ++k) {
      auto exact = [&](double kap) { return static_cast<double>(kStart) + (P.mean() - static_cast<double>(kStart)) * kap; };
      std::printf("   %5.2f  %6.2f / %6.2f  %6.2f / %6.2f  %6.2f / %6.2f\n", at[k], lin[k],
                  exact(fc::LinearKappa{}.kappa(at[k])), cub[k], exact(fc::PolynomialKappa(3.0).kappa(at[k])), cos[k],
                  exact(fc::CosineKappa{}.kappa(at[k])));
    }

    std::printf("\n2. Final lengths against P(L), linear kappa: total variation (TV) and mean length\n");
    std::printf("   %-12s %5s %8s %8s\n", "grid", "N", "TV", "mean");
    for (const char* g : {"uniform", "end_dense:3"})
      for (std::size_t n : {10, 25, 100, 400}) {
        const auto law = final_lengths(fc::TimeGrid::from_name(g, n), samples, seed);
        std::printf("   %-12s %5zu %8.4f %8.2f\n", g, n, law.tv, law.mean);
      }

    std::printf("\n3. Histogram of final lengths, end_dense:3 grid, N = 100 (| marks P(L) = 0.25)\n");
    const auto law = final_lengths(fc::TimeGrid::end_dense(100, 3.0), samples, seed);
    for (const auto& [L, c] : law.histogram) {
      const double f = static_cast<double>(c) / static_cast<double>(samples);
      std::string b = tutorial::bar(f, 120);
      if (b.size() < 31) b.resize(31, ' ');
      b[30] = '|';
      std::printf("   L = %2zu  %.3f  %s\n", L, f, b.c_str());
    }
  });
}
