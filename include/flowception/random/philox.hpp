// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11),
// written from the paper's description. Counter-based: output = f(counter, key), so any
// draw can be recomputed independently on CPU or GPU, and streams never interfere (§4).
#pragma once

#include <array>
#include <cstdint>

#if defined(__CUDACC__)
/// Marks a function callable from host and device code under nvcc; empty elsewhere.
#define FLOWCEPTION_HOST_DEVICE __host__ __device__
#else
/// Marks a function callable from host and device code under nvcc; empty elsewhere.
#define FLOWCEPTION_HOST_DEVICE
#endif

namespace flowception::random {

/// A Philox-4x32 counter block, also the type of one output block (four 32-bit words).
using PhiloxCounter = std::array<std::uint32_t, 4>;
/// A Philox-4x32 key (two 32-bit words); the library puts the seed here.
using PhiloxKey = std::array<std::uint32_t, 2>;

namespace detail {
inline constexpr std::uint32_t kPhiloxM0 = 0xD2511F53u;
inline constexpr std::uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr std::uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
inline constexpr std::uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1

FLOWCEPTION_HOST_DEVICE constexpr void mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi,
                                               std::uint32_t& lo) {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(p >> 32);
  lo = static_cast<std::uint32_t>(p);
}
}  // namespace detail

/// One Philox-4x32 block with `Rounds` rounds (10 is the standard, crush-resistant choice).
template <int Rounds = 10>
FLOWCEPTION_HOST_DEVICE constexpr PhiloxCounter philox4x32(PhiloxCounter ctr, PhiloxKey key) {
  for (int r = 0; r < Rounds; ++r) {
    if (r > 0) {  // key schedule: bump the key before every round but the first
      key[0] += detail::kPhiloxW0;
      key[1] += detail::kPhiloxW1;
    }
    std::uint32_t hi0, lo0, hi1, lo1;
    detail::mulhilo(detail::kPhiloxM0, ctr[0], hi0, lo0);
    detail::mulhilo(detail::kPhiloxM1, ctr[2], hi1, lo1);
    ctr = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
  }
  return ctr;
}

/// The library's keying convention: key = seed, counter = (block index, stream id).
/// Block b of stream `stream` under `seed` is philox(b_lo, b_hi, stream_lo, stream_hi; seed).
FLOWCEPTION_HOST_DEVICE constexpr PhiloxCounter philox_block(std::uint64_t seed, std::uint64_t stream,
                                                            std::uint64_t block) {
  return philox4x32<10>(
      PhiloxCounter{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                    static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)},
      PhiloxKey{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
}

/// Derives a child stream id from a parent id and a tag (a bijective 64-bit mixer applied to a
/// combination). Used so that a frame's noise depends only on its own identity, never on how
/// many other frames exist (§4: inserting one frame leaves every other frame's noise unchanged).
FLOWCEPTION_HOST_DEVICE constexpr std::uint64_t derive_stream(std::uint64_t parent, std::uint64_t tag) {
  std::uint64_t z = parent * 0x9E3779B97F4A7C15ull + (tag + 0x632BE59BD9B4E019ull) * 0xD6E8FEB86659FD93ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Two 32-bit words to a double uniform on the open interval (0, 1), 53 bits.
FLOWCEPTION_HOST_DEVICE constexpr double to_unit_open(std::uint32_t hi, std::uint32_t lo) {
  const std::uint64_t bits = ((static_cast<std::uint64_t>(hi) << 32) | lo) >> 11;
  return (static_cast<double>(bits) + 0.5) * 0x1.0p-53;
}

}  // namespace flowception::random
