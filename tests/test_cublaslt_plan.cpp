// The arguments the CUDA DiT gives cuBLASLt (dit/cublaslt_plan.hpp), checked on the CPU:
//   - the row-major identity: each plan, executed by a slow column-major interpreter that follows
//     cuBLASLt's documented semantics (D = alpha·op(A)·op(B) + beta·C, bias per row of D, GELU
//     of the biased product kept in the auxiliary matrix), gives the row-major product the DiT
//     asked for, for every transpose combination, with leading dimensions wider than the rows;
//   - every layout has ld >= rows (cublasLtMatrixLayoutCreate), the operations are the caller's
//     swapped, the auxiliary leading dimension is ldc;
//   - the declared alignments are the largest power of two up to 256 dividing address and
//     leading dimension; a misaligned bias or auxiliary pointer, or an auxiliary leading
//     dimension that is not a multiple of 8, gets the declared fallback and no epilogue;
//   - the BF16 scratch puts the second operand on a 256-byte boundary whatever the first's size;
//   - bad arguments are refused naming the problem.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "flowception/dit/cublaslt_plan.hpp"
#include "flowception/dit/layers/activations.hpp"
#include "support/expect_error.hpp"

using namespace flowception;
using namespace flowception::dit::gpu;

namespace {

/// 256-byte aligned storage of n doubles (the pointers the tests offset from).
struct Aligned {
  explicit Aligned(std::size_t n) : v(n + 64) {
    auto addr = reinterpret_cast<std::uintptr_t>(v.data());
    base = v.data() + ((256 - addr % 256) % 256) / sizeof(double);
  }
  std::vector<double> v;
  double* base;
};

double gelu(double u) { return dit::layers::GeluTanh<double>::value(u); }

/// cuBLASLt's semantics on column-major matrices, element by element, from the plan alone.
void interpret(const ProductPlan& p, double alpha, double beta) {
  const auto* A = static_cast<const double*>(p.ptr_a);
  const auto* B = static_cast<const double*>(p.ptr_b);
  auto* C = static_cast<double*>(const_cast<void*>(p.ptr_c));
  const auto* bias = static_cast<const double*>(p.bias);
  auto* aux = static_cast<double*>(const_cast<void*>(p.aux));
  const std::uint64_t rows = p.layout_c.rows, cols = p.layout_c.cols;
  const std::uint64_t K = p.op_a == Operation::n ? p.layout_a.cols : p.layout_a.rows;
  // op(A) is rows × K, op(B) is K × cols.
  ASSERT_EQ(p.op_a == Operation::n ? p.layout_a.rows : p.layout_a.cols, rows);
  ASSERT_EQ(p.op_b == Operation::n ? p.layout_b.rows : p.layout_b.cols, K);
  ASSERT_EQ(p.op_b == Operation::n ? p.layout_b.cols : p.layout_b.rows, cols);
  const auto at = [](const double* M, const MatrixLayout& l, Operation op, std::uint64_t i, std::uint64_t j) {
    return op == Operation::n ? M[i + j * static_cast<std::uint64_t>(l.ld)] : M[j + i * static_cast<std::uint64_t>(l.ld)];
  };
  for (std::uint64_t j = 0; j < cols; ++j)
    for (std::uint64_t i = 0; i < rows; ++i) {
      double s = 0;
      for (std::uint64_t l = 0; l < K; ++l) s += at(A, p.layout_a, p.op_a, i, l) * at(B, p.layout_b, p.op_b, l, j);
      double& d = C[i + j * static_cast<std::uint64_t>(p.layout_c.ld)];
      double x = alpha * s + (beta == 0 ? 0.0 : beta * d);
      if (p.epilogue != Epilogue::none) x += bias[i];  // bias length = rows of D
      if (p.epilogue == Epilogue::gelu_aux_bias) {
        aux[i + j * static_cast<std::uint64_t>(p.aux_ld)] = x;
        x = gelu(x);
      }
      d = x;
    }
}

struct Case {
  bool ta, tb;
  std::int64_t m, n, k, pad;  // pad: extra columns of every leading dimension
};

// The plan of C = α·op(A)·op(B) + β·C (+ bias, GELU), interpreted as cuBLASLt would, equals the
// row-major product computed directly.
void check_identity(const Case& c, bool with_bias, bool with_gelu) {
  const std::int64_t lda = (c.ta ? c.m : c.k) + c.pad, ldb = (c.tb ? c.k : c.n) + c.pad;
  const std::int64_t ldc = with_gelu ? (c.n + 7) / 8 * 8 : c.n + c.pad;  // the aux ld must be a multiple of 8
  const std::int64_t ar = c.ta ? c.k : c.m, br = c.tb ? c.n : c.k;
  Aligned a(static_cast<std::size_t>(ar * lda)), b(static_cast<std::size_t>(br * ldb)),
      cc(static_cast<std::size_t>(c.m * ldc)), bias(static_cast<std::size_t>(c.n)),
      aux(static_cast<std::size_t>(c.m * ldc));
  for (std::int64_t i = 0; i < ar * lda; ++i) a.base[i] = std::sin(0.7 * static_cast<double>(i) + 0.1);
  for (std::int64_t i = 0; i < br * ldb; ++i) b.base[i] = std::cos(0.3 * static_cast<double>(i) - 0.2);
  for (std::int64_t i = 0; i < c.m * ldc; ++i) cc.base[i] = 0.01 * static_cast<double>(i % 17) - 0.05;
  for (std::int64_t i = 0; i < c.n; ++i) bias.base[i] = 0.1 * static_cast<double>(i) - 0.3;
  const double alpha = 0.75, beta = with_bias ? 0.0 : 0.5;
  // The expected row-major result.
  std::vector<double> want(static_cast<std::size_t>(c.m * c.n)), want_pre(want.size());
  for (std::int64_t i = 0; i < c.m; ++i)
    for (std::int64_t j = 0; j < c.n; ++j) {
      double s = 0;
      for (std::int64_t l = 0; l < c.k; ++l) {
        const double x = c.ta ? a.base[l * lda + i] : a.base[i * lda + l];
        const double y = c.tb ? b.base[j * ldb + l] : b.base[l * ldb + j];
        s += x * y;
      }
      double v = alpha * s + beta * cc.base[i * ldc + j];
      if (with_bias) v += bias.base[j];
      want_pre[static_cast<std::size_t>(i * c.n + j)] = v;
      want[static_cast<std::size_t>(i * c.n + j)] = with_gelu ? gelu(v) : v;
    }
  ProductArgs q{c.ta, c.tb, c.m, c.n, c.k, lda, ldb, ldc, a.base, b.base, cc.base,
                with_bias ? bias.base : nullptr, with_gelu ? aux.base : nullptr, sizeof(double), MathMode::fp32};
  const ProductPlan p = plan_product(q);
  SCOPED_TRACE(testing::Message() << "ta " << c.ta << " tb " << c.tb << " m " << c.m << " n " << c.n << " k " << c.k
                                  << " pad " << c.pad << " bias " << with_bias << " gelu " << with_gelu);
  // Documented layout rules: ld >= rows of each stored column-major matrix; D in place of C.
  for (const MatrixLayout* l : {&p.layout_a, &p.layout_b, &p.layout_c}) EXPECT_GE(static_cast<std::uint64_t>(l->ld), l->rows);
  EXPECT_EQ(p.op_a, c.tb ? Operation::t : Operation::n);  // cuBLASLt's A is our B, with our trans_b
  EXPECT_EQ(p.op_b, c.ta ? Operation::t : Operation::n);
  EXPECT_EQ(p.layout_c.rows, static_cast<std::uint64_t>(c.n));
  EXPECT_EQ(p.layout_c.cols, static_cast<std::uint64_t>(c.m));
  EXPECT_EQ(p.layout_c.ld, ldc);
  EXPECT_EQ(p.fallback, Fallback::none);
  EXPECT_EQ(p.epilogue, with_gelu ? Epilogue::gelu_aux_bias : with_bias ? Epilogue::bias : Epilogue::none);
  if (with_gelu) {
    EXPECT_EQ(p.aux_ld, ldc);
  }
  EXPECT_EQ(p.compute, ComputeType::f64);
  EXPECT_EQ(p.scale, DataType::f64);  // COMPUTE_64F takes scale type R_64F only
  interpret(p, alpha, beta);
  for (std::int64_t i = 0; i < c.m; ++i)
    for (std::int64_t j = 0; j < c.n; ++j) {
      EXPECT_NEAR(cc.base[i * ldc + j], want[static_cast<std::size_t>(i * c.n + j)], 1e-12) << i << "," << j;
      if (with_gelu) {
        EXPECT_NEAR(aux.base[i * ldc + j], want_pre[static_cast<std::size_t>(i * c.n + j)], 1e-12) << i << "," << j;
      }
    }
}

}  // namespace

TEST(CublasLtPlan, RowMajorIdentityForEveryTransposeAndPadding) {
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (std::int64_t pad : {0, 3})
        check_identity({ta, tb, 5, 7, 4, pad}, false, false);
}

TEST(CublasLtPlan, BiasAndGeluEpiloguesFollowTheIdentity) {
  check_identity({false, false, 6, 16, 5, 2}, true, false);
  check_identity({false, false, 3, 8, 9, 0}, true, true);
  check_identity({false, false, 1, 24, 3, 1}, true, true);
}

TEST(CublasLtPlan, AlignmentIsTheLargestPowerOfTwoOfAddressAndLeadingDimension) {
  EXPECT_EQ(pointer_alignment(std::uintptr_t{0}), 256u);
  EXPECT_EQ(pointer_alignment(std::uintptr_t{512}), 256u);
  EXPECT_EQ(pointer_alignment(std::uintptr_t{768 + 64}), 64u);
  EXPECT_EQ(pointer_alignment(std::uintptr_t{108}), 4u);  // rate_head.0.weight of the ring asset before padding
  Aligned s(4096);
  const auto* f = reinterpret_cast<const float*>(s.base);
  const auto plan = [&](const float* a, std::int64_t lda, const float* c, std::int64_t ldc) {
    return plan_product({false, false, 4, 8, 8, lda, 8, ldc, a, f, c, nullptr, nullptr, 4, MathMode::fp32});
  };
  // Aligned pointers with leading dimensions of 64 floats: 256 everywhere.
  ProductPlan p = plan(f, 64, f + 1024, 64);
  EXPECT_EQ(p.align_a, 32u);  // cuBLASLt's A is our B: f with ldb 8 floats = 32 bytes
  EXPECT_EQ(plan_product({false, false, 4, 8, 8, 64, 64, 64, f, f, f, nullptr, nullptr, 4, MathMode::fp32}).align_a, 256u);
  EXPECT_EQ(p.align_b, 256u);
  EXPECT_EQ(p.align_c, 256u);
  EXPECT_EQ(p.align_d, 256u);
  // The pointer limits: 3 floats past a 256-byte boundary is 4-byte alignment.
  p = plan(f + 3, 64, f + 1024 + 4, 64);
  EXPECT_EQ(p.align_b, 4u);
  EXPECT_EQ(p.align_c, 16u);
  EXPECT_EQ(p.align_d, 16u);
  // The leading dimension limits: 27 floats (the ring's frame) is 4-byte alignment; 12 is 16.
  p = plan(f, 27, f + 1024, 12);
  EXPECT_EQ(p.align_b, 4u);
  EXPECT_EQ(p.align_c, 16u);
  // Every declared alignment divides its address and its leading dimension in bytes.
  for (int off = 0; off < 70; off += 7)
    for (std::int64_t ld : {8, 9, 27, 64, 100}) {
      p = plan(f + off, ld, f + 2048 + off, std::max<std::int64_t>(ld, 8));
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p.ptr_b) % p.align_b, 0u);
      EXPECT_EQ(static_cast<std::uint64_t>(ld) * 4 % p.align_b, 0u);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p.ptr_c) % p.align_c, 0u);
      EXPECT_TRUE(p.align_b == 256 || reinterpret_cast<std::uintptr_t>(p.ptr_b) % (2 * p.align_b) != 0 ||
                  static_cast<std::uint64_t>(ld) * 4 % (2 * p.align_b) != 0)
          << "not the largest power of two";
    }
}

TEST(CublasLtPlan, AMisalignedEpiloguePointerOrAuxLeadingDimensionGetsTheDeclaredFallback) {
  Aligned s(8192);
  const auto* f = reinterpret_cast<const float*>(s.base);
  auto* out = reinterpret_cast<float*>(s.base) + 2048;
  auto* pre = reinterpret_cast<float*>(s.base) + 4096;
  const auto plan = [&](const float* bias, float* aux, std::int64_t n) {
    return plan_product({false, false, 4, n, 8, 8, n, n, f, f, out, bias, aux, 4, MathMode::fp32});
  };
  ProductPlan p = plan(f + 64, nullptr, 16);
  EXPECT_EQ(p.fallback, Fallback::none);
  EXPECT_EQ(p.epilogue, Epilogue::bias);
  EXPECT_EQ(p.bias, f + 64);
  p = plan(f + 65, nullptr, 16);  // 4 bytes past a 256-byte boundary
  EXPECT_EQ(p.fallback, Fallback::bias_alignment);
  EXPECT_EQ(p.epilogue, Epilogue::none);
  EXPECT_EQ(p.bias, nullptr);
  EXPECT_TRUE(p.asked_bias);
  p = plan(f + 68, nullptr, 16);  // 16 bytes: enough
  EXPECT_EQ(p.fallback, Fallback::none);
  p = plan(f + 64, pre, 16);
  EXPECT_EQ(p.fallback, Fallback::none);
  EXPECT_EQ(p.epilogue, Epilogue::gelu_aux_bias);
  EXPECT_EQ(p.aux_ld, 16);
  p = plan(f + 64, pre + 2, 16);
  EXPECT_EQ(p.fallback, Fallback::aux_alignment);
  EXPECT_EQ(p.epilogue, Epilogue::none);
  p = plan(f + 64, pre, 12);  // the auxiliary leading dimension must be a multiple of 8
  EXPECT_EQ(p.fallback, Fallback::aux_ld);
  EXPECT_EQ(p.epilogue, Epilogue::none);
  EXPECT_STREQ(fallback_name(Fallback::aux_ld), "aux_ld");
}

TEST(CublasLtPlan, Bf16ScratchPutsTheSecondOperandOnA256ByteBoundary) {
  Aligned s(8192);
  const auto* f = reinterpret_cast<const float*>(s.base);
  for (std::int64_t m : {1, 3, 7, 13, 27})
    for (bool ta : {false, true}) {
      const std::int64_t k = 27, n = 5, lda = ta ? m : k;
      const ProductPlan p =
          plan_product({ta, false, m, n, k, lda, n, n, f, f + 1024, f + 4096, nullptr, nullptr, 4, MathMode::bf16});
      ASSERT_TRUE(p.bf16);
      EXPECT_EQ(p.layout_a.type, DataType::bf16);
      EXPECT_EQ(p.layout_b.type, DataType::bf16);
      EXPECT_EQ(p.layout_c.type, DataType::f32);  // C and D stay FP32
      EXPECT_EQ(p.compute, ComputeType::f32);
      EXPECT_EQ(p.bf16_a_elements, static_cast<std::size_t>((ta ? k : m) - 1) * static_cast<std::size_t>(lda) +
                                       static_cast<std::size_t>(ta ? m : k));
      EXPECT_EQ(p.bf16_b_offset * 2 % 256, 0u) << "m " << m;
      EXPECT_GE(p.bf16_b_offset, p.bf16_a_elements);
      EXPECT_EQ(p.bf16_scratch_elements, p.bf16_b_offset + p.bf16_b_elements);
      // The copies' alignments: their offsets in the scratch and their leading dimensions in 2-byte elements.
      EXPECT_EQ(p.align_a, pointer_alignment(std::uintptr_t{2} * static_cast<std::uintptr_t>(n)));
      EXPECT_EQ(p.align_b, pointer_alignment(std::uintptr_t{2} * static_cast<std::uintptr_t>(lda)));
    }
  // TF32 only changes the compute type.
  const ProductPlan t = plan_product({false, false, 2, 2, 2, 2, 2, 2, f, f, f + 64, nullptr, nullptr, 4, MathMode::tf32});
  EXPECT_EQ(t.compute, ComputeType::f32_fast_tf32);
  EXPECT_FALSE(t.bf16);
  EXPECT_EQ(t.scale, DataType::f32);
}

TEST(CublasLtPlan, EmptyAndZeroDepthProductsAndBadArguments) {
  Aligned s(1024);
  const auto* f = reinterpret_cast<const float*>(s.base);
  EXPECT_TRUE(plan_product({false, false, 0, 4, 4, 4, 4, 4, f, f, f, nullptr, nullptr, 4, MathMode::fp32}).empty);
  const ProductPlan z = plan_product({false, false, 2, 4, 0, 1, 4, 4, f, f, f + 64, f, nullptr, 4, MathMode::bf16});
  EXPECT_TRUE(z.zero_depth);
  EXPECT_FALSE(z.bf16);  // nothing to convert (the old wrapper's operand size underflowed here)
  EXPECT_EQ(z.epilogue, Epilogue::none);
  fc_test::expect_error<ShapeError>(
      [&] { plan_product({false, false, -1, 4, 4, 4, 4, 4, f, f, f, nullptr, nullptr, 4, MathMode::fp32}); },
      "negative size");
  fc_test::expect_error<ShapeError>(
      [&] { plan_product({false, false, 2, 4, 4, 3, 4, 4, f, f, f, nullptr, nullptr, 4, MathMode::fp32}); },
      "leading dimension is smaller than its row");
  fc_test::expect_error<ShapeError>(
      [&] { plan_product({false, false, 2, 4, 4, 4, 4, 4, f, f, f, nullptr, f, 4, MathMode::fp32}); },
      "GELU epilogue is used with a bias");
  fc_test::expect_error<ShapeError>(
      [&] { plan_product({false, false, 2, 4, 4, 4, 4, 4, f, f, f, nullptr, nullptr, 2, MathMode::fp32}); },
      "float or double only");
}

TEST(CublasLtPlan, KeysSeparateEverythingACachedDescriptorDependsOn) {
  Aligned s(8192);
  const auto* f = reinterpret_cast<const float*>(s.base);
  auto* c = reinterpret_cast<float*>(s.base) + 2048;
  const auto key = [&](const float* a, const float* bias, std::int64_t n, MathMode m) {
    return plan_product({false, false, 4, n, 8, 8, n, n, a, f, c, bias, nullptr, 4, m}).key();
  };
  const std::string k0 = key(f, f + 64, 16, MathMode::fp32);
  EXPECT_EQ(k0, key(f + 128, f + 256, 16, MathMode::fp32)) << "pointers of the same alignment share the entry";
  EXPECT_NE(k0, key(f + 1, f + 64, 16, MathMode::fp32)) << "operand alignment";
  EXPECT_NE(k0, key(f, f + 68, 16, MathMode::fp32)) << "bias alignment";
  EXPECT_NE(k0, key(f, nullptr, 16, MathMode::fp32)) << "epilogue";
  EXPECT_NE(k0, key(f, f + 64, 24, MathMode::fp32)) << "shape";
  EXPECT_NE(k0, key(f, f + 64, 16, MathMode::tf32)) << "compute type";
  EXPECT_NE(k0, key(f, f + 64, 16, MathMode::bf16)) << "operand type";
}

TEST(CublasLtPlan, CountersCountOutcomes) {
  auto& counters = ProductCounters::get();
  counters.reset();
  Aligned s(1024);
  const auto* f = reinterpret_cast<const float*>(s.base);
  auto* c = reinterpret_cast<float*>(s.base) + 512;
  counters.count(plan_product({false, false, 2, 8, 2, 2, 8, 8, f, f, c, f, nullptr, 4, MathMode::fp32}));
  counters.count(plan_product({false, false, 2, 8, 2, 2, 8, 8, f, f, c, f + 1, nullptr, 4, MathMode::fp32}));
  counters.count(plan_product({false, false, 2, 8, 2, 2, 8, 8, f, f, c, nullptr, nullptr, 4, MathMode::fp32}),
                 Fallback::none);
  counters.count(plan_product({false, false, 2, 8, 2, 2, 8, 8, f, f, c, f, c + 64, 4, MathMode::fp32}),
                 Fallback::not_supported);
  const ProductCounts n = product_counts();
  EXPECT_EQ(n.products, 4u);
  EXPECT_EQ(n.fused_bias, 1u);
  EXPECT_EQ(n.fused_gelu, 0u);
  EXPECT_EQ(n.fallback_bias_alignment, 1u);
  EXPECT_EQ(n.fallback_not_supported, 1u);
  EXPECT_EQ(n.fallbacks(), 2u);
  counters.reset();
  EXPECT_EQ(product_counts().products, 0u);
}

TEST(CublasLtPlan, OneProductLogRecordsAtATime) {
  {
    ProductLog log;
    Aligned s(256);
    const auto p = plan_product({false, false, 1, 1, 1, 1, 1, 1, s.base, s.base, s.base, nullptr, nullptr, 8, MathMode::fp32});
    ProductLog::record(p);
    EXPECT_EQ(log.plans().size(), 1u);
    fc_test::expect_error<ConfigError>([] { ProductLog other; }, "already recording");
  }
  ProductLog again;  // the first one ended
  EXPECT_TRUE(again.plans().empty());
}
