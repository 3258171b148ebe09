// Samples 200 videos with the length oracle and checks the mean length is plausible.
#include <flowception/oracles.hpp>
#include <flowception/sampler.hpp>

#include <cstdio>

int main() {
  using namespace flowception;
  auto lengths = LengthDistribution::uniform({6, 10});
  LengthOracle<LinearKappa> oracle(lengths, LinearKappa{}, 2, true);
  SamplerOptions o{TimeGrid::end_dense(64)};
  o.frame_dim = 2;
  o.seed = 1;
  std::vector<Prompt<float>> prompts(200, Prompt<float>::unconditional(2));
  auto r = sample(oracle, LinearKappa{}, Heun{}, o, prompts);
  double mean = 0;
  for (const auto& v : r.videos) mean += static_cast<double>(v.length());
  mean /= static_cast<double>(r.videos.size());
  std::printf("consumer: mean length %.3f (P(L) mean 8)\n", mean);
  return (mean > 7.0 && mean < 9.0) ? 0 : 1;
}
