// The one stream of the device code (ThrustAlgebra, the DiT's kernels and its cuBLASLt products),
// its Thrust execution policy, and the copies between host and device memory. Compiled two ways,
// like the rest of the device code:
//   CUDA (nvcc): a stream created once per process with cudaStreamCreate (blocking with respect
//     to the legacy default stream, on which thrust::device_vector allocates and fills); every
//     kernel goes through thrust::cuda::par_nosync.on(stream()), so no algorithm waits on the
//     host unless it returns a value to it. The host waits only in the functions below that say
//     so, and where a result is read (docs/cuda.md lists every such place).
//   any other Thrust device system (OpenMP, C++): thrust::device and plain copies.
#pragma once

#include <thrust/copy.h>
#include <thrust/device_ptr.h>
#include <thrust/execution_policy.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "flowception/core/errors.hpp"

#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
#include <cuda_runtime.h>
#if defined(CUDA_API_PER_THREAD_DEFAULT_STREAM)
// The ordering argument above needs the legacy default stream: with per-thread default streams,
// device_vector's allocations and fills would no longer order with the DiT's stream.
#error "flowception's device code assumes the legacy default stream (do not build with --default-stream per-thread)"
#endif
#endif

namespace flowception::device {

/// Bytes copied between host and device memory by copy_to_device and copy_to_host, process-wide
/// (what a training step moves across, measured: TrainStepStats).
struct TransferCounts {
  std::uint64_t to_device_bytes = 0;  ///< host → device
  std::uint64_t to_host_bytes = 0;    ///< device → host
  std::uint64_t to_host_copies = 0;   ///< copies to the host (each one a host wait on CUDA)
};
namespace detail_transfers {
inline std::atomic<std::uint64_t>& counter(int which) {
  static std::atomic<std::uint64_t> c[3] = {};
  return c[which];
}
}  // namespace detail_transfers
/// The transfers so far.
inline TransferCounts transfer_counts() {
  return {detail_transfers::counter(0).load(), detail_transfers::counter(1).load(), detail_transfers::counter(2).load()};
}
namespace detail_transfers {
inline void to_device(std::size_t bytes) { counter(0) += bytes; }
inline void to_host(std::size_t bytes) {
  counter(1) += bytes;
  counter(2) += 1;
}
}  // namespace detail_transfers

#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
/// Throws flowception::Error naming `what` and the CUDA error string when e is not cudaSuccess.
inline void check(cudaError_t e, const char* what) {
  detail::require<Error>(e == cudaSuccess, "CUDA: ", what, " failed: ", cudaGetErrorString(e));
}

/// The process's stream, created on first use (after the device is chosen) and never destroyed
/// before exit. Blocking: work on the legacy default stream orders with it both ways.
inline cudaStream_t stream() {
  static const cudaStream_t s = [] {
    cudaStream_t created = nullptr;
    check(cudaStreamCreate(&created), "cudaStreamCreate");
    return created;
  }();
  return s;
}

/// The policy of every kernel: Thrust's CUDA system on stream(), without the synchronisation
/// thrust::cuda::par would add after each algorithm.
inline auto policy() { return thrust::cuda::par_nosync.on(stream()); }

/// Copies n values from host memory to device memory, in stream order, and waits for the copy:
/// `host` may be pageable memory reused at once (CUDA documents cudaMemcpyAsync from pageable
/// memory as possibly synchronous, not as safe to reuse), so the wait is explicit. A host
/// synchronisation point: the DiT's per-batch tables, the training batch and the sampler's
/// per-frame coefficients come this way.
template <class T>
void copy_to_device(const T* host, std::size_t n, T* dev) {
  if (n == 0) return;
  detail_transfers::to_device(n * sizeof(T));
  check(cudaMemcpyAsync(dev, host, n * sizeof(T), cudaMemcpyHostToDevice, stream()), "cudaMemcpyAsync (to device)");
  check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize (after a copy to the device)");
}

/// Copies n values from device memory to host memory after every kernel queued on the stream,
/// and waits for them: a host synchronisation point.
template <class T>
void copy_to_host(const T* dev, std::size_t n, T* host) {
  if (n == 0) return;
  detail_transfers::to_host(n * sizeof(T));
  check(cudaMemcpyAsync(host, dev, n * sizeof(T), cudaMemcpyDeviceToHost, stream()), "cudaMemcpyAsync (to host)");
  check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize (after a copy to the host)");
}

/// Waits until every kernel queued on the stream has finished.
inline void synchronize() { check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize"); }
#else
/// The policy of every kernel: Thrust's device system.
inline auto policy() { return thrust::device; }

/// Copies n values from host memory to the device system's memory.
template <class T>
void copy_to_device(const T* host, std::size_t n, T* dev) {
  if (n == 0) return;
  detail_transfers::to_device(n * sizeof(T));
  thrust::copy(host, host + n, thrust::device_pointer_cast(dev));
}
/// Copies n values from the device system's memory to host memory.
template <class T>
void copy_to_host(const T* dev, std::size_t n, T* host) {
  if (n == 0) return;
  detail_transfers::to_host(n * sizeof(T));
  thrust::copy(thrust::device_pointer_cast(dev), thrust::device_pointer_cast(dev) + n, host);
}
/// Nothing to wait for: the device system's algorithms return when they are done.
inline void synchronize() {}
#endif

}  // namespace flowception::device
