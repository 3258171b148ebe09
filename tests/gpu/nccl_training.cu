// On a GPU, one rank: the NCCL communicator (bootstrapped over MPI as a singleton) reduces device
// buffers in place on its own stream, ordered by events with the DiT's, the gradient buckets hand it device pointers during
// backward, and three training steps through it equal the single-process device trainer bit
// for bit (a sum over one rank is the identity). Several ranks need several GPUs:
// docs/distributed.md gives the command.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "flowception/distributed/nccl_communicator.hpp"
#include "flowception/dit/thrust_backend.hpp"
#include "flowception/train/trainer.hpp"
#include "support/colour_videos.hpp"

using namespace flowception;

namespace {

int failures = 0;
void report(bool ok, const char* what, double measured, double tolerance) {
  std::printf("%s %s: %g (tolerance %g)\n", ok ? "ok" : "FAIL", what, measured, tolerance);
  if (!ok) ++failures;
}

dit::DitConfig config() { return fc_test::colour_video_dit(32, 0); }

}  // namespace

int run_nccl_training(int* argc, char*** argv) {
  distributed::MpiSession mpi(argc, argv);
  distributed::select_local_device();
  distributed::NcclCommunicator nccl{distributed::MpiCommunicator{}};
  // A device buffer reduced in place over one rank keeps its values.
  std::vector<float> host(1000);
  for (std::size_t i = 0; i < host.size(); ++i) host[i] = 0.5f * static_cast<float>(i) - 3.0f;
  thrust::device_vector<float> dev(host.begin(), host.end());
  nccl.all_reduce_gradients(thrust::raw_pointer_cast(dev.data()), dev.size());
  nccl.finish_all_reduces();
  dit::ThrustBackend::synchronize();
  std::vector<float> back(host.size());
  thrust::copy(dev.begin(), dev.end(), back.begin());
  double worst = 0;
  for (std::size_t i = 0; i < host.size(); ++i) worst = std::fmax(worst, std::fabs(back[i] - host[i]));
  report(worst == 0.0, "ncclAllReduce over one rank, max change", worst, 0.0);

  fc_test::ColourVideos data;
  TrainingSamplerOptions s;
  s.n_start = 2;
  s.seed = 3;
  train::TrainerOptions o;
  o.batch_videos = 8;
  o.seed = 3;
  o.bucket_elements = 2000;  // several buckets, each reduced by NCCL while backward runs
  dit::DiT<float, dit::ThrustBackend> a(config(), 1), b(config(), 1);
  train::Trainer<fc_test::ColourVideos, ExtendedTimeSampler<LinearKappa>, dit::ThrustBackend> plain(
      a, data, ExtendedTimeSampler<LinearKappa>(LinearKappa{}, s), o);
  train::Trainer<fc_test::ColourVideos, ExtendedTimeSampler<LinearKappa>, dit::ThrustBackend,
                 distributed::NcclCommunicator>
      reduced(b, data, ExtendedTimeSampler<LinearKappa>(LinearKappa{}, s), o, nccl);
  double loss_diff = 0, buckets = 0;
  for (int k = 0; k < 3; ++k) {
    const auto x = plain.step(), y = reduced.step();
    loss_diff = std::fmax(loss_diff, std::fabs(x.loss - y.loss));
    buckets = static_cast<double>(y.buckets);
  }
  const auto pa = a.host_parameters(), pb = b.host_parameters();
  double dw = 0;
  for (std::size_t i = 0; i < pa.size(); ++i) dw = std::fmax(dw, std::fabs(pa[i] - pb[i]));
  report(loss_diff == 0.0, "NCCL trainer (one rank) against the single-process trainer, loss difference", loss_diff, 0.0);
  report(dw == 0.0, "NCCL trainer (one rank), weights max difference", dw, 0.0);
  report(buckets > 1, "gradient buckets reduced during backward", buckets, 2.0);
  return failures == 0 ? 0 : 1;
}
