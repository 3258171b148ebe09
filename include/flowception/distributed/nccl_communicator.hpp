// The NCCL communicator (CUDA builds with FLOWCEPTION_MPI; compiled by nvcc): gradients are
// summed in device memory by NCCL, so they never leave the GPU. The reductions run on a stream
// of their own that waits (by an event) for the backward kernels before them, so a bucket is
// reduced while the DiT's stream (dit::gpu::Context) goes on with the earlier layers; the DiT's
// stream waits for every reduction at finish_all_reduces(). The small host collectives (counts,
// losses, fingerprints, gathers) go over MPI, which also launched the processes and carries
// NCCL's unique id from rank 0 to the others.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <memory>
#include <span>

#include "flowception/dit/cublaslt_gemm.hpp"
#include "flowception/distributed/mpi_communicator.hpp"

namespace flowception::distributed {

/// Error naming the NCCL call `what` and NCCL's message unless `r` is ncclSuccess.
inline void nccl_check(ncclResult_t r, const char* what) {
  detail::require<Error>(r == ncclSuccess, "NCCL: ", what, " failed: ", ncclGetErrorString(r));
}

/// Selects this rank's GPU: its rank among the processes of its machine, modulo the machine's
/// GPU count. Call before any CUDA work of the process (it fixes the device of dit::gpu::Context).
inline int select_local_device(MPI_Comm comm = MPI_COMM_WORLD) {
  MPI_Comm local;
  mpi_detail::check(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local), "MPI_Comm_split_type");
  int local_rank = 0;
  MPI_Comm_rank(local, &local_rank);
  MPI_Comm_free(&local);
  int devices = 0;
  dit::gpu::check(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
  detail::require<Error>(devices > 0, "no CUDA device on this machine for NCCL");
  const int device = local_rank % devices;
  dit::gpu::check(cudaSetDevice(device), "cudaSetDevice");
  return device;
}

/// A Communicator that sums gradients in device memory with NCCL, on a stream of its own; the
/// host collectives go over the MpiCommunicator it holds. Copies share the NCCL communicator and
/// its stream.
class NcclCommunicator {
 public:
  static constexpr MemorySpace kGradientMemory = MemorySpace::device;  ///< gradients are device buffers

  /// Collective: every rank of `host` constructs one. The device must be chosen first
  /// (select_local_device).
  explicit NcclCommunicator(MpiCommunicator host) : host_(host), state_(std::make_shared<State>()) {
    ncclUniqueId id{};
    if (host_.rank() == 0) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    host_.broadcast(std::as_writable_bytes(std::span<ncclUniqueId>(&id, 1)), 0);
    nccl_check(ncclCommInitRank(&state_->comm, host_.size(), id, host_.rank()), "ncclCommInitRank");
    dit::gpu::check(cudaStreamCreateWithFlags(&state_->stream, cudaStreamNonBlocking), "cudaStreamCreate (NCCL)");
    dit::gpu::check(cudaEventCreateWithFlags(&state_->ready, cudaEventDisableTiming), "cudaEventCreate");
    dit::gpu::check(cudaEventCreateWithFlags(&state_->done, cudaEventDisableTiming), "cudaEventCreate");
  }

  int rank() const { return host_.rank(); }  ///< this process's rank
  int size() const { return host_.size(); }  ///< number of processes
  /// The MPI communicator of the host collectives.
  MpiCommunicator& host() { return host_; }

  /// Host memory, over MPI: MpiCommunicator::all_reduce_sum.
  void all_reduce_sum(std::span<float> x) { host_.all_reduce_sum(x); }
  /// Host memory, over MPI: MpiCommunicator::all_reduce_sum.
  void all_reduce_sum(std::span<double> x) { host_.all_reduce_sum(x); }
  /// Over MPI: MpiCommunicator::broadcast.
  void broadcast(std::span<std::byte> b, int root) { host_.broadcast(b, root); }
  /// Over MPI: MpiCommunicator::barrier.
  void barrier() { host_.barrier(); }
  /// Over MPI: MpiCommunicator::gather.
  std::vector<std::vector<std::byte>> gather(std::span<const std::byte> b) { return host_.gather(b); }
  /// Host memory, over MPI: MpiCommunicator::start_all_reduce_sum.
  void start_all_reduce_sum(std::span<float> x) { host_.start_all_reduce_sum(x); }

  /// Device memory: starts the reduction of p after every kernel queued so far on the DiT's
  /// stream (those that wrote p); finish_all_reduces() makes the DiT's stream wait for it, with
  /// no host synchronisation.
  void all_reduce_gradients(float* p, std::size_t n) {
    if (n == 0) return;
    cudaStream_t compute = dit::gpu::Context::get().stream;
    dit::gpu::check(cudaEventRecord(state_->ready, compute), "cudaEventRecord");
    dit::gpu::check(cudaStreamWaitEvent(state_->stream, state_->ready, 0), "cudaStreamWaitEvent");
    nccl_check(ncclAllReduce(p, p, n, ncclFloat, ncclSum, state_->comm, state_->stream), "ncclAllReduce");
    state_->pending = true;
  }
  /// Waits for the host all-reduces, then makes the DiT's stream wait for the NCCL reductions
  /// (no host synchronisation).
  void finish_all_reduces() {
    host_.finish_all_reduces();
    if (!state_->pending) return;
    dit::gpu::check(cudaEventRecord(state_->done, state_->stream), "cudaEventRecord");
    dit::gpu::check(cudaStreamWaitEvent(dit::gpu::Context::get().stream, state_->done, 0), "cudaStreamWaitEvent");
    state_->pending = false;
  }

  /// Ends every process with `code` (MpiCommunicator::abort).
  [[noreturn]] void abort(int code) const { host_.abort(code); }

 private:
  struct State {
    ncclComm_t comm = nullptr;
    cudaStream_t stream = nullptr;  ///< the reductions' own stream
    cudaEvent_t ready = nullptr, done = nullptr;
    bool pending = false;
    ~State() {
      if (stream) cudaStreamSynchronize(stream);
      if (comm) ncclCommDestroy(comm);
      if (ready) cudaEventDestroy(ready);
      if (done) cudaEventDestroy(done);
      if (stream) cudaStreamDestroy(stream);
    }
  };
  MpiCommunicator host_;
  std::shared_ptr<State> state_;
};
static_assert(Communicator<NcclCommunicator>);

}  // namespace flowception::distributed
