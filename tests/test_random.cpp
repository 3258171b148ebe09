#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "flowception/random/philox.hpp"
#include "flowception/random/stream.hpp"

using namespace flowception::random;

// Known-answer vectors of Philox-4x32-10 published with Random123 (tests/kat_vectors):
// counter words, key words, expected output words.
TEST(Philox, Random123KnownAnswerVectors) {
  struct Kat {
    PhiloxCounter ctr;
    PhiloxKey key;
    PhiloxCounter out;
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const auto& k : kats) EXPECT_EQ(philox4x32<10>(k.ctr, k.key), k.out);
}

TEST(Philox, IsConstexpr) {
  constexpr auto b = philox4x32<10>({0, 0, 0, 0}, {0, 0});
  static_assert(b[0] == 0x6627e8d5u);
  SUCCEED();
}

TEST(Stream, SameSeedSameBitsDifferentStreamsDiffer) {
  Stream a(42, 7), b(42, 7), c(42, 8), d(43, 7);
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next_u32();
    EXPECT_EQ(x, b.next_u32());
    (void)c;
    (void)d;
  }
  Stream a2(42, 7), c2(42, 8), d2(43, 7);
  int same_c = 0, same_d = 0;
  for (int i = 0; i < 100; ++i) {
    const auto x = a2.next_u32();
    same_c += x == c2.next_u32();
    same_d += x == d2.next_u32();
  }
  EXPECT_LT(same_c, 3);
  EXPECT_LT(same_d, 3);
}

TEST(Stream, SeekReproducesPosition) {
  Stream a(1, 2);
  for (int i = 0; i < 13; ++i) a.next_u32();
  const auto pos = a.position();
  const auto x = a.next_u32();
  Stream b(1, 2);
  b.seek(pos);
  EXPECT_EQ(b.next_u32(), x);
}

TEST(Stream, SeekDropsAPendingNormal) {
  // normal() draws two values at a time; after a seek, the next normal must come from the new
  // position, not be the second value of the pair drawn before it.
  Stream a(5, 6);
  a.normal();  // leaves the pair's second value pending
  a.seek(0);
  Stream fresh(5, 6);
  EXPECT_EQ(a.normal(), fresh.normal());
  EXPECT_EQ(a.normal(), fresh.normal());
}

TEST(Stream, BelowZeroIsRefused) {
  Stream s(1, 1);
  EXPECT_THROW(s.below(0), flowception::ConfigError);
  EXPECT_EQ(s.below(1), 0u);
}

TEST(Stream, UniformIsOpenUnitIntervalWithRightMoments) {
  Stream s(3, 4);
  const int n = 200000;
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; ++i) {
    const double u = s.uniform();
    ASSERT_GT(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    sum2 += u * u;
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  // sd of the mean = sqrt(1/12/n) ≈ 6.5e-4; 5 sigma.
  EXPECT_NEAR(mean, 0.5, 5 * std::sqrt(1.0 / 12.0 / n));
  EXPECT_NEAR(var, 1.0 / 12.0, 0.002);
}

TEST(Stream, NormalAtMatchesMomentsAndIsPure) {
  const int n = 200000;
  double sum = 0, sum2 = 0, sum4 = 0;
  for (int i = 0; i < n; ++i) {
    const double z = normal_at(9, 11, static_cast<std::uint64_t>(i));
    sum += z;
    sum2 += z * z;
    sum4 += z * z * z * z;
  }
  EXPECT_NEAR(sum / n, 0.0, 5.0 / std::sqrt(n));
  EXPECT_NEAR(sum2 / n, 1.0, 5.0 * std::sqrt(2.0 / n));
  EXPECT_NEAR(sum4 / n, 3.0, 5.0 * std::sqrt(96.0 / n));
  EXPECT_EQ(normal_at(9, 11, 12345), normal_at(9, 11, 12345));
  EXPECT_NE(normal_at(9, 11, 12345), normal_at(9, 12, 12345));
}

class PoissonMoments : public ::testing::TestWithParam<double> {};

TEST_P(PoissonMoments, MeanAndVarianceMatch) {
  const double mu = GetParam();
  Stream s(5, static_cast<std::uint64_t>(mu * 1000));
  const int n = 100000;
  double sum = 0, sum2 = 0;
  for (int i = 0; i < n; ++i) {
    const double k = s.poisson(mu);
    ASSERT_GE(k, 0.0);
    ASSERT_EQ(k, std::floor(k));
    sum += k;
    sum2 += k * k;
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  // sd(mean) = sqrt(mu/n); sd(var) ≈ sqrt((mu + 2mu²)/n). 5 sigma.
  EXPECT_NEAR(mean, mu, 5 * std::sqrt(mu / n));
  EXPECT_NEAR(var, mu, 5 * std::sqrt((mu + 2 * mu * mu) / n));
}
// Small means use inversion, means >= 10 the PTRS rejection sampler.
INSTANTIATE_TEST_SUITE_P(SmallAndLarge, PoissonMoments, ::testing::Values(0.05, 0.7, 3.0, 9.5, 10.0, 37.0, 400.0));

TEST(Stream, PoissonPmfSmallMean) {
  Stream s(8, 8);
  const double mu = 1.3;
  const int n = 200000;
  int counts[4] = {0, 0, 0, 0};
  for (int i = 0; i < n; ++i) {
    const double k = s.poisson(mu);
    if (k < 4) ++counts[static_cast<int>(k)];
  }
  double p = std::exp(-mu);
  for (int k = 0; k < 4; ++k) {
    EXPECT_NEAR(counts[k] / double(n), p, 5 * std::sqrt(p * (1 - p) / n)) << "k=" << k;
    p *= mu / (k + 1);
  }
}

TEST(Stream, PoissonRejectsBadMeans) {
  Stream s(1, 1);
  EXPECT_THROW(s.poisson(-1.0), flowception::ConfigError);
  EXPECT_THROW(s.poisson(std::nan("")), flowception::ConfigError);
  EXPECT_THROW(s.poisson(INFINITY), flowception::ConfigError);
  EXPECT_EQ(s.poisson(0.0), 0.0);
}

TEST(Stream, BinomialEdgesAndMean) {
  Stream s(2, 2);
  EXPECT_EQ(s.binomial(10, 0.0), 0u);
  EXPECT_EQ(s.binomial(10, 1.0), 10u);
  EXPECT_THROW(s.binomial(3, 1.5), flowception::ConfigError);
  double sum = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) sum += static_cast<double>(s.binomial(20, 0.3));
  EXPECT_NEAR(sum / n, 6.0, 5 * std::sqrt(20 * 0.3 * 0.7 / n));
}

TEST(DeriveStream, ChildrenAreDistinct) {
  std::set<std::uint64_t> ids;
  for (std::uint64_t p = 0; p < 100; ++p)
    for (std::uint64_t t = 0; t < 100; ++t) ids.insert(derive_stream(p, t));
  EXPECT_EQ(ids.size(), 10000u);
}
