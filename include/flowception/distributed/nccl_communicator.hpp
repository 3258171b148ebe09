// The NCCL communicator (CUDA builds with FLOWCEPTION_MPI; compiled by nvcc): gradients are
// summed in device memory by NCCL on the DiT's stream (dit::gpu::Context), so they never leave
// the GPU; the small host collectives (counts, losses, fingerprints, gathers) go over MPI, which
// also launched the processes and carries NCCL's unique id from rank 0 to the others.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <memory>
#include <span>

#include "flowception/dit/cublaslt_gemm.hpp"
#include "flowception/distributed/mpi_communicator.hpp"

namespace flowception::distributed {

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

class NcclCommunicator {
 public:
  static constexpr MemorySpace kGradientMemory = MemorySpace::device;

  /// Collective: every rank of `host` constructs one. The device must be chosen first
  /// (select_local_device).
  explicit NcclCommunicator(MpiCommunicator host) : host_(host), state_(std::make_shared<State>()) {
    ncclUniqueId id{};
    if (host_.rank() == 0) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    host_.broadcast(std::as_writable_bytes(std::span<ncclUniqueId>(&id, 1)), 0);
    nccl_check(ncclCommInitRank(&state_->comm, host_.size(), id, host_.rank()), "ncclCommInitRank");
  }

  int rank() const { return host_.rank(); }
  int size() const { return host_.size(); }
  MpiCommunicator& host() { return host_; }

  void all_reduce_sum(std::span<float> x) { host_.all_reduce_sum(x); }
  void all_reduce_sum(std::span<double> x) { host_.all_reduce_sum(x); }
  void broadcast(std::span<std::byte> b, int root) { host_.broadcast(b, root); }
  void barrier() { host_.barrier(); }
  std::vector<std::vector<std::byte>> gather(std::span<const std::byte> b) { return host_.gather(b); }
  void start_all_reduce_sum(std::span<float> x) { host_.start_all_reduce_sum(x); }

  /// Device memory, on the DiT's stream: ordered after the backward kernels that wrote p and
  /// before the optimizer kernels that read it, with no host synchronisation.
  void all_reduce_gradients(float* p, std::size_t n) {
    if (n == 0) return;
    nccl_check(ncclAllReduce(p, p, n, ncclFloat, ncclSum, state_->comm, dit::gpu::Context::get().stream), "ncclAllReduce");
  }
  /// Device buckets are started the same way: NCCL queues them on the stream behind backward.
  void start_device_all_reduce(float* p, std::size_t n) { all_reduce_gradients(p, n); }
  void finish_all_reduces() { host_.finish_all_reduces(); }

  [[noreturn]] void abort(int code) const { host_.abort(code); }

 private:
  struct State {
    ncclComm_t comm = nullptr;
    ~State() {
      if (comm) ncclCommDestroy(comm);
    }
  };
  MpiCommunicator host_;
  std::shared_ptr<State> state_;
};
static_assert(Communicator<NcclCommunicator>);

}  // namespace flowception::distributed
