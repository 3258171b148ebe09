// A κ without hazard() is not a KappaScheduler: the sampler must refuse it.
#include <flowception/sampler.hpp>
#include <flowception/oracles.hpp>

struct Kappa {
  double kappa(double s) const { return s; }
  double derivative(double) const { return 1; }
  double inverse(double p) const { return p; }
  double survival(double s) const { return 1 - s; }
#ifdef FLOWCEPTION_CONTROL
  double hazard(double s) const { return 1 / (1 - s); }
#endif
  std::string name() const { return "k"; }
};

int main() {
  flowception::GaussianContentOracle model;
  flowception::SamplerOptions o{flowception::TimeGrid::uniform(4)};
  o.frame_dim = 1;
  std::vector<flowception::Prompt<float>> p{flowception::Prompt<float>::unconditional(2)};
  auto r = flowception::sample(model, Kappa{}, flowception::Euler{}, o, p);
  (void)r;
}
