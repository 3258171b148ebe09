// A model without evaluate(input, output) is not a VelocityModel.
#include <flowception/sampler.hpp>

struct Model {
#ifdef FLOWCEPTION_CONTROL
  void evaluate(const flowception::ModelInput<flowception::HostFrames<float>>&,
                flowception::ModelOutput<flowception::HostFrames<float>>&) {}
#else
  void forward(const flowception::ModelInput<flowception::HostFrames<float>>&) {}
#endif
};

int main() {
  Model model;
  flowception::SamplerOptions o{flowception::TimeGrid::uniform(4)};
  o.frame_dim = 1;
  std::vector<flowception::Prompt<float>> p{flowception::Prompt<float>::unconditional(2)};
  flowception::CoupledSampler s(model, flowception::LinearKappa{}, flowception::Euler{}, o, p);
  (void)s;
}
