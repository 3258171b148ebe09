// Tutorial step 3 (docs/tutorial.md): plugging in your own parts. The sampler is a template over
// four roles (docs/concepts.md): the model (VelocityModel), the insertion scheduler κ
// (KappaScheduler), the per-frame solver (PerFrameStepper) and an observer. Here each is
// written by the user: a model whose content is a straight line to a known picture and whose
// rates come from the length oracle, κ(s) = s² from a lambda, Ralston's method from its
// Butcher tableau, and a progress printer.
//
//   03_your_components [--samples 2000] [--steps 100] [--seed 1]
#include <cmath>
#include <cstdio>
#include <map>
#include <vector>

#include <flowception/oracles.hpp>
#include <flowception/sampler.hpp>

#include "tutorial_args.hpp"

namespace fc = flowception;

namespace {

constexpr std::size_t kStart = 3, kDim = 8;
const fc::LengthDistribution P = fc::LengthDistribution::uniform({15, 20, 25, 30});

/// The picture every frame flows to: c_e = e / (D − 1).
float target(std::size_t e) { return static_cast<float>(e) / static_cast<float>(kDim - 1); }

/// A VelocityModel is any type with evaluate(in, out). Rows of in.frames are the frames of all
/// videos packed together (video v owns rows in.offsets[v] .. in.offsets[v + 1] − 1), each with its
/// own model time in.times[row]. The model fills out.velocity (sized already) and out.log_rate.
template <class Rates>
struct StraightToTarget {
  Rates rates;  // a LengthOracle for the same κ as the sampler: it answers the log-rates
  void evaluate(const fc::ModelInput<fc::HostFrames<float>>& in, fc::ModelOutput<fc::HostFrames<float>>& out) {
    rates.evaluate(in, out);  // fills log_rate (and a zero velocity, overwritten below)
    for (std::size_t r = 0; r < in.total_frames(); ++r) {
      auto x = in.frames.frame(r);
      auto v = out.velocity.frame(r);
      const double t = in.times[r];
      // On the straight path from x to c the velocity is (c − x)/(1 − t); at t = 1 nothing moves.
      for (std::size_t e = 0; e < kDim; ++e) v[e] = t < 1.0 ? static_cast<float>((target(e) - x[e]) / (1.0 - t)) : 0.0f;
    }
  }
};

/// Ralston's second-order method, given by its Butcher tableau (nodes, matrix, weights).
struct Ralston : fc::ExplicitRungeKutta<2, 2> {
  constexpr Ralston() : ExplicitRungeKutta({{0.0, 2.0 / 3.0}, {{{0.0, 0.0}, {2.0 / 3.0, 0.0}}}, {0.25, 0.75}, "ralston"}) {}
};
static_assert(fc::PerFrameStepper<Ralston>);

struct Summary {
  std::vector<std::size_t> lengths;
  double tv = 0, mean = 0, worst = 0;
  std::size_t calls = 0;
};

/// Samples with sampler scheduler `kappa` and a model whose rates assume `model_kappa`.
template <class Kappa, class ModelKappa, class Observer = fc::NullObserver>
Summary run(const Kappa& kappa, const ModelKappa& model_kappa, std::size_t samples, std::size_t N, std::uint64_t seed,
            Observer observer = {}) {
  using Oracle = fc::LengthOracle<ModelKappa>;
  static_assert(fc::KappaScheduler<Kappa>);
  StraightToTarget<Oracle> model{Oracle(P, model_kappa, kStart, /*anchored=*/true)};
  static_assert(fc::VelocityModel<StraightToTarget<Oracle>, fc::HostFrames<float>>);
  fc::SamplerOptions o{fc::TimeGrid::end_dense(N, 3.0)};
  o.frame_dim = kDim;
  o.seed = seed;
  std::vector<fc::Prompt<float>> prompts(samples, fc::Prompt<float>::unconditional(kStart));
  const auto r = fc::sample(model, kappa, Ralston{}, o, prompts, observer);
  Summary s;
  std::map<std::size_t, std::size_t> hist;
  for (const auto& v : r.videos) {
    s.lengths.push_back(v.length());
    ++hist[v.length()];
    s.mean += static_cast<double>(v.length()) / static_cast<double>(samples);
    for (std::size_t i = 0; i < v.frames.size(); ++i)
      s.worst = std::max(s.worst, std::fabs(static_cast<double>(v.frames[i]) - target(i % kDim)));
  }
  s.tv = fc::total_variation(P, hist);
  s.calls = r.model_calls;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  return tutorial::run("03_your_components", [&] {
    tutorial::Args args(argc, argv,
                        "usage: 03_your_components [--samples M (default 2000)] [--steps N (default 100)] [--seed S (default 1)]");
    const std::size_t samples = args.count("samples", 2000, 1, 1000000);
    const std::size_t N = args.count("steps", 100, 2, 100000);
    const std::uint64_t seed = args.count("seed", 1, 0, 1u << 30);
    args.done();

    // κ from a lambda: its derivative and inverse are found numerically.
    auto quadratic = fc::make_user_kappa([](double s) { return s * s; }, "quadratic");
    static_assert(fc::KappaScheduler<decltype(quadratic)>);

    std::printf("1. Progress of 4 videos, reported by an observer (every %zu global steps)\n", N / 2);
    auto progress = [&](const fc::StepReport& r) {
      if (r.step % (N / 2) != 0) return;
      std::printf("   step %3zu (s = %.3f)  lengths:", r.step, r.s);
      for (const auto& v : r.videos) std::printf(" %2zu", v.trace.length);
      std::printf("\n");
    };
    run(quadratic, quadratic, 4, N, seed, progress);

    std::printf("\n2. %zu videos, end_dense:3 grid, N = %zu, Ralston's method\n", samples, N);
    std::printf("   %-34s %7s %7s %12s %7s\n", "sampler kappa / model's kappa", "TV", "mean", "max |x - c|", "calls");
    const auto user = run(quadratic, quadratic, samples, N, seed);
    const auto builtin = run(fc::PolynomialKappa(2.0), fc::PolynomialKappa(2.0), samples, N, seed);
    const auto wrong = run(quadratic, fc::LinearKappa{}, samples, N, seed);
    auto row = [](const char* name, const Summary& s) {
      std::printf("   %-34s %7.4f %7.2f %12.1e %7zu\n", name, s.tv, s.mean, s.worst, s.calls);
    };
    row("user s^2 / user s^2", user);
    row("built-in poly:2 / built-in poly:2", builtin);
    row("user s^2 / linear (mismatched)", wrong);
    std::size_t same = 0;
    for (std::size_t i = 0; i < samples; ++i) same += user.lengths[i] == builtin.lengths[i] ? 1 : 0;
    std::printf("   videos of equal length, user s^2 against built-in poly:2: %zu of %zu\n", same, samples);
  });
}
