// Data-parallel training over MPI (run by ctest under mpirun with 2 and 3 ranks): K ranks with a
// global batch B take the steps one process takes with the whole batch, up to the order of
// floating-point sums; checkpoints move between rank counts; ranks that disagree are stopped
// with an error naming the step. Every rank also runs the one-process reference itself, so each
// compares against truth computed in its own address space.
#include <gtest/gtest.h>

#include <cmath>
#include <array>
#include <cstdio>
#include <filesystem>

#include <unistd.h>

#include "flowception/distributed/mpi_communicator.hpp"
#include "flowception/train/trainer.hpp"
#include "support/colour_videos.hpp"
#include "support/expect_error.hpp"

using namespace flowception;
namespace fs = std::filesystem;
using distributed::MpiCommunicator;
using fc_test::ColourVideos;

namespace {

dit::DitConfig config() { return fc_test::colour_video_dit(); }

train::TrainerOptions options(std::size_t batch) {
  train::TrainerOptions o;
  o.batch_videos = batch;
  o.lr = train::LrSchedule::constant(2e-3, 10);
  o.ema_decay = 0.9;
  o.seed = 5;
  o.replica_check_every = 1;
  return o;
}

ExtendedTimeSampler<LinearKappa> builder() {
  TrainingSamplerOptions s;
  s.n_start = 2;
  s.seed = 5;
  s.tasks = TaskMixture{1, 1, 1, 0};
  return ExtendedTimeSampler<LinearKappa>(LinearKappa{}, s);
}

template <class Comm = distributed::SingleProcess>
using TrainerT = train::Trainer<ColourVideos, ExtendedTimeSampler<LinearKappa>, dit::CpuBackend, Comm>;

struct TrainedRun {
  std::vector<double> losses;
  std::vector<float> params, ema;
};

template <class Comm>
TrainedRun train_steps(dit::DiT<float>& model, train::TrainerOptions o, int steps, Comm comm, const fs::path& resume = {},
                const fs::path& save_after = {}) {
  ColourVideos data;
  TrainerT<Comm> t(model, data, builder(), o, comm);
  if (!resume.empty()) t.load_checkpoint(resume);
  TrainedRun r;
  for (int i = 0; i < steps; ++i) {
    const auto s = t.step();
    EXPECT_EQ(s.videos, o.batch_videos);
    r.losses.push_back(s.loss);
  }
  if (!save_after.empty()) t.save_checkpoint(save_after);
  r.params = model.host_parameters();
  r.ema = t.ema_parameters();
  return r;
}

/// ‖a − b‖ / ‖a‖.
double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    d += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    n += static_cast<double>(a[i]) * a[i];
  }
  return std::sqrt(d / n);
}

int g_rank = 0;

void expect_same_run(const TrainedRun& one, const TrainedRun& many) {
  ASSERT_EQ(one.losses.size(), many.losses.size());
  if (g_rank == 0) {
    double worst = 0;
    for (std::size_t i = 0; i < one.losses.size(); ++i)
      worst = std::max(worst, std::fabs(many.losses[i] - one.losses[i]) / std::fabs(one.losses[i]));
    std::printf("  losses within %.2e relative (last %.6f), parameters %.2e, EMA %.2e (relative norm)\n", worst,
                many.losses.back(), relative_difference(one.params, many.params), relative_difference(one.ema, many.ema));
  }
  for (std::size_t i = 0; i < one.losses.size(); ++i) {
    // Equal to the printed precision (%.4f), and within 1e-6 relative.
    EXPECT_NEAR(many.losses[i], one.losses[i], 1e-6 * std::fabs(one.losses[i])) << "step " << i + 1;
    char a[32], b[32];
    std::snprintf(a, sizeof a, "%.4f", one.losses[i]);
    std::snprintf(b, sizeof b, "%.4f", many.losses[i]);
    EXPECT_STREQ(a, b) << "step " << i + 1;
  }
  EXPECT_LT(relative_difference(one.params, many.params), 1e-6);
  EXPECT_LT(relative_difference(one.ema, many.ema), 1e-6);
}

/// A directory every rank agrees on (rank 0 names and creates it).
fs::path shared_dir(MpiCommunicator& c, const char* name) {
  std::array<char, 256> buf{};
  if (c.rank() == 0) {
    const auto d = fs::temp_directory_path() / (std::string(name) + "_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    std::snprintf(buf.data(), buf.size(), "%s", d.c_str());
  }
  c.broadcast(std::as_writable_bytes(std::span(buf)), 0);
  return fs::path(buf.data());
}

}  // namespace

TEST(MpiCommunicator, CollectivesAreExact) {
  MpiCommunicator c;
  const int K = c.size(), r = c.rank();
  std::vector<double> d{1.0 * r, 0.5, -2.0 * r};
  c.all_reduce_sum(std::span<double>(d));
  EXPECT_EQ(d[0], K * (K - 1) / 2.0);
  EXPECT_EQ(d[1], 0.5 * K);
  std::vector<float> f(1000, static_cast<float>(r + 1));
  c.start_all_reduce_sum(std::span<float>(f).subspan(0, 500));
  c.start_all_reduce_sum(std::span<float>(f).subspan(500));
  c.finish_all_reduces();
  for (float x : f) ASSERT_EQ(x, K * (K + 1) / 2.0f);
  std::uint64_t v = r == 0 ? 0xfeedULL : 7;
  c.broadcast(std::as_writable_bytes(std::span<std::uint64_t>(&v, 1)), 0);
  EXPECT_EQ(v, 0xfeedULL);
  // Messages of different sizes (rank r sends r + 1 copies of r; rank 1 sends nothing extra).
  std::vector<std::byte> msg(static_cast<std::size_t>(r) * 3, std::byte(r));
  const auto all = c.gather(msg);
  if (r == 0) {
    ASSERT_EQ(all.size(), static_cast<std::size_t>(K));
    for (int q = 0; q < K; ++q) {
      EXPECT_EQ(all[static_cast<std::size_t>(q)].size(), static_cast<std::size_t>(q) * 3);
      for (auto b : all[static_cast<std::size_t>(q)]) EXPECT_EQ(b, std::byte(q));
    }
  } else {
    EXPECT_TRUE(all.empty());
  }
  c.barrier();
}

// K ranks with batch 8 (not divisible by 3) equal one process with batch 8 after 5 steps, with
// the gradient reduced during backward (buckets of 1000 floats), after it, with two replicas per
// rank, and with shares of equal video counts instead of equal frame counts.
TEST(MpiTraining, RanksEqualOneProcessWithTheWholeBatch) {
  MpiCommunicator c;
  dit::DiT<float> reference(config(), 1);
  const TrainedRun one = train_steps(reference, options(8), 5, distributed::SingleProcess{});
  for (int variant = 0; variant < 4; ++variant) {
    SCOPED_TRACE(variant == 0   ? "overlapped buckets"
                 : variant == 1 ? "reduced after backward"
                 : variant == 2 ? "2 replicas per rank"
                                : "shares of equal video counts");
    auto o = options(8);
    o.bucket_elements = 1000;
    o.overlap_reduction = variant == 0 || variant == 3;
    o.replicas = variant == 2 ? 2 : 1;
    o.balance_ranks = variant != 3;
    dit::DiT<float> model(config(), 1);
    const TrainedRun many = train_steps(model, o, 5, c);
    expect_same_run(one, many);
  }
}

// A batch smaller than the rank count leaves ranks without samples; they still contribute zeros
// and take the same step.
TEST(MpiTraining, BatchSmallerThanTheRankCount) {
  MpiCommunicator c;
  dit::DiT<float> reference(config(), 1);
  const TrainedRun one = train_steps(reference, options(2), 3, distributed::SingleProcess{});
  for (bool balance : {true, false}) {
    SCOPED_TRACE(balance ? "equal frames" : "equal videos");
    auto o = options(2);
    o.balance_ranks = balance;
    dit::DiT<float> model(config(), 1);
    const TrainedRun many = train_steps(model, o, 3, c);
    expect_same_run(one, many);
  }
}

// Rank 0 writes the checkpoint; it resumes on one process, and a one-process checkpoint resumes
// on K ranks: both equal an uninterrupted run.
TEST(MpiTraining, CheckpointsResumeOnAnyRankCount) {
  MpiCommunicator c;
  const auto dir = shared_dir(c, "fc_mpi_resume");
  dit::DiT<float> whole_model(config(), 1);
  const TrainedRun whole = train_steps(whole_model, options(8), 5, c);
  {  // K ranks for 3 steps, then one process for 2
    dit::DiT<float> a(config(), 1);
    train_steps(a, options(8), 3, c, {}, dir / "k.safetensors");
    c.barrier();  // rank 0 has written it
    dit::DiT<float> b(config(), 1);
    auto cont = train_steps(b, options(8), 2, distributed::SingleProcess{}, dir / "k.safetensors");
    EXPECT_LT(relative_difference(whole.params, cont.params), 1e-6);
    EXPECT_NEAR(cont.losses.back(), whole.losses.back(), 1e-6 * std::fabs(whole.losses.back()));
  }
  {  // one process for 3 steps (rank 0's file), then K ranks for 2
    dit::DiT<float> a(config(), 1);
    if (c.rank() == 0) train_steps(a, options(8), 3, distributed::SingleProcess{}, {}, dir / "one.safetensors");
    c.barrier();
    dit::DiT<float> b(config(), 1);
    auto cont = train_steps(b, options(8), 2, c, dir / "one.safetensors");
    EXPECT_LT(relative_difference(whole.params, cont.params), 1e-6);
  }
  c.barrier();
  if (c.rank() == 0) fs::remove_all(dir);
}

// A rank whose parameters drift (here: one weight nudged on the last rank) stops every rank at
// the next check with an error naming the step and the rank; so does a rank started with
// another seed.
TEST(MpiTraining, RanksThatDisagreeAreStopped) {
  MpiCommunicator c;
  if (c.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  ColourVideos data;
  dit::DiT<float> model(config(), 1);
  TrainerT<MpiCommunicator> t(model, data, builder(), options(8), c);
  t.step();
  if (c.rank() == c.size() - 1) model.parameters()[17] += 1e-3f;
  const std::string last = std::to_string(c.size() - 1);
  fc_test::expect_error<Error>([&] { t.step(); }, "disagree after step 2 (step 2): rank(s) " + last);

  auto other = options(8);
  if (c.rank() == c.size() - 1) other.seed = 6;
  dit::DiT<float> m2(config(), 1);
  fc_test::expect_error<Error>([&] { TrainerT<MpiCommunicator>(m2, data, builder(), other, c); },
                               "disagree at the start (step 0): rank(s) " + last);
}

/// Ranks other than 0 print only their failures, prefixed with the rank.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed())
      std::fprintf(stderr, "rank %d: %s:%d: failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?", r.line_number(),
                   r.summary());
  }

 private:
  int rank_;
};

int main(int argc, char** argv) {
  distributed::MpiSession mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  // Only rank 0 prints the results; every rank's failures still set the exit code.
  MpiCommunicator c;
  g_rank = c.rank();
  if (c.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(c.rank()));
  }
  return RUN_ALL_TESTS();
}
