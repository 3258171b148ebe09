// Random streams over Philox: a stream is (seed, stream id); draws walk its block counter.
// Distributions (uniform, normal, Poisson, Bernoulli, binomial) are built on it here so every
// random choice in the library is reproducible bit for bit from the seed.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>

#include "flowception/core/errors.hpp"
#include "flowception/random/philox.hpp"

namespace flowception::random {

/// Element `index` of the standard-normal sequence of a stream: Box-Muller on the two 53-bit
/// uniforms of block index/2. A pure function of (seed, stream, index), so a GPU kernel can
/// produce the same frame noise element by element.
FLOWCEPTION_HOST_DEVICE inline double normal_at(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  const PhiloxCounter b = philox_block(seed, stream, index >> 1);
  const double u1 = to_unit_open(b[0], b[1]);
  const double u2 = to_unit_open(b[2], b[3]);
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * std::numbers::pi * u2;
  return (index & 1u) ? r * std::sin(angle) : r * std::cos(angle);
}

/// A sequential reader of one stream. Copyable; `position()` lets a caller checkpoint it.
class Stream {
 public:
  /// Stream `stream_id` under `seed`, positioned at its first word.
  Stream(std::uint64_t seed, std::uint64_t stream_id) : seed_(seed), stream_(stream_id) {}

  /// The Philox key this stream draws under.
  std::uint64_t seed() const { return seed_; }
  /// The stream id (the upper half of the Philox counter).
  std::uint64_t id() const { return stream_; }
  /// Number of 32-bit words consumed so far.
  std::uint64_t position() const { return pos_; }
  /// Moves the read position to 32-bit word `word` of the stream.
  void seek(std::uint64_t word) {
    pos_ = word;
    cached_block_ = ~std::uint64_t{0};
    has_spare_ = false;  // a pending Box-Muller value belongs to the old position
  }

  /// The next 32-bit word of the stream; advances the position by one.
  std::uint32_t next_u32() {
    const std::uint64_t blk = pos_ >> 2;
    if (blk != cached_block_) {
      buf_ = philox_block(seed_, stream_, blk);
      cached_block_ = blk;
    }
    return buf_[pos_++ & 3u];
  }

  /// Uniform on the open interval (0, 1) with 53 random bits.
  double uniform() {
    const std::uint32_t hi = next_u32();
    const std::uint32_t lo = next_u32();
    return to_unit_open(hi, lo);
  }

  /// Standard normal (Box-Muller, both outputs used).
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = uniform(), u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double a = 2.0 * std::numbers::pi * u2;
    spare_ = r * std::sin(a);
    has_spare_ = true;
    return r * std::cos(a);
  }

  /// True with probability `p` (one uniform draw; p ≤ 0 never, p ≥ 1 always).
  bool bernoulli(double p) { return uniform() < p; }

  /// Uniform integer in [0, n). Rejection-free multiply-shift on 53 bits; bias < 2^-40 for n < 2^13.
  std::uint64_t below(std::uint64_t n) {
    flowception::detail::require(n >= 1, "below(n) needs n >= 1: [0, 0) holds no integer");
    const double u = uniform();
    auto k = static_cast<std::uint64_t>(u * static_cast<double>(n));
    return k < n ? k : n - 1;
  }

  /// Poisson(mean) draw. Inversion for small means, Hörmann's PTRS transformed rejection
  /// (Insurance: Mathematics and Economics 12, 1993) for mean >= 10. Returned as double so an
  /// absurd mean cannot overflow an integer; callers compare it against their caps.
  double poisson(double mean) {
    flowception::detail::require(std::isfinite(mean) && mean >= 0.0, "Poisson mean must be finite and >= 0, got ", mean);
    if (mean == 0.0) return 0.0;
    if (mean < 10.0) {
      const double limit = std::exp(-mean);
      double prod = uniform();
      double k = 0.0;
      while (prod > limit) {
        prod *= uniform();
        k += 1.0;
      }
      return k;
    }
    const double smu = std::sqrt(mean);
    const double b = 0.931 + 2.53 * smu;
    const double a = -0.059 + 0.02483 * b;
    const double inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    const double vr = 0.9277 - 3.6224 / (b - 2.0);
    const double log_mean = std::log(mean);
    for (;;) {
      const double u = uniform() - 0.5;
      const double v = uniform();
      const double us = 0.5 - std::fabs(u);
      const double k = std::floor((2.0 * a / us + b) * u + mean + 0.43);
      if (us >= 0.07 && v <= vr) return k;
      if (k < 0.0 || (us < 0.013 && v > us)) continue;
      if (std::log(v) + std::log(inv_alpha) - std::log(a / (us * us) + b) <=
          -mean + k * log_mean - std::lgamma(k + 1.0))
        return k;
    }
  }

  /// Binomial(n, p) as n Bernoulli trials: exact, O(n), and n is a count of missing frames.
  std::uint64_t binomial(std::uint64_t n, double p) {
    flowception::detail::require(p >= 0.0 && p <= 1.0, "binomial probability must be in [0,1], got ", p);
    if (n == 0 || p == 0.0) return 0;
    if (p == 1.0) return n;
    std::uint64_t k = 0;
    for (std::uint64_t i = 0; i < n; ++i) k += bernoulli(p) ? 1u : 0u;
    return k;
  }

 private:
  std::uint64_t seed_;
  std::uint64_t stream_;
  std::uint64_t pos_ = 0;
  std::uint64_t cached_block_ = ~std::uint64_t{0};
  PhiloxCounter buf_{};
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace flowception::random
