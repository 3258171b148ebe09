// What every command of the flowception program shares: the includes, the data sets chosen at
// run time (--data), and --device (which backend the model runs on).
#pragma once

#include <CLI/CLI.hpp>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <cinttypes>
#include <cstdint>
#include <type_traits>
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
#include <flowception/dit/cublaslt_plan.hpp>
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

namespace fc_cli {

// ---- Numeric flags ----------------------------------------------------------------------------

/// Step counts of training go into signed 64-bit arithmetic (schedules, the loop): far below it.
constexpr std::size_t kMaxTrainSteps = 1'000'000'000'000;
/// Frames per video (length caps, targets, start frames): far beyond any video we can sample.
constexpr std::size_t kMaxVideoFrames = 1'000'000;

/// The shortest text that reads back as `v` (1e-12, not 9.9999999999999998e-13).
template <class T>
std::string shortest(T v) {
  char buf[64];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

/// A flag's stated range, checked on the text before any conversion: the whole text must be a
/// number of the flag's kind (an integer for integer flags, a finite number otherwise) inside
/// [lo, hi]. CLI11 puts the flag's name in front of the message, so an error reads
/// "--batch: 1e11 is not an integer in [1, 1000000]".
template <class T>
CLI::Validator within(T lo, T hi) {
  const std::string range = "[" + shortest(lo) + ", " + shortest(hi) + "]";
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        T v{};
        const char* first = text.data();
        const char* last = text.data() + text.size();
        std::from_chars_result r{};
        if constexpr (std::is_floating_point_v<T>)
          r = std::from_chars(first, last, v, std::chars_format::general);
        else
          r = std::from_chars(first, last, v, 10);
        const bool number = !text.empty() && r.ec == std::errc{} && r.ptr == last && (!std::is_floating_point_v<T> || std::isfinite(v));
        if (!number || v < lo || v > hi)
          return detail::cat(text, " is not ", std::is_floating_point_v<T> ? "a number" : "an integer", " in ", range);
        return std::string();
      },
      "in " + range);
}

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
  std::size_t max_length = 0;  // the longest video (for memory plans)
  std::size_t bytes_held = 0;  // memory the videos take when they are all loaded (npy)
  std::size_t size() const { return count; }
  data::Video video(std::size_t i) const { return get(i); }
};

inline DataSource open_data(const DataFlags& f) {
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
    d = {"shapes", f.size, [g](std::size_t i) { return g.video(i); }, data::CrossingShapes::max_length_for(g.side), 0};
  } else if (f.data == "ring") {
    data::RotatingRing g{f.seed};
    d = {"ring", f.size, [g](std::size_t i) { return g.video(i); }, data::RotatingRing::legal_lengths.back(), 0};
  } else if (f.data.rfind("npy:", 0) == 0) {
    auto dir = std::make_shared<io::VideoDirectory>(io::load_npy_directory(
        f.data.substr(4), f.labels.empty() ? std::nullopt : std::optional<fs::path>(f.labels)));
    std::size_t longest = 0, bytes = 0;
    for (const auto& v : dir->videos) {
      longest = std::max(longest, v.length());
      bytes += v.frames.size() * sizeof(float);
    }
    d = {"npy", dir->videos.size(), [dir](std::size_t i) { return dir->videos[i]; }, longest, bytes};
  } else {
    detail::fail<ConfigError>("unknown data '", f.data, "' (shapes | shapes:N | ring | npy:DIR)");
  }
  return d;
}

inline void add_data_flags(CLI::App* app, DataFlags& f) {
  app->add_option("--data", f.data,
                  "shapes (16×16 frames) | shapes:N (N×N frames) | ring | npy:DIR (a directory of T×H×W×C .npy videos)")->capture_default_str();
  app->add_option("--labels", f.labels, "for npy data: a text file of 'file label' lines");
  app->add_option("--data-seed", f.seed, "seed of the generated data sets")->capture_default_str()
      ->check(within<std::uint64_t>(0, UINT64_MAX));
  app->add_option("--data-size", f.size, "distinct generated videos to draw from")->capture_default_str()
      ->check(within<std::size_t>(1, 1'000'000'000'000));
}

// ---- Output folders -----------------------------------------------------------------------------

/// Checks an --out folder before any work: a folder, or a place where one can be made, that this
/// process may write.
inline void check_out_folder(const std::string& out_flag) {
  const fs::path out(out_flag);
  std::error_code ec;
  detail::require(!fs::exists(out, ec) || fs::is_directory(out, ec), "--out ", out, " exists and is not a directory");
  fs::path base = fs::absolute(out);  // the nearest existing folder at or above it
  while (!fs::exists(base, ec) && base.has_parent_path() && base.parent_path() != base) base = base.parent_path();
  detail::require(fs::is_directory(base, ec) && ::access(base.c_str(), W_OK | X_OK) == 0, "--out ", out,
                  ": cannot write in ", base);
}

// ---- Memory -----------------------------------------------------------------------------------

/// Bytes the system can still give this process (MemAvailable of /proc/meminfo); 0 when unknown.
inline std::uint64_t available_memory_bytes() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[256];
  std::uint64_t kib = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "MemAvailable: %" SCNu64 " kB", &kib) == 1) break;
  std::fclose(f);
  return kib * 1024;
}

/// --memory-limit in bytes: the flag (GiB) when given, else the memory available now (under
/// mpirun shared by this machine's ranks).
inline double memory_limit_bytes(double gib) {
  if (gib > 0) return gib * double(1 << 30);
  const double have = static_cast<double>(available_memory_bytes());
  const int local = local_ranks();
  return have > 0 ? have / local : 1e30;  // unknown: no limit
}

inline std::string gib(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g GiB", bytes / double(1 << 30));
  return b;
}

inline void add_memory_flag(CLI::App* app, double& limit) {
  app->add_option("--memory-limit", limit,
                  "GiB this command may use; it refuses a configuration whose estimated peak is above it, before "
                  "any work (default: the memory available now)")
      ->check(within(0.0, 1e6));
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
  detail::fail<ConfigError>(
      "--device cuda: this flowception program was built without a device backend (no nvcc was found when it "
      "was configured); rebuild with -DFLOWCEPTION_CUDA=ON on a machine with the CUDA toolkit, or use --device cpu");
#endif
}

inline const char* device_help() {
  return "cpu | cuda: where the model runs (cuda: weights, activations and frames in device memory)";
}

/// What the device did, for run.json (--device cuda only; empty on the CPU): the products as
/// planned for cuBLASLt (fused epilogues, and every fallback by reason) and the bytes copied
/// between host and device memory.
inline json device_record(const std::string& device) {
  if (device == "cpu") return json::object();
  const auto c = dit::gpu::product_counts();
  json r = {{"cublaslt_products", c.products},
            {"cublaslt_fused_bias", c.fused_bias},
            {"cublaslt_fused_gelu", c.fused_gelu},
            {"cublaslt_fallbacks", c.fallbacks()},
            {"cublaslt_fallback_bias_alignment", c.fallback_bias_alignment},
            {"cublaslt_fallback_aux_alignment", c.fallback_aux_alignment},
            {"cublaslt_fallback_aux_ld", c.fallback_aux_ld},
            {"cublaslt_fallback_no_algorithm", c.fallback_no_algorithm},
            {"cublaslt_fallback_not_supported", c.fallback_not_supported},
            {"cublaslt_descriptor_builds", c.descriptor_builds}};
#if defined(FLOWCEPTION_CLI_DEVICE)
  const auto t = device::transfer_counts();
  r["bytes_to_device"] = t.to_device_bytes;
  r["bytes_to_host"] = t.to_host_bytes;
  r["copies_to_host"] = t.to_host_copies;
#endif
  return r;
}

}  // namespace fc_cli
