// The flowception program end to end: train a very small DiT for a few steps, then sample,
// image-to-video, interpolate, eval and export with it; every promised file must exist and
// read back; bad flags must give usage errors.
#include <gtest/gtest.h>

#include <algorithm>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "flowception/io/gif.hpp"
#include "flowception/io/npy.hpp"
#include "flowception/io/png.hpp"
#include "flowception/io/safetensors.hpp"
#include "flowception/data/crossing_shapes.hpp"

namespace fs = std::filesystem;
using namespace flowception;

namespace {

struct Result {
  int code;
  std::string output;
};

Result run_program(const std::string& program, const std::string& args) {
  const std::string cmd = program + " " + args + " 2>&1";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, "popen failed"};
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

Result run(const std::string& args) { return run_program(FLOWCEPTION_CLI_PATH, args); }

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

class Cli : public ::testing::Test {
 protected:
  static fs::path dir;
  static void SetUpTestSuite() {
    // One directory per process: ctest runs every test case as its own process, in parallel.
    dir = fs::temp_directory_path() / ("fc_cli_test_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    const auto r = run("train --data shapes --model tiny --depth 1 --width 32 --heads 2 --steps 3 --batch 2 --quiet --out " +
                       (dir / "train").string());
    ASSERT_EQ(r.code, 0) << r.output;
  }
  static void TearDownTestSuite() { fs::remove_all(dir); }
  static std::string ckpt() { return (dir / "train" / "checkpoint.safetensors").string(); }
  static std::string common() { return " --checkpoint " + ckpt() + " --steps 4 --max-frames 8 --count 2 --quiet"; }

  static void expect_sample_files(const fs::path& out, std::size_t count) {
    ASSERT_TRUE(fs::exists(out / "run.json"));
    const auto run_json = read_json(out / "run.json");
    ASSERT_EQ(run_json["lengths"].size(), count);
    EXPECT_TRUE(run_json.contains("config"));
    EXPECT_GT(run_json["model_calls"].get<int>(), 0);
    const auto sheet = io::read_png(out / "contact_sheet.png");
    EXPECT_GT(sheet.width, 0u);
    for (std::size_t i = 0; i < count; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "video_%03zu", i);
      const auto v = io::load_npy_video(out / "videos" / (std::string(name) + ".npy"));
      EXPECT_EQ(v.length(), run_json["lengths"][i].get<std::size_t>());
      EXPECT_EQ(v.channels, 3u);
      EXPECT_EQ(v.height, 16u);
      const auto steps = io::read_npy_header(out / "videos" / (std::string(name) + "_insertion_step.npy"));
      EXPECT_EQ(steps.shape, (std::vector<std::size_t>{v.length()}));
      const auto trace = io::read_npy_header(out / "videos" / (std::string(name) + "_trace.npy"));
      ASSERT_EQ(trace.shape.size(), 2u);
      EXPECT_EQ(trace.shape[1], 7u);
      const auto gif = io::read_gif_info(out / "gifs" / (std::string(name) + ".gif"));
      EXPECT_EQ(gif.frames, v.length());
    }
  }
};
fs::path Cli::dir;

}  // namespace

TEST_F(Cli, TrainWritesCheckpointAndRunJson) {
  EXPECT_TRUE(fs::exists(ckpt()));
  const auto j = read_json(dir / "train" / "run.json");
  EXPECT_EQ(j["steps_done"].get<int>(), 3);
  EXPECT_EQ(j["config"]["width"].get<int>(), 32);
  EXPECT_GT(j["train_flops"].get<double>(), 0.0);
}

TEST_F(Cli, SampleWritesEveryPromisedFile) {
  const auto out = dir / "sample";
  const auto r = run("sample" + common() + " --solver rk4 --grid uniform --kappa cosine --jump bernoulli --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  expect_sample_files(out, 2);
  const auto j = read_json(out / "run.json");
  EXPECT_EQ(j["config"]["solver"], "rk4");
  EXPECT_EQ(j["config"]["kappa"], "cosine");
}

TEST_F(Cli, ImageToVideoKeepsTheImage) {
  const auto out = dir / "i2v";
  const auto r = run("i2v" + common() + " --data shapes --image-from-data 5 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  expect_sample_files(out, 2);
  const auto src = data::CrossingShapes{0}.video(5);
  const auto v = io::load_npy_video(out / "videos" / "video_000.npy");
  for (std::size_t e = 0; e < src.frame_size(); ++e) ASSERT_NEAR(v.frames[e], src.frames[e], 1e-6) << e;
}

TEST_F(Cli, InterpolateAndEvalAndExport) {
  const auto out = dir / "interp";
  auto r = run("interpolate" + common() + " --data shapes --keys-from-data 2 --num-keys 2 --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  expect_sample_files(out, 2);
  const auto ev = dir / "eval";
  r = run("eval" + common() + " --data shapes --data-videos 50 --out " + ev.string());
  ASSERT_EQ(r.code, 0) << r.output;
  std::ifstream html(ev / "report.html");
  std::stringstream ss;
  ss << html.rdbuf();
  EXPECT_NE(ss.str().find("valid videos"), std::string::npos);
  EXPECT_NE(ss.str().find("<svg"), std::string::npos);
  const auto scores = read_json(ev / "run.json")["scores"];
  ASSERT_TRUE(scores.contains("rate_calibration"));  // the model's rates against the length oracle
  std::size_t calibrated = 0;
  for (const auto& b : scores["rate_calibration"]) {
    calibrated += b["samples"].get<std::size_t>();
    EXPECT_GE(b["true_missing"].get<double>(), 0.0);
    EXPECT_GT(b["oracle_missing"].get<double>(), 0.0);
  }
  EXPECT_GT(calibrated, 100u);  // of the 400 default samples, those with τ_g < 1
  r = run("export --checkpoint " + ckpt() + " --out " + (dir / "small.safetensors").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_LT(fs::file_size(dir / "small.safetensors"), fs::file_size(ckpt()) / 3);
  r = run("sample --checkpoint " + (dir / "small.safetensors").string() + " --steps 3 --max-frames 6 --count 1 --quiet --out " +
          (dir / "from_export").string());
  EXPECT_EQ(r.code, 0) << r.output;
}

TEST_F(Cli, BadFlagsGiveUsageErrors) {
  struct Case {
    std::string args, expect;
  };
  const Case cases[] = {
      {"", "A subcommand is required"},
      {"fly", "subcommand"},
      {"sample --steps 4", "--checkpoint is required"},
      {"sample" + common() + " --solver dopri5", "dopri5"},
      {"sample" + common() + " --steps 0", "--steps"},
      {"sample" + common() + " --kappa wiggly", "unknown kappa 'wiggly'"},
      {"sample" + common() + " --grid spiral", "unknown grid 'spiral'"},
      {"sample" + common() + " --rule hierarchical", "needs --target-length"},
      {"sample" + common() + " --shift -1", "--shift: -1 is not a number in [1e-06, 1e+06]"},
      {"train --data nowhere --steps 1 --quiet", "unknown data 'nowhere'"},
      {"train --data npy:/nonexistent --steps 1 --quiet", "/nonexistent"},
      {"sample --checkpoint /nonexistent.safetensors", "/nonexistent.safetensors"},
  };
  for (const auto& c : cases) {
    const auto r = run(c.args);
    EXPECT_NE(r.code, 0) << c.args;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.args << "\n" << r.output;
  }
}

// Numbers that overflow or carry trailing text (issue 11's list): each is refused before any
// work with exit code 2, a message naming the flag or field and its value, and no output written.
TEST_F(Cli, OverflowingNumbersAndTrailingTextAreRefusedBeforeAnyWork) {
  struct Case {
    std::string args, expect;
  };
  const std::string huge = "18446744073709551615", big = "9223372036854775807";
  const Case cases[] = {
      // `steps + 1` used to wrap to 0 in the grid (a segmentation fault).
      {"sample --checkpoint " + ckpt() + " --count 2 --quiet --steps " + huge, "--steps: " + huge + " is not an integer in [1, 10000000]"},
      // `frame + window + 1` used to overflow (an abort in sample, a segmentation fault in train).
      {"sample" + common() + " --window " + big, "--window: " + big + " is not an integer in [-1, 1000000]"},
      {"train --data shapes --steps 1 --quiet --window " + big, "--window: " + big + " is not an integer in [-1, 1000000]"},
      // Used to train 0 steps, exit 0 and write an untrained checkpoint.
      {"train --data shapes --quiet --steps " + huge, "--steps: " + huge + " is not an integer in [1, 1000000000000]"},
      // Trailing text after a number used to be ignored; a bad number said only "stod".
      {"sample" + common() + " --grid end_dense:3xyz", "the power of --grid 'end_dense:3xyz': '3xyz' has 'xyz' after the number"},
      {"sample" + common() + " --grid end_dense:abc", "cannot read a number in the power of --grid 'end_dense:abc': 'abc'"},
      {"sample" + common() + " --kappa poly:2abc", "the power of kappa 'poly:2abc': '2abc' has 'abc' after the number"},
      {"train --data shapes --steps 1 --quiet --tau logit_normal:0,1x", "the scale of tau distribution 'logit_normal:0,1x'"},
  };
  for (const auto& c : cases) {
    const fs::path out = dir / "refused";
    fs::remove_all(out);
    const auto r = run(c.args + " --out " + out.string());
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_FALSE(fs::exists(out)) << c.args << ": wrote " << out;
  }
}

// Issue 11's list, one case per defect: each command is refused with exit code 2 and a message
// naming the flag, field or file, before any work, and writes nothing.
TEST_F(Cli, HostileInputsAreRefusedBeforeAnyWorkAndWriteNothing) {
  const std::string tiny = " --data shapes --model tiny --depth 1 --width 32 --heads 2 --batch 2 --quiet";
  auto bytes_of = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  };
  // A copy of the checkpoint with one byte of one tensor's data flipped, and one with an extra tensor.
  const auto f = io::load_safetensors(ckpt());
  ASSERT_TRUE(f.verified());
  {
    std::string b = bytes_of(ckpt());
    b[b.size() - 3] = static_cast<char>(b[b.size() - 3] ^ 0x40);  // data of the last tensor in file order
    std::ofstream(dir / "flipped.safetensors", std::ios::binary) << b;
    std::vector<io::Tensor> t;
    for (const auto& n : f.names()) t.push_back(f.tensor(n));
    t.push_back(io::make_tensor("model.unexpected", {2}, std::vector<float>{1, 2}));
    io::save_safetensors(dir / "extra.safetensors", t, f.metadata());
  }
  std::ofstream(dir / "a_file") << "not a directory";
  struct Case {
    std::string why, args, expect;
  };
  const std::string sample = "sample --checkpoint " + ckpt() + " --steps 2 --max-frames 8 --count 2 --quiet";
  const Case cases[] = {
      {"5: memory is bounded up front (sampling)", "sample --checkpoint " + ckpt() + " --count 10000 --quiet --memory-limit 0.05",
       "sampling needs about"},
      {"5: memory (training)", "train" + tiny + " --steps 1 --memory-limit 0.001", "training needs about"},
      {"5: --batch 1e11", "train" + tiny + " --steps 1 --batch 1e11", "--batch: 1e11 is not an integer in [1, 1000000]"},
      {"5: --depth 1e8", "train" + tiny + " --steps 1 --depth 100000000", "--depth: 100000000 is not an integer in [0, 4096]"},
      {"10: trailing text in the task weights", "train" + tiny + " --steps 1 --tasks 1,0,0,0x", "--tasks: 0x is not a number in [0, 1e+06]"},
      {"10: a malformed number in a grid", sample + " --grid end_dense:1e", "cannot read a number in the power of --grid 'end_dense:1e'"},
      {"6: a flipped byte in tensor data", "sample --checkpoint " + (dir / "flipped.safetensors").string() + " --count 1 --quiet",
       "fails its CRC-32C checksum"},
      {"6: export does not copy corruption", "export --checkpoint " + (dir / "flipped.safetensors").string(), "fails its CRC-32C checksum"},
      {"8: --out is a file", sample + " --out " + (dir / "a_file").string(), "exists and is not a directory"},
      {"8: --gif-scale 100000", sample + " --gif-scale 100000", "--gif-scale: 100000 is not an integer in [0, 64]"},
      {"10: --class on an unconditional model", sample + " --class 99", "--class 99: the model of"},
      {"11: the learning rate's range, without a 309-digit bound", "train" + tiny + " --steps 1 --lr -1",
       "--lr: -1 is not a number in [1e-12, 10]"},
      {"11: a resume onto another configuration names the field", "train --data shapes --model tiny --depth 2 --width 32 --heads 2 --batch 2 --quiet --steps 9 --resume " + ckpt(),
       "depth: 2 vs 1"},
      {"11: a file of unknown size", "sample --checkpoint /proc/self/status --quiet", "exceeds the limit"},
      {"11: --image of the wrong size names the file and H×W×C",
       "i2v --checkpoint " + ckpt() + " --count 1 --quiet --image " + (dir / "small.npy").string(),
       (dir / "small.npy").string() + " has frames of H×W×C = 8x8x3, but the model of"},
      {"12: an extra tensor", "sample --checkpoint " + (dir / "extra.safetensors").string() + " --count 1 --quiet",
       "holds 1 tensor that no checkpoint of this DiT has, first 'model.unexpected'"},
  };
  data::Video small{3, 8, 8, std::vector<float>(2 * 3 * 64, 0.5f), -1};
  io::save_npy_video(dir / "small.npy", small);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.why);
    const fs::path out = dir / "hostile_out";
    fs::remove_all(out);
    const bool has_out = c.args.find(" --out ") != std::string::npos;
    const auto r = run(c.args + (has_out ? "" : c.args.rfind("export", 0) == 0 ? " --out " + (out / "x.safetensors").string()
                                                                                 : " --out " + out.string()));
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_FALSE(fs::exists(out)) << c.args << ": wrote " << out;
  }
  EXPECT_EQ(bytes_of(dir / "a_file"), "not a directory");
}

// Issue 11, 4 and 9: train --out refuses another run's checkpoint; a resume continues the smoothed
// loss, the log and run.json's segments; a resume whose target is reached writes nothing; a
// diverging run names the step and the learning rate.
TEST_F(Cli, RunSafetyAndResumeBookkeeping) {
  const std::string tiny = " --data shapes --model tiny --depth 1 --width 32 --heads 2 --batch 2 --quiet --save-every 5";
  const fs::path a = dir / "whole", b = dir / "resumed";
  ASSERT_EQ(run("train" + tiny + " --steps 20 --out " + a.string()).code, 0);
  // 4: the same --out again, without --resume or --overwrite.
  const auto before = fs::last_write_time(a / "checkpoint.safetensors");
  auto r = run("train" + tiny + " --steps 20 --out " + a.string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("already holds a checkpoint"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--resume"), std::string::npos) << r.output;
  EXPECT_EQ(fs::last_write_time(a / "checkpoint.safetensors"), before);
  r = run("train" + tiny + " --steps 2 --overwrite --out " + (dir / "overwritten").string());
  EXPECT_EQ(r.code, 0) << r.output;
  // 9: 10 steps, then a resume to 20: the same smoothed loss and log as 20 steps at once.
  ASSERT_EQ(run("train" + tiny + " --steps 10 --out " + b.string()).code, 0);
  r = run("train" + tiny + " --steps 20 --out " + b.string() + " --resume " + (b / "checkpoint.safetensors").string());
  ASSERT_EQ(r.code, 0) << r.output;
  const auto ja = read_json(a / "run.json"), jb = read_json(b / "run.json");
  EXPECT_EQ(ja["final_loss_smoothed"], jb["final_loss_smoothed"]);
  EXPECT_EQ(ja["log"], jb["log"]);
  ASSERT_EQ(jb["segments"].size(), 2u);
  EXPECT_EQ(jb["segments"][0]["to_step"], 10);
  EXPECT_EQ(jb["segments"][1]["from_step"], 10);
  EXPECT_EQ(jb["segments"][1]["to_step"], 20);
  // 9: a resume whose target is reached says so and writes nothing.
  const auto ckpt_time = fs::last_write_time(b / "checkpoint.safetensors");
  const auto run_time = fs::last_write_time(b / "run.json");
  r = run("train" + tiny + " --steps 20 --out " + b.string() + " --resume " + (b / "checkpoint.safetensors").string());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("is already at step 20, at or past --steps 20: nothing to train, nothing written"), std::string::npos)
      << r.output;
  EXPECT_EQ(fs::last_write_time(b / "checkpoint.safetensors"), ckpt_time);
  EXPECT_EQ(fs::last_write_time(b / "run.json"), run_time);
  // 11: a learning rate that diverges is named with the step.
  r = run("train --data shapes --model tiny --depth 1 --width 32 --heads 2 --batch 2 --quiet --steps 50 --warmup 0 --clip 0 "
          "--lr 10 --out " + (dir / "diverged").string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("training diverged at step "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("the learning rate of this step is 10"), std::string::npos) << r.output;
}

// Issue 11, 5: --count beyond --batch is sampled in chunks, with the same videos bit for bit as
// one batch; run.json records the chunk and the memory estimate.
TEST_F(Cli, ChunkedSamplingEqualsOneBatch) {
  for (const std::string cmd : {"sample", "i2v --data shapes --image-from-data 3"}) {
    SCOPED_TRACE(cmd);
    const fs::path one = dir / "one_batch", chunked = dir / "chunked";
    fs::remove_all(one);
    fs::remove_all(chunked);
    const std::string args = cmd + " --checkpoint " + ckpt() + " --steps 6 --max-frames 12 --count 5 --seed 3 --quiet";
    auto r = run(args + " --batch 5 --out " + one.string());
    ASSERT_EQ(r.code, 0) << r.output;
    r = run(args + " --batch 2 --out " + chunked.string());
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_EQ(read_json(one / "run.json")["videos_per_chunk"], 5);
    EXPECT_EQ(read_json(chunked / "run.json")["videos_per_chunk"], 2);
    EXPECT_GT(read_json(chunked / "run.json")["memory_estimate_bytes"].get<double>(), 0.0);
    EXPECT_EQ(read_json(one / "run.json")["lengths"], read_json(chunked / "run.json")["lengths"]);
    for (int v = 0; v < 5; ++v) {
      const std::string name = "videos/video_00" + std::to_string(v) + ".npy";
      std::ifstream a(one / name, std::ios::binary), b(chunked / name, std::ios::binary);
      const std::string ba((std::istreambuf_iterator<char>(a)), {}), bb((std::istreambuf_iterator<char>(b)), {});
      EXPECT_FALSE(ba.empty());
      EXPECT_EQ(ba, bb) << name;
    }
  }
}

// The §7 baselines through the same program: --method trains them (the autoregressive one with
// causal attention by default), sampling reads the method from the checkpoint, needs --length
// (or, in eval, the data's lengths), and refuses interpolation; --flop-budget stops a run.
TEST_F(Cli, BaselinesTrainSampleAndEvaluate) {
  const std::string small = " --data shapes --model tiny --depth 1 --width 32 --heads 2 --batch 2 --quiet --save-every 0";
  for (std::string method : {"full_sequence", "autoregressive"}) {
    SCOPED_TRACE(method);
    const auto tdir = dir / ("train_" + method);
    auto r = run("train" + small + " --steps 2 --method " + method + " --out " + tdir.string());
    ASSERT_EQ(r.code, 0) << r.output;
    const auto tj = read_json(tdir / "run.json");
    EXPECT_EQ(tj["config"]["method"], method);
    EXPECT_EQ(tj["config"]["causal"].get<bool>(), method == "autoregressive");
    const std::string ck = " --checkpoint " + (tdir / "checkpoint.safetensors").string() + " --steps 2 --count 2 --quiet";
    const auto out = dir / ("sample_" + method);
    r = run("sample" + ck + " --length 5 --out " + out.string());
    ASSERT_EQ(r.code, 0) << r.output;
    expect_sample_files(out, 2);
    const auto j = read_json(out / "run.json");
    EXPECT_EQ(j["method"], method);
    EXPECT_EQ(j["lengths"], nlohmann::json({5, 5}));
    EXPECT_GT(j["flops"]["total"].get<double>(), 0.0);
    // Heun, 2 steps: 4 calls per round; one round (full-sequence) or one per frame.
    EXPECT_EQ(j["nfe"][0].get<int>(), method == "full_sequence" ? 4 : 5 * 4);
    r = run("sample" + ck + " --out " + (dir / "nolength").string());
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.output.find("cannot choose the length of its videos: give --length"), std::string::npos) << r.output;
    r = run("interpolate" + ck + " --length 6 --data shapes --out " + (dir / "interp_b").string());
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.output.find("interpolation needs Flowception"), std::string::npos) << r.output;
    const auto ev = dir / ("eval_" + method);
    r = run("eval" + ck + " --data shapes --data-videos 20 --out " + ev.string());
    ASSERT_EQ(r.code, 0) << r.output;
    const auto ej = read_json(ev / "run.json");
    EXPECT_TRUE(ej["scores"].contains("legal_fraction_by_frame"));
    EXPECT_FALSE(ej["scores"].contains("rate_calibration"));  // baselines have no trained rates
    const auto src = data::CrossingShapes{0};
    for (const auto& L : ej["lengths"]) {  // drawn from the lengths of the first 20 data videos
      bool seen = false;
      for (std::size_t i = 0; i < 20; ++i) seen = seen || src.video(i).length() == L.get<std::size_t>();
      EXPECT_TRUE(seen) << L;
    }
  }
  const auto bdir = dir / "budget";
  auto r = run("train" + small + " --flop-budget 1e8 --out " + bdir.string());
  ASSERT_EQ(r.code, 0) << r.output;
  const auto bj = read_json(bdir / "run.json");
  EXPECT_TRUE(bj["flop_budget_reached"].get<bool>());
  EXPECT_GE(bj["run_flops_total"].get<double>(), 1e8);
  // It stops at the first step that reaches the budget: one step fewer had not reached it.
  const int steps = bj["steps_done"].get<int>();
  ASSERT_GT(steps, 1);
  r = run("train" + small + " --steps " + std::to_string(steps - 1) + " --out " + (dir / "budget_less").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_LT(read_json(dir / "budget_less" / "run.json")["run_flops_total"].get<double>(), 1e8);
  // A decaying schedule under a FLOP budget needs --steps (it used to take a hidden 1000 as the
  // cosine's length); with --steps it runs, and run.json records the steps given.
  r = run("train" + small + " --flop-budget 1e8 --cosine --out " + (dir / "budget_cosine").string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--flop-budget with --cosine needs --steps too"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "budget_cosine" / "checkpoint.safetensors"));
  r = run("train" + small + " --flop-budget 1e8 --decay-from 2 --out " + (dir / "budget_decay").string());
  EXPECT_EQ(r.code, 2) << r.output;
  r = run("train" + small + " --flop-budget 1e8 --cosine --steps 40 --out " + (dir / "budget_cosine").string());
  ASSERT_EQ(r.code, 0) << r.output;
  const auto cj = read_json(dir / "budget_cosine" / "run.json");
  EXPECT_EQ(cj["config"]["steps"].get<int>(), 40);
  EXPECT_TRUE(cj["config"]["cosine"].get<bool>());
  // run.json records every setting of the flag table, resolved (here the shapes recipe's batch).
  for (const char* key : {"data_size", "ar_attention", "save_every", "overwrite", "unanchored", "labels", "out"})
    EXPECT_TRUE(cj["config"].contains(key)) << key;
  r = run("train" + small + " --steps 1 --method diffusion --out " + (dir / "bad").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("diffusion"), std::string::npos);
}

// Prescribed insertion rules in eval: each video's target length is drawn from the data's
// lengths, and the rule then produces exactly that length.
TEST_F(Cli, EvalWithPrescribedRuleDrawsTargetsFromTheData) {
  const auto ev = dir / "eval_rule";
  const auto r = run("eval --checkpoint " + ckpt() + " --steps 3 --count 3 --quiet --max-frames 64 --rule hierarchical "
                     "--data shapes --data-videos 10 --out " + ev.string());
  ASSERT_EQ(r.code, 0) << r.output;
  const auto j = read_json(ev / "run.json");
  std::vector<std::size_t> data_lengths;
  for (std::size_t i = 0; i < 10; ++i) data_lengths.push_back(data::CrossingShapes{0}.video(i).length());
  ASSERT_EQ(j["lengths"].size(), 3u);
  for (const auto& L : j["lengths"])
    EXPECT_NE(std::find(data_lengths.begin(), data_lengths.end(), L.get<std::size_t>()), data_lengths.end()) << L;
}

// `train --data X` with no other flag uses that data set's recipe (here for two steps), and the
// sampling commands take κ, n_start and anchoring from the checkpoint unless given.
// train --help prints every default from the one table (TrainFlags) and the recipes' differences
// (recipe_for) in its footer; nothing else states them.
TEST_F(Cli, TrainHelpPrintsTheDefaultsOfTheSettingsTable) {
  const auto r = run("train --help");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* expected : {"peak learning rate (default: 0.001)", "warm-up steps (default: 200)",
                               "EMA decay (default: 0.999)", "insertion scheduler: linear | cubic | cosine | poly:P (default: poly:5)",
                               "videos per step (default: per data set, see below)",
                               "ring: --patch 3, --batch 64, --tasks 0.5,0.2,0.2,0.1",
                               "shapes: --patch 4, --batch 32"})
    EXPECT_NE(r.output.find(expected), std::string::npos) << expected << "\n" << r.output;
}

TEST_F(Cli, DataSetRecipesAndCheckpointSamplingDefaults) {
  const auto ring = dir / "ring";
  auto r = run("train --data ring --steps 2 --batch 4 --quiet --out " + ring.string());
  ASSERT_EQ(r.code, 0) << r.output;
  const auto cfg = read_json(ring / "run.json")["config"];
  EXPECT_EQ(cfg["patch"], 3);
  EXPECT_EQ(cfg["tokens_per_frame"], 1);
  EXPECT_EQ(cfg["rate_head"], "pooled");
  EXPECT_EQ(cfg["length_aware"], true);
  EXPECT_EQ(cfg["length_conditioning"], true);
  EXPECT_EQ(cfg["kappa"], "poly:5");
  EXPECT_EQ(cfg["batch"], 4);  // given flags win
  EXPECT_EQ(cfg["lr"], 1e-3);
  const std::string ck = (ring / "checkpoint.safetensors").string();
  r = run("sample --checkpoint " + ck + " --steps 3 --count 1 --max-frames 8 --quiet --out " + (dir / "rs").string());
  ASSERT_EQ(r.code, 0) << r.output;
  auto sc = read_json(dir / "rs" / "run.json")["config"];
  EXPECT_EQ(sc["kappa"], "poly:5");
  EXPECT_EQ(sc["n_start"], 3);
  EXPECT_EQ(sc["shift"], 1.0);
  EXPECT_EQ(sc["anchored"], true);
  r = run("sample --checkpoint " + ck + " --kappa linear --n-start 2 --steps 3 --count 1 --max-frames 8 --quiet --out " +
          (dir / "rs2").string());
  ASSERT_EQ(r.code, 0) << r.output;
  sc = read_json(dir / "rs2" / "run.json")["config"];
  EXPECT_EQ(sc["kappa"], "linear");
  EXPECT_EQ(sc["n_start"], 2);
  // Crossing shapes on 8×8 frames: the shapes recipe (patch 4: 2×2 patches) and the task mixture.
  r = run("train --data shapes:8 --steps 1 --batch 2 --depth 1 --width 32 --heads 2 --quiet --out " + (dir / "s8").string());
  ASSERT_EQ(r.code, 0) << r.output;
  const auto s8 = read_json(dir / "s8" / "run.json")["config"];
  EXPECT_EQ(s8["patch"], 4);
  EXPECT_EQ(s8["tokens_per_frame"], 4);
  EXPECT_EQ(s8["tasks"], nlohmann::json({0.5, 0.2, 0.2, 0.1}));
  r = run("train --data shapes:7 --steps 1 --quiet --out " + (dir / "s7").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("frame side must be in [8, 64]"), std::string::npos) << r.output;
  r = run("train --data shapes:8x --steps 1 --quiet --out " + (dir / "s7").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("'8x'"), std::string::npos) << r.output;
}

// --device cuda on a program built without a device backend is a clear error before any work.
TEST_F(Cli, DeviceCudaWithoutADeviceBackendIsAClearError) {
  for (const char* cmd : {"sample", "i2v --data shapes --image-from-data 1", "interpolate --data shapes --keys-from-data 1",
                          "eval --data shapes"}) {
    SCOPED_TRACE(cmd);
    const auto out = dir / "no_device";
    const auto r = run(std::string(cmd) + common() + " --device cuda --out " + out.string());
    EXPECT_NE(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("built without a device backend"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(out / "run.json"));
  }
  const auto r = run("train --data shapes --model tiny --depth 1 --width 32 --heads 2 --steps 1 --batch 2 --quiet "
                     "--device cuda --out " + (dir / "no_device_train").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("built without a device backend"), std::string::npos) << r.output;
  EXPECT_NE(run("sample" + common() + " --device tpu --out " + (dir / "x").string()).code, 0);
}

#if defined(FLOWCEPTION_CLI_OMP_PATH)
// flowception-omp: the same program with the device backend on Thrust's OpenMP system. With
// --device cuda it trains and samples with weights, activations and frames in device vectors;
// the videos equal the CPU program's (same lengths, frames within float tolerance), its
// checkpoint samples on the CPU, and impossible settings are refused.
TEST_F(Cli, DeviceCudaPathOnThrustOpenMP) {
  auto omp = [](const std::string& args) { return run_program(FLOWCEPTION_CLI_OMP_PATH, args); };
  const auto cpu_out = dir / "dev_cpu", dev_out = dir / "dev_cuda";
  auto r = run("sample" + common() + " --seed 9 --out " + cpu_out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  r = omp("sample" + common() + " --seed 9 --device cuda --out " + dev_out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  expect_sample_files(dev_out, 2);
  const auto a = read_json(cpu_out / "run.json"), b = read_json(dev_out / "run.json");
  EXPECT_EQ(b["config"]["device"], "cuda");
  EXPECT_EQ(a["lengths"], b["lengths"]);
  for (std::size_t i = 0; i < 2; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "video_%03zu.npy", i);
    const auto va = io::load_npy_video(cpu_out / "videos" / name), vb = io::load_npy_video(dev_out / "videos" / name);
    ASSERT_EQ(va.frames.size(), vb.frames.size());
    for (std::size_t e = 0; e < va.frames.size(); ++e) ASSERT_NEAR(va.frames[e], vb.frames[e], 2e-3) << name << " " << e;
  }
  // Image-to-video, interpolation and eval take the same path.
  r = omp("i2v" + common() + " --data shapes --image-from-data 5 --device cuda --out " + (dir / "dev_i2v").string());
  ASSERT_EQ(r.code, 0) << r.output;
  expect_sample_files(dir / "dev_i2v", 2);
  r = omp("interpolate" + common() + " --data shapes --keys-from-data 2 --num-keys 2 --device cuda --out " +
          (dir / "dev_interp").string());
  ASSERT_EQ(r.code, 0) << r.output;
  r = omp("eval" + common() + " --data shapes --device cuda --out " + (dir / "dev_eval").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "dev_eval" / "run.json"));
  // Training on the device; its checkpoint samples with the CPU program.
  const auto train_out = dir / "dev_train";
  r = omp("train --data shapes --model tiny --depth 1 --width 32 --heads 2 --steps 3 --batch 2 --quiet --device cuda "
          "--out " + train_out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  const auto t = read_json(train_out / "run.json");
  EXPECT_EQ(t["steps_done"].get<int>(), 3);
  EXPECT_EQ(t["config"]["device"], "cuda");
  EXPECT_EQ(t["config"]["replicas"].get<int>(), 1);
  r = run("sample --checkpoint " + (train_out / "checkpoint.safetensors").string() +
          " --steps 4 --max-frames 8 --count 2 --quiet --out " + (dir / "dev_train_sample").string());
  ASSERT_EQ(r.code, 0) << r.output;
  r = omp("train --data shapes --model tiny --depth 1 --width 32 --heads 2 --steps 1 --batch 2 --quiet --device cuda "
          "--replicas 2 --out " + (dir / "dev_replicas").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--replicas 2"), std::string::npos) << r.output;
  // A model too large for the device's memory is refused before any work.
  r = omp("train --data shapes --model tiny --depth 12 --width 16384 --heads 64 --steps 1 --batch 2 --quiet "
          "--device cuda --out " + (dir / "dev_huge").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("too large for thrust-omp memory"), std::string::npos) << r.output;
}
#endif
