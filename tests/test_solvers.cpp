#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "flowception/algebra/host_algebra.hpp"
#include "flowception/solver/runge_kutta.hpp"

using namespace flowception;
using Alg = HostAlgebra<double>;
using Buf = Alg::buffer;

namespace {

/// dx/dt = g(x, t) elementwise, with a call log checking per-frame stage times.
template <class G>
struct System {
  G g;
  std::vector<std::vector<double>> times_seen;
  void operator()(const Buf& x, std::span<const double> t, Buf& v) {
    times_seen.emplace_back(t.begin(), t.end());
    v.dim = x.dim;
    v.values.resize(x.values.size());
    for (std::size_t f = 0; f < x.frames(); ++f)
      for (std::size_t e = 0; e < x.dim; ++e) v.values[f * x.dim + e] = g(x.values[f * x.dim + e], t[f]);
  }
};
template <class G>
System<G> make_system(G g) {
  return System<G>{g, {}};
}

/// Integrates each frame from t0[f] to t1[f] in `steps` equal per-frame steps.
template <class S, class G>
Buf integrate(const S& stepper, G g, Buf x, std::vector<double> t0, std::vector<double> t1, int steps) {
  Alg alg;
  StepperWorkspace<Alg> ws;
  auto sys = make_system(g);
  const std::size_t n = t0.size();
  std::vector<double> a(n), b(n);
  Buf k1;
  for (int i = 0; i < steps; ++i) {
    for (std::size_t f = 0; f < n; ++f) {
      a[f] = t0[f] + (t1[f] - t0[f]) * i / steps;
      b[f] = i + 1 == steps ? t1[f] : t0[f] + (t1[f] - t0[f]) * (i + 1) / steps;
    }
    sys(x, a, k1);
    stepper.step(sys, alg, x, std::span<const double>(a), std::span<const double>(b), k1, ws);
  }
  return x;
}

Buf frames(std::vector<double> v, std::size_t dim = 1) { return Buf{std::move(v), dim}; }

}  // namespace

template <class S>
class SolverTest : public ::testing::Test {};
using Steppers = ::testing::Types<Euler, Midpoint, Heun, RungeKutta4>;
TYPED_TEST_SUITE(SolverTest, Steppers);

TYPED_TEST(SolverTest, ConstantVelocityIsExact) {
  TypeParam st;
  auto x = integrate(st, [](double, double) { return 2.5; }, frames({1.0, -3.0, 0.0}), {0.0, 0.2, 0.7},
                     {1.0, 0.6, 0.7}, 7);
  EXPECT_NEAR(x.values[0], 1.0 + 2.5 * 1.0, 1e-13);
  EXPECT_NEAR(x.values[1], -3.0 + 2.5 * 0.4, 1e-13);
  EXPECT_EQ(x.values[2], 0.0);  // zero-length interval: the frame does not move
}

// v = 3t² moves x by exactly ∫0^1 3t² dt = 1. RK4 (Simpson) is exact for it at any step; the
// lower-order methods converge to 1 with their order: |error| <= C·h^p with the exact
// constants of their quadrature rules (Euler: 3h/2, midpoint: h²/4, Heun: h²/2).
template <class S>
S plain() {
  if constexpr (S::stages == 1) return S{};
  else return S{FinalStep::full};
}

TYPED_TEST(SolverTest, CubicDisplacementIsOne) {
  const TypeParam st = plain<TypeParam>();  // the method's own last step (this test ends at t = 1)
  for (int steps : {1, 4, 32, 256}) {
    auto x = integrate(st, [](double, double t) { return 3 * t * t; }, frames({0.0}), {0.0}, {1.0}, steps);
    const double h = 1.0 / steps;
    const double err = std::fabs(x.values[0] - 1.0);
    if constexpr (TypeParam::order == 4)
      EXPECT_NEAR(x.values[0], 1.0, 1e-14) << steps;
    else if constexpr (TypeParam::order == 1)
      EXPECT_LE(err, 1.5 * h + 1e-14) << steps;
    else
      EXPECT_LE(err, 0.5 * h * h + 1e-14) << steps;
  }
  // Per-frame intervals: a frame from t = 0.25 moves by 1 − 0.25³.
  auto x = integrate(st, [](double, double t) { return 3 * t * t; }, frames({0.0, 5.0}), {0.25, 0.0},
                     {1.0, 1.0}, 512);
  const double tol = TypeParam::order == 1 ? 1.5 / 512 : 1e-5;  // Euler: 3h/2 with h <= 1/512
  EXPECT_NEAR(x.values[0], 1.0 - 0.015625, tol);
  EXPECT_NEAR(x.values[1], 6.0, tol);
}

// dx/dt = x·cos(t): x(t) = x0·exp(sin t − sin t0). Error ratio on halving ≈ 2^order.
TYPED_TEST(SolverTest, ConvergenceOrder) {
  const TypeParam st = plain<TypeParam>();  // intervals ending at t = 1: the method's own last step
  auto g = [](double x, double t) { return x * std::cos(t); };
  auto err = [&](int steps) {
    auto x = integrate(st, g, frames({1.0, 2.0}), {0.0, 0.3}, {1.0, 0.9}, steps);
    const double e0 = std::fabs(x.values[0] - std::exp(std::sin(1.0)));
    const double e1 = std::fabs(x.values[1] - 2.0 * std::exp(std::sin(0.9) - std::sin(0.3)));
    return std::max(e0, e1);
  };
  const double e1 = err(16), e2 = err(32), e3 = err(64);
  const double order = std::log2(std::sqrt((e1 / e2) * (e2 / e3)));
  EXPECT_NEAR(order, TypeParam::order, 0.15) << "errors " << e1 << " " << e2 << " " << e3;
}

// With the default final step, the orders hold on intervals that end before t = 1.
TYPED_TEST(SolverTest, ConvergenceOrderAwayFromOne) {
  TypeParam st;
  auto g = [](double x, double t) { return x * std::cos(t); };
  auto err = [&](int steps) {
    auto x = integrate(st, g, frames({1.0, 2.0}), {0.0, 0.3}, {0.97, 0.9}, steps);
    const double e0 = std::fabs(x.values[0] - std::exp(std::sin(0.97)));
    const double e1 = std::fabs(x.values[1] - 2.0 * std::exp(std::sin(0.9) - std::sin(0.3)));
    return std::max(e0, e1);
  };
  const double e1 = err(16), e2 = err(32), e3 = err(64);
  const double order = std::log2(std::sqrt((e1 / e2) * (e2 / e3)));
  EXPECT_NEAR(order, TypeParam::order, 0.15) << "errors " << e1 << " " << e2 << " " << e3;
}

// A frame whose step ends at t = 1 takes an Euler step by default: no stage shows it at a later
// time than t0 (so the model is never evaluated at t = 1), and it moves by exactly h·k1, while
// the other frames of the same step take the method's full stages.
TYPED_TEST(SolverTest, LastStepIsEulerByDefault) {
  TypeParam st;
  Alg alg;
  StepperWorkspace<Alg> ws;
  auto sys = make_system([](double x, double t) { return x * std::cos(t) + t; });
  Buf x = frames({0.5, 0.5});
  const std::vector<double> t0{0.8, 0.8}, t1{1.0, 0.99};
  Buf k1;
  sys(x, t0, k1);
  const double k1_first = k1.values[0];
  st.step(sys, alg, x, std::span<const double>(t0), std::span<const double>(t1), k1, ws);
  for (const auto& ts : sys.times_seen) EXPECT_EQ(ts[0], 0.8);
  EXPECT_DOUBLE_EQ(x.values[0], 0.5 + 0.2 * k1_first);
  if constexpr (TypeParam::stages > 1) {
    // The other frame is not an Euler step: its result differs from x + h·k1.
    EXPECT_GT(std::fabs(x.values[1] - (0.5 + 0.19 * k1.values[1])), 1e-6);
    // FinalStep::full evaluates the finishing frame at later stage times (t = 1 for Heun and RK4).
    auto sys2 = make_system([](double x, double t) { return x * std::cos(t) + t; });
    Buf y = frames({0.5, 0.5});
    Buf k = k1;
    sys2(y, t0, k);
    TypeParam{FinalStep::full}.step(sys2, alg, y, std::span<const double>(t0), std::span<const double>(t1), k, ws);
    double latest = 0;
    for (const auto& ts : sys2.times_seen) latest = std::max(latest, ts[0]);
    EXPECT_GT(latest, 0.8);
  }
}

TYPED_TEST(SolverTest, StageTimesPerFrameNeverPastEnd) {
  TypeParam st;
  Alg alg;
  StepperWorkspace<Alg> ws;
  auto sys = make_system([](double, double) { return 1.0; });
  Buf x = frames({0.0, 0.0, 0.0});
  const std::vector<double> t0{0.0, 0.5, 1.0}, t1{0.1, 1.0, 1.0};
  Buf k1;
  sys(x, t0, k1);
  st.step(sys, alg, x, std::span<const double>(t0), std::span<const double>(t1), k1, ws);
  ASSERT_EQ(sys.times_seen.size(), static_cast<std::size_t>(TypeParam::stages));
  for (const auto& ts : sys.times_seen) {
    for (std::size_t f = 0; f < 3; ++f) {
      EXPECT_GE(ts[f], t0[f]);
      EXPECT_LE(ts[f], t1[f]);
    }
  }
  EXPECT_EQ(sys.times_seen.back()[2], 1.0);
  EXPECT_EQ(x.values[2], 0.0);
}

TEST(Solver, MismatchedSpansAreRejected) {
  Euler st;
  Alg alg;
  StepperWorkspace<Alg> ws;
  auto sys = make_system([](double, double) { return 1.0; });
  Buf x = frames({0.0, 0.0});
  Buf k1 = frames({1.0, 1.0});
  const std::vector<double> t0{0.0}, t1{0.1};
  EXPECT_THROW(st.step(sys, alg, x, std::span<const double>(t0), std::span<const double>(t1), k1, ws), ShapeError);
}
