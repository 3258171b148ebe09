// Every DiT layer: forward against the naive reference (tests/support/dit_reference.hpp), and
// backward against central finite differences of L = Σ w ⊙ output in double precision.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "flowception/dit/model.hpp"
#include "flowception/random/stream.hpp"
#include "support/dit_reference.hpp"

using namespace flowception;
using namespace flowception::dit;
// Built twice: on CpuBackend, and on ThrustBackend through Thrust's OpenMP system
// (test_dit_layers_thrust), whose memory is host memory, so host vectors can be passed directly.
#if defined(FLOWCEPTION_TEST_THRUST_BACKEND)
#include "flowception/dit/thrust_backend.hpp"
using B = ThrustBackend;
#else
using B = CpuBackend;
#endif
static_assert(B::kHostMemory, "these layer tests pass host vectors to the kernels");

namespace {

std::vector<double> randn(std::size_t n, std::uint64_t stream, double scale = 1.0) {
  random::Stream rng(123, stream);
  std::vector<double> v(n);
  for (auto& x : v) x = scale * rng.normal();
  return v;
}

fc_ref::Mat to_mat(const std::vector<double>& v, std::size_t rows, std::size_t cols) {
  fc_ref::Mat m = fc_ref::zeros(rows, cols);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) m[r][c] = v[r * cols + c];
  return m;
}

void expect_close(const std::vector<double>& a, const fc_ref::Mat& b, double tol, const char* what) {
  for (std::size_t r = 0; r < b.size(); ++r)
    for (std::size_t c = 0; c < b[r].size(); ++c)
      ASSERT_NEAR(a[r * b[r].size() + c], b[r][c], tol) << what << " at " << r << "," << c;
}

/// Checks grad (analytic ∂L/∂x) against central differences of L(x) = Σ w ⊙ f(x).
void check_gradient(std::vector<double> x, const std::function<std::vector<double>(const std::vector<double>&)>& f,
                    const std::vector<double>& w, const std::vector<double>& grad, const char* what,
                    double tol = 1e-6) {
  ASSERT_EQ(grad.size(), x.size());
  const double h = 1e-5;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const auto yp = f(x);
    x[i] = keep - h;
    const auto ym = f(x);
    x[i] = keep;
    double lp = 0, lm = 0;
    for (std::size_t j = 0; j < w.size(); ++j) {
      lp += w[j] * yp[j];
      lm += w[j] * ym[j];
    }
    const double fd = (lp - lm) / (2 * h);
    ASSERT_NEAR(grad[i], fd, tol * std::max(1.0, std::fabs(fd))) << what << " element " << i;
  }
}

}  // namespace

TEST(DitLayers, LinearForwardAndBackward) {
  const std::size_t n = 5, in = 7, out = 4;
  auto x = randn(n * in, 1), w = randn(in * out, 2), b = randn(out, 3), wy = randn(n * out, 4);
  std::vector<double> y(n * out);
  layers::linear_forward<B>(n, in, out, x.data(), w.data(), b.data(), y.data());
  expect_close(y, fc_ref::linear(to_mat(x, n, in), w, b, out), 1e-12, "linear");
  std::vector<double> dx(n * in), dw(in * out, 0.0), db(out, 0.0);
  layers::linear_backward<B>(n, in, out, x.data(), w.data(), wy.data(), dx.data(), dw.data(), db.data());
  auto fx = [&](const std::vector<double>& xx) {
    std::vector<double> yy(n * out);
    layers::linear_forward<B>(n, in, out, xx.data(), w.data(), b.data(), yy.data());
    return yy;
  };
  auto fw = [&](const std::vector<double>& ww) {
    std::vector<double> yy(n * out);
    layers::linear_forward<B>(n, in, out, x.data(), ww.data(), b.data(), yy.data());
    return yy;
  };
  auto fb = [&](const std::vector<double>& bb) {
    std::vector<double> yy(n * out);
    layers::linear_forward<B>(n, in, out, x.data(), w.data(), bb.data(), yy.data());
    return yy;
  };
  check_gradient(x, fx, wy, dx, "linear dx");
  check_gradient(w, fw, wy, dw, "linear dw");
  check_gradient(b, fb, wy, db, "linear db");
}

TEST(DitLayers, LayerNormForwardAndBackward) {
  const std::size_t n = 4, d = 9;
  auto x = randn(n * d, 5, 3.0), wy = randn(n * d, 6);
  std::vector<double> y(n * d), rstd(n);
  layers::layernorm_forward<B>(n, d, x.data(), y.data(), rstd.data());
  expect_close(y, fc_ref::layernorm(to_mat(x, n, d)), 1e-9, "layernorm");
  std::vector<double> dx(n * d);
  layers::layernorm_backward<B>(n, d, y.data(), rstd.data(), wy.data(), dx.data());
  check_gradient(x,
                 [&](const std::vector<double>& xx) {
                   std::vector<double> yy(n * d), rr(n);
                   layers::layernorm_forward<B>(n, d, xx.data(), yy.data(), rr.data());
                   return yy;
                 },
                 wy, dx, "layernorm dx");
}

TEST(DitLayers, ActivationsForwardAndBackward) {
  const std::size_t n = 40;
  auto x = randn(n, 7, 2.5), wy = randn(n, 8);
  std::vector<double> y(n), dx(n);
  layers::activation_forward<B, layers::GeluTanh>(n, x.data(), y.data());
  for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], fc_ref::gelu(x[i]), 1e-14);
  layers::activation_backward<B, layers::GeluTanh>(n, x.data(), wy.data(), dx.data());
  check_gradient(x,
                 [&](const std::vector<double>& xx) {
                   std::vector<double> yy(n);
                   layers::activation_forward<B, layers::GeluTanh>(n, xx.data(), yy.data());
                   return yy;
                 },
                 wy, dx, "gelu");
  layers::activation_forward<B, layers::Silu>(n, x.data(), y.data());
  for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], fc_ref::silu(x[i]), 1e-14);
  layers::activation_backward<B, layers::Silu>(n, x.data(), wy.data(), dx.data());
  check_gradient(x,
                 [&](const std::vector<double>& xx) {
                   std::vector<double> yy(n);
                   layers::activation_forward<B, layers::Silu>(n, xx.data(), yy.data());
                   return yy;
                 },
                 wy, dx, "silu");
}

TEST(DitLayers, ModulationAndGatedResidual) {
  // 3 frames owning 2, 3 and 1 tokens; per-frame vectors side by side (ld = 3·d: shift, scale, gate).
  const std::size_t d = 4, F = 3, n = 6;
  const std::vector<std::int32_t> tf{0, 0, 1, 1, 1, 2};
  const std::vector<std::int64_t> begin{0, 2, 5, 6};
  auto x = randn(n * d, 9), mod = randn(F * 3 * d, 10), wy = randn(n * d, 11);
  auto modulate = [&](const std::vector<double>& xx, const std::vector<double>& mm) {
    std::vector<double> y(n * d);
    layers::modulate_forward<B>(n, d, xx.data(), mm.data(), mm.data() + d, 3 * d, tf.data(), y.data());
    return y;
  };
  const auto y = modulate(x, mod);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t i = 0; i < d; ++i)
      EXPECT_NEAR(y[r * d + i], x[r * d + i] * (1 + mod[tf[r] * 3 * d + d + i]) + mod[tf[r] * 3 * d + i], 1e-14);
  std::vector<double> dx(n * d), dmod(F * 3 * d, 0.0);
  layers::modulate_backward<B>(F, d, x.data(), mod.data() + d, 3 * d, begin.data(), wy.data(), dx.data(), dmod.data(),
                               dmod.data() + d);
  check_gradient(x, [&](const std::vector<double>& xx) { return modulate(xx, mod); }, wy, dx, "modulate dx");
  check_gradient(mod, [&](const std::vector<double>& mm) { return modulate(x, mm); }, wy, dmod, "modulate dmod");

  auto h = randn(n * d, 12);
  auto residual = [&](const std::vector<double>& hh, const std::vector<double>& mm) {
    std::vector<double> out = x;
    layers::gated_residual_forward<B>(n, d, hh.data(), mm.data() + 2 * d, 3 * d, tf.data(), out.data());
    return out;
  };
  std::vector<double> dh(n * d), dgate(F * 3 * d, 0.0);
  layers::gated_residual_backward<B>(F, d, h.data(), mod.data() + 2 * d, 3 * d, begin.data(), wy.data(), dh.data(),
                                     dgate.data() + 2 * d);
  check_gradient(h, [&](const std::vector<double>& hh) { return residual(hh, mod); }, wy, dh, "residual dh");
  check_gradient(mod, [&](const std::vector<double>& mm) { return residual(h, mm); }, wy, dgate, "residual dgate");
}

TEST(DitLayers, RotaryForwardBackwardAndRelativePositions) {
  const std::size_t n = 5, heads = 2, d = 12;
  const std::array<std::size_t, 3> dims{4, 4, 4};
  std::vector<std::array<double, 3>> pos{{0, 0, 0}, {1, 0, 1}, {2, 1, 0}, {3, 1.5, 1.5}, {7, 2, 3}};
  layers::RopeTable<double> table;
  table.build(pos, dims, 10000.0);
  auto x = randn(n * heads * d, 13), wy = randn(n * heads * d, 14);
  auto y = x;
  layers::rope_apply<B>(n, heads, table, y.data(), heads * d, 0, +1);
  auto ref = to_mat(x, n, heads * d);
  fc_ref::rope(ref, pos, heads, dims, 10000.0);
  expect_close(y, ref, 1e-12, "rope");
  auto dx = wy;
  layers::rope_apply<B>(n, heads, table, dx.data(), heads * d, 0, -1);
  check_gradient(x,
                 [&](const std::vector<double>& xx) {
                   auto yy = xx;
                   layers::rope_apply<B>(n, heads, table, yy.data(), heads * d, 0, +1);
                   return yy;
                 },
                 wy, dx, "rope");
  // q·k after rotation depends only on position differences.
  auto dot_after = [&](double shift) {
    auto p2 = pos;
    for (auto& p : p2) p[0] += shift;
    layers::RopeTable<double> t2;
    t2.build(p2, dims, 10000.0);
    auto z = x;
    layers::rope_apply<B>(n, heads, t2, z.data(), heads * d, 0, +1);
    double s = 0;
    for (std::size_t e = 0; e < d; ++e) s += z[0 * heads * d + e] * z[4 * heads * d + e];
    return s;
  };
  EXPECT_NEAR(dot_after(0.0), dot_after(13.0), 1e-10);
}

// Packed batch of two videos (3 and 2 frames of 3 tokens), tiles of at most 64 rows; full and
// windowed attention against the reference, and the backward pass against differences.
TEST(DitLayers, AttentionForwardAndBackward) {
  const std::size_t heads = 2, d = 6, width = heads * d, tpf = 3;
  const std::vector<std::size_t> frame_video{0, 0, 0, 1, 1};
  const std::size_t F = frame_video.size(), n = F * tpf;
  for (std::int64_t window : {-1, 0, 1}) {
    std::vector<layers::AttentionTile> tiles;
    for (std::size_t f = 0; f < F; ++f) {
      std::size_t vb = 0;
      while (frame_video[vb] != frame_video[f]) ++vb;
      std::size_t ve = vb;
      while (ve < F && frame_video[ve] == frame_video[f]) ++ve;
      std::ptrdiff_t kf0 = static_cast<std::ptrdiff_t>(vb), kf1 = static_cast<std::ptrdiff_t>(ve);
      if (window >= 0) {
        kf0 = std::max<std::ptrdiff_t>(kf0, static_cast<std::ptrdiff_t>(f) - window);
        kf1 = std::min<std::ptrdiff_t>(kf1, static_cast<std::ptrdiff_t>(f) + window + 1);
      }
      tiles.push_back({static_cast<std::ptrdiff_t>(f * tpf), static_cast<std::ptrdiff_t>((f + 1) * tpf),
                       kf0 * static_cast<std::ptrdiff_t>(tpf), kf1 * static_cast<std::ptrdiff_t>(tpf)});
    }
    layers::AttentionShape<double> sh{static_cast<std::ptrdiff_t>(n), static_cast<std::ptrdiff_t>(width),
                                      static_cast<std::ptrdiff_t>(heads), static_cast<std::ptrdiff_t>(d)};
    auto qkv = randn(n * 3 * width, 15 + static_cast<std::uint64_t>(window + 1)), wy = randn(n * width, 20);
    auto run = [&](const std::vector<double>& in) {
      std::vector<double> o(n * width), lse(n * heads);
      layers::attention_forward<B>(sh, tiles, in.data(), o.data(), lse.data());
      return o;
    };
    std::vector<double> o(n * width), lse(n * heads);
    layers::attention_forward<B>(sh, tiles, qkv.data(), o.data(), lse.data());
    fc_ref::Mat q = fc_ref::zeros(n, width), k = q, v = q;
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t e = 0; e < width; ++e) {
        q[r][e] = qkv[r * 3 * width + e];
        k[r][e] = qkv[r * 3 * width + width + e];
        v[r][e] = qkv[r * 3 * width + 2 * width + e];
      }
    auto allowed = [&](std::size_t i, std::size_t j) {
      const std::size_t fi = i / tpf, fj = j / tpf;
      if (frame_video[fi] != frame_video[fj]) return false;
      return window < 0 || std::abs(static_cast<std::int64_t>(fi) - static_cast<std::int64_t>(fj)) <= window;
    };
    expect_close(o, fc_ref::attention(q, k, v, heads, allowed), 1e-12, "attention");
    std::vector<double> dqkv(n * 3 * width);
    layers::attention_backward<B>(sh, tiles, qkv.data(), o.data(), lse.data(), wy.data(), dqkv.data());
    check_gradient(qkv, run, wy, dqkv, "attention dqkv");
  }
}

TEST(DitLayers, AttentionTilesLongerThanOneBlock) {
  // One frame of 150 tokens: three query tiles (64, 64, 22 rows) against 150 keys.
  const std::size_t heads = 1, d = 6, n = 150;
  std::vector<layers::AttentionTile> tiles{{0, 64, 0, 150}, {64, 128, 0, 150}, {128, 150, 0, 150}};
  layers::AttentionShape<double> sh{150, 6, 1, 6};
  auto qkv = randn(n * 3 * d, 30), wy = randn(n * d, 31);
  std::vector<double> o(n * d), lse(n), dqkv(n * 3 * d);
  layers::attention_forward<B>(sh, tiles, qkv.data(), o.data(), lse.data());
  fc_ref::Mat q = fc_ref::zeros(n, d), k = q, v = q;
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t e = 0; e < d; ++e) {
      q[r][e] = qkv[r * 3 * d + e];
      k[r][e] = qkv[r * 3 * d + d + e];
      v[r][e] = qkv[r * 3 * d + 2 * d + e];
    }
  expect_close(o, fc_ref::attention(q, k, v, heads, [](std::size_t, std::size_t) { return true; }), 1e-12, "tiled");
  layers::attention_backward<B>(sh, tiles, qkv.data(), o.data(), lse.data(), wy.data(), dqkv.data());
  // Spot-check 60 entries of the gradient by central differences.
  const double h = 1e-5;
  for (std::size_t i = 0; i < qkv.size(); i += qkv.size() / 60) {
    auto xp = qkv, xm = qkv;
    xp[i] += h;
    xm[i] -= h;
    std::vector<double> op(n * d), om(n * d);
    layers::attention_forward<B>(sh, tiles, xp.data(), op.data(), lse.data());
    layers::attention_forward<B>(sh, tiles, xm.data(), om.data(), lse.data());
    double fd = 0;
    for (std::size_t j = 0; j < wy.size(); ++j) fd += wy[j] * (op[j] - om[j]) / (2 * h);
    ASSERT_NEAR(dqkv[i], fd, 1e-6 * std::max(1.0, std::fabs(fd))) << i;
  }
}

// The online-softmax row kernels of device backends (one item per row and head, no score
// matrix) under every mask the model uses: packing of two videos, windows, frame-causal, and
// both. Forward against the reference; backward against central differences and the tiled path.
TEST(DitLayers, AttentionRowKernelsUnderEveryMask) {
  const std::size_t heads = 2, d = 4, width = heads * d, tpf = 2;
  const std::vector<std::size_t> frame_video{0, 0, 0, 0, 1, 1, 1};
  const std::size_t F = frame_video.size(), n = F * tpf;
  struct Mask {
    std::int64_t window;
    bool causal;
  };
  for (auto [window, causal] : {Mask{-1, false}, Mask{1, false}, Mask{-1, true}, Mask{1, true}, Mask{0, false}}) {
    SCOPED_TRACE(std::to_string(window) + (causal ? " causal" : ""));
    std::vector<layers::AttentionTile> tiles;
    std::vector<std::int64_t> key_range(2 * n), query_range(2 * n);
    for (std::size_t r = 0; r < n; ++r) {
      query_range[2 * r] = static_cast<std::int64_t>(n);
      query_range[2 * r + 1] = 0;
    }
    auto frame_keys = [&](std::size_t f) {
      std::size_t vb = 0;
      while (frame_video[vb] != frame_video[f]) ++vb;
      std::size_t ve = vb;
      while (ve < F && frame_video[ve] == frame_video[f]) ++ve;
      std::int64_t k0 = static_cast<std::int64_t>(vb), k1 = static_cast<std::int64_t>(ve);
      if (window >= 0) {
        k0 = std::max<std::int64_t>(k0, static_cast<std::int64_t>(f) - window);
        k1 = std::min<std::int64_t>(k1, static_cast<std::int64_t>(f) + window + 1);
      }
      if (causal) k1 = static_cast<std::int64_t>(f) + 1;
      return std::pair{k0 * static_cast<std::int64_t>(tpf), k1 * static_cast<std::int64_t>(tpf)};
    };
    for (std::size_t f = 0; f < F; ++f) {
      const auto [k0, k1] = frame_keys(f);
      tiles.push_back({static_cast<std::ptrdiff_t>(f * tpf), static_cast<std::ptrdiff_t>((f + 1) * tpf), k0, k1});
      for (std::size_t q = f * tpf; q < (f + 1) * tpf; ++q) {
        key_range[2 * q] = k0;
        key_range[2 * q + 1] = k1;
        for (std::int64_t k = k0; k < k1; ++k) {
          query_range[2 * k] = std::min<std::int64_t>(query_range[2 * k], static_cast<std::int64_t>(f * tpf));
          query_range[2 * k + 1] = std::max<std::int64_t>(query_range[2 * k + 1], static_cast<std::int64_t>((f + 1) * tpf));
        }
      }
    }
    layers::AttentionShape<double> sh{static_cast<std::ptrdiff_t>(n), static_cast<std::ptrdiff_t>(width),
                                      static_cast<std::ptrdiff_t>(heads), static_cast<std::ptrdiff_t>(d)};
    auto qkv = randn(n * 3 * width, 50 + static_cast<std::uint64_t>(window + 2) + (causal ? 7 : 0), 1.5);
    auto wy = randn(n * width, 60);
    auto run = [&](const std::vector<double>& in) {
      std::vector<double> o(n * width), lse(n * heads);
      layers::attention_forward_rows<B>(sh, key_range.data(), in.data(), o.data(), lse.data());
      return o;
    };
    std::vector<double> o(n * width), lse(n * heads), o_t(n * width), lse_t(n * heads);
    layers::attention_forward_rows<B>(sh, key_range.data(), qkv.data(), o.data(), lse.data());
    fc_ref::Mat q = fc_ref::zeros(n, width), k = q, v = q;
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t e = 0; e < width; ++e) {
        q[r][e] = qkv[r * 3 * width + e];
        k[r][e] = qkv[r * 3 * width + width + e];
        v[r][e] = qkv[r * 3 * width + 2 * width + e];
      }
    auto allowed = [&](std::size_t i, std::size_t j) {
      const auto [k0, k1] = frame_keys(i / tpf);
      return static_cast<std::int64_t>(j) >= k0 && static_cast<std::int64_t>(j) < k1;
    };
    expect_close(o, fc_ref::attention(q, k, v, heads, allowed), 1e-12, "row attention");
    layers::attention_forward<CpuBackend>(sh, tiles, qkv.data(), o_t.data(), lse_t.data());
    for (std::size_t i = 0; i < lse.size(); ++i) ASSERT_NEAR(lse[i], lse_t[i], 1e-12) << "log-sum-exp " << i;
    std::vector<double> dqkv(n * 3 * width), dqkv_t(n * 3 * width), delta(n * heads);
    layers::attention_backward_rows<B>(sh, key_range.data(), query_range.data(), qkv.data(), o.data(), lse.data(),
                                       wy.data(), dqkv.data(), delta.data());
    layers::attention_backward<CpuBackend>(sh, tiles, qkv.data(), o_t.data(), lse_t.data(), wy.data(), dqkv_t.data());
    for (std::size_t i = 0; i < dqkv.size(); ++i) ASSERT_NEAR(dqkv[i], dqkv_t[i], 1e-12) << "dqkv " << i;
    check_gradient(qkv, run, wy, dqkv, "row attention dqkv");
  }
}

TEST(DitLayers, PatchifyRoundTripAndTimestepEmbedding) {
  layers::PatchGeometry g{3, 8, 12, 4};
  auto frame = randn(static_cast<std::size_t>(g.frame_dim()), 40);
  std::vector<double> patches(static_cast<std::size_t>(g.tokens() * g.patch_dim())), back(frame.size());
  layers::patchify(g, frame.data(), patches.data(), g.patch_dim());
  layers::unpatchify(g, patches.data(), g.patch_dim(), back.data());
  EXPECT_EQ(back, frame);
  // Token 4 = patch row 1, column 1; its column (c=2, py=3, px=1) is pixel (2, 7, 5).
  EXPECT_EQ(patches[4 * g.patch_dim() + (2 * 4 + 3) * 4 + 1], frame[(2 * 8 + 7) * 12 + 5]);
  std::vector<double> e(8);
  layers::timestep_embedding(0.5, 8, e.data());
  EXPECT_NEAR(e[0], std::cos(500.0), 1e-12);
  EXPECT_NEAR(e[4], std::sin(500.0), 1e-12);
  EXPECT_NEAR(e[3], std::cos(500.0 * std::pow(10000.0, -0.75)), 1e-12);
}
