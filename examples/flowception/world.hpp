// The processes of this run: one, or K started by mpirun (flowception built with
// FLOWCEPTION_MPI). Rank 0 prints and writes; every rank trains or samples its share.
//
//   mpirun -np 4 flowception train --data ring --threads 1 ...
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <thread>
#if defined(_OPENMP)
#include <omp.h>
#endif

#include <flowception/distributed/communicator.hpp>
#if defined(FLOWCEPTION_HAVE_MPI)
#include <flowception/distributed/mpi_communicator.hpp>
#endif
#if defined(FLOWCEPTION_HAVE_NCCL)
#include <flowception/distributed/nccl_communicator.hpp>
#endif

namespace fc_cli {

struct World {
  int rank = 0, size = 1;
  bool root() const { return rank == 0; }
#if defined(FLOWCEPTION_HAVE_MPI)
  std::unique_ptr<distributed::MpiSession> session;
  std::optional<distributed::MpiCommunicator> mpi;
#endif
};

inline World& world() {
  static World w;
  return w;
}

/// Joins the MPI job when an MPI launcher started this process; a plain start stays one process
/// and never initialises MPI.
inline void init_world(int* argc, char*** argv) {
  const int launched = distributed::launcher_world_size();
#if defined(FLOWCEPTION_HAVE_MPI)
  if (launched > 0) {
    auto& w = world();
    w.session = std::make_unique<distributed::MpiSession>(argc, argv);
    w.mpi.emplace();
    w.rank = w.mpi->rank();
    w.size = w.mpi->size();
#if defined(FLOWCEPTION_HAVE_NCCL)
    int devices = 0;  // one GPU per rank of a machine, before any CUDA work picks device 0
    if (w.size > 1 && cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0) distributed::select_local_device();
#endif
  }
#else
  (void)argc;
  (void)argv;
  detail::require<ConfigError>(launched <= 1, "this flowception was started by an MPI launcher as one of ", launched,
                               " processes, but it was built without MPI, so each would run alone; rebuild with "
                               "-DFLOWCEPTION_MPI=ON (scripts/test.sh does), or start one process");
#endif
}

/// Ranks of this job on this machine (1 for one process).
inline int local_ranks() {
  if (world().size <= 1) return 1;
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"})
    if (const char* s = std::getenv(v); s && std::atoi(s) > 0) return std::atoi(s);
  return world().size;
}

/// Threads of this process: `n` when given, else OMP_NUM_THREADS, else (under mpirun) the cores
/// shared by the ranks of this machine, so K ranks do not each start one thread per core.
inline void set_threads(int n) {
#if defined(_OPENMP)
  if (n <= 0 && !std::getenv("OMP_NUM_THREADS") && world().size > 1) {
    const int local = local_ranks();
    n = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / local);
  }
  if (n > 0) omp_set_num_threads(n);
#else
  (void)n;
#endif
}

/// A rank that cannot go on ends the whole job (the others would wait for it in a collective).
[[noreturn]] inline void abort_world(int code) {
#if defined(FLOWCEPTION_HAVE_MPI)
  if (world().size > 1) world().mpi->abort(code);
#endif
  std::exit(code);
}

/// f(communicator) with the communicator for this run and backend: SingleProcess for one
/// process, else MPI (host memory: the CPU backend and the Thrust-OpenMP build) or, in CUDA
/// builds, NCCL for gradients in device memory.
template <class Backend, class F>
auto with_communicator(F&& f) {
#if defined(FLOWCEPTION_HAVE_MPI)
  if (world().size > 1) {
    if constexpr (Backend::kHostMemory) {
      return f(*world().mpi);
    } else {
#if defined(FLOWCEPTION_HAVE_NCCL)
      static std::optional<distributed::NcclCommunicator> nccl;
      if (!nccl) nccl.emplace(*world().mpi);
      return f(*nccl);
#else
      detail::fail<ConfigError>("--device cuda on several ranks needs NCCL (a CUDA build with FLOWCEPTION_MPI)");
#endif
    }
  }
#endif
  return f(distributed::SingleProcess{});
}

}  // namespace fc_cli
