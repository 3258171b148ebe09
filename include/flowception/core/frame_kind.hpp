// Frame kinds of §1: generated frames flow from noise; context frames are given and never move.
#pragma once

#include <cstdint>
#include <string_view>

namespace flowception {

/// The role of a frame in a video (§1): generated, or given context that may or may not receive
/// insertions to its right.
enum class FrameKind : std::uint8_t {
  generated = 0,        ///< flows from noise; may receive insertions to its right
  active_context = 1,   ///< given clean frame (t = 1); may receive insertions to its right
  passive_context = 2,  ///< given clean frame (t = 1); never receives insertions to its right
};

/// True for both kinds of context frame (given, clean, never moved by the ODE).
constexpr bool is_context(FrameKind k) { return k != FrameKind::generated; }
/// True unless `k` is `passive_context`: whether the gap right of the frame can receive insertions.
constexpr bool receives_insertions(FrameKind k) { return k != FrameKind::passive_context; }

/// The enumerator's name (`"generated"`, `"active_context"`, `"passive_context"`), or `"unknown"`.
constexpr std::string_view to_string(FrameKind k) {
  switch (k) {
    case FrameKind::generated: return "generated";
    case FrameKind::active_context: return "active_context";
    case FrameKind::passive_context: return "passive_context";
  }
  return "unknown";
}

/// Condition value meaning "no condition" (unconditional video).
inline constexpr std::int64_t kNoCondition = -1;

}  // namespace flowception
