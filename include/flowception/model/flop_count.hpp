// Floating-point operations spent by a model, split into attention and everything else, so
// training and sampling costs of different methods are measured rather than assumed (§3, §7).
#pragma once

#include <concepts>

namespace flowception {

/// Multiply and add count as 2; element-wise work is not counted.
struct FlopCount {
  double attention = 0;  ///< QKᵀ and P·V products (and their backward)
  double other = 0;      ///< every linear layer
  /// All counted FLOPs, attention plus other.
  double total() const { return attention + other; }
  /// Adds both parts of `o`.
  FlopCount& operator+=(const FlopCount& o) {
    attention += o.attention;
    other += o.other;
    return *this;
  }
  /// Part-wise sum.
  friend FlopCount operator+(FlopCount a, const FlopCount& b) { return a += b; }
};

/// A model that reports the FLOPs of its last forward pass (the DiT does; oracles do not).
template <class M>
concept ReportsFlops = requires(const M& m) {
  { m.forward_flops() } -> std::convertible_to<FlopCount>;
};

/// FLOPs of the model's last forward pass, or zero for a model that does not report them.
template <class M>
FlopCount last_forward_flops(const M& m) {
  if constexpr (ReportsFlops<M>)
    return m.forward_flops();
  else
    return {};
}

}  // namespace flowception
