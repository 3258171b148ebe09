// Per-frame-time explicit Runge–Kutta steppers (§4 step 2). Each frame f integrates its own
// interval [t0_f, t1_f] of model time; a multi-stage method evaluates the model once per stage
// on the whole frozen sequence at per-frame stage times t0_f + c_i·(t1_f − t0_f) <= t1_f <= 1.
// Frames with t0_f == t1_f (context, finished) have zero coefficients and do not move.
//
// A frame's last step ends at t = 1, where the velocity loss never trains the model (clean data
// has no noise left to remove, and for data without density the exact velocity is singular
// there). By default that step is an Euler step for every method (FinalStep::euler, as
// diffusers' Heun scheduler does at σ = 0): no stage of it evaluates the model at t = 1, and
// while the other frames take their stages the finishing frame is shown at (x, t0).
// FinalStep::full keeps the plain multi-stage step.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>
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
  std::vector<double> stage_times;               ///< per frame: model time of the current stage
  std::vector<double> coeff;                     ///< per frame: coefficient of the current axpy
  std::vector<unsigned char> euler;  ///< per frame: this step is its final Euler step
};

/// What a multi-stage method does on the step that ends a frame at t = 1 (see above).
enum class FinalStep {
  euler,  ///< an Euler step: the model is never evaluated at t = 1 (default)
  full,   ///< the method's own stages, the last of which may evaluate the model at t = 1
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
  std::array<double, Stages> c;                      ///< stage nodes, fractions of the step; c[0] = 0
  std::array<std::array<double, Stages>, Stages> a;  ///< stage weights a[i][j], j < i (the rest is ignored)
  std::array<double, Stages> b;                      ///< final weights of k_1..k_s
  const char* name;                                  ///< label returned by the stepper's name()
};

/// A `PerFrameStepper` for any explicit Runge–Kutta method given as a `ButcherTableau`: each
/// frame f integrates its own interval [t0[f], t1[f]], with one model call per stage on the whole
/// sequence. A frame's step that ends at t = 1 follows `FinalStep`.
template <int Stages, int Order>
class ExplicitRungeKutta {
 public:
  static constexpr int stages = Stages;  ///< model evaluations per step, k1 included
  static constexpr int order = Order;    ///< global order of accuracy

  /// The method of tableau `tab`; `final_step` chooses what a frame's step ending at t = 1 does.
  constexpr explicit ExplicitRungeKutta(ButcherTableau<Stages, Order> tab, FinalStep final_step = FinalStep::euler)
      : tab_(tab), final_step_(final_step) {}
  /// The tableau's name.
  std::string name() const { return tab_.name; }
  /// The method's Butcher tableau.
  const ButcherTableau<Stages, Order>& tableau() const { return tab_; }
  /// What a step ending at t = 1 does (an Euler step by default).
  FinalStep final_step() const { return final_step_; }

  /// Advances each frame f of `x` from t0[f] to t1[f], given k1 = f(x, t0). Calls
  /// `sys(state, stage_times, v_out)` exactly `stages` − 1 times; stage times never pass t1[f], and
  /// frames with t0[f] == t1[f] stay bit-identical. Under `FinalStep::euler` a frame with
  /// t1[f] ≥ 1 takes an Euler step and is shown to the other stages at (x, t0[f]). Scratch memory
  /// lives in `ws`. Throws `ShapeError` unless `t0`, `t1`, `x` and `k1` cover the same frames.
  template <class System, FrameAlgebra Algebra>
  void step(System& sys, Algebra& alg, typename Algebra::buffer& x, std::span<const double> t0,
            std::span<const double> t1, const typename Algebra::buffer& k1, StepperWorkspace<Algebra>& ws) const {
    const std::size_t n = t0.size();
    detail::require<ShapeError>(t1.size() == n && alg.frames(x) == n && alg.frames(k1) == n,
                                "stepper: times, state and k1 must cover the same frames");
    ws.stages.resize(Stages > 1 ? Stages - 1 : 0);
    ws.stage_times.resize(n);
    ws.coeff.resize(n);
    ws.euler.assign(n, 0);
    if (Stages > 1 && final_step_ == FinalStep::euler)
      for (std::size_t f = 0; f < n; ++f) ws.euler[f] = t1[f] >= 1.0 && t0[f] < t1[f];
    auto k = [&](int i) -> const typename Algebra::buffer& { return i == 0 ? k1 : ws.stages[i - 1]; };
    for (int i = 1; i < Stages; ++i) {
      alg.copy(ws.state, x);
      for (int j = 0; j < i; ++j) {
        if (tab_.a[i][j] == 0.0) continue;
        for (std::size_t f = 0; f < n; ++f) ws.coeff[f] = ws.euler[f] ? 0.0 : tab_.a[i][j] * (t1[f] - t0[f]);
        alg.axpy_frames(ws.state, ws.coeff, k(j));
      }
      for (std::size_t f = 0; f < n; ++f) ws.stage_times[f] = ws.euler[f] ? t0[f] : stage_time(t0[f], t1[f], tab_.c[i]);
      alg.resize(ws.stages[i - 1], n, alg.dim(x));
      sys(ws.state, std::span<const double>(ws.stage_times), ws.stages[i - 1]);
    }
    for (int i = 0; i < Stages; ++i) {
      bool any = false;
      for (std::size_t f = 0; f < n; ++f) {
        const double b = ws.euler[f] ? (i == 0 ? 1.0 : 0.0) : tab_.b[i];
        ws.coeff[f] = b * (t1[f] - t0[f]);
        any = any || ws.coeff[f] != 0.0;
      }
      if (any) alg.axpy_frames(x, ws.coeff, k(i));
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
  FinalStep final_step_;
};

/// Forward Euler (order 1).
struct Euler : ExplicitRungeKutta<1, 1> {
  /// The tableau c = (0), b = (1).
  constexpr Euler() : ExplicitRungeKutta({{0.0}, {{{0.0}}}, {1.0}, "euler"}) {}
};
/// Explicit midpoint (order 2).
struct Midpoint : ExplicitRungeKutta<2, 2> {
  /// Explicit midpoint; `final_step` as for `ExplicitRungeKutta`.
  constexpr explicit Midpoint(FinalStep final_step = FinalStep::euler)
      : ExplicitRungeKutta({{0.0, 0.5}, {{{0.0, 0.0}, {0.5, 0.0}}}, {0.0, 1.0}, "midpoint"}, final_step) {}
};
/// Heun's method, the explicit trapezoid (order 2).
struct Heun : ExplicitRungeKutta<2, 2> {
  /// Heun's method; `final_step` as for `ExplicitRungeKutta`.
  constexpr explicit Heun(FinalStep final_step = FinalStep::euler)
      : ExplicitRungeKutta({{0.0, 1.0}, {{{0.0, 0.0}, {1.0, 0.0}}}, {0.5, 0.5}, "heun"}, final_step) {}
};
/// The classic fourth-order Runge–Kutta method.
struct RungeKutta4 : ExplicitRungeKutta<4, 4> {
  /// Classic RK4; `final_step` as for `ExplicitRungeKutta`.
  constexpr explicit RungeKutta4(FinalStep final_step = FinalStep::euler)
      : ExplicitRungeKutta({{0.0, 0.5, 0.5, 1.0},
                            {{{0.0, 0.0, 0.0, 0.0}, {0.5, 0.0, 0.0, 0.0}, {0.0, 0.5, 0.0, 0.0}, {0.0, 0.0, 1.0, 0.0}}},
                            {1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0},
                            "rk4"},
                           final_step) {}
};

/// The name of a final-step rule: "euler" or "full".
inline const char* final_step_name(FinalStep f) { return f == FinalStep::full ? "full" : "euler"; }
/// The final-step rule named `name`; ConfigError listing the names for any other.
inline FinalStep final_step_from_name(std::string_view name) {
  if (name == "euler") return FinalStep::euler;
  if (name == "full") return FinalStep::full;
  detail::fail<ConfigError>("final step '", name, "' is not one of: euler, full");
}

/// The names of the built-in solvers, as solver_from_name reads them.
inline constexpr std::array<const char*, 4> kSolverNames{"euler", "midpoint", "heun", "rk4"};

/// Calls f(solver) with the built-in solver named `name` ("euler", "midpoint", "heun", "rk4"; each
/// its own type, so f is generic), built with `final_step`; ConfigError listing the names for any
/// other. Returns what f returns.
template <class F>
decltype(auto) with_solver_named(std::string_view name, FinalStep final_step, F&& f) {
  if (name == "euler") return f(Euler{});
  if (name == "midpoint") return f(Midpoint{final_step});
  if (name == "heun") return f(Heun{final_step});
  if (name == "rk4") return f(RungeKutta4{final_step});
  detail::fail<ConfigError>("solver '", name, "' is not one of: euler, midpoint, heun, rk4");
}

static_assert(PerFrameStepper<Euler>);
static_assert(PerFrameStepper<Midpoint>);
static_assert(PerFrameStepper<Heun, HostAlgebra<float>>);
static_assert(PerFrameStepper<RungeKutta4>);

}  // namespace flowception
