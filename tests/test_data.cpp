// Toy data sets and their scorers: determinism per (seed, i), frames that follow the written
// definitions exactly, data that scores 100 % valid, and corrupted videos that are flagged.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "flowception/data/crossing_shapes.hpp"
#include "flowception/data/rotating_ring.hpp"
#include "flowception/data/video.hpp"
#include "support/expect_error.hpp"

using namespace flowception;
using data::Video;

namespace {

template <class E, class F>
void expect_error(F&& f, std::initializer_list<const char*> parts) {
  try {
    f();
    ADD_FAILURE() << "no exception thrown";
  } catch (const E& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("flowception: ", 0), 0u) << msg;
    for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

// ---- rotating ring: the definition, evaluated directly ------------------------------------------

/// Walk position of border cell (y, x), clockwise from the top-left; -1 for the centre.
int walk_position(std::size_t y, std::size_t x) {
  const int table[3][3] = {{0, 1, 2}, {7, -1, 3}, {6, 5, 4}};
  return table[y][x];
}

/// The formula: centre P_8 = c1; border walk position p at frame t shows
/// P_((p + s_t) mod 8), s_t = (t·stride) mod 8, P_k = c2 + (k/8)(c1 − c2).
float ring_pixel(const data::RingParams& p, std::size_t t, std::size_t c, std::size_t y, std::size_t x,
                 std::size_t extra_shift = 0) {
  const int pos = walk_position(y, x);
  const std::size_t k = pos < 0 ? 8 : (static_cast<std::size_t>(pos) + (t * p.stride) % 8 + extra_shift) % 8;
  return static_cast<float>(p.c2[c] + (static_cast<double>(k) / 8.0) * (p.c1[c] - p.c2[c]));
}

void set_ring_frame(Video& v, std::size_t t, const data::RingParams& p, std::size_t frame_as, std::size_t extra_shift) {
  for (std::size_t c = 0; c < 3; ++c)
    for (std::size_t y = 0; y < 3; ++y)
      for (std::size_t x = 0; x < 3; ++x) v.at(t, c, y, x) = ring_pixel(p, frame_as, c, y, x, extra_shift);
}

double max_colour_gap(const data::RingParams& p) {
  double g = 0;
  for (std::size_t c = 0; c < 3; ++c) g = std::max(g, std::fabs(p.c1[c] - p.c2[c]));
  return g;
}

}  // namespace

TEST(RotatingRing, VideoIsAPureFunctionOfSeedAndIndex) {
  const data::RotatingRing ring{7};
  const Video a = ring.video(3);
  (void)ring.video(11);  // generating other videos first changes nothing
  const Video b = data::RotatingRing{7}.video(3);
  EXPECT_EQ(a.frames, b.frames);
  EXPECT_EQ(a.label, b.label);
  EXPECT_NE(a.frames, ring.video(4).frames);
  EXPECT_NE(a.frames, data::RotatingRing{8}.video(3).frames);
  const auto vs = data::take(ring, 5, 2);
  ASSERT_EQ(vs.size(), 5u);
  EXPECT_EQ(vs[1].frames, a.frames);
  // All different across i.
  std::set<std::vector<float>> first_frames;
  for (std::size_t i = 0; i < 50; ++i) {
    const Video v = ring.video(i);
    first_frames.insert(std::vector<float>(v.frames.begin(), v.frames.begin() + 27));
  }
  EXPECT_EQ(first_frames.size(), 50u);
}

TEST(RotatingRing, FramesFollowTheDefinitionExactly) {
  const data::RotatingRing ring{2024};
  std::set<std::size_t> strides_seen;
  for (std::size_t i = 0; i < 12; ++i) {
    const data::RingParams p = ring.params(i);
    const Video v = ring.video(i);
    strides_seen.insert(p.stride);
    ASSERT_EQ(v.channels, 3u);
    ASSERT_EQ(v.height, 3u);
    ASSERT_EQ(v.width, 3u);
    ASSERT_EQ(v.length(), p.length);
    EXPECT_EQ(v.label, static_cast<std::int64_t>(p.stride) - 1);
    for (std::size_t c = 0; c < 3; ++c) {
      EXPECT_GT(p.c1[c], 0.0);
      EXPECT_LT(p.c1[c], 1.0);
      EXPECT_GT(p.c2[c], 0.0);
      EXPECT_LT(p.c2[c], 1.0);
    }
    for (std::size_t t = 0; t < p.length; ++t)
      for (std::size_t c = 0; c < 3; ++c)
        for (std::size_t y = 0; y < 3; ++y)
          for (std::size_t x = 0; x < 3; ++x) {
            ASSERT_EQ(v.frames[t * 27 + c * 9 + y * 3 + x], ring_pixel(p, t, c, y, x))
                << "video " << i << " t " << t << " c " << c << " y " << y << " x " << x;
          }
    // Spot checks of the definition's landmarks.
    for (std::size_t c = 0; c < 3; ++c) {
      EXPECT_FLOAT_EQ(v.at(0, c, 0, 0), static_cast<float>(p.c2[c]));  // P_0 at the top-left, frame 0
      EXPECT_FLOAT_EQ(v.at(0, c, 1, 0), static_cast<float>(p.c2[c] + 0.875 * (p.c1[c] - p.c2[c])));  // P_7
      for (std::size_t t = 0; t < p.length; ++t) EXPECT_FLOAT_EQ(v.at(t, c, 1, 1), static_cast<float>(p.c1[c]));
      // Frame 1: the top-left shows P_stride.
      EXPECT_FLOAT_EQ(v.at(1, c, 0, 0), static_cast<float>(p.c2[c] + (p.stride / 8.0) * (p.c1[c] - p.c2[c])));
    }
  }
  EXPECT_EQ(strides_seen.size(), 3u);
}

TEST(RotatingRing, StridesAndLengthsAreUniform) {
  const data::RotatingRing ring{5};
  const std::size_t n = 3000;
  std::map<std::size_t, std::size_t> strides, lengths;
  for (std::size_t i = 0; i < n; ++i) {
    const auto p = ring.params(i);
    ++strides[p.stride];
    ++lengths[p.length];
  }
  ASSERT_EQ(strides.size(), 3u);
  for (auto [s, c] : strides) EXPECT_NEAR(static_cast<double>(c) / n, 1.0 / 3.0, 0.04) << s;
  ASSERT_EQ(lengths.size(), 4u);
  EXPECT_LT(total_variation(data::RotatingRing::length_distribution(), lengths), 0.04);
  const auto P = data::RotatingRing::length_distribution();
  EXPECT_EQ(P.lengths(), (std::vector<std::size_t>{15, 20, 25, 30}));
  EXPECT_DOUBLE_EQ(P.mean(), 22.5);
}

TEST(RotatingRing, EveryDataVideoScoresFullyValid) {
  const auto videos = data::take(data::RotatingRing{11}, 300);
  const data::RingScore s = data::score_rotating_ring(videos);
  EXPECT_EQ(s.valid_frame_fraction, 1.0);
  EXPECT_EQ(s.consistent_fraction, 1.0);
  EXPECT_EQ(s.fully_valid_fraction, 1.0);
  EXPECT_EQ(s.length_legal_fraction, 1.0);
  EXPECT_LT(s.length_tv, 0.08);
  ASSERT_EQ(s.videos.size(), 300u);
  for (std::size_t i = 0; i < videos.size(); ++i) {
    const auto& v = s.videos[i];
    const auto p = data::RotatingRing{11}.params(i);
    EXPECT_LT(v.max_frame_rms, 1e-6);
    for (std::size_t c = 0; c < 3; ++c) {
      EXPECT_NEAR(v.c1[c], p.c1[c], 1e-6);
      EXPECT_NEAR(v.c2[c], p.c2[c], 1e-6);
    }
    if (max_colour_gap(p) > 0.1) {
      EXPECT_EQ(v.stride, p.stride) << i;
    }
  }
  // Small noise (RMS well under the tolerance) is still valid.
  Video noisy = videos[0];
  for (std::size_t k = 0; k < noisy.frames.size(); ++k) noisy.frames[k] += (k % 2 ? 0.02f : -0.02f);
  const auto ns = data::score_ring_video(noisy);
  EXPECT_TRUE(ns.fully_valid);
  EXPECT_EQ(ns.valid_frames, noisy.length());
}

// The whole-video rule (the authors' measure): one ramp fitted to all frames under one stride,
// whole-video RMS <= 0.05, colours within [-0.05, 1.05]. Constructed videos show where it and the
// strict rule part: one frame one cell off passes the whole-video rule and fails the strict one;
// shuffled frames fail both; a washed-out ring passes the whole-video rule whatever its rotations.
TEST(RotatingRing, TheWholeVideoRuleAgainstTheStrictRule) {
  const data::RingParams p{{0.9, 0.2, 0.6}, {0.1, 0.8, 0.2}, 2, 20};
  const Video good = data::RotatingRing::render(p);
  const auto gs = data::score_ring_video(good);
  EXPECT_TRUE(gs.consistent_whole_video);
  EXPECT_TRUE(gs.consistent_rotation);
  EXPECT_LT(gs.whole_video_rms, 1e-6);
  EXPECT_EQ(gs.whole_video_stride, 2u);

  // One frame one cell off: its residual is spread over 20 frames' worth of numbers.
  Video off = good;
  set_ring_frame(off, 11, p, 11, 1);
  const auto os = data::score_ring_video(off);
  EXPECT_FALSE(os.consistent_rotation);
  EXPECT_TRUE(os.consistent_whole_video);
  EXPECT_GT(os.whole_video_rms, 0.0);
  EXPECT_LE(os.whole_video_rms, 0.05);
  // ... and over generated videos, most videos with one frame off still pass it, none the strict rule.
  const data::RotatingRing ring{5};
  int passed_whole = 0, passed_strict = 0, n = 0;
  for (std::size_t i = 0; i < 200; ++i) {
    const auto pi = ring.params(i);
    Video v = ring.video(i);
    set_ring_frame(v, pi.length / 2, pi, pi.length / 2, 1);
    const auto vs = data::score_ring_video(v);
    passed_whole += vs.consistent_whole_video ? 1 : 0;
    passed_strict += vs.consistent_rotation ? 1 : 0;
    ++n;
  }
  EXPECT_GT(passed_whole, n * 9 / 10) << passed_whole << " of " << n;
  EXPECT_LT(passed_strict, n / 10) << passed_strict << " of " << n;  // (only washed-out rings)

  // Shuffled frames: no stride explains the order; both rules fail.
  Video shuffled = good;
  for (std::size_t t = 1; t < 20; ++t) set_ring_frame(shuffled, t, p, (t * 7) % 20, 0);
  const auto ss = data::score_ring_video(shuffled);
  EXPECT_FALSE(ss.consistent_whole_video);
  EXPECT_FALSE(ss.consistent_rotation);
  EXPECT_GT(ss.whole_video_rms, 0.05);

  // Low contrast (c1 and c2 0.03 apart), frames in a scrambled order: the whole-video rule cannot
  // see the rotations and passes; the strict rule fails.
  const data::RingParams faint{{0.50, 0.52, 0.51}, {0.53, 0.49, 0.50}, 1, 15};
  Video scrambled = data::RotatingRing::render(faint);
  for (std::size_t t = 1; t < 15; ++t) set_ring_frame(scrambled, t, faint, (t * 5) % 8, 0);
  const auto fs = data::score_ring_video(scrambled);
  EXPECT_TRUE(fs.consistent_whole_video);
  EXPECT_FALSE(fs.consistent_rotation);

  // Colours outside [-0.05, 1.05]: a ring of the right motion but impossible colours fails it.
  Video bright = good;
  for (auto& x : bright.frames) x = 1.2f * x + 0.1f;
  const auto bs = data::score_ring_video(bright);
  EXPECT_FALSE(bs.consistent_whole_video);
  EXPECT_LE(bs.whole_video_rms, 1e-6);
  data::RingScoreOptions loose;
  loose.colour_margin = 0.5;
  EXPECT_TRUE(data::score_ring_video(bright, loose).consistent_whole_video);

  // Aggregate: good, off, shuffled, scrambled: whole-video 3/4, strict 1/4.
  const std::vector<Video> mix{good, off, shuffled, scrambled};
  const auto agg = data::score_rotating_ring(mix);
  EXPECT_DOUBLE_EQ(agg.consistent_whole_video_fraction, 0.75);
  EXPECT_DOUBLE_EQ(agg.consistent_fraction, 0.25);
  data::RingScoreOptions bad;
  bad.whole_video_tolerance = -1;
  fc_test::expect_error<ConfigError>([&] { data::score_rotating_ring(mix, bad); }, "whole-video tolerance");
}

TEST(RotatingRing, CorruptedVideosAreFlagged) {
  const data::RingParams p{{0.9, 0.2, 0.6}, {0.1, 0.8, 0.2}, 2, 20};
  const Video good = data::RotatingRing::render(p);
  const auto gs = data::score_ring_video(good);
  ASSERT_TRUE(gs.fully_valid);
  EXPECT_EQ(gs.stride, 2u);

  // One frame rotated one cell too far: each frame is still a ring, but no single stride explains them.
  Video rotated = good;
  set_ring_frame(rotated, 7, p, 7, 1);
  const auto rs = data::score_ring_video(rotated);
  EXPECT_EQ(rs.valid_frames, 20u);
  EXPECT_FALSE(rs.consistent_rotation);
  EXPECT_FALSE(rs.fully_valid);
  EXPECT_TRUE(rs.length_legal);

  // Every frame rotated by one: consistent rotation but frame 0 not unrotated -> flagged.
  Video all_rotated = good;
  for (std::size_t t = 0; t < 20; ++t) set_ring_frame(all_rotated, t, p, t, 1);
  EXPECT_FALSE(data::score_ring_video(all_rotated).consistent_rotation);

  // A frame shown at the wrong time (frame 5 shows frame 6's rotation).
  Video skipped = good;
  set_ring_frame(skipped, 5, p, 6, 0);
  EXPECT_FALSE(data::score_ring_video(skipped).consistent_rotation);

  // Colours perturbed by 0.2 (alternating signs) in frame 4: that frame is no ring at all.
  Video noisy = good;
  for (std::size_t k = 4 * 27; k < 5 * 27; ++k) noisy.frames[k] += (k % 2 ? 0.2f : -0.2f);
  const auto ns = data::score_ring_video(noisy);
  EXPECT_FALSE(ns.frame_valid[4]);
  EXPECT_TRUE(ns.frame_valid[3]);
  EXPECT_EQ(ns.valid_frames, 19u);
  EXPECT_FALSE(ns.consistent_rotation);
  EXPECT_FALSE(ns.fully_valid);

  // Frame 9 drawn from a ramp with c1 shifted by 0.2: a valid ring frame, but another ramp.
  Video other_ramp = good;
  data::RingParams q = p;
  for (auto& c : q.c1) c -= 0.2;
  set_ring_frame(other_ramp, 9, q, 9, 0);
  const auto os = data::score_ring_video(other_ramp);
  EXPECT_EQ(os.valid_frames, 20u);
  EXPECT_FALSE(os.consistent_rotation);

  // Length 17: content fine, length illegal.
  Video short17 = good;
  short17.frames.resize(17 * 27);
  const auto ss = data::score_ring_video(short17);
  EXPECT_TRUE(ss.consistent_rotation);
  EXPECT_FALSE(ss.length_legal);
  EXPECT_FALSE(ss.fully_valid);

  // A NaN makes its frame invalid.
  Video nan = good;
  nan.frames[27 * 3 + 5] = std::nanf("");
  const auto nn = data::score_ring_video(nan);
  EXPECT_FALSE(nn.frame_valid[3]);
  EXPECT_FALSE(nn.fully_valid);

  // Aggregates over a mix: 1 good + 4 corrupted.
  const std::vector<Video> mix{good, rotated, noisy, short17, other_ramp};
  const auto agg = data::score_rotating_ring(mix);
  EXPECT_DOUBLE_EQ(agg.fully_valid_fraction, 0.2);
  EXPECT_DOUBLE_EQ(agg.consistent_fraction, 0.4);
  EXPECT_DOUBLE_EQ(agg.length_legal_fraction, 0.8);
  EXPECT_DOUBLE_EQ(agg.valid_frame_fraction, (20.0 + 20.0 + 19.0 + 17.0 + 20.0) / 97.0);
  EXPECT_EQ(agg.length_histogram.at(20), 4u);
  EXPECT_EQ(agg.length_histogram.at(17), 1u);
  // Histogram {17: 0.2, 20: 0.8} against uniform on 15..30: TV = 0.2 + (0.8 - 0.25) = 0.75.
  EXPECT_NEAR(agg.length_tv, 0.75, 1e-12);

  // A washed-out ring (c1 and c2 0.03 apart) fits every rotation within the tolerance: with its
  // frames in a scrambled order the common fit alone would call it consistent, but the rotations
  // do not follow a stride, so it is not.
  const data::RingParams faint{{0.50, 0.52, 0.51}, {0.53, 0.49, 0.50}, 1, 15};
  Video scrambled = data::RotatingRing::render(faint);
  for (std::size_t t = 1; t < 15; ++t) set_ring_frame(scrambled, t, faint, (t * 5) % 8, 0);
  const auto fs = data::score_ring_video(scrambled);
  EXPECT_EQ(fs.valid_frames, 15u);
  EXPECT_LT(fs.max_frame_rms, 0.05);  // the common fit of some stride passes ...
  EXPECT_FALSE(fs.rotation_sequence);  // ... but the rotations are scrambled
  EXPECT_FALSE(fs.consistent_rotation);
  EXPECT_TRUE(data::score_ring_video(data::RotatingRing::render(faint)).consistent_rotation);

  // Diagnostics: best rotations, the authors' rotation-sequence rule and the rotation steps.
  for (std::size_t t = 0; t < 20; ++t) EXPECT_EQ(gs.frame_rotation[t], static_cast<int>((2 * t) % 8)) << t;
  EXPECT_TRUE(gs.rotation_sequence);
  EXPECT_FALSE(rs.rotation_sequence);          // frame 7 one cell too far
  EXPECT_FALSE(data::score_ring_video(skipped).rotation_sequence);
  EXPECT_TRUE(os.rotation_sequence);           // another ramp in frame 9, right rotation
  EXPECT_FALSE(ns.rotation_sequence);          // an invalid frame
  EXPECT_GT(os.frame_common_rms[9], 0.05);     // ... but off the video's common ramp
  EXPECT_LT(os.frame_common_rms[8], os.frame_common_rms[9]);
  EXPECT_DOUBLE_EQ(agg.rotation_sequence_fraction, 0.6);  // good, short17, other_ramp
  EXPECT_DOUBLE_EQ(agg.frame0_unrotated_fraction, 1.0);
  // Mean best-fit RMS: the exact frames fit to ~1e-8; the one frame perturbed by ±0.2 (alternating,
  // 27 values) has an RMS of about 0.2 after the best fit absorbs a little of it.
  EXPECT_GT(agg.mean_frame_rms, 0.15 / 97.0);
  EXPECT_LT(agg.mean_frame_rms, 0.21 / 97.0 + 1e-6);
  // Steps of stride 2 everywhere except around frame 7 of `rotated` (2 → 3, 7 → 1) and the
  // pairs touching the invalid frame 4 of `noisy` (not counted).
  std::size_t pairs = 0;
  for (auto c : agg.rotation_steps) pairs += c;
  EXPECT_EQ(pairs, 19u + 19u + 17u + 16u + 19u);
  EXPECT_EQ(agg.rotation_steps[3], 1u);
  EXPECT_EQ(agg.rotation_steps[1], 1u);
  EXPECT_EQ(agg.rotation_steps[2], pairs - 2);

  // Generated videos with clearly distinct colours: a wrongly rotated frame is always caught.
  const data::RotatingRing ring{99};
  int checked = 0;
  for (std::size_t i = 0; i < 60; ++i) {
    const auto pi = ring.params(i);
    if (max_colour_gap(pi) < 0.4) continue;
    Video v = ring.video(i);
    set_ring_frame(v, pi.length / 2, pi, pi.length / 2, 1);
    EXPECT_FALSE(data::score_ring_video(v).consistent_rotation) << i;
    ++checked;
  }
  EXPECT_GT(checked, 20);
}

TEST(RotatingRing, ScorerRejectsWrongShapes) {
  expect_error<ConfigError>([] { data::score_rotating_ring(std::vector<Video>{}); }, {"no videos"});
  Video v{3, 4, 4, std::vector<float>(48, 0.f), -1};
  expect_error<ShapeError>([&] { data::score_rotating_ring(std::vector<Video>{v}); }, {"video 0", "3x4x4", "3x3x3"});
  Video w{3, 3, 3, std::vector<float>(30, 0.f), -1};
  expect_error<ShapeError>([&] { data::score_ring_video(w); }, {"30 values", "whole number"});
  // An empty video is scored, not valid.
  Video empty{3, 3, 3, {}, -1};
  const auto es = data::score_ring_video(empty);
  EXPECT_FALSE(es.fully_valid);
  EXPECT_EQ(es.length, 0u);
}

// ---- crossing shapes ---------------------------------------------------------------------------

namespace {

using data::CrossingShapes;
using data::ShapeKind;

std::vector<std::vector<bool>> template_mask(ShapeKind k, std::size_t s) {
  std::vector<std::vector<bool>> m(s, std::vector<bool>(s));
  for (std::size_t y = 0; y < s; ++y)
    for (std::size_t x = 0; x < s; ++x) m[y][x] = CrossingShapes::covers(k, s, x, y);
  return m;
}

bool frame_empty(const Video& v, std::size_t t) {
  const float* f = v.frame(t);
  return std::all_of(f, f + v.frame_size(), [](float x) { return x == 0.0f; });
}

std::size_t frame_on_count(const Video& v, std::size_t t) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < 256; ++i) n += v.frame(t)[i] > 0.0f || v.frame(t)[256 + i] > 0.0f || v.frame(t)[512 + i] > 0.0f;
  return n;
}

void copy_frame(Video& dst, std::size_t td, const Video& src, std::size_t ts) {
  std::copy(src.frame(ts), src.frame(ts) + src.frame_size(), dst.frame(td));
}

}  // namespace

TEST(CrossingShapes, TemplatesAreDistinctSymmetricAndHaveNoEmptyLines) {
  std::set<std::vector<std::vector<bool>>> seen;
  std::map<std::pair<int, std::size_t>, std::size_t> counts;
  for (int k = 0; k < 3; ++k)
    for (std::size_t s = CrossingShapes::min_size; s <= CrossingShapes::max_size; ++s) {
      const auto m = template_mask(static_cast<ShapeKind>(k), s);
      seen.insert(m);
      std::size_t n = 0;
      for (std::size_t y = 0; y < s; ++y) {
        bool row = false, col = false;
        for (std::size_t x = 0; x < s; ++x) {
          row = row || m[y][x];
          col = col || m[x][y];
          n += m[y][x];
          EXPECT_EQ(m[y][x], m[x][y]);          // transpose
          EXPECT_EQ(m[y][x], m[y][s - 1 - x]);  // mirror
        }
        EXPECT_TRUE(row && col);
      }
      counts[{k, s}] = n;
    }
  EXPECT_EQ(seen.size(), 9u);
  EXPECT_EQ((counts[{0, 5}]), 25u);
  EXPECT_EQ((counts[{1, 5}]), 21u);
  EXPECT_EQ((counts[{1, 6}]), 24u);
  EXPECT_EQ((counts[{1, 7}]), 37u);
  EXPECT_EQ((counts[{2, 5}]), 9u);
  EXPECT_EQ((counts[{2, 6}]), 20u);
  EXPECT_EQ((counts[{2, 7}]), 13u);
}

TEST(CrossingShapes, VideoIsAPureFunctionOfSeedAndIndex) {
  const CrossingShapes cs{3};
  const Video a = cs.video(10);
  (void)cs.video(1);
  EXPECT_EQ(a.frames, CrossingShapes{3}.video(10).frames);
  EXPECT_NE(a.frames, cs.video(11).frames);
  EXPECT_NE(a.frames, CrossingShapes{4}.video(10).frames);
  std::set<std::vector<float>> distinct;
  for (std::size_t i = 0; i < 40; ++i) distinct.insert(cs.video(i).frames);
  EXPECT_EQ(distinct.size(), 40u);
}

TEST(CrossingShapes, FramesFollowTheDefinition) {
  const CrossingShapes cs{77};
  std::set<int> edges, shapes;
  for (std::size_t i = 0; i < 40; ++i) {
    const auto p = cs.params(i);
    const Video v = cs.video(i);
    edges.insert(static_cast<int>(p.edge));
    shapes.insert(static_cast<int>(p.shape));
    ASSERT_EQ(v.channels, 3u);
    ASSERT_EQ(v.height, 16u);
    ASSERT_EQ(v.width, 16u);
    ASSERT_EQ(v.length(), p.length);
    EXPECT_EQ(v.label, static_cast<int>(p.shape));
    const double s = static_cast<double>(p.size);
    const double p0 = 1.0 - s + p.phase * std::min(p.speed, s - 1.0);
    for (std::size_t t = 0; t < p.length; ++t) {
      const double a0 = std::floor(p0 + p.speed * static_cast<double>(t));
      for (std::size_t y = 0; y < 16; ++y)
        for (std::size_t x = 0; x < 16; ++x) {
          // Back to canonical coordinates (a along the motion, b across).
          double a = 0, b = 0;
          switch (p.edge) {
            case data::Edge::left: a = x, b = y; break;
            case data::Edge::right: a = 15.0 - x, b = y; break;
            case data::Edge::top: a = y, b = x; break;
            case data::Edge::bottom: a = 15.0 - y, b = x; break;
          }
          const double dx = a - a0, dy = b - static_cast<double>(p.offset);
          const bool in = dx >= 0 && dy >= 0 && dx < s && dy < s &&
                          CrossingShapes::covers(p.shape, p.size, static_cast<std::size_t>(dx), static_cast<std::size_t>(dy));
          for (std::size_t c = 0; c < 3; ++c)
            ASSERT_EQ(v.at(t, c, y, x), in ? static_cast<float>(p.colour[c]) : 0.0f) << i << " t" << t;
        }
    }
    // First frame partly entered, last frame the first empty one.
    std::size_t full = 0;
    for (std::size_t dy = 0; dy < p.size; ++dy)
      for (std::size_t dx = 0; dx < p.size; ++dx) full += CrossingShapes::covers(p.shape, p.size, dx, dy);
    EXPECT_GT(frame_on_count(v, 0), 0u);
    EXPECT_LT(frame_on_count(v, 0), full);
    for (std::size_t t = 0; t + 1 < p.length; ++t) EXPECT_FALSE(frame_empty(v, t)) << i << " t" << t;
    EXPECT_TRUE(frame_empty(v, p.length - 1));
    for (double c : p.colour) {
      EXPECT_GE(c, 0.25);
      EXPECT_LE(c, 1.0);
    }
  }
  EXPECT_EQ(edges.size(), 4u);
  EXPECT_EQ(shapes.size(), 3u);
}

TEST(CrossingShapes, LengthsSpan4To40AndFallWithSpeed) {
  const CrossingShapes cs{1};
  std::map<std::size_t, std::size_t> hist;
  const std::size_t n = 4000;
  for (std::size_t i = 0; i < n; ++i) {
    const auto p = cs.params(i);
    ASSERT_GE(p.length, 4u);
    ASSERT_LE(p.length, 40u);
    EXPECT_GE(p.speed, CrossingShapes::min_speed);
    EXPECT_LE(p.speed, CrossingShapes::max_speed);
    EXPECT_EQ(p.length, CrossingShapes::length_for(p.size, p.speed, p.phase));
    // L = ceil((16 - p0) / v) + 1.
    const double p0 = CrossingShapes::start_position(p.size, p.speed, p.phase);
    EXPECT_EQ(p.length, static_cast<std::size_t>(std::ceil((16.0 - p0) / p.speed)) + 1);
    ++hist[p.length];
  }
  EXPECT_LE(hist.begin()->first, 5u);
  EXPECT_GE(hist.rbegin()->first, 38u);
  // The exact law matches the sampled lengths.
  const LengthDistribution P = CrossingShapes::length_distribution();
  EXPECT_GE(P.min_length(), 4u);
  EXPECT_LE(P.max_length(), 40u);
  EXPECT_EQ(P.min_length(), 4u);
  EXPECT_EQ(P.max_length(), 40u);
  double sum = 0;
  for (double q : P.probabilities()) sum += q;
  EXPECT_NEAR(sum, 1.0, 1e-12);
  EXPECT_LT(total_variation(P, hist), 0.07);
  double mean = 0;
  for (auto [L, c] : hist) mean += static_cast<double>(L * c) / n;
  EXPECT_NEAR(mean, P.mean(), 0.6);
  // Extremes of the speed range reach the ends of [4, 40].
  EXPECT_EQ(CrossingShapes::length_for(7, CrossingShapes::min_speed, 0.0), 40u);
  EXPECT_EQ(CrossingShapes::length_for(5, CrossingShapes::max_speed, 0.999), 4u);
  // Monotone: for a fixed size and phase, a faster shape never makes a longer video.
  for (std::size_t s = 5; s <= 7; ++s)
    for (double phase : {0.0, 0.3, 0.7, 0.999}) {
      std::size_t prev = 1000;
      for (double v = CrossingShapes::min_speed; v <= CrossingShapes::max_speed; v += 0.005) {
        const std::size_t L = CrossingShapes::length_for(s, v, phase);
        EXPECT_LE(L, prev) << "size " << s << " phase " << phase << " speed " << v;
        prev = L;
      }
    }
}

TEST(CrossingShapes, EveryDataVideoScoresValidWithSpeedLengthAgreement) {
  const CrossingShapes cs{42};
  const std::size_t n = 400;
  const auto videos = data::take(cs, n);
  const data::CrossingScore s = data::score_crossing_shapes(videos);
  EXPECT_EQ(s.legal_frame_fraction, 1.0);
  EXPECT_EQ(s.one_shape_fraction, 1.0);
  EXPECT_EQ(s.constant_velocity_fraction, 1.0);
  EXPECT_EQ(s.valid_fraction, 1.0);
  EXPECT_EQ(s.speed_length_agreement, 1.0);
  EXPECT_GT(s.implied_length_correlation, 0.99);
  EXPECT_LT(s.speed_length_correlation, -0.6);
  EXPECT_LT(s.length_tv, 0.2);  // 400 videos over ~37 lengths: sampling noise alone is ~0.12
  for (std::size_t i = 0; i < n; ++i) {
    const auto p = cs.params(i);
    const auto& v = s.videos[i];
    EXPECT_EQ(v.shape, static_cast<int>(p.shape)) << i;
    EXPECT_EQ(v.size, p.size) << i;
    for (std::size_t c = 0; c < 3; ++c) EXPECT_NEAR(v.colour[c], p.colour[c], 1e-6);
    EXPECT_NEAR(v.speed, p.speed, 0.55) << i;
    EXPECT_TRUE(v.vx == 0.0 || v.vy == 0.0) << i;
    EXPECT_LE(v.implied_length > p.length ? v.implied_length - p.length : p.length - v.implied_length, 1u);
  }
  // Mild noise, as a generator might produce, keeps the videos valid.
  Video noisy = videos[3];
  for (std::size_t k = 0; k < noisy.frames.size(); ++k) noisy.frames[k] += (k % 3 == 0 ? 0.04f : 0.0f);
  EXPECT_TRUE(data::score_crossing_video(noisy).valid);
}

// Another frame side (8 × 8): the same definition with 16 replaced by 8. Every data video scores
// valid and its length agrees with its speed; the lengths follow the exact law of that side and
// are shorter than those of the 16 × 16 set.
TEST(CrossingShapes, OtherFrameSidesKeepTheDefinition) {
  for (std::size_t side : {8u, 12u}) {
    SCOPED_TRACE(side);
    const CrossingShapes cs{42, side};
    const std::size_t n = 1500;
    const auto videos = data::take(cs, n);
    EXPECT_EQ(videos[0].height, side);
    EXPECT_EQ(videos[0].width, side);
    const data::CrossingScore s = data::score_crossing_shapes(videos);
    EXPECT_EQ(s.valid_fraction, 1.0);
    EXPECT_EQ(s.speed_length_agreement, 1.0);
    std::map<std::size_t, std::size_t> hist;
    for (const auto& v : videos) ++hist[v.length()];
    const LengthDistribution P = CrossingShapes::length_distribution(side);
    EXPECT_EQ(P.max_length(), CrossingShapes::max_length_for(side));
    EXPECT_LT(P.max_length(), 40u);
    EXPECT_LT(total_variation(P, hist), 0.07);
    for (std::size_t i = 0; i < 50; ++i) {
      const auto p = cs.params(i);
      EXPECT_LE(p.offset + p.size, side);
      EXPECT_EQ(p.length, CrossingShapes::length_for(p.size, p.speed, p.phase, side));
    }
  }
}

TEST(CrossingShapes, CorruptedVideosAreFlagged) {
  const CrossingShapes cs{8};
  // A video with at least 8 frames whose frames 1 and 2 differ.
  std::size_t idx = 0;
  for (;; ++idx) {
    const auto p = cs.params(idx);
    const Video v = cs.video(idx);
    if (p.length >= 8 && !std::equal(v.frame(1), v.frame(1) + v.frame_size(), v.frame(2))) break;
  }
  const auto p = cs.params(idx);
  const Video good = cs.video(idx);
  ASSERT_TRUE(data::score_crossing_video(good).valid);

  // Frames 1 and 2 swapped: every frame is legal, but the motion goes back and forth.
  Video swapped = good;
  copy_frame(swapped, 1, good, 2);
  copy_frame(swapped, 2, good, 1);
  const auto ss = data::score_crossing_video(swapped);
  EXPECT_TRUE(ss.all_frames_legal);
  EXPECT_TRUE(ss.one_shape);
  EXPECT_FALSE(ss.constant_velocity);
  EXPECT_FALSE(ss.valid);

  // The shape teleports 3 pixels sideways in one middle frame.
  const std::size_t tm = p.length / 2;
  data::CrossingParams moved = p;
  moved.offset = p.offset >= 3 ? p.offset - 3 : p.offset + 3;
  Video teleport = good;
  copy_frame(teleport, tm, data::CrossingShapes::render(moved), tm);
  const auto ts = data::score_crossing_video(teleport);
  EXPECT_TRUE(ts.all_frames_legal);
  EXPECT_FALSE(ts.constant_velocity);
  EXPECT_FALSE(ts.valid);

  // A frame in the wrong colour.
  data::CrossingParams recoloured = p;
  recoloured.colour[0] = p.colour[0] > 0.6 ? p.colour[0] - 0.35 : p.colour[0] + 0.35;
  Video wrong_colour = good;
  copy_frame(wrong_colour, tm, data::CrossingShapes::render(recoloured), tm);
  const auto cs_ = data::score_crossing_video(wrong_colour);
  EXPECT_TRUE(cs_.all_frames_legal);
  EXPECT_TRUE(cs_.constant_velocity);
  EXPECT_FALSE(cs_.one_shape);
  EXPECT_FALSE(cs_.valid);

  // Another shape in one frame.
  data::CrossingParams reshaped = p;
  reshaped.shape = static_cast<ShapeKind>((static_cast<int>(p.shape) + 1) % 3);
  Video wrong_shape = good;
  copy_frame(wrong_shape, tm, data::CrossingShapes::render(reshaped), tm);
  const auto ws = data::score_crossing_video(wrong_shape);
  EXPECT_TRUE(ws.all_frames_legal);
  EXPECT_FALSE(ws.valid);

  // Two colours inside one frame: that frame is no legal state.
  Video two_colours = good;
  {
    float* f = two_colours.frame(tm);
    bool first = true;
    for (std::size_t i = 0; i < 256; ++i)
      if (f[i] > 0.0f) {
        if (!first) f[i] = f[i] > 0.6f ? f[i] - 0.35f : f[i] + 0.35f;
        first = !first;
      }
  }
  const auto tc = data::score_crossing_video(two_colours);
  EXPECT_FALSE(tc.frame_legal[tm]);
  EXPECT_FALSE(tc.valid);

  // An extra pixel lit next to the shape: not a template.
  Video blob = good;
  {
    float* f = blob.frame(tm);
    for (std::size_t i = 0; i < 256; ++i)
      if (f[i] == 0.0f && f[512 + i] == 0.0f && f[256 + i] == 0.0f) {
        for (std::size_t c = 0; c < 3; ++c) f[c * 256 + i] = static_cast<float>(p.colour[c]);
        break;
      }
  }
  EXPECT_FALSE(data::score_crossing_video(blob).frame_legal[tm]);

  // An empty frame in the middle.
  Video gap = good;
  std::fill(gap.frame(tm), gap.frame(tm) + gap.frame_size(), 0.0f);
  const auto gs = data::score_crossing_video(gap);
  EXPECT_FALSE(gs.frame_legal[tm]);
  EXPECT_FALSE(gs.valid);

  // Cut before the shape has left: the last frame is not empty.
  Video cut = good;
  cut.frames.resize((p.length - 1) * cut.frame_size());
  const auto cu = data::score_crossing_video(cut);
  EXPECT_TRUE(cu.all_frames_legal);
  EXPECT_TRUE(cu.constant_velocity);
  EXPECT_FALSE(cu.ends_empty);
  EXPECT_FALSE(cu.valid);

  // Two extra empty frames at the end: an empty frame before the last is illegal, and the length
  // is two frames longer than the speed implies.
  Video longer = good;
  longer.frames.resize((p.length + 2) * longer.frame_size(), 0.0f);
  const auto lo = data::score_crossing_video(longer);
  EXPECT_FALSE(lo.all_frames_legal);
  EXPECT_FALSE(lo.valid);
  EXPECT_FALSE(lo.speed_length_agree);

  // Starting with the shape already inside: frames dropped from the front.
  Video late = good;
  std::size_t drop = 0;
  {
    std::size_t full_count = 0;
    for (std::size_t dy = 0; dy < p.size; ++dy)
      for (std::size_t dx = 0; dx < p.size; ++dx) full_count += CrossingShapes::covers(p.shape, p.size, dx, dy);
    while (frame_on_count(good, drop) < full_count) ++drop;
  }
  late.frames.erase(late.frames.begin(), late.frames.begin() + static_cast<std::ptrdiff_t>(drop * late.frame_size()));
  const auto la = data::score_crossing_video(late);
  EXPECT_TRUE(la.constant_velocity);
  EXPECT_FALSE(la.starts_partly_entered);
  EXPECT_FALSE(la.valid);

  // Aggregates.
  const std::vector<Video> mix{good, swapped, teleport, wrong_colour};
  const auto agg = data::score_crossing_shapes(mix);
  EXPECT_DOUBLE_EQ(agg.valid_fraction, 0.25);
  EXPECT_DOUBLE_EQ(agg.legal_frame_fraction, 1.0);
  EXPECT_DOUBLE_EQ(agg.constant_velocity_fraction, 0.5);
  EXPECT_DOUBLE_EQ(agg.one_shape_fraction, 0.75);
}

TEST(CrossingShapes, ScorerRejectsWrongShapes) {
  expect_error<ConfigError>([] { data::score_crossing_shapes(std::vector<Video>{}); }, {"no videos"});
  Video v{3, 3, 3, std::vector<float>(27, 0.f), -1};
  expect_error<ShapeError>([&] { data::score_crossing_shapes(std::vector<Video>{v}); }, {"video 0", "3xNxN", "[8, 64]"});
  // Videos of different sides in one set.
  expect_error<ShapeError>(
      [&] { data::score_crossing_shapes(std::vector<Video>{CrossingShapes{1}.video(0), CrossingShapes{1, 8}.video(0)}); },
      {"video 1", "8x8"});
  expect_error<ConfigError>([] { (void)CrossingShapes{1, 7}.video(0); }, {"side", "[8, 64]", "got 7"});
  // A static shape has no implied length; a NaN frame is illegal.
  Video still = CrossingShapes{1}.video(0);
  for (std::size_t t = 1; t < still.length(); ++t) copy_frame(still, t, still, 0);
  const auto st = data::score_crossing_video(still);
  EXPECT_FALSE(st.speed_length_agree);
  EXPECT_EQ(st.implied_length, 0u);
  EXPECT_FALSE(st.valid);
  Video nan = CrossingShapes{1}.video(0);
  nan.frames[5] = std::nanf("");
  const auto ns = data::score_crossing_video(nan);
  EXPECT_FALSE(ns.frame_legal[0]);
  EXPECT_FALSE(ns.valid);
}
