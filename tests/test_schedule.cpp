#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "flowception/schedule/any_kappa.hpp"
#include "flowception/schedule/kappa.hpp"
#include "flowception/schedule/time_grid.hpp"
#include "flowception/schedule/time_shift.hpp"

using namespace flowception;

template <class K>
class KappaTest : public ::testing::Test {
 public:
  static K make() {
    if constexpr (std::is_same_v<K, PolynomialKappa>)
      return PolynomialKappa(3.0);
    else
      return K{};
  }
};

using Kappas = ::testing::Types<LinearKappa, PolynomialKappa, CosineKappa>;
TYPED_TEST_SUITE(KappaTest, Kappas);

TYPED_TEST(KappaTest, Endpoints) {
  const auto k = TestFixture::make();
  EXPECT_EQ(k.kappa(0.0), 0.0);
  EXPECT_NEAR(k.kappa(1.0), 1.0, 1e-15);
  EXPECT_NEAR(k.survival(1.0), 0.0, 1e-15);
  EXPECT_EQ(k.survival(0.0), 1.0);
  EXPECT_EQ(k.inverse(0.0), 0.0);
  EXPECT_NEAR(k.inverse(1.0), 1.0, 1e-15);
}

TYPED_TEST(KappaTest, MonotoneAndInverse) {
  const auto k = TestFixture::make();
  double prev = 0.0;
  for (int i = 1; i <= 1000; ++i) {
    const double s = i / 1000.0;
    const double v = k.kappa(s);
    EXPECT_GE(v, prev);
    prev = v;
    EXPECT_NEAR(k.inverse(v), s, 1e-9) << "s=" << s;
    EXPECT_NEAR(k.survival(s), 1.0 - v, 1e-14);
  }
}

TYPED_TEST(KappaTest, DerivativeMatchesFiniteDifferences) {
  const auto k = TestFixture::make();
  for (double s = 0.05; s < 0.96; s += 0.05) {
    const double h = 1e-6;
    const double fd = (k.kappa(s + h) - k.kappa(s - h)) / (2 * h);
    EXPECT_NEAR(k.derivative(s), fd, 1e-7) << "s=" << s;
  }
}

TYPED_TEST(KappaTest, HazardFiniteAndAccurateNearOne) {
  const auto k = TestFixture::make();
  for (double eps : {1e-3, 1e-6, 1e-9, 1e-12}) {
    const double s = 1.0 - eps;
    const double eta = k.hazard(s);
    EXPECT_TRUE(std::isfinite(eta)) << "s = 1 - " << eps;
    EXPECT_GT(eta, 0.0);
    // Leading behaviour: κ'(1)/(κ'(1)·(1 − s)) = 1/(1 − s) for all three (κ'(1) > 0).
    EXPECT_NEAR(eta * eps, 1.0, 2e-3) << "s = 1 - " << eps;
  }
  EXPECT_TRUE(std::isinf(k.hazard(1.0)));
}

TYPED_TEST(KappaTest, JumpProbabilityIsExactConditional) {
  const auto k = TestFixture::make();
  for (double s = 0.0; s < 0.99; s += 0.07) {
    const double s2 = std::min(1.0, s + 0.03);
    const double q = jump_probability(k, s, s2);
    EXPECT_NEAR(q, (k.kappa(s2) - k.kappa(s)) / (1.0 - k.kappa(s)), 1e-12);
    // Small-h limit h·η(s).
    const double h = 1e-7;
    EXPECT_NEAR(jump_probability(k, s, s + h) / h, k.hazard(s), 1e-4 * std::max(1.0, k.hazard(s)));
  }
  EXPECT_EQ(jump_probability(k, 0.5, 1.0), 1.0);
}

TEST(Kappa, KnownValues) {
  EXPECT_DOUBLE_EQ(PolynomialKappa(3.0).kappa(0.5), 0.125);
  EXPECT_DOUBLE_EQ(PolynomialKappa(3.0).inverse(0.125), 0.5);
  EXPECT_NEAR(CosineKappa{}.kappa(0.5), 1.0 - std::sqrt(0.5), 1e-15);
  EXPECT_DOUBLE_EQ(LinearKappa{}.hazard(0.75), 4.0);
  // Linear: q = h / (1 − s).
  EXPECT_DOUBLE_EQ(jump_probability(LinearKappa{}, 0.5, 0.75), 0.5);
  // Survival of the cubic near 1 keeps relative precision where 1 − s³ would cancel.
  const double s = 1.0 - 1e-13;
  EXPECT_NEAR(PolynomialKappa(3.0).survival(s) / 3e-13, 1.0, 1e-3);
}

TEST(Kappa, PolynomialRejectsBadPower) {
  EXPECT_THROW(PolynomialKappa(0.0), ConfigError);
  EXPECT_THROW(PolynomialKappa(-2.0), ConfigError);
  EXPECT_THROW(PolynomialKappa{NAN}, ConfigError);
}

TEST(UserKappa, AgreesWithBuiltInAndInvertsByBisection) {
  auto k = make_user_kappa([](double s) { return s * s; }, "square");
  static_assert(KappaScheduler<decltype(k)>);
  PolynomialKappa ref(2.0);
  for (double s = 0.05; s < 1.0; s += 0.05) {
    EXPECT_DOUBLE_EQ(k.kappa(s), ref.kappa(s));
    EXPECT_NEAR(k.derivative(s), ref.derivative(s), 1e-8);
    EXPECT_NEAR(k.inverse(ref.kappa(s)), s, 1e-12);
    EXPECT_NEAR(k.hazard(s), ref.hazard(s), 1e-6 * ref.hazard(s));
  }
  EXPECT_EQ(k.name(), "square");
}

TEST(UserKappa, RejectsInvalidCallables) {
  auto expect_error = [](auto f, const char* fragment) {
    try {
      make_user_kappa(f, "bad");
      ADD_FAILURE() << "accepted an invalid kappa: " << fragment;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error([](double s) { return 0.1 + 0.9 * s; }, "kappa(0) must be 0");
  expect_error([](double s) { return 0.9 * s; }, "kappa(1) must be 1");
  expect_error([](double s) { return s < 0.5 ? s : (s < 0.6 ? 1.0 - s : s); }, "decreasing");
  expect_error([](double s) { return s > 0.3 && s < 0.31 ? NAN : s; }, "outside [0, 1]");
  expect_error([](double s) { return s == 0.5 ? 1.5 : s; }, "outside [0, 1]");
}

// The run-time κ of the program's --kappa flag: each name is the scheduler it says, a copy shares
// it (no AnyKappa wrapped in an AnyKappa), and a bad name is an error that names it.
TEST(AnyKappa, NamesGiveTheirSchedulersAndCopiesDoNotNest) {
  const PolynomialKappa p5(5.0), p3(3.0);
  const LinearKappa lin;
  const CosineKappa cos;
  struct Case {
    const char* name;
    std::function<double(double)> kappa, derivative, inverse;
  };
  for (const Case& c : {Case{"linear", [&](double s) { return lin.kappa(s); }, [&](double s) { return lin.derivative(s); },
                             [&](double q) { return lin.inverse(q); }},
                        Case{"cubic", [&](double s) { return p3.kappa(s); }, [&](double s) { return p3.derivative(s); },
                             [&](double q) { return p3.inverse(q); }},
                        Case{"poly:5", [&](double s) { return p5.kappa(s); }, [&](double s) { return p5.derivative(s); },
                             [&](double q) { return p5.inverse(q); }},
                        Case{"cosine", [&](double s) { return cos.kappa(s); }, [&](double s) { return cos.derivative(s); },
                             [&](double q) { return cos.inverse(q); }}}) {
    const AnyKappa k = AnyKappa::from_name(c.name);
    const AnyKappa copy = k;  // the copy constructor, not the converting template
    for (const double s : {0.0, 0.1, 0.5, 0.93, 1.0}) {
      EXPECT_EQ(k.kappa(s), c.kappa(s)) << c.name << " at " << s;
      EXPECT_EQ(copy.kappa(s), c.kappa(s)) << c.name << " at " << s;
      EXPECT_EQ(k.derivative(s), c.derivative(s)) << c.name << " at " << s;
      EXPECT_EQ(k.inverse(s), c.inverse(s)) << c.name << " at " << s;
    }
    EXPECT_EQ(copy.name(), k.name());
  }
  EXPECT_EQ(AnyKappa::from_name("poly:5").name(), p5.name());
  static_assert(KappaScheduler<AnyKappa>);
  static_assert(std::is_copy_constructible_v<AnyKappa>);
  static_assert(!std::is_constructible_v<AnyKappa, int>);  // only schedulers convert
  for (const char* bad : {"quadratic", "poly:", "poly:x", "poly:-1", "", "poly:2abc", "poly: 2", "poly:nan", "poly:1e999"}) {
    try {
      (void)AnyKappa::from_name(bad);
      ADD_FAILURE() << "no error for kappa '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("kappa"), std::string::npos) << e.what();
    }
  }
}

TEST(TimeShift, IdentityAndEndpoints) {
  TimeShift id;
  EXPECT_TRUE(id.is_identity());
  for (double u : {0.0, 0.25, 0.5, 1.0}) EXPECT_EQ(id(u), u);
  TimeShift s3(3.0);
  EXPECT_EQ(s3(0.0), 0.0);
  EXPECT_EQ(s3(1.0), 1.0);
  EXPECT_DOUBLE_EQ(s3(0.5), 0.25);  // 0.5 / (0.5 + 3·0.5)
  for (double u = 0.01; u < 1.0; u += 0.01) {
    EXPECT_NEAR(s3.inverse(s3(u)), u, 1e-14);
    EXPECT_LT(s3(u), u);  // s > 1 spends more time near noise
  }
  EXPECT_THROW(TimeShift(0.0), ConfigError);
  EXPECT_THROW(TimeShift(-1.0), ConfigError);
  EXPECT_THROW(TimeShift{INFINITY}, ConfigError);
}

TEST(TimeGrid, UniformAndEndDense) {
  auto g = TimeGrid::uniform(4);
  EXPECT_EQ(g.steps(), 4u);
  EXPECT_EQ(g.points(), (std::vector<double>{0, 0.25, 0.5, 0.75, 1.0}));
  EXPECT_EQ(g.extended(4), 1.0);
  EXPECT_EQ(g.extended(5), 1.25);
  EXPECT_EQ(g.extended(8), 2.0);
  auto e = TimeGrid::end_dense(10, 3.0);
  EXPECT_EQ(e[0], 0.0);
  EXPECT_EQ(e[10], 1.0);
  EXPECT_NEAR(e[5], 1.0 - 0.125, 1e-15);
  for (std::size_t j = 1; j < 10; ++j) EXPECT_LT(e[j + 1] - e[j], e[j] - e[j - 1]);  // denser near 1
}

TEST(TimeGrid, RejectsBadGrids) {
  auto expect_error = [](auto make, const char* fragment) {
    try {
      make();
      ADD_FAILURE() << "accepted: " << fragment;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error([] { return TimeGrid::uniform(0); }, "zero steps");
  expect_error([] { return TimeGrid::end_dense(0); }, "zero steps");
  expect_error([] { return TimeGrid({0.0}); }, "zero steps");
  // N + 1 points must neither wrap around (N = 2^64 − 1 used to crash) nor exhaust memory.
  expect_error([] { return TimeGrid::uniform(SIZE_MAX); }, "number of steps N = 18446744073709551615 is above the limit");
  expect_error([] { return TimeGrid::end_dense(TimeGrid::kMaxSteps + 1); }, "is above the limit of 10000000");
  expect_error([] { return TimeGrid({0.0, 0.5, 0.5, 1.0}); }, "strictly increasing");
  expect_error([] { return TimeGrid({0.0, 0.6, 0.4, 1.0}); }, "strictly increasing");
  expect_error([] { return TimeGrid({0.1, 0.5, 1.0}); }, "start at exactly 0");
  expect_error([] { return TimeGrid({0.0, 0.5, 0.9}); }, "end at exactly 1");
  expect_error([] { return TimeGrid({0.0, NAN, 1.0}); }, "strictly increasing");
}
