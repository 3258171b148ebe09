// The include for training code: the extended-time sampler (§3), batches and losses.
#pragma once

#include "flowception/training/batch.hpp"
#include "flowception/training/extended_time_sampler.hpp"
#include "flowception/training/losses.hpp"
#include "flowception/training/rate_calibration.hpp"
#include "flowception/training/tasks.hpp"
#include "flowception/training/tau_distribution.hpp"
