// Durable atomic file writes. The content goes to a temporary file next to the target
// ("<name>.tmp.<pid>.<random>"), which is fsync'ed and closed (with close's result checked),
// renamed over the target, and then the directory is fsync'ed so the rename itself survives a
// power loss. A crash at any moment leaves under the final name either the old file or the
// whole new one, never a part. Temporary files of our own naming whose writer process is gone
// (a save killed midway) are removed by the next save of the same target. POSIX only.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <ostream>
#include <random>
#include <streambuf>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "flowception/core/errors.hpp"

namespace flowception::io {

namespace detail_atomic {

inline std::string errno_text(int e) { return std::error_code(e, std::generic_category()).message(); }

/// An output stream buffer over a POSIX file descriptor; write errors (a full disk) are
/// remembered and reported by the caller, not lost in a destructor.
class FdStreambuf : public std::streambuf {
 public:
  explicit FdStreambuf(int fd) : fd_(fd), buf_(1 << 20) { setp(buf_.data(), buf_.data() + buf_.size()); }
  int error() const { return error_; }

 protected:
  int_type overflow(int_type ch) override {
    if (!flush_buffer()) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }
  int sync() override { return flush_buffer() ? 0 : -1; }

 private:
  bool flush_buffer() {
    const char* p = pbase();
    std::size_t n = static_cast<std::size_t>(pptr() - pbase());
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        error_ = w < 0 ? errno : EIO;
        return false;
      }
      p += w;
      n -= static_cast<std::size_t>(w);
    }
    setp(buf_.data(), buf_.data() + buf_.size());
    return true;
  }
  int fd_;
  std::vector<char> buf_;
  int error_ = 0;
};

/// fsync of a directory, so that a rename or an unlink in it is on disk.
inline void sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) detail::fail<IoError>("cannot open directory ", dir, " to sync it: ", errno_text(errno));
  int rc;
  do rc = ::fsync(fd);
  while (rc != 0 && errno == EINTR);
  const int e = errno;
  ::close(fd);
  // Some file systems cannot sync directories (EINVAL): nothing more can be done there.
  if (rc != 0 && e != EINVAL)
    detail::fail<IoError>("cannot sync directory ", dir, ": ", errno_text(e));
}

/// The "<pid>" of a temporary name "<target name>.tmp.<pid>.<random>", or -1.
inline long temporary_owner(std::string_view file, std::string_view target) {
  const std::string prefix = std::string(target) + ".tmp.";
  if (!file.starts_with(prefix)) return -1;
  file.remove_prefix(prefix.size());
  const auto dot = file.find('.');
  if (dot == 0 || dot == std::string_view::npos) return -1;
  long pid = 0;
  for (char c : file.substr(0, dot)) {
    if (c < '0' || c > '9' || pid > 1'000'000'000) return -1;
    pid = pid * 10 + (c - '0');
  }
  return pid;
}

}  // namespace detail_atomic

/// Removes the temporary files of `path` (our naming) left by writers that no longer run on this
/// machine (a save killed midway). Returns how many were removed. Files of running processes,
/// this one included, are left alone: they may be saves in progress.
inline std::size_t remove_stale_temporaries(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  std::size_t removed = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const long pid = detail_atomic::temporary_owner(it->path().filename().string(), path.filename().string());
    if (pid <= 0) continue;
    const bool alive = ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
    if (alive) continue;
    std::error_code rm;
    if (fs::remove(it->path(), rm)) ++removed;
  }
  return removed;
}

/// Calls `write(stream)` on a temporary file in the target's directory, makes it durable, then
/// renames it to `path` and syncs the directory. On any failure the temporary file is removed
/// and IoError names the path and the cause.
inline void write_atomically(const std::filesystem::path& path, const std::function<void(std::ostream&)>& write) {
  namespace fs = std::filesystem;
  using detail_atomic::errno_text;
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    detail::fail<IoError>("cannot write ", path, ": directory ", dir, " does not exist");
  if (fs::is_directory(path, ec)) detail::fail<IoError>("cannot write ", path, ": it is a directory");
  remove_stale_temporaries(path);
  std::random_device rd;
  const fs::path tmp = dir / (path.filename().string() + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(rd()));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) detail::fail<IoError>("cannot create ", tmp, ": ", errno_text(errno));
  bool fd_open = true;
  try {
    detail_atomic::FdStreambuf sb(fd);
    {
      std::ostream out(&sb);
      write(out);
      out.flush();
      if (!out || sb.error())
        detail::fail<IoError>("writing ", tmp, " failed: ",
                                  sb.error() ? errno_text(sb.error()) : std::string("the stream failed"), " (disk full?)");
    }
    int rc;
    do rc = ::fsync(fd);
    while (rc != 0 && errno == EINTR);
    if (rc != 0) detail::fail<IoError>("cannot sync ", tmp, " to disk: ", errno_text(errno));
    fd_open = false;
    if (::close(fd) != 0) detail::fail<IoError>("closing ", tmp, " failed: ", errno_text(errno));
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      detail::fail<IoError>("cannot rename ", tmp, " to ", path, ": ", errno_text(errno));
  } catch (...) {
    if (fd_open) ::close(fd);
    fs::remove(tmp, ec);
    throw;
  }
  detail_atomic::sync_directory(dir);
}

/// Writes a whole string or byte buffer atomically.
inline void write_file_atomically(const std::filesystem::path& path, std::string_view bytes) {
  write_atomically(path, [&](std::ostream& out) { out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())); });
}

}  // namespace flowception::io
