// Error types. Every check in the library throws one of these with a message that
// names the offending quantity, so callers can tell bad input from a library bug.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
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

}  // namespace detail
}  // namespace flowception
