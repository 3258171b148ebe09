// The rotating-ring toy data set (length independent of content) and its scorer.
//
// Data. 3×3 RGB frames, values in [0, 1]. Video i under seed S draws, from the random stream
// (S, derive_stream(kRingTag, i)) and in this order: c1 ~ U(0,1)^3, c2 ~ U(0,1)^3, the stride
// 1 + below(3) in {1, 2, 3}, and the length {15, 20, 25, 30}[below(4)]. The two colours define the
// 9-colour ramp P_k = c2 + (k/8)(c1 − c2), k = 0..8. The centre cell shows P_8 = c1 in every
// frame. The 8 border cells, walked clockwise from the top-left ((0,0), (0,1), (0,2), (1,2),
// (2,2), (2,1), (2,0), (1,0) as (row, column)), show P_((p + s_t) mod 8) at walk position p, with
// s_t = (t·stride) mod 8: frame 0 is unrotated and the ring turns by `stride` cells per frame.
// Pixel values are computed in double and rounded to float once. Label = stride − 1 (three
// classes), for class-conditional experiments; unconditional users ignore it.
//
// Scorer (score_ring_video, score_rotating_ring). All residuals are in pixel units over the 27
// numbers of a frame: RMS = sqrt(sum of squared residuals / 27).
//  - Frame validity: a frame is valid when some ramp and some rotation explain it: for each of the
//    8 rotations r (border cell p shows P_((p + r) mod 8)), c1 and c2 are fitted by least squares
//    (per channel, the model w·c1 + (1 − w)·c2 is linear in the two unknowns), and the smallest
//    RMS over r must be <= tolerance (0.05). Frames with a NaN or infinite value are invalid.
//  - Rotation sequence (the rule as the method's authors state it: frame 0 unrotated, one stride
//    for the whole video): every frame is valid and its best rotation (the r of the validity fit)
//    is (t·stride) mod 8 for one stride in {1, 2, 3}.
//  - Consistent rotation: the rotation sequence holds, and for that stride one (c1, c2) fitted by
//    least squares over all frames at once leaves every frame's RMS residual <= tolerance (one
//    ramp for the whole video). The reported stride is the hypothesis with the smallest worst-frame
//    RMS under its common fit (`max_frame_rms`). A per-frame rather than a whole-video RMS makes a
//    single wrong frame count even in a 30-frame video. The common fit alone is not enough: a
//    low-contrast video (c1 ≈ c2) fits every rotation within the tolerance, and a model that is
//    unsure of the rotation produces exactly such washed-out rings, so each frame's best rotation
//    must also be the expected one.
//  - Consistent (whole-video rule): the rule behind the figure the method's authors quote for their
//    model (75 %). For some stride in {1, 2, 3}, one (c1, c2) fitted to all frames with frame t
//    rotated by (t·stride) mod 8 leaves a whole-video RMS (over all 27·T numbers) <= 0.05, and the
//    fitted colours lie in [−0.05, 1.05]. Frame 0 is unrotated by construction. It averages over
//    the frames: a video with one frame one cell off passes it almost always, and a washed-out
//    ring (c1 ≈ c2) passes it whatever its rotations; the strict rule above fails both.
//  - Rotation steps (diagnostic): the change of best rotation between consecutive frames, mod 8,
//    counted over all pairs of valid frames (the data has only 1, 2 and 3).
//  - Length legal: the length is one of {15, 20, 25, 30}.
//  - Fully valid: consistent rotation and legal length (a consistent video has only valid frames).
// Aggregates are fractions in [0, 1] (×100 for percentages), and the mean best-fit RMS of a frame: valid frames over all frames of all
// videos; consistent, fully valid and legal-length videos over all videos; and the total-variation
// distance between the generated length histogram and the data's uniform law on the four lengths.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <span>
#include <vector>

#include "flowception/core/errors.hpp"
#include "flowception/data/video.hpp"
#include "flowception/oracles/length_distribution.hpp"
#include "flowception/random/stream.hpp"

namespace flowception::data {

namespace detail {
using flowception::detail::cat;
using flowception::detail::require;
}  // namespace detail

/// Everything that determines one ring video.
struct RingParams {
  std::array<double, 3> c1{};  ///< ramp end P_8 (the centre), RGB in [0, 1]
  std::array<double, 3> c2{};  ///< ramp end P_0, RGB
  std::size_t stride = 1;  ///< 1, 2 or 3: cells the ring turns per frame
  std::size_t length = 15;  ///< frames: 15, 20, 25 or 30
};

/// The rotating-ring toy data set: 3×3 RGB videos of a 9-colour ramp whose 8 border cells turn by
/// `stride` cells per frame, with a length drawn independently of the content (15, 20, 25 or 30
/// frames). Video i is a pure function of (seed, i); its label is stride − 1.
struct RotatingRing {
  std::uint64_t seed = 0;  ///< seed S of the random streams: one data set per seed

  static constexpr std::size_t channels = 3;     ///< C, RGB
  static constexpr std::size_t height = 3;       ///< H
  static constexpr std::size_t width = 3;        ///< W
  static constexpr std::size_t frame_size = 27;  ///< C·H·W
  static constexpr std::size_t num_classes = 3;  ///< labels 0, 1, 2 (stride − 1)
  static constexpr std::uint64_t kRingTag = 0x72696e67ULL;  ///< "ring": derives the stream of video i
  /// The video lengths the data holds, each with probability 1/4.
  static constexpr std::array<std::size_t, 4> legal_lengths{15, 20, 25, 30};
  /// (row, column) of border walk position p = 0..7, clockwise from the top-left.
  static constexpr std::array<std::array<std::size_t, 2>, 8> border{
      {{0, 0}, {0, 1}, {0, 2}, {1, 2}, {2, 2}, {2, 1}, {2, 0}, {1, 0}}};

  /// The parameters of video i: a pure function of (seed, i).
  RingParams params(std::size_t i) const {
    random::Stream rng(seed, random::derive_stream(kRingTag, i));
    RingParams p;
    for (auto& c : p.c1) c = rng.uniform();
    for (auto& c : p.c2) c = rng.uniform();
    p.stride = 1 + static_cast<std::size_t>(rng.below(3));
    p.length = legal_lengths[rng.below(4)];
    return p;
  }

  /// Video i of the data set: render(params(i)).
  Video video(std::size_t i) const { return render(params(i)); }

  /// Ramp index k in 0..8 shown by cell (y, x) when the ring is rotated by `shift` cells.
  static std::size_t ramp_index(std::size_t y, std::size_t x, std::size_t shift) {
    if (y == 1 && x == 1) return 8;
    for (std::size_t p = 0; p < 8; ++p)
      if (border[p][0] == y && border[p][1] == x) return (p + shift) % 8;
    return 8;  // unreachable for a 3×3 frame
  }

  /// Draws the video of `p`: p.length frames of 3×3×3, frame t rotated by (t·stride) mod 8 cells,
  /// label stride − 1. Throws ConfigError unless the stride is 1, 2 or 3.
  static Video render(const RingParams& p) {
    detail::require(p.stride >= 1 && p.stride <= 3, "rotating ring: stride must be 1, 2 or 3, got ", p.stride);
    Video v{channels, height, width, std::vector<float>(p.length * frame_size), static_cast<std::int64_t>(p.stride) - 1};
    for (std::size_t t = 0; t < p.length; ++t) {
      const std::size_t shift = (t * p.stride) % 8;
      for (std::size_t c = 0; c < 3; ++c)
        for (std::size_t y = 0; y < 3; ++y)
          for (std::size_t x = 0; x < 3; ++x) {
            const double w = static_cast<double>(ramp_index(y, x, shift)) / 8.0;
            v.at(t, c, y, x) = static_cast<float>(p.c2[c] + w * (p.c1[c] - p.c2[c]));
          }
    }
    return v;
  }

  /// The data's length law: uniform on {15, 20, 25, 30}.
  static LengthDistribution length_distribution() {
    return LengthDistribution::uniform({legal_lengths.begin(), legal_lengths.end()});
  }
};

/// Settings of the rotating-ring scorer.
struct RingScoreOptions {
  double tolerance = 0.05;  ///< RMS residual per frame, pixel units
  double whole_video_tolerance = 0.05;  ///< whole-video rule: RMS over all the video's numbers, pixel units
  double colour_margin = 0.05;  ///< whole-video rule: fitted colours within [−margin, 1 + margin]
};

/// The rotating-ring scorer's verdict on one video (definitions in the header comment of
/// `include/flowception/data/rotating_ring.hpp`).
struct RingVideoScore {
  std::size_t length = 0;  ///< frames T
  std::vector<bool> frame_valid;  ///< per frame: explained by some ramp and some rotation
  std::vector<double> frame_rms;  ///< per frame: best RMS over the 8 rotations
  std::vector<int> frame_rotation;  ///< per frame: the rotation of that best fit (−1: not finite)
  std::vector<double> frame_common_rms;  ///< per frame: RMS under the video's common fit (best stride)
  bool rotation_sequence = false;  ///< every frame valid, best rotations (t·stride) mod 8 for one stride
  std::size_t valid_frames = 0;  ///< number of valid frames
  /// The rotation sequence holds and, for its stride, one (c1, c2) fitted to all frames leaves every
  /// frame's RMS residual within the tolerance.
  bool consistent_rotation = false;
  bool length_legal = false;  ///< the length is 15, 20, 25 or 30
  bool fully_valid = false;  ///< consistent rotation and a legal length
  std::size_t stride = 0;  ///< best stride hypothesis (0 when the video is empty or not finite)
  std::array<double, 3> c1{};  ///< common fit's P_8
  std::array<double, 3> c2{};  ///< common least-squares fit under that stride: P_0
  double max_frame_rms = std::numeric_limits<double>::infinity();  ///< worst frame under the common fit
  /// The whole-video rule (the authors' measure, header comment): some stride's common fit has a
  /// whole-video RMS within whole_video_tolerance and colours within the margin.
  bool consistent_whole_video = false;
  double whole_video_rms = std::numeric_limits<double>::infinity();  ///< the smallest whole-video RMS over the strides
  std::size_t whole_video_stride = 0;  ///< the stride of that fit (0 when the video is empty or not finite)
};

/// The rotating-ring scorer's verdict on a set of videos: fractions in [0, 1] and the per-video scores.
struct RingScore {
  std::vector<RingVideoScore> videos;  ///< one score per video, in input order
  double valid_frame_fraction = 0.0;  ///< valid frames over all frames of all videos
  double consistent_fraction = 0.0;  ///< videos with a consistent rotation (the strict rule)
  double consistent_whole_video_fraction = 0.0;  ///< videos consistent under the whole-video rule
  double fully_valid_fraction = 0.0;  ///< fully valid videos
  double length_legal_fraction = 0.0;  ///< videos of a legal length
  /// Total-variation distance between the videos' length histogram and the data's uniform law on
  /// {15, 20, 25, 30}, in [0, 1].
  double length_tv = 0.0;
  std::map<std::size_t, std::size_t> length_histogram;  ///< length → number of videos
  double rotation_sequence_fraction = 0.0;  ///< videos whose rotations follow one stride from 0
  double mean_frame_rms = 0.0;              ///< mean over finite frames of the best-fit RMS residual
  double frame0_unrotated_fraction = 0.0;   ///< videos whose frame 0 is valid with rotation 0
  std::array<std::size_t, 8> rotation_steps{};  ///< consecutive valid frames: rotation change mod 8
};

namespace detail {

/// Least-squares accumulator for value ≈ w·a + (1 − w)·b, one per channel.
struct RampFit {
  double sww = 0, swu = 0, suu = 0, swv = 0, suv = 0;
  void add(double w, double v) {
    const double u = 1.0 - w;
    sww += w * w;
    swu += w * u;
    suu += u * u;
    swv += w * v;
    suv += u * v;
  }
  /// (a, b) minimising the squared error; the design always has w = 1 and w = 0 rows, so the
  /// 2×2 system is non-singular.
  std::array<double, 2> solve() const {
    const double det = sww * suu - swu * swu;
    return {(swv * suu - suv * swu) / det, (sww * suv - swu * swv) / det};
  }
};

inline bool frame_finite(const float* f, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(f[i])) return false;
  return true;
}

/// Sum of squared residuals of frame f under ramp (c1, c2) rotated by `shift`.
inline double ring_frame_sse(const float* f, const std::array<double, 3>& c1, const std::array<double, 3>& c2,
                             std::size_t shift) {
  double sse = 0.0;
  for (std::size_t c = 0; c < 3; ++c)
    for (std::size_t y = 0; y < 3; ++y)
      for (std::size_t x = 0; x < 3; ++x) {
        const double w = static_cast<double>(RotatingRing::ramp_index(y, x, shift)) / 8.0;
        const double r = static_cast<double>(f[c * 9 + y * 3 + x]) - (c2[c] + w * (c1[c] - c2[c]));
        sse += r * r;
      }
  return sse;
}

/// Fits (c1, c2) over frames t in [0, T) with frame t rotated by shift(t).
template <class ShiftOf>
void ring_fit(const Video& v, ShiftOf shift_of, std::size_t first, std::size_t last, std::array<double, 3>& c1,
              std::array<double, 3>& c2) {
  for (std::size_t c = 0; c < 3; ++c) {
    RampFit fit;
    for (std::size_t t = first; t < last; ++t) {
      const float* f = v.frame(t);
      const std::size_t shift = shift_of(t);
      for (std::size_t y = 0; y < 3; ++y)
        for (std::size_t x = 0; x < 3; ++x)
          fit.add(static_cast<double>(RotatingRing::ramp_index(y, x, shift)) / 8.0, f[c * 9 + y * 3 + x]);
    }
    const auto ab = fit.solve();
    c1[c] = ab[0];
    c2[c] = ab[1];
  }
}

inline void check_ring_shape(const Video& v, std::size_t index) {
  validate_video(v, cat("rotating ring scorer: video ", index));
  require<ShapeError>(v.channels == 3 && v.height == 3 && v.width == 3, "rotating ring scorer: video ", index,
                      " has frames of C x H x W = ", v.channels, "x", v.height, "x", v.width, ", expected 3x3x3");
}

}  // namespace detail

/// Scores one generated video (see the header comment for the definitions).
inline RingVideoScore score_ring_video(const Video& v, const RingScoreOptions& opts = {}, std::size_t index = 0) {
  detail::check_ring_shape(v, index);
  RingVideoScore s;
  const std::size_t T = v.length();
  s.length = T;
  s.frame_valid.assign(T, false);
  s.frame_rms.assign(T, std::numeric_limits<double>::infinity());
  s.frame_rotation.assign(T, -1);
  s.frame_common_rms.assign(T, std::numeric_limits<double>::infinity());
  bool all_finite = true;
  for (std::size_t t = 0; t < T; ++t) {
    if (!detail::frame_finite(v.frame(t), 27)) {
      all_finite = false;
      continue;
    }
    double best = std::numeric_limits<double>::infinity();
    for (std::size_t r = 0; r < 8; ++r) {
      std::array<double, 3> c1{}, c2{};
      detail::ring_fit(v, [r](std::size_t) { return r; }, t, t + 1, c1, c2);
      const double rms = std::sqrt(detail::ring_frame_sse(v.frame(t), c1, c2, r) / 27.0);
      if (rms < best) {
        best = rms;
        s.frame_rotation[t] = static_cast<int>(r);
      }
    }
    s.frame_rms[t] = best;
    s.frame_valid[t] = best <= opts.tolerance;
    s.valid_frames += s.frame_valid[t] ? 1 : 0;
  }
  if (T > 0 && all_finite) {
    for (std::size_t stride = 1; stride <= 3; ++stride) {
      auto shift_of = [stride](std::size_t t) { return (t * stride) % 8; };
      std::array<double, 3> c1{}, c2{};
      detail::ring_fit(v, shift_of, 0, T, c1, c2);
      double worst = 0.0, sse = 0.0;
      for (std::size_t t = 0; t < T; ++t) {
        const double e = detail::ring_frame_sse(v.frame(t), c1, c2, shift_of(t));
        sse += e;
        worst = std::max(worst, std::sqrt(e / 27.0));
      }
      // The whole-video rule: one RMS over every number of the video, colours in range.
      const double whole = std::sqrt(sse / (27.0 * static_cast<double>(T)));
      bool in_range = true;
      for (std::size_t c = 0; c < 3; ++c)
        for (double x : {c1[c], c2[c]})
          in_range = in_range && x >= -opts.colour_margin && x <= 1.0 + opts.colour_margin;
      if (whole < s.whole_video_rms) {
        s.whole_video_rms = whole;
        s.whole_video_stride = stride;
      }
      s.consistent_whole_video = s.consistent_whole_video || (in_range && whole <= opts.whole_video_tolerance);
      if (worst < s.max_frame_rms) {
        s.max_frame_rms = worst;
        s.stride = stride;
        s.c1 = c1;
        s.c2 = c2;
      }
    }
    for (std::size_t t = 0; t < T; ++t)
      s.frame_common_rms[t] =
          std::sqrt(detail::ring_frame_sse(v.frame(t), s.c1, s.c2, (t * s.stride) % 8) / 27.0);
    if (s.valid_frames == T) {
      for (std::size_t stride = 1; stride <= 3 && !s.rotation_sequence; ++stride) {
        bool ok = true;
        for (std::size_t t = 0; t < T && ok; ++t) ok = s.frame_rotation[t] == static_cast<int>((t * stride) % 8);
        if (!ok) continue;
        s.rotation_sequence = true;
        // The common ramp under this stride (a video of one or two frames follows several strides).
        std::array<double, 3> c1{}, c2{};
        auto shift_of = [stride](std::size_t t) { return (t * stride) % 8; };
        detail::ring_fit(v, shift_of, 0, T, c1, c2);
        double worst = 0.0;
        for (std::size_t t = 0; t < T; ++t)
          worst = std::max(worst, std::sqrt(detail::ring_frame_sse(v.frame(t), c1, c2, shift_of(t)) / 27.0));
        s.consistent_rotation = s.consistent_rotation || worst <= opts.tolerance;
      }
    }
  }
  for (std::size_t L : RotatingRing::legal_lengths) s.length_legal = s.length_legal || L == T;
  s.fully_valid = s.consistent_rotation && s.length_legal;
  return s;
}

/// Scores a set of generated videos against the rotating-ring data.
inline RingScore score_rotating_ring(std::span<const Video> videos, const RingScoreOptions& opts = {}) {
  detail::require(!videos.empty(), "rotating ring scorer: no videos to score");
  detail::require(opts.tolerance >= 0.0, "rotating ring scorer: tolerance must be >= 0, got ", opts.tolerance);
  RingScore out;
  detail::require(opts.whole_video_tolerance >= 0.0 && opts.colour_margin >= 0.0,
                  "rotating ring scorer: the whole-video tolerance and colour margin must be >= 0");
  std::size_t frames = 0, valid_frames = 0, consistent = 0, fully = 0, legal = 0, sequence = 0, frame0 = 0, whole = 0;
  double rms_sum = 0.0;
  std::size_t rms_frames = 0;
  for (std::size_t i = 0; i < videos.size(); ++i) {
    RingVideoScore s = score_ring_video(videos[i], opts, i);
    sequence += s.rotation_sequence ? 1 : 0;
    frame0 += (s.length > 0 && s.frame_valid[0] && s.frame_rotation[0] == 0) ? 1 : 0;
    for (std::size_t t = 1; t < s.length; ++t)
      if (s.frame_valid[t - 1] && s.frame_valid[t])
        ++out.rotation_steps[static_cast<std::size_t>((s.frame_rotation[t] - s.frame_rotation[t - 1] + 8) % 8)];
    for (double r : s.frame_rms)
      if (std::isfinite(r)) {
        rms_sum += r;
        ++rms_frames;
      }
    frames += s.length;
    valid_frames += s.valid_frames;
    consistent += s.consistent_rotation ? 1 : 0;
    whole += s.consistent_whole_video ? 1 : 0;
    fully += s.fully_valid ? 1 : 0;
    legal += s.length_legal ? 1 : 0;
    ++out.length_histogram[s.length];
    out.videos.push_back(std::move(s));
  }
  const double n = static_cast<double>(videos.size());
  out.valid_frame_fraction = frames ? static_cast<double>(valid_frames) / static_cast<double>(frames) : 0.0;
  out.consistent_fraction = static_cast<double>(consistent) / n;
  out.consistent_whole_video_fraction = static_cast<double>(whole) / n;
  out.fully_valid_fraction = static_cast<double>(fully) / n;
  out.length_legal_fraction = static_cast<double>(legal) / n;
  out.rotation_sequence_fraction = static_cast<double>(sequence) / n;
  out.frame0_unrotated_fraction = static_cast<double>(frame0) / n;
  out.mean_frame_rms = rms_frames ? rms_sum / static_cast<double>(rms_frames) : 0.0;
  out.length_tv = total_variation(RotatingRing::length_distribution(), out.length_histogram);
  return out;
}

}  // namespace flowception::data
