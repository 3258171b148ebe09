// The MPI communicator (FLOWCEPTION_MPI; target flowception::distributed): processes launched by
// mpirun (OpenMPI, MPICH), reductions over MPI_COMM_WORLD or any communicator given.
#pragma once

#include <mpi.h>

#include <climits>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "flowception/distributed/communicator.hpp"

namespace flowception::distributed {

namespace mpi_detail {
/// Error naming the MPI call `what` and MPI's message unless `code` is MPI_SUCCESS.
inline void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  detail::fail<Error>("MPI ", what, " failed: ", std::string(text, static_cast<std::size_t>(len)));
}
/// MPI counts are ints: long buffers go in pieces of at most this many elements.
inline constexpr std::size_t kMaxCount = static_cast<std::size_t>(INT_MAX) / 2;
/// The MPI datatype of T (defined for float and double only).
template <class T>
MPI_Datatype type();
/// MPI_FLOAT.
template <>
inline MPI_Datatype type<float>() { return MPI_FLOAT; }
/// MPI_DOUBLE.
template <>
inline MPI_Datatype type<double>() { return MPI_DOUBLE; }
}  // namespace mpi_detail

/// Initialises MPI for the lifetime of the object (threads: only the main thread calls MPI) and
/// finalises it at the end. One per process.
class MpiSession {
 public:
  /// MPI_Init_thread (MPI_THREAD_FUNNELED) with the program's arguments; afterwards MPI errors on
  /// MPI_COMM_WORLD come back as codes, which the communicator throws as Error.
  MpiSession(int* argc, char*** argv) {
    int provided = 0;
    mpi_detail::check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    // Errors come back as codes (turned into exceptions) instead of aborting inside MPI.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  }
  MpiSession(const MpiSession&) = delete;             ///< one session per process: not copyable
  MpiSession& operator=(const MpiSession&) = delete;  ///< not assignable
  /// MPI_Finalize, unless MPI was finalised already.
  ~MpiSession() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
};

/// A Communicator over an MPI communicator (MPI_COMM_WORLD by default): blocking collectives,
/// non-blocking gradient buckets (MPI_Iallreduce), and buffers longer than an int count sent in
/// pieces. An MPI failure is an Error naming the call.
class MpiCommunicator {
 public:
  static constexpr MemorySpace kGradientMemory = MemorySpace::host;  ///< gradients are host buffers

  /// ConfigError unless MPI is initialised (an MpiSession exists).
  explicit MpiCommunicator(MPI_Comm comm = MPI_COMM_WORLD) : comm_(comm) {
    int init = 0;
    MPI_Initialized(&init);
    detail::require(init != 0, "MpiCommunicator: MPI is not initialised (create an MpiSession first)");
    mpi_detail::check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    mpi_detail::check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }

  int rank() const { return rank_; }  ///< this process's rank in the communicator
  int size() const { return size_; }  ///< number of processes in the communicator
  MPI_Comm native() const { return comm_; }  ///< the MPI communicator, for calls of one's own

  /// Element-wise sum over ranks, in place (MPI_Allreduce); returns when done.
  void all_reduce_sum(std::span<float> x) { all_reduce(x); }
  /// Element-wise sum over ranks, in place (MPI_Allreduce); returns when done.
  void all_reduce_sum(std::span<double> x) { all_reduce(x); }
  /// Sum over ranks of n floats at p (host memory), in place; complete on return.
  void all_reduce_gradients(float* p, std::size_t n) { all_reduce(std::span<float>(p, n)); }

  /// Every rank's bytes become rank `root`'s (MPI_Bcast); `b` has the same size on every rank.
  void broadcast(std::span<std::byte> b, int root) {
    for (std::size_t at = 0; at < b.size(); at += mpi_detail::kMaxCount) {
      const std::size_t n = std::min(mpi_detail::kMaxCount, b.size() - at);
      mpi_detail::check(MPI_Bcast(b.data() + at, static_cast<int>(n), MPI_BYTE, root, comm_), "MPI_Bcast");
    }
  }

  /// Returns once every rank has called it (MPI_Barrier).
  void barrier() { mpi_detail::check(MPI_Barrier(comm_), "MPI_Barrier"); }

  /// Rank 0 gets every rank's bytes, in rank order (sizes may differ); the other ranks get an
  /// empty vector.
  std::vector<std::vector<std::byte>> gather(std::span<const std::byte> b) {
    std::uint64_t mine = b.size();
    std::vector<std::uint64_t> sizes(rank_ == 0 ? static_cast<std::size_t>(size_) : 0);
    mpi_detail::check(MPI_Gather(&mine, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, 0, comm_), "MPI_Gather");
    constexpr int kTag = 0x6663;
    if (rank_ != 0) {
      for (std::size_t at = 0; at < b.size(); at += mpi_detail::kMaxCount) {
        const std::size_t n = std::min(mpi_detail::kMaxCount, b.size() - at);
        mpi_detail::check(MPI_Send(b.data() + at, static_cast<int>(n), MPI_BYTE, 0, kTag, comm_), "MPI_Send");
      }
      return {};
    }
    std::vector<std::vector<std::byte>> out(static_cast<std::size_t>(size_));
    out[0].assign(b.begin(), b.end());
    for (int r = 1; r < size_; ++r) {
      auto& dst = out[static_cast<std::size_t>(r)];
      dst.resize(static_cast<std::size_t>(sizes[static_cast<std::size_t>(r)]));
      for (std::size_t at = 0; at < dst.size(); at += mpi_detail::kMaxCount) {
        const std::size_t n = std::min(mpi_detail::kMaxCount, dst.size() - at);
        mpi_detail::check(MPI_Recv(dst.data() + at, static_cast<int>(n), MPI_BYTE, r, kTag, comm_, MPI_STATUS_IGNORE),
                          "MPI_Recv");
      }
    }
    return out;
  }

  /// Non-blocking all-reduce (MPI_Iallreduce). MPI progresses it inside later MPI calls, so each
  /// start also tests the ones still in flight.
  void start_all_reduce_sum(std::span<float> x) {
    for (std::size_t at = 0; at < x.size(); at += mpi_detail::kMaxCount) {
      const std::size_t n = std::min(mpi_detail::kMaxCount, x.size() - at);
      pending_.emplace_back();
      mpi_detail::check(MPI_Iallreduce(MPI_IN_PLACE, x.data() + at, static_cast<int>(n), MPI_FLOAT, MPI_SUM, comm_,
                                       &pending_.back()),
                        "MPI_Iallreduce");
    }
    int done = 0;
    mpi_detail::check(MPI_Testall(static_cast<int>(pending_.size()), pending_.data(), &done, MPI_STATUSES_IGNORE),
                      "MPI_Testall");
    if (done) pending_.clear();
  }
  /// Waits for every all-reduce that start_all_reduce_sum began (MPI_Waitall).
  void finish_all_reduces() {
    if (pending_.empty()) return;
    mpi_detail::check(MPI_Waitall(static_cast<int>(pending_.size()), pending_.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
    pending_.clear();
  }

  /// Ends every process of the communicator with `code` (what a rank that hit an error calls, so
  /// the others do not wait for it forever).
  [[noreturn]] void abort(int code) const {
    MPI_Abort(comm_, code);
    std::_Exit(code);
  }

 private:
  template <class T>
  void all_reduce(std::span<T> x) {
    for (std::size_t at = 0; at < x.size(); at += mpi_detail::kMaxCount) {
      const std::size_t n = std::min(mpi_detail::kMaxCount, x.size() - at);
      mpi_detail::check(MPI_Allreduce(MPI_IN_PLACE, x.data() + at, static_cast<int>(n), mpi_detail::type<T>(), MPI_SUM, comm_),
                        "MPI_Allreduce");
    }
  }

  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  std::vector<MPI_Request> pending_;  // completed requests are MPI_REQUEST_NULL, which Testall accepts
};
static_assert(Communicator<MpiCommunicator>);

}  // namespace flowception::distributed
