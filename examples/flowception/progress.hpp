// A terminal progress bar (an observer-side concern: the library never prints).
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace fc_cli {

class ProgressBar {
 public:
  ProgressBar(std::string label, double total, bool enabled = true)
      : label_(std::move(label)), total_(total), enabled_(enabled), start_(std::chrono::steady_clock::now()) {}

  /// Redraws at most every 0.2 s (or at the end) with done/total, rate, ETA and `extra`.
  void update(double done, const std::string& extra = "") {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    if (done < total_ && std::chrono::duration<double>(now - last_).count() < 0.2) return;
    last_ = now;
    const double frac = total_ > 0 ? std::min(1.0, done / total_) : 0.0;
    const int width = 28, filled = static_cast<int>(frac * width);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(width, '.');
    const double rate = elapsed > 0 ? done / elapsed : 0.0;
    const double eta = rate > 0 ? (total_ - done) / rate : 0.0;
    std::fprintf(stderr, "\r%s [%s] %5.1f%% %.0f/%.0f  %.2f/s  ETA %s  %s   ", label_.c_str(), bar.c_str(), 100 * frac,
                 done, total_, rate, clock(eta).c_str(), extra.c_str());
    if (done >= total_) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }
  void finish(double done, const std::string& extra = "") {
    if (!enabled_) return;
    total_ = done;
    last_ = {};
    update(done, extra);
  }
  double elapsed() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

  static std::string clock(double s) {
    char buf[32];
    const long t = static_cast<long>(s + 0.5);
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
    return buf;
  }

 private:
  std::string label_;
  double total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_{};
};

}  // namespace fc_cli
