// The crossing-shapes toy data set (length determined by content) and its scorer.
//
// Data. N×N RGB frames (C×H×W = 3×N×N; N = `side`, 16 by default, any N in [8, 64]), black
// background, one shape passing through. The formulas below are written for N = 16; for another
// side replace 16 by N and 15 by N − 1 (a smaller frame gives shorter videos, still a function of
// the content: size, speed and phase).
//  - Shapes are pixel templates on an s×s box, s in {5, 6, 7}; (dx, dy) in [0, s)^2 is a template
//    pixel when
//      square: always;
//      disc:   (dx + 0.5 − s/2)^2 + (dy + 0.5 − s/2)^2 <= (s/2 − 0.25)^2;
//      cross:  dx or dy lies in the central band [(s − w)/2, (s − w)/2 + w), arm width w = 1 for
//              odd s and 2 for even s.
//    The 9 templates are distinct, symmetric under mirrors and transposition, and have no empty
//    row or column. A pixel is either fully the shape's colour or black: no anti-aliasing.
//  - Motion, in canonical coordinates where the shape moves towards +a (a: along the motion, b:
//    across it): the template box's corner is at (a_t, b) = (floor(p0 + v·t), q). The speed v
//    (pixels/frame) is 1/u with the pace u ~ U[1/7, 1/0.57]; q ~ uniform in {0, ..., 16 − s} (the
//    position along the entry edge; there is no transverse motion, the shape crosses straight);
//    p0 = 1 − s + φ·min(v, s − 1), φ ~ U(0, 1), so frame 0 is the first frame where any part of
//    the shape is visible (one column at least, never the whole shape: "partly entered"). The
//    canonical frame maps to the image by the entry edge: left (x, y) = (a, b), right
//    (15 − a, b), top (b, a), bottom (b, 15 − a).
//  - Length: the video ends on the first frame in which the shape has fully left, t_out = the
//    first t with floor(p0 + v·t) >= 16, so L = t_out + 1 = ceil((16 − p0)/v) + 1. L lies in
//    [4, 40], and for a fixed size and phase it is non-increasing in the speed.
//  - Video i under seed S draws from the stream (S, derive_stream(kShapesTag, i)), in this order:
//    the shape below(3), the size 5 + below(3), the colour 0.25 + 0.75·U(0,1) per channel, the
//    edge below(4) (left, right, top, bottom), q = below(17 − s), the pace, the phase φ.
//    Label = the shape's index (square 0, disc 1, cross 2), for class-conditional experiments.
//  - length_distribution() is the data's exact length law, integrated over the pace (midpoint rule,
//    60000 points per size) with the phase integrated in closed form.
//
// Scorer (score_crossing_video, score_crossing_shapes), for generated frames of any quality:
//  - A pixel is "on" when its largest channel is >= on_threshold (0.125, half the smallest
//    channel a data colour can have); the others count as black.
//  - A frame is a legal state when it is empty (no pixel on) and is the video's last frame, or when
//    (1) every on pixel is within colour_tolerance (0.1, max over channels) of the mean on-pixel
//    colour and (2) the on pixels are exactly one of the 9 templates, placed with its box corner
//    at an integer (ox, oy) and clipped by the frame. The test is exact: every corner whose box
//    contains the mask's bounding box is tried (at most 49 per template). A frame showing only a
//    sliver of a shape in a corner can match one template at several corners; all are kept.
//  - one_shape: some template matches every non-empty frame and every non-empty frame's colour is
//    within colour_tolerance of the mean colour over those frames.
//  - constant_velocity: for a template matching every non-empty frame, there is one constant
//    velocity that reproduces its corners: reals (px, vx, py, vy) with floor(px + vx·t) = ox_t and
//    floor(py + vy·t) = oy_t for every non-empty frame t (for ambiguous corner slivers, with some
//    choice of their corners; up to 256 combinations are tried). Each axis is a 2-variable linear
//    feasibility problem; the largest p-interval width g(v) = min_t(o_t + 1 − v·t) − max_t(o_t − v·t)
//    is concave and piecewise linear in v, so its maximum sits at some v = (o_j − o_i)/(t_j − t_i);
//    feasible iff that maximum is > 0 (1e-9). Any 2-D velocity passes, not only the data's
//    axis-aligned crossings.
//  - starts_partly_entered: frame 0 shows the matched template clipped by the frame border.
//  - ends_empty: the video has >= 2 frames and its last frame is empty (earlier empty frames make
//    those frames illegal).
//  - valid = all frames legal && one_shape && constant_velocity && starts_partly_entered &&
//    ends_empty.
//  - Speed–length agreement: for videos with a template common to all non-empty frames and >= 2 of
//    them, the velocity is estimated, per axis, as the centre of the maximisers of g (and p at the
//    centre of its interval) when feasible, else by a least-squares line through o_t + 0.5. The
//    implied length is 1 + the first t >= 0 at which the box extrapolated along that line no longer
//    meets the frame (none within 4096 frames: no implied length). A video agrees when
//    |implied − actual| <= 1; videos with no estimate count as disagreeing. Reported: the agreeing
//    fraction over all videos, and Pearson correlations (over the videos with an estimate) of
//    implied against actual length and of estimated speed against actual length (NaN when fewer
//    than two videos or a constant variable).
//  - length_tv: total variation between the scored videos' length histogram and the exact data law.
// Aggregates are fractions in [0, 1]; legal frames are counted over all frames of all videos.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <span>
#include <utility>
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

/// The three template shapes on an s×s box (a video's label is the index).
enum class ShapeKind : int {
  square = 0,  ///< the whole box
  disc = 1,    ///< radius s/2 − 0.25
  cross = 2,   ///< a plus
};
/// The frame edge a shape enters through; it moves straight away from it, leaving by the opposite one.
enum class Edge : int {
  left = 0,    ///< x = 0
  right = 1,   ///< x = N − 1
  top = 2,     ///< y = 0
  bottom = 3,  ///< y = N − 1
};

/// Everything that determines one crossing-shapes video.
struct CrossingParams {
  ShapeKind shape = ShapeKind::square;  ///< which template; also the label
  std::size_t size = 5;              ///< template box side s, 5..7
  std::array<double, 3> colour{};   ///< each channel in [0.25, 1]
  Edge edge = Edge::left;            ///< the edge it enters through
  std::size_t offset = 0;            ///< q: box position along the entry edge, 0..N-s
  double speed = 1.0;                ///< v, pixels per frame
  double phase = 0.0;                ///< φ in [0, 1)
  std::size_t length = 0;            ///< L (computed by the generator from the above)
};

/// The crossing-shapes toy data set: one shape (square, disc or cross, 5 to 7 pixels) crosses an
/// N×N black RGB frame straight at constant speed, from partly entered to just left, so the length
/// is determined by the content (size, speed, phase). Video i is a pure function of (seed, i); its
/// label is the shape's index. Definitions in the header comment of
/// `include/flowception/data/crossing_shapes.hpp`.
struct CrossingShapes {
  std::uint64_t seed = 0;  ///< seed S of the random streams: one data set per seed
  std::size_t side = 16;  ///< frames are side × side pixels

  static constexpr std::size_t channels = 3;  ///< C: RGB
  static constexpr std::size_t default_side = 16;  ///< N by default
  static constexpr std::size_t min_side = 8;       ///< smallest N
  static constexpr std::size_t max_side = 64;      ///< largest N
  static constexpr std::size_t num_classes = 3;  ///< labels 0, 1, 2 (ShapeKind)
  static constexpr std::size_t min_size = 5;  ///< smallest box side s
  static constexpr std::size_t max_size = 7;  ///< largest s
  static constexpr double min_speed = 0.57;  ///< slowest v, pixels/frame
  static constexpr double max_speed = 7.0;   ///< fastest v
  static constexpr std::size_t min_length = 4;   ///< shortest L, side 16
  static constexpr std::size_t max_length = 40;  ///< longest L, for the default side 16
  /// The longest video of a side: the slowest, largest shape with phase 0.
  static std::size_t max_length_for(std::size_t side) {
    return length_for(max_size, min_speed, 0.0, side);
  }
  /// Throws ConfigError unless `side` is in [min_side, max_side].
  static void check_side(std::size_t side) {
    detail::require(side >= min_side && side <= max_side, "crossing shapes: frame side must be in [", min_side, ", ",
                    max_side, "] (larger than the largest shape), got ", side);
  }
  static constexpr std::uint64_t kShapesTag = 0x73686170ULL;  ///< "shap": derives the stream of video i

  /// Whether (dx, dy) of the s×s box belongs to the template.
  static bool covers(ShapeKind kind, std::size_t s, std::size_t dx, std::size_t dy) {
    if (dx >= s || dy >= s) return false;
    switch (kind) {
      case ShapeKind::square:
        return true;
      case ShapeKind::disc: {
        const double m = static_cast<double>(s) / 2.0;
        const double ex = static_cast<double>(dx) + 0.5 - m, ey = static_cast<double>(dy) + 0.5 - m;
        const double r = m - 0.25;
        return ex * ex + ey * ey <= r * r;
      }
      case ShapeKind::cross: {
        const std::size_t w = (s % 2 == 1) ? 1 : 2, lo = (s - w) / 2;
        return (dx >= lo && dx < lo + w) || (dy >= lo && dy < lo + w);
      }
    }
    return false;
  }

  /// p0 = 1 − s + φ·min(v, s − 1): the canonical box corner at frame 0.
  static double start_position(std::size_t size, double speed, double phase) {
    return 1.0 - static_cast<double>(size) + phase * std::min(speed, static_cast<double>(size) - 1.0);
  }

  /// Canonical box corner at frame t.
  static double position(std::size_t size, double speed, double phase, std::size_t t) {
    return std::floor(start_position(size, speed, phase) + speed * static_cast<double>(t));
  }

  /// L = 1 + the first t at which floor(p0 + v·t) >= N.
  static std::size_t length_for(std::size_t size, double speed, double phase, std::size_t side = default_side) {
    detail::require(speed > 0.0 && std::isfinite(speed), "crossing shapes: speed must be > 0, got ", speed);
    std::size_t t = 0;
    while (position(size, speed, phase, t) <= static_cast<double>(side) - 1.0) ++t;
    return t + 1;
  }

  /// The parameters of video i: a pure function of (seed, i).
  CrossingParams params(std::size_t i) const {
    check_side(side);
    random::Stream rng(seed, random::derive_stream(kShapesTag, i));
    CrossingParams p;
    p.shape = static_cast<ShapeKind>(rng.below(3));
    p.size = min_size + static_cast<std::size_t>(rng.below(3));
    for (auto& c : p.colour) c = 0.25 + 0.75 * rng.uniform();
    p.edge = static_cast<Edge>(rng.below(4));
    p.offset = static_cast<std::size_t>(rng.below(side + 1 - p.size));
    const double u_lo = 1.0 / max_speed, u_hi = 1.0 / min_speed;
    p.speed = 1.0 / (u_lo + (u_hi - u_lo) * rng.uniform());
    p.phase = rng.uniform();
    p.length = length_for(p.size, p.speed, p.phase, side);
    return p;
  }

  /// Video i of the data set: render(params(i), side).
  Video video(std::size_t i) const { return render(params(i), side); }

  /// Draws the video of `p` (p.length frames; the length is recomputed from speed, size and phase
  /// when p.length is 0).
  static Video render(const CrossingParams& p, std::size_t side = default_side) {
    check_side(side);
    detail::require(p.size >= 1 && p.size <= side, "crossing shapes: size must be in [1, ", side, "], got ", p.size);
    detail::require(p.offset + p.size <= side, "crossing shapes: offset ", p.offset, " + size ", p.size, " exceeds ",
                    side);
    const std::size_t L = p.length ? p.length : length_for(p.size, p.speed, p.phase, side);
    const auto last = static_cast<std::ptrdiff_t>(side) - 1;
    Video v{channels, side, side, std::vector<float>(L * channels * side * side, 0.0f), static_cast<std::int64_t>(p.shape)};
    const auto s = static_cast<std::ptrdiff_t>(p.size);
    for (std::size_t t = 0; t < L; ++t) {
      const auto a0 = static_cast<std::ptrdiff_t>(position(p.size, p.speed, p.phase, t));
      for (std::ptrdiff_t dy = 0; dy < s; ++dy)
        for (std::ptrdiff_t dx = 0; dx < s; ++dx) {
          if (!covers(p.shape, p.size, static_cast<std::size_t>(dx), static_cast<std::size_t>(dy))) continue;
          const std::ptrdiff_t a = a0 + dx, b = static_cast<std::ptrdiff_t>(p.offset) + dy;
          if (a < 0 || a > last) continue;
          std::ptrdiff_t x = a, y = b;
          switch (p.edge) {
            case Edge::left: x = a, y = b; break;
            case Edge::right: x = last - a, y = b; break;
            case Edge::top: x = b, y = a; break;
            case Edge::bottom: x = b, y = last - a; break;
          }
          for (std::size_t c = 0; c < 3; ++c)
            v.at(t, c, static_cast<std::size_t>(y), static_cast<std::size_t>(x)) = static_cast<float>(p.colour[c]);
        }
    }
    return v;
  }

  /// The data's length law (see the header comment).
  static LengthDistribution length_distribution(std::size_t side = default_side) {
    check_side(side);
    const double u_lo = 1.0 / max_speed, u_hi = 1.0 / min_speed;
    constexpr std::size_t N = 60000;
    std::vector<double> w(max_length_for(side) + 2, 0.0);
    for (std::size_t s = min_size; s <= max_size; ++s) {
      const double sd = static_cast<double>(s);
      for (std::size_t j = 0; j < N; ++j) {
        const double u = u_lo + (u_hi - u_lo) * (static_cast<double>(j) + 0.5) / static_cast<double>(N);
        // X = (N − p0)/v = (N − 1 + s)·u − φ·min(1, (s − 1)·u) is uniform on (a − width, a].
        const double a = (static_cast<double>(side) - 1.0 + sd) * u, width = std::min(1.0, (sd - 1.0) * u);
        for (double m = std::floor(a - width); m <= std::ceil(a); m += 1.0) {
          const double overlap = std::min(a, m) - std::max(a - width, m - 1.0);
          if (overlap <= 0.0) continue;
          const auto L = static_cast<std::size_t>(m) + 1;  // t_out = ceil(X) = m
          if (L < w.size()) w[L] += overlap / width;
        }
      }
    }
    std::vector<std::size_t> lengths;
    std::vector<double> weights;
    for (std::size_t L = 0; L < w.size(); ++L)
      if (w[L] > 0.0) {
        lengths.push_back(L);
        weights.push_back(w[L]);
      }
    return LengthDistribution(std::move(lengths), std::move(weights));
  }
};

/// Settings of the crossing-shapes scorer.
struct CrossingScoreOptions {
  double on_threshold = 0.125;    ///< a pixel is on when its largest channel is >= this
  double colour_tolerance = 0.1;  ///< max channel deviation from the shape's mean colour
};

/// The crossing-shapes scorer's verdict on one video (definitions in the header comment of
/// `include/flowception/data/crossing_shapes.hpp`).
struct CrossingVideoScore {
  std::size_t length = 0;  ///< frames T
  std::vector<bool> frame_legal;  ///< per frame: a legal state (one clipped template in one colour, or empty and last)
  std::vector<bool> frame_empty;  ///< per frame: finite with no pixel on
  std::size_t legal_frames = 0;  ///< number of legal frames
  bool all_frames_legal = false;  ///< T > 0 and every frame legal
  /// Some template matches every non-empty frame, and every non-empty frame's colour is within
  /// colour_tolerance of the mean colour over those frames.
  bool one_shape = false;
  /// For a template matching every non-empty frame, one constant 2-D velocity reproduces its box
  /// corners (floor of a line per axis).
  bool constant_velocity = false;
  bool starts_partly_entered = false;  ///< frame 0 shows the matched template clipped by the frame border
  bool ends_empty = false;  ///< T >= 2 and the last frame is empty
  /// all_frames_legal, one_shape, constant_velocity, starts_partly_entered and ends_empty together.
  bool valid = false;
  int shape = -1;            ///< ShapeKind index of the common template, -1 when none
  std::size_t size = 0;      ///< its box side
  std::array<double, 3> colour{};  ///< mean on-pixel colour over the non-empty frames
  bool speed_estimated = false;  ///< a common template and >= 2 non-empty frames: vx, vy, speed hold an estimate
  double vx = 0.0;     ///< x velocity, pixels/frame
  double vy = 0.0;     ///< y velocity
  double speed = 0.0;  ///< |(vx, vy)|, pixels per frame
  std::size_t implied_length = 0;          ///< length implied by the estimated motion; 0: none
  bool speed_length_agree = false;  ///< an implied length within 1 of the actual length
};

/// The crossing-shapes scorer's verdict on a set of videos: fractions in [0, 1] over all videos
/// (legal frames over all frames), correlations and the per-video scores.
struct CrossingScore {
  std::vector<CrossingVideoScore> videos;  ///< one score per video, in input order
  double legal_frame_fraction = 0.0;  ///< legal frames over all frames of all videos
  double one_shape_fraction = 0.0;  ///< videos with one shape
  double constant_velocity_fraction = 0.0;  ///< videos with a constant velocity
  double valid_fraction = 0.0;  ///< valid videos
  double speed_length_agreement = 0.0;  ///< fraction of all videos with |implied − actual| <= 1
  /// Pearson correlation of implied against actual length over the videos with an implied length
  /// (NaN when fewer than two or a constant variable).
  double implied_length_correlation = std::numeric_limits<double>::quiet_NaN();
  /// Pearson correlation of estimated speed against actual length over the videos with an estimate
  /// (NaN when fewer than two or a constant variable).
  double speed_length_correlation = std::numeric_limits<double>::quiet_NaN();
  /// Total-variation distance between the videos' length histogram and the data's exact length law
  /// for their side, in [0, 1].
  double length_tv = 0.0;
  std::map<std::size_t, std::size_t> length_histogram;  ///< length → number of videos
};

namespace detail {

struct ShapeTemplate {
  ShapeKind kind;
  std::size_t size;
};

inline const std::array<ShapeTemplate, 9>& shape_templates() {
  static const std::array<ShapeTemplate, 9> t = [] {
    std::array<ShapeTemplate, 9> out{};
    std::size_t k = 0;
    for (int kind = 0; kind < 3; ++kind)
      for (std::size_t s = CrossingShapes::min_size; s <= CrossingShapes::max_size; ++s)
        out[k++] = {static_cast<ShapeKind>(kind), s};
    return out;
  }();
  return t;
}

/// What the scorer sees in one frame.
struct ShapeFrame {
  bool finite = true;
  bool empty = true;
  bool colour_uniform = false;
  std::array<double, 3> colour{};
  /// Per template: every box corner (ox, oy) at which the clipped template equals the on-mask.
  /// Several only when the frame shows a sliver of the shape in a corner.
  std::array<std::vector<std::pair<long, long>>, 9> placements;
  bool any_match() const {
    for (const auto& p : placements)
      if (!p.empty()) return true;
    return false;
  }
};

inline ShapeFrame analyse_shape_frame(const float* f, const CrossingScoreOptions& o, long N) {
  const std::size_t P = static_cast<std::size_t>(N * N);
  ShapeFrame r;
  std::vector<char> on(P, 0);
  long x0 = N, x1 = -1, y0 = N, y1 = -1;
  std::size_t count = 0;
  for (std::size_t i = 0; i < 3 * P; ++i)
    if (!std::isfinite(f[i])) {
      r.finite = false;
      return r;
    }
  for (long y = 0; y < N; ++y)
    for (long x = 0; x < N; ++x) {
      const auto i = static_cast<std::size_t>(y * N + x);
      const float m = std::max({f[i], f[P + i], f[2 * P + i]});
      if (m < o.on_threshold) continue;
      on[i] = true;
      ++count;
      for (std::size_t c = 0; c < 3; ++c) r.colour[c] += f[c * P + i];
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  if (count == 0) return r;
  r.empty = false;
  for (auto& c : r.colour) c /= static_cast<double>(count);
  double dev = 0.0;
  for (std::size_t i = 0; i < P; ++i)
    if (on[i])
      for (std::size_t c = 0; c < 3; ++c) dev = std::max(dev, std::fabs(f[c * P + i] - r.colour[c]));
  r.colour_uniform = dev <= o.colour_tolerance;
  const auto& templates = shape_templates();
  for (std::size_t k = 0; k < templates.size(); ++k) {
    const long s = static_cast<long>(templates[k].size);
    // The box must contain the bounding box; then the masks are equal iff every visible template
    // pixel is on and the counts agree.
    for (long oy = y1 - s + 1; oy <= y0; ++oy)
      for (long ox = x1 - s + 1; ox <= x0; ++ox) {
        std::size_t visible = 0;
        bool ok = true;
        for (long dy = 0; dy < s && ok; ++dy)
          for (long dx = 0; dx < s; ++dx) {
            const long x = ox + dx, y = oy + dy;
            if (x < 0 || y < 0 || x >= N || y >= N) continue;
            if (!CrossingShapes::covers(templates[k].kind, templates[k].size, static_cast<std::size_t>(dx),
                                        static_cast<std::size_t>(dy)))
              continue;
            if (!on[static_cast<std::size_t>(y * N + x)]) {
              ok = false;
              break;
            }
            ++visible;
          }
        if (ok && visible == count) r.placements[k].emplace_back(ox, oy);
      }
  }
  return r;
}

/// One axis of the floor-of-a-line fit: points (t, o_t), o_t integers.
struct FloorLineFit {
  bool feasible = false;
  double v = 0.0, p = 0.0, margin = -std::numeric_limits<double>::infinity();
};

inline FloorLineFit fit_floor_line(const std::vector<std::pair<double, double>>& pts) {
  FloorLineFit out;
  if (pts.empty()) return out;
  auto g = [&](double v, double& lo, double& hi) {
    lo = -std::numeric_limits<double>::infinity();
    hi = std::numeric_limits<double>::infinity();
    for (auto [t, o] : pts) {
      lo = std::max(lo, o - v * t);
      hi = std::min(hi, o + 1.0 - v * t);
    }
    return hi - lo;
  };
  std::vector<double> cands;
  for (std::size_t i = 0; i < pts.size(); ++i)
    for (std::size_t j = i + 1; j < pts.size(); ++j)
      if (pts[j].first != pts[i].first) cands.push_back((pts[j].second - pts[i].second) / (pts[j].first - pts[i].first));
  if (cands.empty()) cands.push_back(0.0);
  double best = -std::numeric_limits<double>::infinity(), lo = 0, hi = 0;
  for (double v : cands) best = std::max(best, g(v, lo, hi));
  double vmin = std::numeric_limits<double>::infinity(), vmax = -vmin;
  for (double v : cands)
    if (g(v, lo, hi) >= best - 1e-12) {
      vmin = std::min(vmin, v);
      vmax = std::max(vmax, v);
    }
  out.v = 0.5 * (vmin + vmax);
  out.margin = g(out.v, lo, hi);
  out.p = 0.5 * (lo + hi);
  out.feasible = best > 1e-9;
  return out;
}

/// Least-squares line through (t, o_t + 0.5).
inline FloorLineFit fit_ls_line(const std::vector<std::pair<double, double>>& pts) {
  FloorLineFit out;
  const double n = static_cast<double>(pts.size());
  double st = 0, so = 0, stt = 0, sto = 0;
  for (auto [t, o] : pts) {
    st += t;
    so += o + 0.5;
    stt += t * t;
    sto += t * (o + 0.5);
  }
  const double var = stt - st * st / n;
  out.v = var > 0 ? (sto - st * so / n) / var : 0.0;
  out.p = (so - out.v * st) / n;
  return out;
}

inline double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const std::size_t n = a.size();
  if (n < 2) return std::numeric_limits<double>::quiet_NaN();
  double ma = 0, mb = 0;
  for (std::size_t i = 0; i < n; ++i) {
    ma += a[i];
    mb += b[i];
  }
  ma /= static_cast<double>(n);
  mb /= static_cast<double>(n);
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < n; ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  if (saa <= 0 || sbb <= 0) return std::numeric_limits<double>::quiet_NaN();
  return sab / std::sqrt(saa * sbb);
}

inline void check_shapes_shape(const Video& v, std::size_t index) {
  validate_video(v, cat("crossing shapes scorer: video ", index));
  require<ShapeError>(v.channels == 3 && v.height == v.width && v.height >= CrossingShapes::min_side &&
                          v.height <= CrossingShapes::max_side,
                      "crossing shapes scorer: video ", index, " has frames of C x H x W = ", v.channels, "x", v.height,
                      "x", v.width, ", expected 3xNxN with N in [", CrossingShapes::min_side, ", ",
                      CrossingShapes::max_side, "]");
}

}  // namespace detail

/// Scores one generated video (see the header comment for the definitions).
inline CrossingVideoScore score_crossing_video(const Video& v, const CrossingScoreOptions& opts = {},
                                               std::size_t index = 0) {
  detail::check_shapes_shape(v, index);
  CrossingVideoScore s;
  const std::size_t T = v.length();
  s.length = T;
  s.frame_legal.assign(T, false);
  s.frame_empty.assign(T, false);
  std::vector<detail::ShapeFrame> frames;
  frames.reserve(T);
  std::vector<std::size_t> nonempty;
  const long N = static_cast<long>(v.height);
  for (std::size_t t = 0; t < T; ++t) {
    frames.push_back(detail::analyse_shape_frame(v.frame(t), opts, N));
    const auto& f = frames.back();
    s.frame_empty[t] = f.finite && f.empty;
    if (!f.finite) continue;
    if (f.empty) {
      s.frame_legal[t] = t + 1 == T;
    } else {
      nonempty.push_back(t);
      s.frame_legal[t] = f.colour_uniform && f.any_match();
    }
    s.legal_frames += s.frame_legal[t] ? 1 : 0;
  }
  s.all_frames_legal = T > 0 && s.legal_frames == T;
  s.ends_empty = T >= 2 && s.frame_empty[T - 1];

  bool all_finite = true;
  for (const auto& f : frames) all_finite = all_finite && f.finite;
  if (!nonempty.empty() && all_finite) {
    for (std::size_t t : nonempty)
      for (std::size_t c = 0; c < 3; ++c) s.colour[c] += frames[t].colour[c] / static_cast<double>(nonempty.size());
    bool colour_same = true;
    for (std::size_t t : nonempty)
      for (std::size_t c = 0; c < 3; ++c)
        colour_same = colour_same && std::fabs(frames[t].colour[c] - s.colour[c]) <= opts.colour_tolerance;

    const auto& templates = detail::shape_templates();
    int chosen = -1;
    std::pair<long, long> first_corner{0, 0};
    detail::FloorLineFit fx, fy;
    for (std::size_t k = 0; k < templates.size() && !s.constant_velocity; ++k) {
      bool common = true;
      for (std::size_t t : nonempty) common = common && !frames[t].placements[k].empty();
      if (!common) continue;
      // Try every combination of placements (ambiguous only for corner slivers), at most 256.
      std::vector<std::size_t> pick(nonempty.size(), 0);
      for (std::size_t combo = 0; combo < 256; ++combo) {
        std::vector<std::pair<double, double>> px, py;
        for (std::size_t j = 0; j < nonempty.size(); ++j) {
          const auto [ox, oy] = frames[nonempty[j]].placements[k][pick[j]];
          px.emplace_back(static_cast<double>(nonempty[j]), static_cast<double>(ox));
          py.emplace_back(static_cast<double>(nonempty[j]), static_cast<double>(oy));
        }
        const auto gx = detail::fit_floor_line(px), gy = detail::fit_floor_line(py);
        const bool feasible = gx.feasible && gy.feasible;
        if (chosen < 0 || feasible) {
          chosen = static_cast<int>(k);
          s.constant_velocity = feasible;
          fx = feasible ? gx : detail::fit_ls_line(px);
          fy = feasible ? gy : detail::fit_ls_line(py);
          first_corner = frames[nonempty[0]].placements[k][pick[0]];
        }
        if (feasible) break;
        std::size_t j = 0;  // next combination (mixed radix)
        while (j < pick.size() && ++pick[j] == frames[nonempty[j]].placements[k].size()) pick[j++] = 0;
        if (j == pick.size()) break;
      }
    }
    if (chosen >= 0) {
      const auto& tpl = templates[static_cast<std::size_t>(chosen)];
      s.shape = static_cast<int>(tpl.kind);
      s.size = tpl.size;
      s.one_shape = colour_same;
      const auto [ox, oy] = first_corner;
      const long sz = static_cast<long>(tpl.size);
      s.starts_partly_entered = !frames[0].empty && (ox < 0 || oy < 0 || ox + sz > N || oy + sz > N);
      if (nonempty.size() >= 2) {
        s.speed_estimated = true;
        s.vx = fx.v;
        s.vy = fy.v;
        s.speed = std::hypot(fx.v, fy.v);
        for (std::size_t t = 0; t < 4096; ++t) {
          const double bx = std::floor(fx.p + fx.v * static_cast<double>(t));
          const double by = std::floor(fy.p + fy.v * static_cast<double>(t));
          const double sd = static_cast<double>(tpl.size);
          const double edge = static_cast<double>(N) - 1.0;
          if (bx + sd - 1.0 < 0.0 || bx > edge || by + sd - 1.0 < 0.0 || by > edge) {
            s.implied_length = t + 1;
            break;
          }
        }
        s.speed_length_agree =
            s.implied_length > 0 && (s.implied_length > T ? s.implied_length - T : T - s.implied_length) <= 1;
      }
    }
  }
  s.valid = s.all_frames_legal && s.one_shape && s.constant_velocity && s.starts_partly_entered && s.ends_empty;
  return s;
}

/// Scores a set of generated videos against the crossing-shapes data.
inline CrossingScore score_crossing_shapes(std::span<const Video> videos, const CrossingScoreOptions& opts = {}) {
  detail::require(!videos.empty(), "crossing shapes scorer: no videos to score");
  detail::require(opts.on_threshold > 0.0 && opts.colour_tolerance >= 0.0,
                  "crossing shapes scorer: on_threshold must be > 0 and colour_tolerance >= 0, got ", opts.on_threshold,
                  " and ", opts.colour_tolerance);
  CrossingScore out;
  detail::check_shapes_shape(videos[0], 0);
  const std::size_t side = videos[0].height;  // every video must have this side (checked per video)
  std::size_t frames = 0, legal = 0, one = 0, cv = 0, valid = 0, agree = 0;
  std::vector<double> implied, actual, speed, actual_s;
  for (std::size_t i = 0; i < videos.size(); ++i) {
    detail::require<ShapeError>(videos[i].height == side, "crossing shapes scorer: video ", i, " is ",
                                videos[i].height, "x", videos[i].width, ", video 0 is ", side, "x", side);
    CrossingVideoScore s = score_crossing_video(videos[i], opts, i);
    frames += s.length;
    legal += s.legal_frames;
    one += s.one_shape ? 1 : 0;
    cv += s.constant_velocity ? 1 : 0;
    valid += s.valid ? 1 : 0;
    agree += s.speed_length_agree ? 1 : 0;
    if (s.speed_estimated) {
      speed.push_back(s.speed);
      actual_s.push_back(static_cast<double>(s.length));
      if (s.implied_length > 0) {
        implied.push_back(static_cast<double>(s.implied_length));
        actual.push_back(static_cast<double>(s.length));
      }
    }
    ++out.length_histogram[s.length];
    out.videos.push_back(std::move(s));
  }
  const double n = static_cast<double>(videos.size());
  out.legal_frame_fraction = frames ? static_cast<double>(legal) / static_cast<double>(frames) : 0.0;
  out.one_shape_fraction = static_cast<double>(one) / n;
  out.constant_velocity_fraction = static_cast<double>(cv) / n;
  out.valid_fraction = static_cast<double>(valid) / n;
  out.speed_length_agreement = static_cast<double>(agree) / n;
  out.implied_length_correlation = detail::pearson(implied, actual);
  out.speed_length_correlation = detail::pearson(speed, actual_s);
  out.length_tv = total_variation(CrossingShapes::length_distribution(side), out.length_histogram);
  return out;
}

}  // namespace flowception::data
