// What every command of the flowception program shares: the includes, the data sets chosen at
// run time (--data), and --device (which backend the model runs on).
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <flowception/baselines.hpp>
#include <flowception/data/crossing_shapes.hpp>
#include <flowception/data/rotating_ring.hpp>
#include <flowception/dit/model.hpp>
#include <flowception/io/gif.hpp>
#include <flowception/io/npy.hpp>
#include <flowception/io/png.hpp>
#include <flowception/io/report.hpp>
#include <flowception/oracles.hpp>
#include <flowception/sampler.hpp>
#include <flowception/train/trainer.hpp>
#if defined(FLOWCEPTION_CLI_DEVICE)
// The device backend: nvcc builds run it on a GPU; the Thrust-OpenMP build (flowception-omp,
// which CI tests) runs the same device code path on the CPU.
#include <flowception/algebra/thrust_algebra.hpp>
#include <flowception/dit/thrust_backend.hpp>
#endif

#include "progress.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace flowception;

#include "world.hpp"

namespace {

// ---- Data -------------------------------------------------------------------------------------

struct DataFlags {
  std::string data = "shapes";  // shapes | ring | npy:DIR
  std::string labels;           // npy: optional "file label" list
  std::uint64_t seed = 0;
  std::size_t size = 1000000;   // generated sets: number of distinct videos to draw from
};

/// A data set chosen at run time.
struct DataSource {
  std::string kind;  // shapes | ring | npy
  std::size_t count = 0;
  std::function<data::Video(std::size_t)> get;
  std::size_t size() const { return count; }
  data::Video video(std::size_t i) const { return get(i); }
};

DataSource open_data(const DataFlags& f) {
  DataSource d;
  if (f.data == "shapes" || f.data.rfind("shapes:", 0) == 0) {
    data::CrossingShapes g{f.seed};
    if (f.data != "shapes") {
      const std::string n = f.data.substr(7);
      std::size_t side = 0;
      const auto r = std::from_chars(n.data(), n.data() + n.size(), side);
      detail::require(!n.empty() && r.ec == std::errc{} && r.ptr == n.data() + n.size(),
                      "--data ", f.data, ": the frame side after 'shapes:' must be a whole number, got '", n, "'");
      g.side = side;
      data::CrossingShapes::check_side(side);
    }
    d = {"shapes", f.size, [g](std::size_t i) { return g.video(i); }};
  } else if (f.data == "ring") {
    data::RotatingRing g{f.seed};
    d = {"ring", f.size, [g](std::size_t i) { return g.video(i); }};
  } else if (f.data.rfind("npy:", 0) == 0) {
    auto dir = std::make_shared<io::VideoDirectory>(io::load_npy_directory(
        f.data.substr(4), f.labels.empty() ? std::nullopt : std::optional<fs::path>(f.labels)));
    d = {"npy", dir->videos.size(), [dir](std::size_t i) { return dir->videos[i]; }};
  } else {
    throw ConfigError("flowception: unknown data '" + f.data + "' (shapes | shapes:N | ring | npy:DIR)");
  }
  return d;
}

void add_data_flags(CLI::App* app, DataFlags& f) {
  app->add_option("--data", f.data,
                  "shapes (16×16 frames) | shapes:N (N×N frames) | ring | npy:DIR (a directory of T×H×W×C .npy videos)")->capture_default_str();
  app->add_option("--labels", f.labels, "for npy data: a text file of 'file label' lines");
  app->add_option("--data-seed", f.seed, "seed of the generated data sets")->capture_default_str();
  app->add_option("--data-size", f.size, "distinct generated videos to draw from")->capture_default_str()->check(CLI::PositiveNumber);
}

// ---- Device -----------------------------------------------------------------------------------

/// Runs f(backend, algebra) for `--device`: CpuBackend with HostAlgebra, or the device backend
/// with ThrustAlgebra (frames, noise, weights and activations in device memory). Clear errors
/// for a program built without a device backend and for a machine without a CUDA device.
template <class F>
auto on_device(const std::string& device, F&& f) {
  detail::require<ConfigError>(device == "cpu" || device == "cuda", "--device must be cpu or cuda, got '", device, "'");
  if (device == "cpu") return f(dit::CpuBackend{}, HostAlgebra<float>{});
#if defined(FLOWCEPTION_CLI_DEVICE)
  dit::ThrustBackend::require_device();
  return f(dit::ThrustBackend{}, ThrustAlgebra<float>{});
#else
  throw ConfigError(
      "--device cuda: this flowception program was built without a device backend (no nvcc was found when it "
      "was configured); rebuild with -DFLOWCEPTION_CUDA=ON on a machine with the CUDA toolkit, or use --device cpu");
#endif
}

const char* device_help() {
  return "cpu | cuda: where the model runs (cuda: weights, activations and frames in device memory)";
}

}  // namespace
