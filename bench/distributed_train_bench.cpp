// Data-parallel training throughput over MPI. Run it once plainly (1 rank) and once under
// mpirun (K ranks), one thread per rank, and compare videos/s in the two JSON files:
//
//   OMP_NUM_THREADS=1 build/release/bench/distributed_train_bench --benchmark_out=one.json
//   mpirun -np 2 -x OMP_NUM_THREADS=1 build/release/bench/distributed_train_bench --benchmark_out=two.json
//
// BM_TrainStep/<config>/<overlap>/<balance>: one optimisation step of the global batch (16
// videos of 16×16 crossing shapes, patch 4: 16 tokens a frame) for tiny and S; overlap 1 reduces
// gradient buckets while backward runs, 0 after it; balance 1 gives ranks shares of equal frame
// counts, 0 of equal video counts. Counters: videos_per_second (global batch / step
// time), reduce_ms (per step, from the end of this rank's backward to the reduced gradient: the
// all-reduce not hidden by backward plus any wait for a slower rank), buckets.
// BM_AllReduce/<config>/<floats>: MPI_Allreduce alone on a buffer of the tiny and S gradient sizes.
// Iteration counts are fixed: every rank must run the same number of steps. Only rank 0 reports.
#include <benchmark/benchmark.h>

#include "flowception/data/crossing_shapes.hpp"
#include "flowception/distributed/mpi_communicator.hpp"
#include "flowception/train/trainer.hpp"

using namespace flowception;

namespace {

dit::DitConfig config(int which) {
  return which == 0 ? dit::DitConfig::tiny(3, 16, 16, 4) : dit::DitConfig::small(3, 16, 16, 4);
}

struct Shapes {
  data::CrossingShapes g{7};
  std::size_t size() const { return 100000; }
  data::Video video(std::size_t i) const { return g.video(i); }
};

void BM_TrainStep(benchmark::State& state) {
  distributed::MpiCommunicator comm;
  const int which = static_cast<int>(state.range(0));
  dit::DiT<float> model(config(which), 1);
  train::TrainerOptions o;
  o.batch_videos = 16;
  o.replicas = 1;
  o.overlap_reduction = state.range(1) != 0;
  o.balance_ranks = state.range(2) != 0;
  o.seed = 3;
  TrainingSamplerOptions so;
  so.seed = 3;
  Shapes data;
  train::Trainer<Shapes, ExtendedTimeSampler<LinearKappa>, dit::CpuBackend, distributed::MpiCommunicator> t(
      model, data, ExtendedTimeSampler<LinearKappa>(LinearKappa{}, so), o, comm);
  t.step();  // warm-up: workspaces
  double reduce = 0, buckets = 0, videos = 0;
  for (auto _ : state) {
    const auto s = t.step();
    reduce += s.reduce_seconds;
    buckets += static_cast<double>(s.buckets);
    videos += static_cast<double>(s.videos);
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["videos_per_second"] = benchmark::Counter(videos, benchmark::Counter::kIsRate);
  state.counters["reduce_ms"] = 1e3 * reduce / n;
  state.counters["buckets"] = buckets / n;
  state.counters["ranks"] = comm.size();
  state.counters["parameters"] = static_cast<double>(model.parameter_count());
  state.SetLabel(config(which).name);
}
BENCHMARK(BM_TrainStep)->Args({0, 0, 1})->Args({0, 1, 1})->Args({0, 1, 0})->Iterations(20)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TrainStep)->Args({1, 0, 1})->Args({1, 1, 1})->Args({1, 1, 0})->Iterations(4)
    ->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_AllReduce(benchmark::State& state) {
  distributed::MpiCommunicator comm;
  std::vector<float> g(static_cast<std::size_t>(state.range(0)), 1.0f);
  for (auto _ : state) comm.all_reduce_gradients(g.data(), g.size());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0) * 4);
  state.counters["ranks"] = comm.size();
}

}  // namespace

int main(int argc, char** argv) {
  distributed::MpiSession mpi(&argc, &argv);
  distributed::MpiCommunicator comm;
  // The gradient sizes of tiny and S on these frames, for BM_AllReduce.
  for (int which : {0, 1})
    benchmark::RegisterBenchmark(which == 0 ? "BM_AllReduce/tiny" : "BM_AllReduce/S", BM_AllReduce)
        ->Arg(static_cast<std::int64_t>(dit::DiT<float>(config(which)).parameter_count()))
        ->Iterations(which == 0 ? 200 : 20)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::Initialize(&argc, argv);
  if (comm.rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    struct Quiet : benchmark::BenchmarkReporter {
      bool ReportContext(const Context&) override { return true; }
      void ReportRuns(const std::vector<Run>&) override {}
    } quiet;
    benchmark::RunSpecifiedBenchmarks(&quiet, &quiet);
  }
  benchmark::Shutdown();
  return 0;
}
