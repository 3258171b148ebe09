// A naive double-precision reference of every DiT layer and of the whole forward pass: plain
// loops, one formula per line, no tiling, no shared buffers. Used by the tests only, to check
// the fast implementation (include/flowception/dit/).
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "flowception/dit/model.hpp"

namespace fc_ref {

using Mat = std::vector<std::vector<double>>;

inline Mat zeros(std::size_t r, std::size_t c) { return Mat(r, std::vector<double>(c, 0.0)); }

inline Mat linear(const Mat& x, const std::vector<double>& w, const std::vector<double>& b, std::size_t out) {
  const std::size_t in = x.empty() ? 0 : x[0].size();
  Mat y = zeros(x.size(), out);
  for (std::size_t r = 0; r < x.size(); ++r)
    for (std::size_t o = 0; o < out; ++o) {
      double s = b.empty() ? 0.0 : b[o];
      for (std::size_t i = 0; i < in; ++i) s += x[r][i] * w[i * out + o];
      y[r][o] = s;
    }
  return y;
}

inline Mat layernorm(const Mat& x) {
  Mat y = x;
  for (auto& row : y) {
    double m = 0, v = 0;
    for (double a : row) m += a;
    m /= static_cast<double>(row.size());
    for (double a : row) v += (a - m) * (a - m);
    v /= static_cast<double>(row.size());
    for (double& a : row) a = (a - m) / std::sqrt(v + 1e-6);
  }
  return y;
}

inline double gelu(double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }
inline double silu(double x) { return x / (1 + std::exp(-x)); }
template <class F>
Mat map(Mat x, F f) {
  for (auto& row : x)
    for (double& a : row) a = f(a);
  return x;
}

/// Rotates head vectors of q (n × width) in place: pair (2i, 2i+1) of axis section a by
/// pos_a · base^(−2i/d_a).
inline void rope(Mat& q, const std::vector<std::array<double, 3>>& pos, std::size_t heads,
                 std::array<std::size_t, 3> dims, double base) {
  const std::size_t d = dims[0] + dims[1] + dims[2];
  for (std::size_t r = 0; r < q.size(); ++r)
    for (std::size_t h = 0; h < heads; ++h) {
      std::size_t col = h * d;
      for (int a = 0; a < 3; ++a)
        for (std::size_t i = 0; i < dims[a] / 2; ++i, col += 2) {
          const double ang = pos[r][a] * std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(dims[a]));
          const double x0 = q[r][col], x1 = q[r][col + 1];
          q[r][col] = x0 * std::cos(ang) - x1 * std::sin(ang);
          q[r][col + 1] = x0 * std::sin(ang) + x1 * std::cos(ang);
        }
    }
}

/// Softmax attention where token i may attend to token j iff allowed(i, j).
template <class Allowed>
Mat attention(const Mat& q, const Mat& k, const Mat& v, std::size_t heads, Allowed allowed) {
  const std::size_t n = q.size(), width = q[0].size(), d = width / heads;
  Mat o = zeros(n, width);
  for (std::size_t h = 0; h < heads; ++h)
    for (std::size_t i = 0; i < n; ++i) {
      std::vector<double> s(n, -INFINITY);
      double mx = -INFINITY;
      for (std::size_t j = 0; j < n; ++j) {
        if (!allowed(i, j)) continue;
        double dot = 0;
        for (std::size_t e = 0; e < d; ++e) dot += q[i][h * d + e] * k[j][h * d + e];
        s[j] = dot / std::sqrt(static_cast<double>(d));
        mx = std::max(mx, s[j]);
      }
      double z = 0;
      for (std::size_t j = 0; j < n; ++j) z += std::isinf(s[j]) ? 0.0 : std::exp(s[j] - mx);
      for (std::size_t j = 0; j < n; ++j) {
        if (std::isinf(s[j])) continue;
        const double p = std::exp(s[j] - mx) / z;
        for (std::size_t e = 0; e < d; ++e) o[i][h * d + e] += p * v[j][h * d + e];
      }
    }
  return o;
}

/// Parameters of a DiT by name, as doubles.
struct Params {
  std::map<std::string, std::vector<double>> by_name;
  template <class M>
  explicit Params(const M& model) {
    const auto host = model.host_parameters();
    for (const auto& p : model.parameter_table())
      by_name[p.name] = std::vector<double>(host.begin() + static_cast<std::ptrdiff_t>(p.offset),
                                            host.begin() + static_cast<std::ptrdiff_t>(p.offset + p.size));
  }
  const std::vector<double>& operator[](const std::string& n) const { return by_name.at(n); }
};

struct Output {
  std::vector<double> velocity, log_rate;
};

/// The whole forward pass of §6, written out directly.
inline Output dit_forward(const flowception::dit::DitConfig& cfg, const Params& P, const std::vector<double>& frames,
                          const flowception::dit::DitBatch& b) {
  using flowception::FrameKind;
  const std::size_t F = b.offsets.back(), H = cfg.width_hidden, gh = cfg.grid_h(), gw = cfg.grid_w();
  const bool token_head = cfg.rate_head == flowception::dit::RateHead::token;
  const std::size_t p = cfg.patch, C = cfg.channels, Tp = gh * gw, tpf = Tp + (token_head ? 1 : 0), N = F * tpf;
  // Token embedding.
  Mat x = zeros(N, H);
  std::vector<std::size_t> frame_of(N), video_of_frame(F);
  std::vector<std::array<double, 3>> pos(N);
  for (std::size_t v = 0; v + 1 < b.offsets.size(); ++v)
    for (std::size_t f = b.offsets[v]; f < b.offsets[v + 1]; ++f) video_of_frame[f] = v;
  for (std::size_t f = 0; f < F; ++f) {
    const double fi = b.first_frame_position + static_cast<double>(f - b.offsets[video_of_frame[f]]);
    for (std::size_t t = 0; t < tpf; ++t) {
      const std::size_t r = f * tpf + t;
      frame_of[r] = f;
      if (t == Tp) {
        x[r] = P["rate_token"];
        pos[r] = {fi, (static_cast<double>(gh) - 1) / 2, (static_cast<double>(gw) - 1) / 2};
        continue;
      }
      const std::size_t gy = t / gw, gx = t % gw;
      pos[r] = {fi, static_cast<double>(gy), static_cast<double>(gx)};
      for (std::size_t o = 0; o < H; ++o) {
        double s = P["patch_embed.bias"][o];
        for (std::size_t c = 0; c < C; ++c)
          for (std::size_t py = 0; py < p; ++py)
            for (std::size_t px = 0; px < p; ++px) {
              const std::size_t col = (c * p + py) * p + px;
              const double pixel = frames[f * cfg.frame_dim() + (c * cfg.height + gy * p + py) * cfg.width + gx * p + px];
              s += pixel * P["patch_embed.weight"][col * H + o];
            }
        x[r][o] = s;
      }
    }
  }
  // Conditioning per frame.
  Mat temb = zeros(F, cfg.frequency_dim);
  const std::size_t half = cfg.frequency_dim / 2;
  for (std::size_t f = 0; f < F; ++f)
    for (std::size_t i = 0; i < half; ++i) {
      const double a = 1000.0 * b.times[f] * std::exp(-std::log(10000.0) * static_cast<double>(i) / static_cast<double>(half));
      temb[f][i] = std::cos(a);
      temb[f][half + i] = std::sin(a);
    }
  Mat c = linear(map(linear(temb, P["time_mlp.0.weight"], P["time_mlp.0.bias"], H), silu), P["time_mlp.2.weight"],
                 P["time_mlp.2.bias"], H);
  for (std::size_t f = 0; f < F; ++f) {
    const auto kind = static_cast<std::size_t>(b.kinds[f]);
    for (std::size_t o = 0; o < H; ++o) c[f][o] += P["kind_embed"][kind * H + o];
    if (cfg.num_classes > 0) {
      const std::size_t v = video_of_frame[f];
      const std::int64_t label = b.conditions.empty() ? -1 : b.conditions[v];
      const bool drop = !b.drop_condition.empty() && b.drop_condition[v];
      const std::size_t cls = (drop || label < 0) ? cfg.num_classes : static_cast<std::size_t>(label);
      for (std::size_t o = 0; o < H; ++o) c[f][o] += P["class_embed"][cls * H + o];
    }
  }
  // The length features of frame f: sinusoids of n, i and n − 1 − i.
  auto length_features = [&](std::size_t f) {
    const std::size_t v = video_of_frame[f], E = flowception::dit::DitConfig::kLengthEmbedDim;
    const double n = static_cast<double>(b.offsets[v + 1] - b.offsets[v]);
    const double i = static_cast<double>(f - b.offsets[v]);
    std::vector<double> feat;
    for (double q : {n, i, n - 1 - i})
      for (int trig = 0; trig < 2; ++trig)
        for (std::size_t k = 0; k < E / 2; ++k) {
          const double a = q * std::exp(-std::log(10000.0) * static_cast<double>(k) / static_cast<double>(E / 2));
          feat.push_back(trig == 0 ? std::cos(a) : std::sin(a));
        }
    return feat;
  };
  if (cfg.length_conditioning)
    for (std::size_t f = 0; f < F; ++f) {
      const Mat lc = linear(Mat{length_features(f)}, P["length_cond.weight"], P["length_cond.bias"], H);
      for (std::size_t o = 0; o < H; ++o) c[f][o] += lc[0][o];
    }
  const Mat sc = map(c, silu);
  auto allowed = [&](std::size_t i, std::size_t j) {
    const std::size_t fi = frame_of[i], fj = frame_of[j];
    if (video_of_frame[fi] != video_of_frame[fj]) return false;
    if (cfg.causal && fj > fi) return false;
    if (cfg.window < 0) return true;
    const auto diff = static_cast<std::int64_t>(fi) - static_cast<std::int64_t>(fj);
    return std::abs(diff) <= cfg.window;
  };
  const std::array<std::size_t, 3> dims{cfg.rope_dim(0), cfg.rope_dim(1), cfg.rope_dim(2)};
  for (std::size_t l = 0; l < cfg.depth; ++l) {
    const std::string pre = "blocks." + std::to_string(l) + ".";
    const Mat mod = linear(sc, P[pre + "adaLN.weight"], P[pre + "adaLN.bias"], 6 * H);
    auto modulated = [&](const Mat& n, std::size_t shift_at, std::size_t scale_at) {
      Mat m = n;
      for (std::size_t r = 0; r < N; ++r)
        for (std::size_t o = 0; o < H; ++o)
          m[r][o] = n[r][o] * (1 + mod[frame_of[r]][scale_at + o]) + mod[frame_of[r]][shift_at + o];
      return m;
    };
    const Mat m1 = modulated(layernorm(x), 0, H);
    const Mat qkv = linear(m1, P[pre + "attn.qkv.weight"], P[pre + "attn.qkv.bias"], 3 * H);
    Mat q = zeros(N, H), k = zeros(N, H), v = zeros(N, H);
    for (std::size_t r = 0; r < N; ++r)
      for (std::size_t o = 0; o < H; ++o) {
        q[r][o] = qkv[r][o];
        k[r][o] = qkv[r][H + o];
        v[r][o] = qkv[r][2 * H + o];
      }
    rope(q, pos, cfg.heads, dims, cfg.rope_base);
    rope(k, pos, cfg.heads, dims, cfg.rope_base);
    const Mat a = linear(attention(q, k, v, cfg.heads, allowed), P[pre + "attn.proj.weight"], P[pre + "attn.proj.bias"], H);
    for (std::size_t r = 0; r < N; ++r)
      for (std::size_t o = 0; o < H; ++o) x[r][o] += mod[frame_of[r]][2 * H + o] * a[r][o];
    const Mat m2 = modulated(layernorm(x), 3 * H, 4 * H);
    const Mat y = linear(map(linear(m2, P[pre + "mlp.fc1.weight"], P[pre + "mlp.fc1.bias"], cfg.mlp_hidden()), gelu),
                         P[pre + "mlp.fc2.weight"], P[pre + "mlp.fc2.bias"], H);
    for (std::size_t r = 0; r < N; ++r)
      for (std::size_t o = 0; o < H; ++o) x[r][o] += mod[frame_of[r]][5 * H + o] * y[r][o];
  }
  const Mat fmod = linear(sc, P["final.adaLN.weight"], P["final.adaLN.bias"], 2 * H);
  const Mat nf = layernorm(x);
  Mat mf = nf;
  for (std::size_t r = 0; r < N; ++r)
    for (std::size_t o = 0; o < H; ++o) mf[r][o] = nf[r][o] * (1 + fmod[frame_of[r]][H + o]) + fmod[frame_of[r]][o];
  const Mat out = linear(mf, P["final.linear.weight"], P["final.linear.bias"], cfg.patch_dim());
  Output res;
  res.velocity.assign(F * cfg.frame_dim(), 0.0);
  res.log_rate.assign(F, 0.0);
  for (std::size_t f = 0; f < F; ++f) {
    for (std::size_t t = 0; t < Tp; ++t) {
      const std::size_t gy = t / gw, gx = t % gw;
      for (std::size_t ch = 0; ch < C; ++ch)
        for (std::size_t py = 0; py < p; ++py)
          for (std::size_t px = 0; px < p; ++px)
            res.velocity[f * cfg.frame_dim() + (ch * cfg.height + gy * p + py) * cfg.width + gx * p + px] =
                out[f * tpf + t][(ch * p + py) * p + px];
    }
    // Rate head input: the rate token, or the mean of the frame's patch tokens; plus the
    // length embedding of (n, i, n − 1 − i) when length-aware.
    Mat rin = zeros(1, H);
    for (std::size_t o = 0; o < H; ++o) {
      if (token_head) {
        rin[0][o] = nf[f * tpf + Tp][o];
      } else {
        for (std::size_t t = 0; t < Tp; ++t) rin[0][o] += nf[f * tpf + t][o] / static_cast<double>(Tp);
      }
    }
    if (cfg.length_aware) {
      const Mat le = linear(Mat{length_features(f)}, P["rate_head.length_embed.weight"],
                            P["rate_head.length_embed.bias"], H);
      for (std::size_t o = 0; o < H; ++o) rin[0][o] += le[0][o];
    }
    const Mat r1 = map(linear(rin, P["rate_head.0.weight"], P["rate_head.0.bias"], H), silu);
    res.log_rate[f] = linear(r1, P["rate_head.2.weight"], P["rate_head.2.bias"], 1)[0][0];
  }
  return res;
}

}  // namespace fc_ref
