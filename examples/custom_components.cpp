// custom_components: the smallest program that plugs user-written parts into the sampler:
// a model, a κ from a lambda, a solver from a Butcher tableau (Ralston's method) and an
// observer that prints progress. Mirrors docs/concepts.md "How the pieces fit".
#include <cmath>
#include <cstdio>

#include <flowception/sampler.hpp>

namespace fc = flowception;

// A toy VelocityModel: velocity pulls every value to 0.5, each frame asks for half a frame.
struct MyModel {
  void evaluate(const fc::ModelInput<fc::HostFrames<float>>& in, fc::ModelOutput<fc::HostFrames<float>>& out) {
    for (std::size_t v = 0; v < in.videos(); ++v)
      for (std::size_t r = in.offsets[v]; r < in.offsets[v + 1]; ++r) {
        auto x = in.frames.frame(r);
        auto vel = out.velocity.frame(r);  // already sized: fill, never resize
        const double t = in.times[r];
        for (std::size_t e = 0; e < x.size(); ++e)
          vel[e] = static_cast<float>(t < 1.0 ? (0.5 - x[e]) / (1.0 - t) : 0.0);  // straight line to 0.5
        out.log_rate[r] = std::log(0.5);
      }
  }
};
static_assert(fc::VelocityModel<MyModel, fc::HostFrames<float>>);

// Ralston's second-order method, given by its tableau.
struct Ralston : fc::ExplicitRungeKutta<2, 2> {
  constexpr Ralston()
      : ExplicitRungeKutta({{0.0, 2.0 / 3.0}, {{{0.0, 0.0}, {2.0 / 3.0, 0.0}}}, {0.25, 0.75}, "ralston"}) {}
};
static_assert(fc::PerFrameStepper<Ralston>);

int main() {
  MyModel model;
  auto kappa = fc::make_user_kappa([](double s) { return s * s; }, "quadratic");
  fc::SamplerOptions opts{fc::TimeGrid::uniform(50)};
  opts.frame_dim = 4;
  opts.seed = 7;
  std::vector<fc::Prompt<float>> prompts(4, fc::Prompt<float>::unconditional(3));

  auto observer = [](const fc::StepReport& r) {
    if (r.step % 10 != 0) return;
    std::printf("step %3zu  s = %.2f  lengths:", r.step, r.s);
    for (const auto& v : r.videos) std::printf(" %zu", v.trace.length);
    std::printf("\n");
  };
  auto res = fc::sample(model, kappa, Ralston{}, opts, prompts, observer);
  for (std::size_t v = 0; v < res.videos.size(); ++v)
    std::printf("video %zu: %zu frames, first value %.4f, %zu model evaluations\n", v, res.videos[v].length(),
                res.videos[v].frames[0], res.videos[v].nfe);
  return 0;
}
