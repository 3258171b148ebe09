// Frame kinds of §1: generated frames flow from noise; context frames are given and never move.
#pragma once

#include <cstdint>
#include <string_view>

namespace flowception {

enum class FrameKind : std::uint8_t {
  generated = 0,        ///< flows from noise; may receive insertions to its right
  active_context = 1,   ///< given clean frame (t = 1); may receive insertions to its right
  passive_context = 2,  ///< given clean frame (t = 1); never receives insertions to its right
};

constexpr bool is_context(FrameKind k) { return k != FrameKind::generated; }
constexpr bool receives_insertions(FrameKind k) { return k != FrameKind::passive_context; }

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
