// Error types. Every check in the library throws one of these with a message that
// names the offending quantity, so callers can tell bad input from a library bug.
#pragma once

#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace flowception {

/// Base of every error the library throws.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// An impossible configuration or argument (zero steps, bad grid, n_start < 1, ...).
struct ConfigError : Error {
  using Error::Error;
};

/// Data that does not have the promised shape or content (frame-size mismatch, empty video).
struct ShapeError : Error {
  using Error::Error;
};

/// A model returned something unusable (NaN/Inf velocity or log-rate, wrong output size).
struct ModelOutputError : Error {
  using Error::Error;
};

/// A length cap (`max_frames`) was exceeded under the error policy.
struct LengthCapError : Error {
  using Error::Error;
};

/// A file that cannot be read or written, or whose content is corrupt or truncated.
struct IoError : Error {
  using Error::Error;
};

namespace detail {

template <class... Parts>
std::string cat(Parts&&... parts) {
  std::ostringstream os;
  os.precision(17);
  (os << ... << std::forward<Parts>(parts));
  return os.str();
}

template <class E, class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw E(cat("flowception: ", std::forward<Parts>(parts)...));
}

/// Throws E with the message when `ok` is false. The check is inlined and the throw is a
/// [[noreturn]] call, so the compiler knows `ok` holds after it (no false bounds warnings).
template <class E = ConfigError, class... Parts>
inline void require(bool ok, Parts&&... parts) {
  if (!ok) [[unlikely]]
    fail<E>(std::forward<Parts>(parts)...);
}

/// The number that is the whole of `text` (no spaces, nothing after it), finite; else a
/// ConfigError that quotes `text` and names where it came from (`what`, e.g. "kappa 'poly:2abc'").
inline double parse_number(std::string_view text, std::string_view what) {
  double v = 0;
  const char* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, v);
  if (text.empty() || r.ec != std::errc{} || r.ptr != end || !std::isfinite(v))
    fail<ConfigError>("cannot read a number in ", what, ": '", text, "'",
                      r.ec == std::errc{} && r.ptr != end && !text.empty()
                          ? cat(" has '", std::string_view(r.ptr, static_cast<std::size_t>(end - r.ptr)), "' after the number")
                          : std::string());
  return v;
}

}  // namespace detail
}  // namespace flowception
