// Closed-form oracle models: the clearest way to see the method work, and the strongest tests.
#pragma once

#include "flowception/oracles/gaussian_oracle.hpp"
#include "flowception/oracles/length_distribution.hpp"
#include "flowception/oracles/length_oracle.hpp"
