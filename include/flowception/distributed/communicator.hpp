// Data parallelism across processes (method.md §3 is unchanged by it: K ranks train on disjoint
// shares of one global batch and take the step one process would take with the whole batch).
//
// A Communicator is a group of `size()` processes numbered 0..size()−1. Valid expressions, for a
// communicator `c`, host spans `f` (float) and `d` (double), bytes `b` and an int `root`:
//
//   | expression                       | meaning                                                     |
//   |----------------------------------|-------------------------------------------------------------|
//   | c.rank(), c.size()               | this process's number, the number of processes (int)        |
//   | c.all_reduce_sum(f), (d)         | every rank's buffer becomes the element-wise sum (in place) |
//   | c.broadcast(b, root)             | every rank's bytes become root's (same size everywhere)     |
//   | c.barrier()                      | returns once every rank has called it                       |
//   | c.gather(b)                      | rank 0 gets every rank's bytes (vector of size() vectors);  |
//   |                                  | the others get an empty vector; sizes may differ            |
//   | c.start_all_reduce_sum(f)        | begins an all-reduce of f, which must stay alive and        |
//   |                                  | untouched until the next c.finish_all_reduces()             |
//   | c.finish_all_reduces()           | completes every started all-reduce                          |
//   | Comm::kGradientMemory            | where the gradient all-reduces read: MemorySpace::host, or  |
//   |                                  | ::device for a communicator of device buffers (NCCL)        |
//   | c.all_reduce_gradients(p, n)     | sum of n floats at p in kGradientMemory, in place; complete |
//   |                                  | for the caller after the next c.finish_all_reduces()        |
//
// Every rank calls every collective in the same order; a rank that cannot go on must end the
// whole job (the MPI communicator's abort()), never leave the others waiting.
//
// Implementations: SingleProcess (here; no-ops, no dependency), MpiCommunicator
// (distributed/mpi_communicator.hpp, FLOWCEPTION_MPI) and NcclCommunicator
// (distributed/nccl_communicator.hpp, CUDA: gradients in device memory, the rest over MPI).
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "flowception/core/errors.hpp"

namespace flowception::distributed {

/// Where a communicator's gradient all-reduces read and write: host memory (MPI, one process) or
/// device memory (NCCL).
enum class MemorySpace { host, device };

/// A group of size() processes (ranks), numbered 0 … size() − 1, that train or sample together:
/// in-place sums over ranks of host buffers (all_reduce_sum; start_all_reduce_sum and
/// finish_all_reduces without blocking), a broadcast of bytes from a root, a barrier, a gather of
/// every rank's bytes on rank 0, and all_reduce_gradients of n floats in `C::kGradientMemory`.
/// Every rank calls every collective in the same order. The table of expressions is in
/// `docs/concepts.md` (Communicator) and at the top of this header.
template <class C>
concept Communicator = requires(C& c, std::span<float> f, std::span<double> d, std::span<std::byte> b,
                                std::span<const std::byte> cb, float* p, std::size_t n) {
  { c.rank() } -> std::convertible_to<int>;
  { c.size() } -> std::convertible_to<int>;
  c.all_reduce_sum(f);
  c.all_reduce_sum(d);
  c.broadcast(b, 0);
  c.barrier();
  { c.gather(cb) } -> std::same_as<std::vector<std::vector<std::byte>>>;
  c.start_all_reduce_sum(f);
  c.finish_all_reduces();
  { C::kGradientMemory } -> std::convertible_to<MemorySpace>;
  c.all_reduce_gradients(p, n);
};

/// One process: every collective is the identity. The default everywhere.
struct SingleProcess {
  static constexpr MemorySpace kGradientMemory = MemorySpace::host;  ///< gradients are host buffers
  int rank() const { return 0; }  ///< always 0
  int size() const { return 1; }  ///< always 1
  void all_reduce_sum(std::span<float>) {}   ///< leaves the buffer as it is (the sum over one rank)
  void all_reduce_sum(std::span<double>) {}  ///< leaves the buffer as it is
  void broadcast(std::span<std::byte>, int) {}  ///< leaves the bytes as they are
  void barrier() {}  ///< returns at once
  /// One entry: a copy of `b`.
  std::vector<std::vector<std::byte>> gather(std::span<const std::byte> b) { return {std::vector<std::byte>(b.begin(), b.end())}; }
  void start_all_reduce_sum(std::span<float>) {}  ///< nothing to start
  void finish_all_reduces() {}  ///< nothing to wait for
  void all_reduce_gradients(float*, std::size_t) {}  ///< leaves the gradients as they are
};
static_assert(Communicator<SingleProcess>);

/// The number of processes an MPI launcher (mpirun/mpiexec of OpenMPI, MPICH's Hydra, Slurm's
/// PMI) started this process among, from its environment; 0 when none did. A program checks it
/// before it calls MPI_Init, so a plain start never touches MPI, and a program built without MPI
/// can refuse to run as K copies that would each train alone.
inline int launcher_world_size() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"}) {
    const char* s = std::getenv(v);
    if (!s || !*s) continue;
    char* end = nullptr;
    const long n = std::strtol(s, &end, 10);
    if (end && *end == '\0' && n >= 1 && n <= (1 << 20)) return static_cast<int>(n);
  }
  return std::getenv("PMIX_RANK") || std::getenv("PMI_RANK") ? 1 : 0;
}

/// Rank r's contiguous share [begin, end) of n items split over `size` ranks: the first n mod
/// size ranks take one item more. Shares are disjoint, in rank order, and cover [0, n).
struct Share {
  /// First item of the share.
  std::size_t begin = 0, end = 0;  ///< one past the last item of the share
  std::size_t size() const { return end - begin; }  ///< number of items in the share
};
/// Rank `rank`'s Share of n items over `size` ranks; ConfigError unless 0 <= rank < size.
inline Share share_of(std::size_t n, int rank, int size) {
  detail::require(size >= 1 && rank >= 0 && rank < size, "share_of: rank ", rank, " is not in [0, ", size, ")");
  const auto k = static_cast<std::size_t>(size), r = static_cast<std::size_t>(rank);
  const std::size_t base = n / k, extra = n % k;
  const std::size_t begin = r * base + std::min(r, extra);
  return {begin, begin + base + (r < extra ? 1 : 0)};
}

/// A 64-bit fingerprint of a buffer's bits (FNV-1a over 8-byte words, then a final mix): cheap
/// enough to compare replicas every few hundred steps, and any changed bit changes it.
inline std::uint64_t fingerprint(const void* data, std::size_t bytes, std::uint64_t h = 0xcbf29ce484222325ULL) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 29;
  }
  for (; i < bytes; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

/// Whether every rank holds the same 64-bit value: rank 0's is broadcast, each rank compares, and
/// the mismatches are counted with an all-reduce. Returns the ranks that differ from rank 0 (the
/// same list on every rank; empty when all agree).
template <Communicator Comm>
std::vector<int> ranks_differing_from_root(Comm& c, std::uint64_t value) {
  std::uint64_t root = value;
  c.broadcast(std::as_writable_bytes(std::span<std::uint64_t>(&root, 1)), 0);
  std::vector<double> differs(static_cast<std::size_t>(c.size()), 0.0);
  differs[static_cast<std::size_t>(c.rank())] = root == value ? 0.0 : 1.0;
  c.all_reduce_sum(std::span<double>(differs));
  std::vector<int> out;
  for (std::size_t r = 0; r < differs.size(); ++r)
    if (differs[r] != 0.0) out.push_back(static_cast<int>(r));
  return out;
}

// ---- Serialisation for gather: a flat little-endian stream of trivially copyable values. -----

/// Appends values to a byte buffer; ByteReader reads them back in the same order.
class ByteWriter {
 public:
  /// Appends the bytes of `v`, in this machine's byte order.
  template <class T>
    requires std::is_trivially_copyable_v<T>
  void put(const T& v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
  }
  /// Appends the element count (std::uint64_t), then the elements; ByteReader::get_vector reads it.
  template <class T>
    requires std::is_trivially_copyable_v<T>
  void put_span(std::span<const T> v) {
    put<std::uint64_t>(v.size());
    const auto* p = reinterpret_cast<const std::byte*>(v.data());
    bytes_.insert(bytes_.end(), p, p + v.size_bytes());
  }
  /// The bytes written so far.
  std::vector<std::byte>& bytes() { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

/// Reads back, in order, the values a ByteWriter wrote; refuses to read past the end (IoError).
class ByteReader {
 public:
  /// Reads from `b`, which must outlive the reader.
  explicit ByteReader(std::span<const std::byte> b) : b_(b) {}
  /// The next value; IoError when fewer than sizeof(T) bytes are left.
  template <class T>
    requires std::is_trivially_copyable_v<T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, b_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  /// The next vector written by ByteWriter::put_span; IoError when its count overruns the message.
  template <class T>
    requires std::is_trivially_copyable_v<T>
  std::vector<T> get_vector() {
    const auto n = get<std::uint64_t>();
    detail::require<IoError>(n <= (b_.size() - at_) / sizeof(T), "gathered message: a vector of ", n,
                             " elements overruns the message (", b_.size() - at_, " bytes left)");
    std::vector<T> v(static_cast<std::size_t>(n));
    if (n) std::memcpy(v.data(), b_.data() + at_, static_cast<std::size_t>(n) * sizeof(T));
    at_ += static_cast<std::size_t>(n) * sizeof(T);
    return v;
  }
  /// Whether every byte has been read.
  bool done() const { return at_ == b_.size(); }

 private:
  void need(std::size_t n) const {
    detail::require<IoError>(n <= b_.size() - at_, "gathered message is truncated: needs ", n, " more bytes, ",
                             b_.size() - at_, " left");
  }
  std::span<const std::byte> b_;
  std::size_t at_ = 0;
};

}  // namespace flowception::distributed
