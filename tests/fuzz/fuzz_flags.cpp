// libFuzzer harness: the parsers of the compound flags --grid (with the step count), --kappa and
// --tau, and of the named choices --jump, --rule, --cap, --final-step and --solver. Input: one
// byte choosing the parser, two bytes of step count, then the flag's text. Whatever is accepted
// must give a valid object (finite κ, a strictly increasing grid) whose name reads back to it.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "flowception/sampling/coupled_sampler.hpp"
#include "flowception/schedule/any_kappa.hpp"
#include "flowception/schedule/time_grid.hpp"
#include "flowception/solver/runge_kutta.hpp"
#include "flowception/training/tau_distribution.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flowception;
  if (size < 3) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 3), size - 3);
  const std::size_t steps = (static_cast<std::size_t>(data[1]) | static_cast<std::size_t>(data[2]) << 8) % 4097;
  try {
    switch (data[0] % 8) {
      case 0: {
        const auto g = TimeGrid::from_name(text, steps);
        if (g.steps() != steps || g[0] != 0.0 || g[g.steps()] != 1.0) std::abort();
        break;
      }
      case 1: {
        const auto k = AnyKappa::from_name(text);
        for (double s : {0.0, 0.25, 0.5, 0.999, 1.0})
          if (!std::isfinite(k.kappa(s)) || k.kappa(s) < 0.0 || k.kappa(s) > 1.0) std::abort();
        break;
      }
      case 2: {
        const auto t = AnyTau::from_name(text);
        (void)t.name();
        break;
      }
      case 3:
        if (jump_mode_name(jump_mode_from_name(text)) != text) std::abort();
        break;
      case 4:
        if (insertion_rule_name(insertion_rule_from_name(text)) != text) std::abort();
        break;
      case 5:
        if (cap_policy_name(cap_policy_from_name(text)) != text) std::abort();
        break;
      case 6:
        if (final_step_name(final_step_from_name(text)) != text) std::abort();
        break;
      default:
        with_solver_named(text, FinalStep::euler, [&](const auto& solver) {
          if (solver.name() != text) std::abort();
        });
        break;
    }
  } catch (const Error&) {
  }
  return 0;
}
