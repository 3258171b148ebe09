// The baselines of method.md §7 (full-sequence and autoregressive flow matching): samplers and
// training-sample builders that share the core's models, solvers, grids and losses.
#pragma once

#include "flowception/baselines/baseline_sampler.hpp"
#include "flowception/baselines/baseline_training.hpp"
