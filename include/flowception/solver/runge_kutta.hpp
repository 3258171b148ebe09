// Per-frame-time explicit Runge–Kutta steppers (§4 step 2). Each frame f integrates its own
// interval [t0_f, t1_f] of model time; a multi-stage method evaluates the model once per stage
// on the whole frozen sequence at per-frame stage times t0_f + c_i·(t1_f − t0_f) <= t1_f <= 1.
// Frames with t0_f == t1_f (context, finished) have zero coefficients and do not move.
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "flowception/algebra/frame_algebra.hpp"
#include "flowception/algebra/host_algebra.hpp"
#include "flowception/core/errors.hpp"

namespace flowception {

/// Scratch buffers owned by the caller and reused across steps (no allocation once warm).
template <class Algebra>
struct StepperWorkspace {
  std::vector<typename Algebra::buffer> stages;  ///< k_2..k_s
  typename Algebra::buffer state;                ///< X + Σ a_ij·dt·k_j
  std::vector<double> stage_times;
  std::vector<double> coeff;
};

namespace detail {
/// The archetype of the system a stepper calls: f(x, t, v_out).
template <class Algebra>
struct ArchetypeSystem {
  void operator()(const typename Algebra::buffer&, std::span<const double>, typename Algebra::buffer&) {}
};
}  // namespace detail

// clang-format off
/// A per-frame-time ODE step: advances x from per-frame times t0 to t1 given k1 = f(x, t0).
template <class S, class Algebra = HostAlgebra<double>>
concept PerFrameStepper = FrameAlgebra<Algebra> && requires(
    const S& st, detail::ArchetypeSystem<Algebra>& sys, Algebra& alg, typename Algebra::buffer& x,
    std::span<const double> t0, std::span<const double> t1, const typename Algebra::buffer& k1,
    StepperWorkspace<Algebra>& ws) {
  { S::stages } -> std::convertible_to<int>;  // model evaluations per step (k1 included)
  { S::order }  -> std::convertible_to<int>;  // global order of accuracy
  { st.name() } -> std::convertible_to<std::string>;
  st.step(sys, alg, x, t0, t1, k1, ws);
};
// clang-format on

/// An explicit Runge–Kutta method given by its Butcher tableau (strictly lower-triangular a).
template <int Stages, int Order>
struct ButcherTableau {
  std::array<double, Stages> c;
  std::array<std::array<double, Stages>, Stages> a;
  std::array<double, Stages> b;
  const char* name;
};

template <int Stages, int Order>
class ExplicitRungeKutta {
 public:
  static constexpr int stages = Stages;
  static constexpr int order = Order;

  constexpr explicit ExplicitRungeKutta(ButcherTableau<Stages, Order> tab) : tab_(tab) {}
  std::string name() const { return tab_.name; }
  const ButcherTableau<Stages, Order>& tableau() const { return tab_; }

  template <class System, FrameAlgebra Algebra>
  void step(System& sys, Algebra& alg, typename Algebra::buffer& x, std::span<const double> t0,
            std::span<const double> t1, const typename Algebra::buffer& k1, StepperWorkspace<Algebra>& ws) const {
    const std::size_t n = t0.size();
    detail::require<ShapeError>(t1.size() == n && alg.frames(x) == n && alg.frames(k1) == n,
                                "stepper: times, state and k1 must cover the same frames");
    ws.stages.resize(Stages > 1 ? Stages - 1 : 0);
    ws.stage_times.resize(n);
    ws.coeff.resize(n);
    auto k = [&](int i) -> const typename Algebra::buffer& { return i == 0 ? k1 : ws.stages[i - 1]; };
    for (int i = 1; i < Stages; ++i) {
      alg.copy(ws.state, x);
      for (int j = 0; j < i; ++j) {
        if (tab_.a[i][j] == 0.0) continue;
        for (std::size_t f = 0; f < n; ++f) ws.coeff[f] = tab_.a[i][j] * (t1[f] - t0[f]);
        alg.axpy_frames(ws.state, ws.coeff, k(j));
      }
      for (std::size_t f = 0; f < n; ++f) ws.stage_times[f] = stage_time(t0[f], t1[f], tab_.c[i]);
      alg.resize(ws.stages[i - 1], n, alg.dim(x));
      sys(ws.state, std::span<const double>(ws.stage_times), ws.stages[i - 1]);
    }
    for (int i = 0; i < Stages; ++i) {
      if (tab_.b[i] == 0.0) continue;
      for (std::size_t f = 0; f < n; ++f) ws.coeff[f] = tab_.b[i] * (t1[f] - t0[f]);
      alg.axpy_frames(x, ws.coeff, k(i));
    }
  }

  /// t0 + c·(t1 − t0), landing exactly on t1 for c = 1 and never past it.
  static double stage_time(double t0, double t1, double c) {
    if (c >= 1.0) return t1;
    const double t = t0 + c * (t1 - t0);
    return t > t1 ? t1 : t;
  }

 private:
  ButcherTableau<Stages, Order> tab_;
};

/// Forward Euler (order 1).
struct Euler : ExplicitRungeKutta<1, 1> {
  constexpr Euler() : ExplicitRungeKutta({{0.0}, {{{0.0}}}, {1.0}, "euler"}) {}
};
/// Explicit midpoint (order 2).
struct Midpoint : ExplicitRungeKutta<2, 2> {
  constexpr Midpoint() : ExplicitRungeKutta({{0.0, 0.5}, {{{0.0, 0.0}, {0.5, 0.0}}}, {0.0, 1.0}, "midpoint"}) {}
};
/// Heun's method, the explicit trapezoid (order 2).
struct Heun : ExplicitRungeKutta<2, 2> {
  constexpr Heun() : ExplicitRungeKutta({{0.0, 1.0}, {{{0.0, 0.0}, {1.0, 0.0}}}, {0.5, 0.5}, "heun"}) {}
};
/// The classic fourth-order Runge–Kutta method.
struct RungeKutta4 : ExplicitRungeKutta<4, 4> {
  constexpr RungeKutta4()
      : ExplicitRungeKutta({{0.0, 0.5, 0.5, 1.0},
                            {{{0.0, 0.0, 0.0, 0.0}, {0.5, 0.0, 0.0, 0.0}, {0.0, 0.5, 0.0, 0.0}, {0.0, 0.0, 1.0, 0.0}}},
                            {1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0},
                            "rk4"}) {}
};

static_assert(PerFrameStepper<Euler>);
static_assert(PerFrameStepper<Midpoint>);
static_assert(PerFrameStepper<Heun, HostAlgebra<float>>);
static_assert(PerFrameStepper<RungeKutta4>);

}  // namespace flowception
