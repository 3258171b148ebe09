// A τ_g distribution without sample(tau_max, rng) is not a TauDistribution.
#include <flowception/training.hpp>

struct Tau {
#ifdef FLOWCEPTION_CONTROL
  double sample(double tau_max, flowception::random::Stream& rng) const { return tau_max * rng.uniform(); }
#endif
  std::string name() const { return "tau"; }
};

int main() {
  flowception::ExtendedTimeSampler<flowception::LinearKappa, Tau> s(flowception::LinearKappa{}, {}, Tau{});
  (void)s;
}
