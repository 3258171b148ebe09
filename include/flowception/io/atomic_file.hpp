// Atomic file writes: write a temporary file next to the target, flush it, then rename it over
// the target, so a crash or a full disk never leaves a half-written file under the final name.
#pragma once

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>

#include "flowception/core/errors.hpp"

namespace flowception::io {

/// Calls `write(stream)` on a temporary file in the target's directory, then renames it to
/// `path`. On any failure the temporary file is removed and IoError names the path.
inline void write_atomically(const std::filesystem::path& path, const std::function<void(std::ostream&)>& write) {
  namespace fs = std::filesystem;
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw IoError(detail::cat("flowception: cannot write ", path, ": directory ", dir, " does not exist"));
  std::random_device rd;
  const fs::path tmp = dir / (path.filename().string() + ".tmp." + std::to_string(rd()));
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) throw IoError(detail::cat("flowception: cannot open ", tmp, " for writing"));
      write(out);
      out.flush();
      if (!out) throw IoError(detail::cat("flowception: write to ", tmp, " failed (disk full?)"));
    }
    fs::rename(tmp, path, ec);
    if (ec) throw IoError(detail::cat("flowception: cannot rename ", tmp, " to ", path, ": ", ec.message()));
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
}

/// Writes a whole string or byte buffer atomically.
inline void write_file_atomically(const std::filesystem::path& path, std::string_view bytes) {
  write_atomically(path, [&](std::ostream& out) { out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())); });
}

}  // namespace flowception::io
