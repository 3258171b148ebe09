// An observer must be callable with a const StepReport&.
#include <flowception/sampler.hpp>
#include <flowception/oracles.hpp>

struct Observer {
#ifdef FLOWCEPTION_CONTROL
  void operator()(const flowception::StepReport&) {}
#else
  void operator()(int step) { (void)step; }
#endif
};

int main() {
  flowception::GaussianContentOracle model;
  flowception::SamplerOptions o{flowception::TimeGrid::uniform(4)};
  o.frame_dim = 1;
  std::vector<flowception::Prompt<float>> p{flowception::Prompt<float>::unconditional(2)};
  flowception::CoupledSampler s(model, flowception::LinearKappa{}, flowception::Euler{}, o, p);
  Observer obs;
  s.step(obs);
}
