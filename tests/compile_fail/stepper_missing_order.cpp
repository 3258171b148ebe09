// A stepper that does not state its order is not a PerFrameStepper.
#include <flowception/sampler.hpp>

struct Stepper : flowception::Euler {
#ifndef FLOWCEPTION_CONTROL
  static constexpr const char* order = "first";  // not an int: the requirement fails
#endif
};

static_assert(flowception::PerFrameStepper<Stepper>, "a stepper must satisfy PerFrameStepper");
int main() {}
