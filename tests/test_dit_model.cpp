// The whole DiT: initialisation, forward against the naive reference, a full gradient check,
// rotary invariances, packing masks, the attention window, and use inside the sampler.
// Built twice: on CpuBackend, and (test_dit_model_thrust, label device_omp) on ThrustBackend
// through Thrust's OpenMP device system, where buffers are device vectors, every kernel is a
// thrust::for_each and attention uses the online-softmax row kernels. The tests move data in
// and out with the backend's upload/download, so they hold on a GPU as well.
#include <gtest/gtest.h>

#include <limits>

#include <cmath>
#include <vector>

#include "flowception/dit/model.hpp"
#include "flowception/sampler.hpp"
#include "support/dit_reference.hpp"
#if defined(FLOWCEPTION_TEST_THRUST_BACKEND)
#include "flowception/algebra/thrust_algebra.hpp"
#include "flowception/dit/thrust_backend.hpp"
#endif

using namespace flowception;
using namespace flowception::dit;

namespace {

#if defined(FLOWCEPTION_TEST_THRUST_BACKEND)
using TB = ThrustBackend;
template <class T>
using TestAlgebra = ThrustAlgebra<T>;
#else
using TB = CpuBackend;
template <class T>
using TestAlgebra = HostAlgebra<T>;
#endif
template <class T>
using Model = DiT<T, TB>;

/// Edits the parameters on the host: f(std::vector<T>&).
template <class T, class F>
void edit_parameters(Model<T>& m, F f) {
  auto host = m.host_parameters();
  f(host);
  m.set_parameters(host);
}

template <class T>
typename TB::template buffer<T> to_backend(const std::vector<T>& host) {
  typename TB::template buffer<T> b(host.size());
  if (!host.empty()) TB::upload(host.data(), host.size(), TB::raw(b));
  return b;
}
template <class T>
std::vector<T> to_host(const typename TB::template buffer<T>& b) {
  std::vector<T> host(b.size());
  if (!host.empty()) TB::download(TB::raw(b), host.size(), host.data());
  return host;
}

DitConfig test_config(std::int64_t window = -1, std::size_t classes = 0, bool causal = false) {
  DitConfig c;
  c.channels = 2;
  c.height = 4;
  c.width = 6;
  c.patch = 2;  // 2×3 patches + rate token = 7 tokens per frame
  c.depth = 2;
  c.width_hidden = 12;
  c.heads = 2;  // head dim 6: rotary split 2 + 2 + 2
  c.mlp_ratio = 2;
  c.frequency_dim = 8;
  c.num_classes = classes;
  c.window = window;
  c.causal = causal;
  c.validate();
  return c;
}

/// The rate-head and rotary options of method.md §6 on the small test model.
struct HeadOptions {
  RateHead head = RateHead::token;
  bool length_aware = false;
  bool single_patch = false;  ///< one 2×2 patch per frame, every rotary dimension on the frame axis
  bool length_conditioning = false;
  const char* name() const {
    static thread_local std::string s;
    s = std::string(rate_head_name(head)) + (length_aware ? "+length" : "") + (single_patch ? "+single_patch" : "") +
        (length_conditioning ? "+length_conditioning" : "");
    return s.c_str();
  }
};
const HeadOptions kHeadVariants[] = {{RateHead::token, false, false},       {RateHead::pooled, false, false},
                                     {RateHead::token, true, false},        {RateHead::pooled, true, false},
                                     {RateHead::pooled, true, true},        {RateHead::token, false, true},
                                     {RateHead::token, false, false, true}, {RateHead::pooled, true, true, true}};

DitConfig variant_config(const HeadOptions& o, std::int64_t window = -1, std::size_t classes = 0) {
  DitConfig c = test_config(window, classes);
  c.rate_head = o.head;
  c.length_aware = o.length_aware;
  c.length_conditioning = o.length_conditioning;
  if (o.single_patch) {
    c.height = 2;
    c.width = 2;
    c.rope_frame_dims = c.head_dim();
  }
  c.validate();
  return c;
}

struct Batch {
  std::vector<double> frames, times;
  std::vector<FrameKind> kinds;
  std::vector<std::size_t> offsets;
  std::vector<std::int64_t> conditions;
  std::vector<std::uint8_t> drop;
  double first = 0.0;
  DitBatch view() const { return {times, kinds, offsets, conditions, drop, first}; }
};

Batch make_batch(const DitConfig& cfg, std::vector<std::size_t> lengths, std::uint64_t seed) {
  Batch b;
  random::Stream rng(seed, 1);
  b.offsets.push_back(0);
  for (std::size_t L : lengths) {
    for (std::size_t f = 0; f < L; ++f) {
      b.times.push_back(rng.uniform());
      b.kinds.push_back(f == 0 ? FrameKind::active_context : FrameKind::generated);
      for (std::size_t e = 0; e < cfg.frame_dim(); ++e) b.frames.push_back(rng.normal());
    }
    b.offsets.push_back(b.offsets.back() + L);
    if (cfg.num_classes > 0) b.conditions.push_back(static_cast<std::int64_t>(L % 2));
    b.drop.push_back(L % 2);
  }
  return b;
}

void randomize(Model<double>& m, std::uint64_t seed, double scale = 0.3) {
  random::Stream rng(seed, 2);
  edit_parameters(m, [&](std::vector<double>& w) {
    for (auto& p : w) p = scale * rng.normal();
  });
}

struct Out {
  std::vector<double> v, l;
};
Out run(Model<double>& m, const Batch& b) {
  Out o;
  o.l.assign(b.times.size(), 0.0);
  auto frames = to_backend(b.frames);
  typename TB::template buffer<double> v(b.frames.size());
  m.forward(TB::raw(frames), b.view(), TB::raw(v), o.l.data());
  o.v = to_host<double>(v);
  return o;
}

}  // namespace

TEST(DitModel, ConfigsAndValidation) {
  auto tiny = DitConfig::tiny(3, 16, 16, 4);
  EXPECT_EQ(tiny.depth, 4u);
  EXPECT_EQ(tiny.width_hidden, 128u);
  EXPECT_EQ(tiny.heads, 4u);
  EXPECT_EQ(DitConfig::small(3, 16, 16, 4).width_hidden, 384u);
  EXPECT_EQ(DitConfig::base(3, 16, 16, 4).heads, 12u);
  auto bad = tiny;
  bad.patch = 5;
  EXPECT_THROW(bad.validate(), ConfigError);
  bad = tiny;
  bad.heads = 3;
  EXPECT_THROW(bad.validate(), ConfigError);
  // A window beyond any video: frame ± window would overflow (it crashed sample and train).
  for (std::int64_t w : {std::int64_t(-2), DitConfig::kMaxWindow + 1, std::numeric_limits<std::int64_t>::max()}) {
    bad = tiny;
    bad.window = w;
    try {
      bad.validate();
      ADD_FAILURE() << "window " << w << " accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("window must be -1 (all) or in [0, 1000000], got " + std::to_string(w)),
                std::string::npos) << e.what();
    }
  }
  bad = tiny;
  bad.window = DitConfig::kMaxWindow;
  EXPECT_NO_THROW(bad.validate());
  std::size_t sum = 0;
  for (int a = 0; a < 3; ++a) sum += tiny.rope_dim(a);
  EXPECT_EQ(sum, tiny.head_dim());
}

TEST(DitModel, InitialisationIsIdentityWithUnitRate) {
  const auto cfg = test_config();
  Model<double> m(cfg, 7);
  auto b = make_batch(cfg, {3, 2}, 1);
  auto o = run(m, b);
  for (double v : o.v) EXPECT_EQ(v, 0.0);  // zero-initialised output layer
  for (double l : o.l) EXPECT_EQ(l, 0.0);  // λ = exp(0) = 1
  // Blocks are the identity: with a non-zero output layer, depth 2 and depth 1 (sharing every
  // other parameter) give the same outputs because every adaLN gate starts at zero.
  auto cfg1 = cfg;
  cfg1.depth = 1;
  Model<double> a(cfg, 7), one(cfg1, 7);
  random::Stream rng(3, 3);
  for (auto* model : {&a, &one})
    for (const auto& p : model->parameter_table())
      if (p.name.rfind("final.linear", 0) == 0 || p.name.rfind("rate_head.2", 0) == 0) {
        random::Stream r2(3, std::hash<std::string>{}(p.name));
        edit_parameters(*model, [&](std::vector<double>& w) {
          for (std::size_t k = 0; k < p.size; ++k) w[p.offset + k] = r2.normal();
        });
      }
  auto oa = run(a, b), o1 = run(one, b);
  for (std::size_t i = 0; i < oa.v.size(); ++i) ASSERT_NEAR(oa.v[i], o1.v[i], 1e-12);
  for (std::size_t i = 0; i < oa.l.size(); ++i) ASSERT_NEAR(oa.l[i], o1.l[i], 1e-12);
  EXPECT_NE(oa.v[0], 0.0);
}

TEST(DitModel, ForwardMatchesNaiveReference) {
  struct Case {
    std::int64_t window;
    std::size_t classes;
    bool causal;
  };
  for (auto [window, classes, causal] : {Case{-1, 0, false}, Case{1, 3, false}, Case{-1, 0, true}, Case{1, 2, true}}) {
    const auto cfg = test_config(window, classes, causal);
    Model<double> m(cfg, 1);
    randomize(m, 5);
    auto b = make_batch(cfg, {4, 1, 3}, 2);
    auto o = run(m, b);
    const auto ref = fc_ref::dit_forward(cfg, fc_ref::Params(m), b.frames, b.view());
    for (std::size_t i = 0; i < o.v.size(); ++i) ASSERT_NEAR(o.v[i], ref.velocity[i], 1e-10) << i;
    for (std::size_t i = 0; i < o.l.size(); ++i) ASSERT_NEAR(o.l[i], ref.log_rate[i], 1e-10) << i;
  }
}

// ∂L/∂θ for L = Σ w_v ⊙ V + Σ w_ℓ ⊙ ℓ against central differences, for a sample of entries
// from every parameter tensor.
TEST(DitModel, FullGradientCheck) {
  for (bool causal : {false, true}) {
  SCOPED_TRACE(causal ? "causal" : "bidirectional");
  const auto cfg = test_config(1, 2, causal);
  Model<double> m(cfg, 1);
  randomize(m, 9, 0.25);
  auto b = make_batch(cfg, {3, 2}, 4);
  random::Stream rng(11, 12);
  std::vector<double> wv(b.frames.size()), wl(b.times.size());
  for (auto& x : wv) x = rng.normal();
  for (auto& x : wl) x = rng.normal();
  auto loss = [&]() {
    auto o = run(m, b);
    double s = 0;
    for (std::size_t i = 0; i < wv.size(); ++i) s += wv[i] * o.v[i];
    for (std::size_t i = 0; i < wl.size(); ++i) s += wl[i] * o.l[i];
    return s;
  };
  loss();
  m.zero_grad();
  m.backward(TB::raw(to_backend(wv)), wl.data());
  const auto grad = m.host_gradients();
  const double h = 1e-6;
  std::size_t checked = 0;
  for (const auto& p : m.parameter_table()) {
    const std::size_t stride = std::max<std::size_t>(1, p.size / 6);
    for (std::size_t k = 0; k < p.size; k += stride) {
      auto host = m.host_parameters();
      const double keep = host[p.offset + k];
      auto at = [&](double value) {
        host[p.offset + k] = value;
        m.set_parameters(host);
        return loss();
      };
      const double lp = at(keep + h);
      const double lm = at(keep - h);
      at(keep);
      const double fd = (lp - lm) / (2 * h);
      ASSERT_NEAR(grad[p.offset + k], fd, 1e-5 * std::max(1.0, std::fabs(fd))) << p.name << "[" << k << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 150u);
  }
}

// Frame-causal attention (the autoregressive baseline): a frame's outputs do not depend on any
// later frame, and do depend on earlier ones.
TEST(DitModel, CausalAttentionIgnoresLaterFrames) {
  const auto cfg = test_config(-1, 0, true);
  Model<double> m(cfg, 1);
  randomize(m, 8);
  auto b = make_batch(cfg, {4}, 5);
  const auto base = run(m, b);
  const std::size_t D = cfg.frame_dim();
  auto later = b;
  for (std::size_t e = 0; e < D; ++e) later.frames[3 * D + e] += 1.0;
  later.times[3] = 0.5 * later.times[3];
  const auto l = run(m, later);
  for (std::size_t i = 0; i < 3 * D; ++i) ASSERT_EQ(base.v[i], l.v[i]) << i;
  for (std::size_t f = 0; f < 3; ++f) ASSERT_EQ(base.l[f], l.l[f]);
  auto earlier = b;
  for (std::size_t e = 0; e < D; ++e) earlier.frames[0 * D + e] += 1.0;
  const auto e = run(m, earlier);
  double diff = 0;
  for (std::size_t i = 3 * D; i < 4 * D; ++i) diff += std::fabs(e.v[i] - base.v[i]);
  EXPECT_GT(diff, 1e-6);
}

TEST(DitModel, RotaryFramePositionsAreRelative) {
  const auto cfg = test_config();
  Model<double> m(cfg, 1);
  randomize(m, 6);
  auto b = make_batch(cfg, {4}, 3);
  auto base = run(m, b);
  b.first = 17.0;  // shift every frame index by a constant
  auto shifted = run(m, b);
  for (std::size_t i = 0; i < base.v.size(); ++i) ASSERT_NEAR(base.v[i], shifted.v[i], 1e-9);
  // Swapping two frames (content, time and kind) does not just swap their outputs.
  b.first = 0.0;
  auto swapped = b;
  const std::size_t D = cfg.frame_dim();
  for (std::size_t e = 0; e < D; ++e) std::swap(swapped.frames[1 * D + e], swapped.frames[3 * D + e]);
  std::swap(swapped.times[1], swapped.times[3]);
  auto s = run(m, swapped);
  double diff = 0;
  for (std::size_t e = 0; e < D; ++e) diff += std::fabs(s.v[3 * D + e] - base.v[1 * D + e]);
  EXPECT_GT(diff, 1e-6);
}

TEST(DitModel, PackedBatchEqualsVideosAlone) {
  const auto cfg = test_config(-1, 3);
  Model<double> m(cfg, 1);
  randomize(m, 8);
  auto packed = make_batch(cfg, {3, 1, 4}, 5);
  auto all = run(m, packed);
  const std::size_t D = cfg.frame_dim();
  for (std::size_t v = 0; v < 3; ++v) {
    Batch alone;
    const std::size_t fb = packed.offsets[v], fe = packed.offsets[v + 1];
    alone.frames.assign(packed.frames.begin() + fb * D, packed.frames.begin() + fe * D);
    alone.times.assign(packed.times.begin() + fb, packed.times.begin() + fe);
    alone.kinds.assign(packed.kinds.begin() + fb, packed.kinds.begin() + fe);
    alone.offsets = {0, fe - fb};
    if (!packed.conditions.empty()) alone.conditions = {packed.conditions[v]};
    alone.drop = {packed.drop[v]};
    auto o = run(m, alone);
    for (std::size_t i = 0; i < o.v.size(); ++i) ASSERT_NEAR(o.v[i], all.v[fb * D + i], 1e-12);
    for (std::size_t i = 0; i < o.l.size(); ++i) ASSERT_NEAR(o.l[i], all.l[fb + i], 1e-12);
  }
}

TEST(DitModel, WindowAtLeastLengthEqualsFullAttention) {
  auto full_cfg = test_config(-1), win_cfg = test_config(5);
  Model<double> full(full_cfg, 1), win(win_cfg, 1);
  randomize(full, 4);
  win.set_parameters(full.host_parameters());
  auto b = make_batch(full_cfg, {5, 2}, 6);  // window 5 >= every video's length
  auto a = run(full, b), w = run(win, b);
  for (std::size_t i = 0; i < a.v.size(); ++i) ASSERT_EQ(a.v[i], w.v[i]);
  auto narrow_cfg = test_config(1);
  Model<double> narrow(narrow_cfg, 1);
  narrow.set_parameters(full.host_parameters());
  auto n = run(narrow, b);
  double diff = 0;
  for (std::size_t i = 0; i < a.v.size(); ++i) diff += std::fabs(a.v[i] - n.v[i]);
  EXPECT_GT(diff, 1e-6);
}

TEST(DitModel, BadBatchesAreRejected) {
  const auto cfg = test_config(-1, 2);
  Model<double> m(cfg, 1);
  auto b = make_batch(cfg, {2}, 1);
  std::vector<double> v(b.frames.size()), l(b.times.size());
  auto bad = b;
  bad.times[0] = 1.5;
  EXPECT_THROW(m.forward(bad.frames.data(), bad.view(), v.data(), l.data()), ShapeError);
  bad = b;
  bad.conditions = {5};
  EXPECT_THROW(m.forward(bad.frames.data(), bad.view(), v.data(), l.data()), ShapeError);
  bad = b;
  bad.kinds.pop_back();
  EXPECT_THROW(m.forward(bad.frames.data(), bad.view(), v.data(), l.data()), ShapeError);
}

TEST(DitModel, RunsInsideTheSampler) {
  auto cfg = DitConfig::tiny(3, 8, 8, 4);
  cfg.depth = 1;
  Model<float> model(cfg, 3);
  SamplerOptions o{TimeGrid::uniform(4)};
  o.frame_dim = cfg.frame_dim();
  o.max_frames = 64;
  auto r = sample(model, LinearKappa{}, Heun{}, o,
                  std::vector<Prompt<float>>{Prompt<float>::unconditional(2),
                                             Prompt<float>::image_to_video(std::vector<float>(cfg.frame_dim(), 0.5f), 2)},
                  TestAlgebra<float>{});
  for (const auto& v : r.videos) {
    EXPECT_GE(v.length(), 2u);
    for (float x : v.frames) ASSERT_TRUE(std::isfinite(x));
  }
}

// FLOPs against values computed by hand for test_config() (C 2, 4×6 frames, patch 2 → P = 8
// values per patch, 6 patches + 1 rate token = 7 tokens per frame; H = 12, 2 heads, depth 2,
// MLP 24, frequency 8) on one video of F = 2 frames, N = 14 tokens. Multiply-adds (×2 = FLOPs):
//   patch embedding   N·P·H            = 14·8·12          =  1344
//   time MLP          F·(8·H + H·H)    = 2·(96 + 144)     =   480
//   per block: adaLN  F·H·6H           = 2·12·72          =  1728
//              qkv    N·H·3H           = 14·12·36         =  6048
//              proj   N·H·H            = 14·144           =  2016
//              MLP    2·N·H·24         = 2·14·12·24       =  8064   (×2 blocks: 35712)
//   final adaLN       F·H·2H           = 2·12·24          =   576
//   final linear      N·H·P            = 14·12·8          =  1344
//   rate head         F·(H·H + H)      = 2·156            =   312
//   total 39768 multiply-adds → 79536 FLOPs. Attention: each block does QKᵀ and P·V over
//   14 × 14 token pairs of width 12: 2 blocks · 2 products · 2 · 196 · 12 = 18816.
// Backward: dX and dW of every linear layer (2 × forward) except dX of the patch embedding and
// of the first time-MLP layer (1344 + 2·8·12 = 1536 multiply-adds): 4·39768 − 2·1536 = 156000;
// attention recomputes QKᵀ and forms dV, dP, dQ, dK: 2 · 5 · 2 · 196 · 12 = 47040.
TEST(DitModel, FlopCountsMatchHandComputedValues) {
  const auto cfg = test_config();
  Model<double> m(cfg, 1);
  auto b = make_batch(cfg, {2}, 1);
  run(m, b);
  EXPECT_EQ(m.forward_flops().other, 79536.0);
  EXPECT_EQ(m.forward_flops().attention, 18816.0);
  EXPECT_EQ(m.backward_flops().other, 156000.0);
  EXPECT_EQ(m.backward_flops().attention, 47040.0);
  // Frame-causal: frame 0's 7 queries see 7 keys, frame 1's see 14: 147 pairs → 14112.
  Model<double> causal(test_config(-1, 0, true), 1);
  run(causal, b);
  EXPECT_EQ(causal.forward_flops().attention, 14112.0);
  EXPECT_EQ(causal.forward_flops().other, 79536.0);
  // Two packed videos of 2 and 1 frames: pairs 14·14 + 7·7 = 245 → 2·2·2·245·12 = 23520.
  auto b2 = make_batch(cfg, {2, 1}, 1);
  run(m, b2);
  EXPECT_EQ(m.forward_flops().attention, 23520.0);
}

// The rate-head options (pooled patch tokens instead of a rate token; the length-aware
// embedding of n, i and n − 1 − i) and every rotary dimension on the frame axis, each against
// the naive reference, a finite-difference gradient check, the identity at initialisation, and
// packed-equals-alone.
TEST(DitModel, RateHeadVariantsMatchNaiveReference) {
  for (const auto& o : kHeadVariants) {
    SCOPED_TRACE(o.name());
    const auto cfg = variant_config(o, 1, 2);
    Model<double> m(cfg, 1);
    randomize(m, 5);
    auto b = make_batch(cfg, {4, 1, 3}, 2);
    auto out = run(m, b);
    const auto ref = fc_ref::dit_forward(cfg, fc_ref::Params(m), b.frames, b.view());
    for (std::size_t i = 0; i < out.v.size(); ++i) ASSERT_NEAR(out.v[i], ref.velocity[i], 1e-10) << i;
    for (std::size_t i = 0; i < out.l.size(); ++i) ASSERT_NEAR(out.l[i], ref.log_rate[i], 1e-10) << i;
  }
}

TEST(DitModel, RateHeadVariantsGradientCheck) {
  for (const auto& o : kHeadVariants) {
    SCOPED_TRACE(o.name());
    const auto cfg = variant_config(o, -1, 2);
    Model<double> m(cfg, 1);
    randomize(m, 9, 0.25);
    auto b = make_batch(cfg, {3, 2}, 4);
    random::Stream rng(11, 12);
    std::vector<double> wv(b.frames.size()), wl(b.times.size());
    for (auto& x : wv) x = rng.normal();
    for (auto& x : wl) x = rng.normal();
    auto loss = [&]() {
      auto out = run(m, b);
      double s = 0;
      for (std::size_t i = 0; i < wv.size(); ++i) s += wv[i] * out.v[i];
      for (std::size_t i = 0; i < wl.size(); ++i) s += wl[i] * out.l[i];
      return s;
    };
    loss();
    m.zero_grad();
    m.backward(TB::raw(to_backend(wv)), wl.data());
    const auto grad = m.host_gradients();
    const double h = 1e-6;
    bool saw_length_embed = false;
    for (const auto& p : m.parameter_table()) {
      const std::size_t stride = std::max<std::size_t>(1, p.size / 6);
      saw_length_embed = saw_length_embed || p.name.find("length_embed") != std::string::npos ||
                         p.name.find("length_cond") != std::string::npos;
      for (std::size_t k = 0; k < p.size; k += stride) {
        auto host = m.host_parameters();
        const double keep = host[p.offset + k];
        auto at = [&](double value) {
          host[p.offset + k] = value;
          m.set_parameters(host);
          return loss();
        };
        const double lp = at(keep + h);
        const double lm = at(keep - h);
        at(keep);
        const double fd = (lp - lm) / (2 * h);
        ASSERT_NEAR(grad[p.offset + k], fd, 1e-5 * std::max(1.0, std::fabs(fd))) << p.name << "[" << k << "]";
      }
    }
    EXPECT_EQ(saw_length_embed, o.length_aware || o.length_conditioning);
    // The length embedding's gradient is not identically zero (it does reach the parameters).
    if (o.length_aware || o.length_conditioning) {
      double norm = 0;
      for (const auto& p : m.parameter_table())
        if (p.name == "rate_head.length_embed.weight" || p.name == "length_cond.weight")
          for (std::size_t k = 0; k < p.size; ++k) norm += std::fabs(grad[p.offset + k]);
      EXPECT_GT(norm, 1e-6);
    }
  }
}

TEST(DitModel, RateHeadVariantsStartAsIdentityWithUnitRate) {
  for (const auto& o : kHeadVariants) {
    SCOPED_TRACE(o.name());
    const auto cfg = variant_config(o);
    Model<double> m(cfg, 7);
    auto b = make_batch(cfg, {3, 2}, 1);
    auto out = run(m, b);
    for (double v : out.v) EXPECT_EQ(v, 0.0);
    for (double l : out.l) EXPECT_EQ(l, 0.0);  // λ = 1 at initialisation
    // Switching the length embedding on changes nothing at initialisation, even with a trained
    // rate head: its weights start at zero.
    if (o.length_aware || o.length_conditioning) {
      auto plain = cfg;
      plain.length_aware = false;
      plain.length_conditioning = false;
      Model<double> a(cfg, 7), z(plain, 7);
      for (auto* model : {&a, &z})
        for (const auto& p : model->parameter_table())
          if (p.name.rfind("rate_head.2", 0) == 0 || p.name.rfind("final.linear", 0) == 0) {
            random::Stream r2(3, std::hash<std::string>{}(p.name));
            edit_parameters(*model, [&](std::vector<double>& w) {
              for (std::size_t k = 0; k < p.size; ++k) w[p.offset + k] = r2.normal();
            });
          }
      auto oa = run(a, b), oz = run(z, b);
      for (std::size_t i = 0; i < oa.l.size(); ++i) ASSERT_EQ(oa.l[i], oz.l[i]);
      for (std::size_t i = 0; i < oa.v.size(); ++i) ASSERT_EQ(oa.v[i], oz.v[i]);
      EXPECT_NE(oa.l[0], 0.0);
    }
  }
}

TEST(DitModel, RateHeadVariantsPackedBatchEqualsVideosAlone) {
  for (const auto& o : kHeadVariants) {
    SCOPED_TRACE(o.name());
    const auto cfg = variant_config(o, -1, 3);
    Model<double> m(cfg, 1);
    randomize(m, 8);
    auto packed = make_batch(cfg, {3, 1, 4}, 5);
    auto all = run(m, packed);
    const std::size_t D = cfg.frame_dim();
    for (std::size_t v = 0; v < 3; ++v) {
      Batch alone;
      const std::size_t fb = packed.offsets[v], fe = packed.offsets[v + 1];
      alone.frames.assign(packed.frames.begin() + fb * D, packed.frames.begin() + fe * D);
      alone.times.assign(packed.times.begin() + fb, packed.times.begin() + fe);
      alone.kinds.assign(packed.kinds.begin() + fb, packed.kinds.begin() + fe);
      alone.offsets = {0, fe - fb};
      if (!packed.conditions.empty()) alone.conditions = {packed.conditions[v]};
      alone.drop = {packed.drop[v]};
      auto out = run(m, alone);
      for (std::size_t i = 0; i < out.v.size(); ++i) ASSERT_NEAR(out.v[i], all.v[fb * D + i], 1e-12);
      for (std::size_t i = 0; i < out.l.size(); ++i) ASSERT_NEAR(out.l[i], all.l[fb + i], 1e-12);
    }
  }
}

// The length-aware head sees the count and the place. With every block gate at zero the blocks
// are the identity, so a frame's pooled rate depends only on its own content, time and kind,
// plus, when length-aware, on (n, i, n − 1 − i): the same frame gets the same rate in a video of
// 3 and of 4 frames, and at the first and the last place, exactly when the option is off.
TEST(DitModel, LengthAwareHeadDependsOnCountAndPlace) {
  for (bool aware : {false, true}) {
    SCOPED_TRACE(aware ? "length-aware" : "plain");
    const auto cfg = variant_config({RateHead::pooled, aware, false});
    Model<double> m(cfg, 1);
    randomize(m, 3);
    edit_parameters(m, [&](std::vector<double>& w) {
      for (const auto& p : m.parameter_table())
        if (p.name.find("adaLN") != std::string::npos && p.name.rfind("blocks.", 0) == 0)
          std::fill_n(w.begin() + static_cast<std::ptrdiff_t>(p.offset), p.size, 0.0);
    });
    auto b3 = make_batch(cfg, {3}, 4);
    for (auto& k : b3.kinds) k = FrameKind::generated;
    const std::size_t D = cfg.frame_dim();
    auto b4 = b3;  // frame 0 repeated at the end: a video of 4 whose last frame equals its first
    b4.frames.insert(b4.frames.end(), b3.frames.begin(), b3.frames.begin() + static_cast<std::ptrdiff_t>(D));
    b4.times.push_back(b3.times[0]);
    b4.kinds.push_back(b3.kinds[0]);
    b4.offsets = {0, 4};
    auto o3 = run(m, b3), o4 = run(m, b4);
    if (aware) {
      EXPECT_GT(std::fabs(o3.l[0] - o4.l[0]), 1e-6);  // n = 3 vs n = 4
      EXPECT_GT(std::fabs(o4.l[0] - o4.l[3]), 1e-6);  // first vs last place
    } else {
      EXPECT_NEAR(o3.l[0], o4.l[0], 1e-12);
      EXPECT_NEAR(o4.l[0], o4.l[3], 1e-12);
    }
  }
}

// Pooled rate head on the FLOP test model: 6 tokens a frame instead of 7, so on F = 2 frames
// (N = 12) the token-sized terms shrink: patch embedding 12·8·12 = 1152, per block qkv 5184,
// proj 1728, MLP 6912 (blocks: 2·(1728 + 5184 + 1728 + 6912) = 31104), final linear 1152; time
// MLP 480, final adaLN 576 and rate head 312 are per frame. Total 34776 multiply-adds → 69552
// FLOPs; attention 2·2·2·144·12 = 13824. The length embedding adds F·96·H = 2304 multiply-adds
// forward (4608 FLOPs) and the same backward (dW only).
TEST(DitModel, FlopCountsOfRateHeadVariants) {
  auto cfg = test_config();
  cfg.rate_head = RateHead::pooled;
  Model<double> m(cfg, 1);
  auto b = make_batch(cfg, {2}, 1);
  run(m, b);
  EXPECT_EQ(m.forward_flops().other, 69552.0);
  EXPECT_EQ(m.forward_flops().attention, 13824.0);
  cfg.length_aware = true;
  Model<double> la(cfg, 1);
  run(la, b);
  EXPECT_EQ(la.forward_flops().other, 69552.0 + 4608.0);
  Model<double> plain(test_config(), 1);
  run(plain, b);
  EXPECT_EQ(la.backward_flops().other - m.backward_flops().other, 4608.0);
}

// The configuration's parameter count is the model's, for every optional part; size fields have
// stated ranges, so a huge configuration is refused before any allocation.
TEST(DitConfig, ParameterCountMatchesTheModelAndSizesHaveRanges) {
  for (int v = 0; v < 6; ++v) {
    auto c = dit::DitConfig::tiny(3, 8, 8, 4);
    c.depth = 1 + v % 2;
    c.width_hidden = 24;
    c.heads = 2;
    c.rate_head = v % 2 ? dit::RateHead::pooled : dit::RateHead::token;
    c.num_classes = v >= 2 ? 5 : 0;
    c.length_aware = v >= 3;
    c.length_conditioning = v >= 4;
    c.mlp_ratio = v == 5 ? 2 : 4;
    c.rope_frame_dims = 0;
    dit::DiT<float> m(c, 0);
    EXPECT_EQ(c.parameter_count(), m.parameter_count()) << "variant " << v;
  }
  auto c = dit::DitConfig::tiny(3, 8, 8, 4);
  c.depth = 100'000'000;
  EXPECT_THROW(c.validate(), ConfigError);
  try {
    c.validate();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("DiT depth must be in [1, 4096], got 100000000"), std::string::npos) << e.what();
  }
  c = dit::DitConfig::tiny(3, 8, 8, 4);
  c.width_hidden = 65536;
  c.heads = 1024;
  c.depth = 4096;  // every field in range, the product not: 2^36 parameters is the limit
  try {
    c.validate();
    ADD_FAILURE() << "accepted a model of " << c.parameter_count() << " parameters";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("above the limit of 68719476736"), std::string::npos) << e.what();
  }
}

// The workspace estimate bounds what forward (and backward) really hold, within 25 %, across
// configurations, batch shapes and both rate heads: the memory plans of sample and train use it.
TEST(DitConfig, WorkspaceEstimateBoundsTheMeasuredWorkspace) {
  for (int v = 0; v < 4; ++v) {
    auto c = dit::DitConfig::tiny(3, 8, 8, v < 2 ? 4 : 2);
    c.depth = 1 + v % 2;
    c.width_hidden = v == 3 ? 48 : 24;
    c.heads = 2;
    c.rate_head = v % 2 ? dit::RateHead::pooled : dit::RateHead::token;
    c.length_aware = c.length_conditioning = v >= 2;
    c.rope_frame_dims = 0;
    c.validate();
    for (const std::vector<std::size_t>& lengths : {std::vector<std::size_t>{5}, std::vector<std::size_t>{3, 7, 2, 9}}) {
      for (bool training : {false, true}) {
        dit::DiT<float> m(c, 1);
        std::vector<double> times;
        std::vector<FrameKind> kinds;
        std::vector<std::size_t> offsets{0};
        for (std::size_t L : lengths) {
          for (std::size_t f = 0; f < L; ++f) {
            times.push_back(0.5);
            kinds.push_back(FrameKind::generated);
          }
          offsets.push_back(offsets.back() + L);
        }
        const std::size_t F = times.size();
        std::vector<float> frames(F * c.frame_dim(), 0.1f), vel(frames.size()), dv(frames.size(), 1.0f);
        std::vector<double> lr(F), dl(F, 1.0);
        const DitBatch b{times, kinds, offsets, {}, {}, 0.0};
        m.forward(frames.data(), b, vel.data(), lr.data());
        if (training) m.backward(dv.data(), dl.data());
        const double measured = static_cast<double>(m.workspace_bytes());
        const double estimate = static_cast<double>(c.workspace_bytes(F, lengths.size(), training));
        EXPECT_GE(estimate, measured) << "variant " << v << ", " << F << " frames, training " << training;
        EXPECT_LE(estimate, 1.25 * measured) << "variant " << v << ", " << F << " frames, training " << training;
      }
    }
  }
}
