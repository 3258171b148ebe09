// A frame algebra without gather_frames cannot hold the sampler's frames.
#include <flowception/sampler.hpp>

struct Algebra : flowception::HostAlgebra<float> {
#ifndef FLOWCEPTION_CONTROL
  void gather_frames() = delete;  // hides the inherited operation
#endif
};

static_assert(flowception::FrameAlgebra<Algebra>, "the algebra must satisfy FrameAlgebra");
int main() {}
