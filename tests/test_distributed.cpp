// The parts of data parallelism that need no second process: rank shares, fingerprints, the
// gather message reader, and the gradient buckets driven by DiT::backward's announcements.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>

#include <omp.h>

#include "flowception/distributed/communicator.hpp"
#include "flowception/distributed/gradient_buckets.hpp"
#include "flowception/dit/model.hpp"
#include "support/colour_videos.hpp"
#include "support/expect_error.hpp"

using namespace flowception;
using namespace flowception::distributed;

TEST(Distributed, SharesAreDisjointContiguousAndCoverTheBatch) {
  for (std::size_t n : {0u, 1u, 2u, 7u, 8u, 64u, 65u})
    for (int k = 1; k <= 5; ++k) {
      std::size_t next = 0, smallest = n, largest = 0;
      for (int r = 0; r < k; ++r) {
        const Share s = share_of(n, r, k);
        EXPECT_EQ(s.begin, next) << n << " over " << k;
        next = s.end;
        smallest = std::min(smallest, s.size());
        largest = std::max(largest, s.size());
      }
      EXPECT_EQ(next, n);
      EXPECT_LE(largest - std::min(smallest, largest), 1u);  // balanced to one item
    }
  fc_test::expect_error<Error>([] { share_of(8, 2, 2); }, "rank 2 is not in [0, 2)");
}

TEST(Distributed, FingerprintSeesEveryBit) {
  std::vector<float> a(1001);
  std::iota(a.begin(), a.end(), 0.0f);
  const auto h = fingerprint(a.data(), a.size() * sizeof(float));
  EXPECT_EQ(h, fingerprint(a.data(), a.size() * sizeof(float)));
  for (std::size_t i : {0u, 500u, 1000u})
    for (int bit : {0, 17, 31}) {
      auto b = a;
      std::uint32_t w;
      std::memcpy(&w, &b[i], 4);
      w ^= 1u << bit;
      std::memcpy(&b[i], &w, 4);
      EXPECT_NE(fingerprint(b.data(), b.size() * sizeof(float)), h) << i << " bit " << bit;
    }
}

TEST(Distributed, GatheredMessagesRoundTripAndRejectTruncation) {
  ByteWriter w;
  w.put<std::uint64_t>(42);
  const std::vector<float> v{1.5f, -2.0f, 3.25f};
  w.put_span(std::span<const float>(v));
  ByteReader r(w.bytes());
  EXPECT_EQ(r.get<std::uint64_t>(), 42u);
  EXPECT_EQ(r.get_vector<float>(), v);
  EXPECT_TRUE(r.done());
  auto cut = w.bytes();
  cut.resize(cut.size() - 1);
  ByteReader t(cut);
  t.get<std::uint64_t>();
  fc_test::expect_error<IoError>([&] { t.get_vector<float>(); }, "overruns the message");
  ByteReader e(std::span<const std::byte>(cut.data(), 3));
  fc_test::expect_error<IoError>([&] { e.get<std::uint64_t>(); }, "truncated");
}

namespace {
/// Records the ranges whose reduction was started, in order.
struct RecordingComm : SingleProcess {
  std::vector<std::pair<std::size_t, std::size_t>> started;
  const float* base = nullptr;
  void start_all_reduce_sum(std::span<float> x) {
    const auto b = static_cast<std::size_t>(x.data() - base);
    started.emplace_back(b, b + x.size());
  }
};
static_assert(Communicator<RecordingComm>);
}  // namespace

// DiT::backward announces contiguous, descending ranges that cover the gradient buffer; the
// buckets start one reduction per full bucket, in backward order (the heads first, the
// embeddings last), and announcing changes no gradient.
TEST(Distributed, BackwardAnnouncesEveryGradientOnceForTheBuckets) {
  const dit::DitConfig c = fc_test::colour_video_dit(32, 0, 3);
  dit::DiT<float> model(c, 3);
  const std::size_t F = 4, D = c.frame_dim();
  std::vector<float> x(F * D), dv(F * D);
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)));
    dv[i] = static_cast<float>(std::cos(0.11 * static_cast<double>(i)));
  }
  const std::vector<double> times{0.1, 0.5, 0.9, 0.3};
  const std::vector<FrameKind> kinds(F, FrameKind::generated);
  const std::vector<std::size_t> offsets{0, 2, 4};
  std::vector<float> v(F * D);
  std::vector<double> ell(F), dl{0.3, -0.2, 0.1, 0.5};
  dit::DitBatch b{times, kinds, offsets, {}, {}};
  model.forward(x.data(), b, v.data(), ell.data());
  model.zero_grad();
  model.backward(dv.data(), dl.data());
  const auto plain = model.gradients();

  for (std::size_t bucket : {std::size_t(1), std::size_t(3000), std::size_t(1) << 30}) {
    RecordingComm comm;
    comm.base = model.gradients().data();
    GradientBuckets<RecordingComm> buckets(comm, model.gradients().data(), model.parameter_buffer_size(), bucket);
    model.forward(x.data(), b, v.data(), ell.data());
    model.zero_grad();
    model.backward(dv.data(), dl.data(), buckets);
    buckets.finish();
    EXPECT_EQ(model.gradients(), plain) << "bucket " << bucket;
    ASSERT_FALSE(comm.started.empty());
    EXPECT_EQ(comm.started.front().second, model.parameter_buffer_size());  // the padding too
    EXPECT_EQ(comm.started.back().first, 0u);
    for (std::size_t i = 1; i < comm.started.size(); ++i) EXPECT_EQ(comm.started[i].second, comm.started[i - 1].first);
    for (std::size_t i = 0; i + 1 < comm.started.size(); ++i)
      EXPECT_GE(comm.started[i].second - comm.started[i].first, bucket);
    if (bucket == 1) {
      EXPECT_EQ(comm.started.size(), c.depth + 2);  // heads, each block, embeddings
    }
    if (bucket == (std::size_t(1) << 30)) {
      EXPECT_EQ(comm.started.size(), 1u);
    }
  }
  // A range that does not continue the previous one is refused.
  RecordingComm comm;
  GradientBuckets<RecordingComm> bad(comm, model.gradients().data(), 100, 1000);
  bad(50, 100);
  fc_test::expect_error<Error>([&] { bad(0, 40); }, "contiguous and descending");
  GradientBuckets<RecordingComm> partial(comm, model.gradients().data(), 100, 1000);
  partial(50, 100);
  fc_test::expect_error<Error>([&] { partial.finish(); }, "announced 50 of 100");
}

// What makes a slice of the videos (an MPI rank's share, a chunk) reproduce one whole run bit for
// bit: a video's velocities and rates from the CPU DiT do not depend on which other videos share
// its batch, where it sits in the batch, or how many threads run (CpuBackend::gemm).
TEST(Distributed, DitOutputsOfAVideoDoNotDependOnTheBatchOrTheThreads) {
  dit::DitConfig c;
  c.channels = 3;
  c.height = 6;
  c.width = 6;
  c.patch = 2;  // 9 tokens a frame: row counts that are rarely a whole number of Eigen's panels
  c.depth = 2;
  c.width_hidden = 64;
  c.heads = 4;
  c.mlp_ratio = 4;
  c.frequency_dim = 32;
  c.rate_head = dit::RateHead::pooled;
  c.name = "test";
  dit::DiT<float> model(c, 5);
  // Non-zero adaLN and output weights, so every layer shapes the output.
  std::vector<float> p = model.host_parameters();
  for (std::size_t i = 0; i < p.size(); ++i) p[i] += 0.01f * static_cast<float>(std::sin(1.7 * static_cast<double>(i)));
  model.set_parameters(p);
  const std::size_t D = c.frame_dim();
  auto run = [&](const std::vector<std::size_t>& lens, std::size_t which) {
    std::vector<std::size_t> off{0};
    for (auto L : lens) off.push_back(off.back() + L);
    const std::size_t F = off.back();
    std::vector<float> x(F * D), v(F * D);
    std::vector<double> t(F), ell(F);
    const std::vector<FrameKind> kinds(F, FrameKind::generated);
    for (std::size_t k = 0; k < lens.size(); ++k)
      for (std::size_t f = off[k]; f < off[k + 1]; ++f) {
        const std::size_t local = f - off[k];
        t[f] = 0.05 + 0.9 * static_cast<double>((local * 7 + lens[k]) % 13) / 13.0;
        for (std::size_t d = 0; d < D; ++d)
          x[f * D + d] = static_cast<float>(std::sin(0.3 * static_cast<double>(local * D + d) + static_cast<double>(lens[k])));
      }
    dit::DitBatch b{t, kinds, off, {}, {}};
    model.forward(x.data(), b, v.data(), ell.data());
    std::vector<float> out(v.begin() + static_cast<std::ptrdiff_t>(off[which] * D),
                           v.begin() + static_cast<std::ptrdiff_t>(off[which + 1] * D));
    for (std::size_t f = off[which]; f < off[which + 1]; ++f) out.push_back(static_cast<float>(ell[f]));
    return out;
  };
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto alone = run({7}, 0);
  for (int th : {1, 2, 3}) {
    omp_set_num_threads(th);
    for (std::size_t before : {0u, 1u, 2u, 5u, 9u}) {
      std::vector<std::size_t> lens;
      if (before) lens.push_back(before);
      lens.push_back(7);
      lens.push_back(1 + before % 4);
      const auto mixed = run(lens, before ? 1 : 0);
      ASSERT_EQ(mixed.size(), alone.size());
      EXPECT_EQ(std::memcmp(mixed.data(), alone.data(), alone.size() * sizeof(float)), 0)
          << th << " threads, a video of " << before << " frames before it";
    }
  }
  omp_set_num_threads(threads);
}
