// The tutorial programs' command line: `--name value` pairs with defaults, every value checked
// (a whole number or a finite number in range), unknown flags refused. Kept tiny on purpose: the
// programs are for reading; the full CLI lives in examples/flowception/.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>

namespace tutorial {

class Args {
 public:
  /// `usage` is printed by --help; argv holds "--name value" pairs only.
  Args(int argc, char** argv, const char* usage) {
    for (int i = 1; i < argc; ++i) {
      const std::string k = argv[i];
      if (k == "--help" || k == "-h") {
        std::puts(usage);
        std::exit(0);
      }
      if (k.rfind("--", 0) != 0 || i + 1 >= argc) throw std::runtime_error("expected --name value, got '" + k + "'");
      given_[k.substr(2)] = argv[++i];
    }
  }

  /// A whole number in [lo, hi], or `fallback` when the flag is absent.
  std::size_t count(const std::string& name, std::size_t fallback, std::size_t lo, std::size_t hi) {
    used_.insert(name);
    auto it = given_.find(name);
    if (it == given_.end()) return fallback;
    std::size_t v = 0;
    const auto& s = it->second;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size() || v < lo || v > hi)
      throw std::runtime_error("--" + name + " must be a whole number in [" + std::to_string(lo) + ", " +
                               std::to_string(hi) + "], got '" + s + "'");
    return v;
  }

  /// A finite number in [lo, hi], or `fallback`.
  double number(const std::string& name, double fallback, double lo, double hi) {
    used_.insert(name);
    auto it = given_.find(name);
    if (it == given_.end()) return fallback;
    double v = 0;
    const auto& s = it->second;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (r.ec != std::errc() || r.ptr != s.data() + s.size() || !std::isfinite(v) || v < lo || v > hi)
      throw std::runtime_error("--" + name + " must be a number in [" + std::to_string(lo) + ", " +
                               std::to_string(hi) + "], got '" + s + "'");
    return v;
  }

  /// Any text, or `fallback`.
  std::string text(const std::string& name, const std::string& fallback) {
    used_.insert(name);
    auto it = given_.find(name);
    return it == given_.end() ? fallback : it->second;
  }

  /// Call after reading every flag: a flag nobody asked for is a typo.
  void done() const {
    for (const auto& [k, v] : given_)
      if (!used_.count(k)) throw std::runtime_error("unknown flag --" + k + " (see --help)");
  }

 private:
  std::map<std::string, std::string> given_;
  std::set<std::string> used_;
};

/// Runs `body`, turning an exception into a message on stderr and exit status 2.
template <class F>
int run(const char* program, F&& body) {
  try {
    body();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 2;
  }
}

/// A text bar of `fraction` of `width` characters: the tutorial's histograms.
inline std::string bar(double fraction, std::size_t width = 40) {
  const auto n = static_cast<std::size_t>(std::lround(std::fmax(0.0, fraction) * static_cast<double>(width)));
  return std::string(n, '#');
}

}  // namespace tutorial
