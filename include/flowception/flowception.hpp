// Everything in the core library.
#pragma once

#include "flowception/baselines.hpp"
#include "flowception/oracles.hpp"
#include "flowception/sampler.hpp"
#include "flowception/training.hpp"
