// The include for users of the sampler: the coupled ODE–jump sampler (§4) with everything it
// takes as parameters (schedulers, grids, shift, solvers, algebra, observers, prompts).
#pragma once

#include "flowception/algebra/host_algebra.hpp"
#include "flowception/core/errors.hpp"
#include "flowception/core/frame_kind.hpp"
#include "flowception/model/velocity_model.hpp"
#include "flowception/random/stream.hpp"
#include "flowception/sampling/coupled_sampler.hpp"
#include "flowception/sampling/observer.hpp"
#include "flowception/sampling/prompt.hpp"
#include "flowception/schedule/any_kappa.hpp"
#include "flowception/schedule/kappa.hpp"
#include "flowception/schedule/time_grid.hpp"
#include "flowception/schedule/time_shift.hpp"
#include "flowception/solver/runge_kutta.hpp"
