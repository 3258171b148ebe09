// Every product the CUDA DiT would give cuBLASLt, recorded on the CPU (label device_omp): the
// device backend on Thrust's OpenMP system plans each product exactly as on a GPU
// (dit/cublaslt_plan.hpp) and gpu::ProductLog keeps the plans. For each test model (the ring
// asset's own configuration, the GPU parity test's length-aware model with classes and a window,
// and a rate-token model with odd sizes), over a forward pass, a backward pass and a training step:
//   - every operand, output, bias and auxiliary pointer starts on a 256-byte boundary (the
//     parameter tensors are padded to it, every buffer is allocated on it);
//   - the declared MIN_ALIGNMENT of each matrix is the largest power of two up to 256 dividing
//     its address and its leading dimension (recomputed here), and every layout has ld >= rows;
//   - every product asked with a bias runs with its epilogue: no fallback in these models;
// and a deliberately misaligned bias takes the declared fallback, counted, with the same result.
// Also: the parameter tensors of every backend start on 256-byte boundaries, with zero padding
// between them that set_parameters keeps zero and checkpoints do not store.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "flowception/data/rotating_ring.hpp"
#include "flowception/dit/thrust_backend.hpp"
#include "flowception/io/safetensors.hpp"
#include "flowception/train/checkpoint.hpp"
#include "flowception/train/trainer.hpp"
#include "support/colour_videos.hpp"

using namespace flowception;
using dit::CpuBackend;
using dit::ThrustBackend;
using namespace flowception::dit::gpu;

namespace {

/// The configuration of assets/ring_tiny.safetensors, read from its metadata.
dit::DitConfig ring_asset_config() {
  return train::dit_config_from_metadata(io::load_safetensors(FLOWCEPTION_ASSETS_DIR "/ring_tiny.safetensors"));
}

/// The length-aware model of tests/gpu/dit_parity.cu (classes, a window, 3×8×8 frames, patch 2).
dit::DitConfig parity_config() { return fc_test::gpu_parity_dit(2); }

/// A rate-token model whose sizes are odd multiples of small numbers (3×4×4 frames, width 24,
/// MLP 72: leading dimensions that are not multiples of 16 floats).
dit::DitConfig odd_config() {
  auto c = fc_test::colour_video_dit(24, 3, 2);
  c.heads = 2;
  c.mlp_ratio = 3;
  c.frequency_dim = 10;
  c.rate_head = dit::RateHead::token;
  c.name = "odd";
  c.validate();
  return c;
}

struct RingData {
  data::RotatingRing ring;
  std::size_t size() const { return 100000; }
  data::Video video(std::size_t i) const { return ring.video(i); }
};
struct ColourVideos : fc_test::ColourVideos {
  explicit ColourVideos(std::size_t side) : fc_test::ColourVideos{100, side, 2, 4} {}
};

template <class T, class B>
void expect_tensors_aligned(const dit::DiT<T, B>& m, const char* what) {
  SCOPED_TRACE(what);
  const auto& table = m.parameter_table();
  std::size_t count = 0;
  for (const auto& p : table) {
    EXPECT_EQ(p.offset * sizeof(T) % 256, 0u) << p.name << " at element " << p.offset;
    count += p.size;
  }
  EXPECT_EQ(count, m.parameter_count());
  EXPECT_EQ(m.parameter_count(), m.config().parameter_count());
  EXPECT_GE(m.parameter_buffer_size(), m.parameter_count());
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(B::raw(m.parameters())) % 256, 0u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(B::raw(m.gradients())) % 256, 0u);
  // Tensors do not overlap and stay inside the buffer.
  for (std::size_t i = 0; i + 1 < table.size(); ++i) EXPECT_LE(table[i].offset + table[i].size, table[i + 1].offset);
  EXPECT_LE(table.back().offset + table.back().size, m.parameter_buffer_size());
}

/// The checks of one recorded plan (see the file comment); counts what it saw.
struct PlanStats {
  std::size_t products = 0, fused = 0, asked = 0, fallbacks = 0, misaligned_pointers = 0;
};
void check_plan(const ProductPlan& p, std::size_t element_bytes, PlanStats& st) {
  if (p.empty) return;
  ++st.products;
  const auto addr = [](const void* q) { return reinterpret_cast<std::uintptr_t>(q); };
  for (const void* q : {p.ptr_a, p.ptr_b, p.ptr_c, p.bias, p.aux})
    if (q && addr(q) % 256 != 0) ++st.misaligned_pointers;
  const auto expected = [&](const void* q, std::int64_t ld) {
    const std::uint32_t a = pointer_alignment(addr(q)), l = pointer_alignment(static_cast<std::uintptr_t>(ld) * element_bytes);
    return a < l ? a : l;
  };
  EXPECT_EQ(p.align_a, expected(p.ptr_a, p.layout_a.ld));
  EXPECT_EQ(p.align_b, expected(p.ptr_b, p.layout_b.ld));
  EXPECT_EQ(p.align_c, expected(p.ptr_c, p.layout_c.ld));
  EXPECT_EQ(p.align_d, p.align_c);
  for (const MatrixLayout* l : {&p.layout_a, &p.layout_b, &p.layout_c})
    EXPECT_GE(static_cast<std::uint64_t>(l->ld), l->rows) << p.key();
  // op(A) is rows(D) × K and op(B) is K × cols(D).
  const std::uint64_t k_a = p.op_a == Operation::n ? p.layout_a.cols : p.layout_a.rows;
  const std::uint64_t k_b = p.op_b == Operation::n ? p.layout_b.rows : p.layout_b.cols;
  EXPECT_EQ(p.op_a == Operation::n ? p.layout_a.rows : p.layout_a.cols, p.layout_c.rows) << p.key();
  EXPECT_EQ(p.op_b == Operation::n ? p.layout_b.cols : p.layout_b.rows, p.layout_c.cols) << p.key();
  EXPECT_EQ(k_a, k_b) << p.key();
  if (p.asked_bias) {
    ++st.asked;
    if (p.fallback == Fallback::none) {
      ++st.fused;
      EXPECT_EQ(p.epilogue, p.asked_gelu ? Epilogue::gelu_aux_bias : Epilogue::bias);
      EXPECT_GE(pointer_alignment(p.bias), kEpilogueAlignment);
      if (p.asked_gelu) {
        EXPECT_EQ(p.aux_ld, p.layout_c.ld);
        EXPECT_EQ(p.aux_ld % 8, 0);
      }
    } else {
      ++st.fallbacks;
    }
  }
}

/// Forward, backward and one training step of a float DiT of `cfg` on the device backend, with
/// every product recorded; returns what the checks saw.
template <class Data>
PlanStats record_model(const dit::DitConfig& cfg, const Data& data) {
  PlanStats st;
  ProductCounters::get().reset();
  {
    ProductLog log;
    dit::DiT<float, ThrustBackend> model(cfg, 1);
    expect_tensors_aligned(model, cfg.name.c_str());
    TrainingSamplerOptions s;
    s.n_start = 2;
    s.seed = 5;
    s.tasks = TaskMixture{1, 1, 1, 0};
    train::TrainerOptions o;
    o.batch_videos = 6;
    o.lr = train::LrSchedule::constant(1e-3, 1);
    o.seed = 5;
    train::Trainer<Data, ExtendedTimeSampler<LinearKappa>, ThrustBackend> trainer(
        model, data, ExtendedTimeSampler<LinearKappa>(LinearKappa{}, s), o);
    trainer.step();  // forward, device losses, backward, clipping, AdamW, EMA
    // A forward pass alone, of an odd number of frames (the rate head's products).
    const std::vector<std::size_t> offsets{0, 3, 8};
    std::vector<double> times(8, 0.4), ell(8);
    std::vector<FrameKind> kinds(8, FrameKind::generated);
    ThrustBackend::buffer<float> x(8 * cfg.frame_dim(), 0.1f), v(x.size());
    model.forward(ThrustBackend::raw(x), dit::DitBatch{times, kinds, offsets, {}, {}}, ThrustBackend::raw(v), ell.data());
    const auto plans = log.plans();
    EXPECT_GT(plans.size(), 10u * cfg.depth);
    for (const auto& p : plans) check_plan(p, sizeof(float), st);
  }
  const ProductCounts n = product_counts();
  EXPECT_EQ(n.fallbacks(), st.fallbacks);
  std::printf("%s: %zu products, %zu asked with a bias, %zu fused, %zu fallbacks, %zu pointers off 256 bytes\n",
              cfg.name.c_str(), st.products, st.asked, st.fused, st.fallbacks, st.misaligned_pointers);
  return st;
}

}  // namespace

TEST(DeviceProducts, ParameterTensorsStartOn256ByteBoundariesOnEveryBackend) {
  for (const auto& cfg : {ring_asset_config(), parity_config(), odd_config()}) {
    expect_tensors_aligned(dit::DiT<float, CpuBackend>(cfg, 1), "float, cpu");
    expect_tensors_aligned(dit::DiT<double, CpuBackend>(cfg, 1), "double, cpu");
    expect_tensors_aligned(dit::DiT<float, ThrustBackend>(cfg, 1), "float, thrust");
  }
  // The ring asset's rate head was 108 bytes past a 256-byte boundary when packed back to back.
  dit::DiT<float, CpuBackend> ring(ring_asset_config(), 1);
  for (const auto& p : ring.parameter_table()) {
    if (p.name == "rate_head.0.weight") {
      EXPECT_EQ(p.offset % 64, 0u);
    }
  }
}

TEST(DeviceProducts, PaddingStaysZeroAndCheckpointsStoreTensorsUnpadded) {
  const auto cfg = odd_config();
  dit::DiT<float, CpuBackend> m(cfg, 2);
  std::vector<float> w(m.parameter_buffer_size(), 7.0f);  // padding too
  m.set_parameters(w);
  const auto back = m.host_parameters();
  std::size_t padding = 0;
  std::vector<bool> in_tensor(back.size(), false);
  for (const auto& p : m.parameter_table())
    for (std::size_t e = 0; e < p.size; ++e) in_tensor[p.offset + e] = true;
  for (std::size_t i = 0; i < back.size(); ++i) {
    if (in_tensor[i]) {
      EXPECT_EQ(back[i], 7.0f);
    } else {
      EXPECT_EQ(back[i], 0.0f) << "padding element " << i;
      ++padding;
    }
  }
  EXPECT_GT(padding, 0u);
  EXPECT_EQ(padding, m.parameter_buffer_size() - m.parameter_count());
  const auto tensors = train::parameter_tensors(m, back, "model.");
  std::size_t stored = 0;
  for (const auto& t : tensors) stored += t.data.size() / sizeof(float);
  EXPECT_EQ(stored, m.parameter_count());
}

TEST(DeviceProducts, EveryProductOfTheRingAssetModelIsAlignedAndFused) {
  const PlanStats st = record_model(ring_asset_config(), RingData{});
  EXPECT_EQ(st.misaligned_pointers, 0u);
  EXPECT_EQ(st.fallbacks, 0u);
  EXPECT_GT(st.fused, 0u);
}

TEST(DeviceProducts, EveryProductOfTheParityModelIsAlignedAndFused) {
  const PlanStats st = record_model(parity_config(), ColourVideos(8));
  EXPECT_EQ(st.misaligned_pointers, 0u);
  EXPECT_EQ(st.fallbacks, 0u);
  EXPECT_GT(st.fused, 0u);
}

TEST(DeviceProducts, EveryProductOfAnOddSizedRateTokenModelIsAligned) {
  // MLP width 72 is a multiple of 8: the GELU epilogue applies; nothing falls back.
  const PlanStats st = record_model(odd_config(), ColourVideos(4));
  EXPECT_EQ(st.misaligned_pointers, 0u);
  EXPECT_EQ(st.fallbacks, 0u);
}

TEST(DeviceProducts, AMisalignedBiasTakesTheDeclaredFallbackWithTheSameResult) {
  const std::ptrdiff_t n = 5, in = 7, out = 16;
  ThrustBackend::buffer<float> x(n * in), w(in * out), b(out + 1), y(n * out), y_ref(n * out);
  std::vector<float> hx(x.size()), hw(w.size()), hb(b.size());
  for (std::size_t i = 0; i < hx.size(); ++i) hx[i] = std::sin(0.3f * static_cast<float>(i));
  for (std::size_t i = 0; i < hw.size(); ++i) hw[i] = std::cos(0.7f * static_cast<float>(i));
  for (std::size_t i = 0; i < hb.size(); ++i) hb[i] = 0.1f * static_cast<float>(i);
  thrust::copy(hx.begin(), hx.end(), x.begin());
  thrust::copy(hw.begin(), hw.end(), w.begin());
  thrust::copy(hb.begin(), hb.end(), b.begin());
  const float* bias = ThrustBackend::raw(b) + 1;  // 4 bytes past a 256-byte boundary
  ProductCounters::get().reset();
  ProductLog log;
  EXPECT_FALSE(ThrustBackend::gemm_bias(n, out, in, ThrustBackend::raw(x), ThrustBackend::raw(w), bias,
                                        ThrustBackend::raw(y)));
  EXPECT_EQ(product_counts().fallback_bias_alignment, 1u);
  dit::layers::linear_forward<ThrustBackend>(n, in, out, ThrustBackend::raw(x), ThrustBackend::raw(w), bias,
                                             ThrustBackend::raw(y));
  EXPECT_EQ(product_counts().fallback_bias_alignment, 2u);
  const auto plans = log.plans();
  ASSERT_EQ(plans.size(), 3u);  // refused, refused again, then the plain product
  EXPECT_EQ(plans[1].fallback, Fallback::bias_alignment);
  EXPECT_EQ(plans[2].epilogue, Epilogue::none);
  EXPECT_FALSE(plans[2].asked_bias);
  // The same numbers as the CPU backend's layer with an aligned copy of the bias.
  std::vector<float> want(static_cast<std::size_t>(n * out));
  dit::layers::linear_forward<CpuBackend>(n, in, out, hx.data(), hw.data(), hb.data() + 1, want.data());
  std::vector<float> got(want.size());
  thrust::copy(y.begin(), y.end(), got.begin());
  EXPECT_EQ(got, want);
}
