// `mpirun -np K flowception ...` end to end: training on K ranks equals one process, checkpoints
// move between rank counts, sampling and eval on K ranks write the same bits as one process,
// and a rank killed with SIGKILL ends the whole job non-zero within a bounded time with the last
// checkpoint intact.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "flowception/train/checkpoint.hpp"

namespace fs = std::filesystem;
using namespace flowception;

namespace {

struct Result {
  int code;
  std::string output;
};

Result shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed"};
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

/// The program on `ranks` processes (1: started plainly, no MPI launcher), one thread each.
Result on_ranks(int ranks, const std::string& args) {
  if (ranks == 1) return shell(std::string(FLOWCEPTION_CLI_PATH) + " --threads 1 " + args);
  return shell(std::string(FLOWCEPTION_MPIRUN) + " -np " + std::to_string(ranks) + " " + FLOWCEPTION_CLI_PATH +
               " --threads 1 " + args);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

/// ‖a − b‖ / ‖a‖ over the trained weights of two checkpoints.
double weight_difference(const fs::path& a, const fs::path& b) {
  const auto wa = train::load_model(a, /*ema=*/false).host_parameters();
  const auto wb = train::load_model(b, false).host_parameters();
  EXPECT_EQ(wa.size(), wb.size());
  double d = 0, n = 0;
  for (std::size_t i = 0; i < wa.size() && i < wb.size(); ++i) {
    d += (static_cast<double>(wa[i]) - wb[i]) * (static_cast<double>(wa[i]) - wb[i]);
    n += static_cast<double>(wa[i]) * wa[i];
  }
  return std::sqrt(d / n);
}

/// The "loss X.XXXX" the program printed.
std::string printed_loss(const std::string& out) {
  std::smatch m;
  return std::regex_search(out, m, std::regex("; loss ([0-9.]+);")) ? m[1].str() : "none";
}

class MpiCli : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    dir = fs::temp_directory_path() / ("fc_mpi_cli_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string train_args(const std::string& out, int steps) const {
    return "train --data ring --depth 2 --width 32 --heads 2 --batch 8 --warmup 2 --save-every 0 --quiet --steps " +
           std::to_string(steps) + " --out " + (dir / out).string();
  }
  fs::path ckpt(const std::string& out) const { return dir / out / "checkpoint.safetensors"; }
};

}  // namespace

// 2 and 3 ranks (8 is not divisible by 3) with batch 8 equal one process with batch 8 after 5
// steps: weights within 1e-6 relative, the printed loss identical; only rank 0 prints and
// run.json records the world size.
TEST_F(MpiCli, TrainingOnRanksEqualsOneProcess) {
  const auto one = on_ranks(1, train_args("one", 5));
  ASSERT_EQ(one.code, 0) << one.output;
  for (int k : {2, 3}) {
    SCOPED_TRACE(std::to_string(k) + " ranks");
    const std::string out = "ranks" + std::to_string(k);
    const auto r = on_ranks(k, train_args(out, 5));
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_LT(weight_difference(ckpt("one"), ckpt(out)), 1e-6);
    EXPECT_EQ(printed_loss(r.output), printed_loss(one.output)) << r.output;
    std::size_t lines = 0;
    for (std::size_t at = 0; (at = r.output.find("trained to step 5 ", at)) != std::string::npos; ++at) ++lines;
    EXPECT_EQ(lines, 1u) << "only rank 0 reports: " << r.output;
    const auto run = nlohmann::json::parse(read_file(dir / out / "run.json"));
    EXPECT_EQ(run["world_size"].get<int>(), k);
    EXPECT_EQ(run["config"]["threads"].get<int>(), 1);
  }
}

// A checkpoint written by 2 ranks continues on 1, and one written by 1 continues on 2: both equal
// the uninterrupted run.
TEST_F(MpiCli, CheckpointsResumeOnAnotherRankCount) {
  ASSERT_EQ(on_ranks(2, train_args("whole", 6)).code, 0);
  for (auto [first, second] : {std::pair{2, 1}, std::pair{1, 2}}) {
    SCOPED_TRACE(std::to_string(first) + " ranks, then " + std::to_string(second));
    const std::string a = "part_" + std::to_string(first), b = a + "_then_" + std::to_string(second);
    auto r = on_ranks(first, train_args(a, 3));
    ASSERT_EQ(r.code, 0) << r.output;
    r = on_ranks(second, train_args(b, 6) + " --resume " + ckpt(a).string());
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_LT(weight_difference(ckpt("whole"), ckpt(b)), 1e-6);
  }
}

// Ranks sample their share of the videos and rank 0 gathers them: every file of every video
// (frames, insertion steps, traces) is byte-identical to one process's, for sample (learned
// rule) and eval with a prescribed rule (videos grouped by target length).
TEST_F(MpiCli, SamplingOnRanksWritesTheSameBits) {
  auto r = on_ranks(1, train_args("model", 4));
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string model = " --checkpoint " + ckpt("model").string() + " --steps 12 --max-frames 40 --quiet ";
  const std::vector<std::pair<std::string, std::string>> commands{
      {"sample", "sample --count 7" + model},
      {"eval", "eval --data ring --count 7 --rule random --calibration-samples 0 --data-videos 50" + model}};
  for (const auto& [name, args] : commands) {
    for (int k : {1, 2, 3}) {
      SCOPED_TRACE(name + " on " + std::to_string(k) + " ranks");
      const std::string out = name + std::to_string(k);
      r = on_ranks(k, args + " --out " + (dir / out).string());
      ASSERT_EQ(r.code, 0) << r.output;
      if (k == 1) continue;
      std::size_t files = 0;
      for (const auto& e : fs::directory_iterator(dir / (name + "1") / "videos")) {
        ++files;
        EXPECT_EQ(read_file(e.path()), read_file(dir / out / "videos" / e.path().filename()))
            << e.path().filename() << " differs";
      }
      EXPECT_EQ(files, 7u * 3u);  // frames, insertion steps and trace per video
      const auto a = nlohmann::json::parse(read_file(dir / (name + "1") / "run.json"));
      const auto b = nlohmann::json::parse(read_file(dir / out / "run.json"));
      EXPECT_EQ(a["lengths"], b["lengths"]);
      if (name == "eval") {
        EXPECT_EQ(a["scores"]["length_tv"], b["scores"]["length_tv"]);
      }
    }
  }
}

// SIGKILL to one rank mid-run: mpirun ends the job non-zero within 30 s (no rank waits forever
// in a collective), the checkpoint rank 0 wrote last still loads, and --resume continues it on
// one process.
TEST_F(MpiCli, AKilledRankEndsTheJobAndTheCheckpointResumes) {
  const fs::path rc = dir / "rc", pids = dir / "pids";
  const std::string job = std::string(FLOWCEPTION_MPIRUN) + " -np 2 " + FLOWCEPTION_CLI_PATH + " --threads 1 " +
                          "train --data ring --depth 2 --width 32 --heads 2 --batch 8 --quiet --steps 100000 " +
                          "--save-every 20 --time-limit 300 --out " + (dir / "killed").string();
  // The job in the background; its exit code lands in `rc`.
  ASSERT_EQ(std::system(("(" + job + " > " + (dir / "log").string() + " 2>&1; echo $? > " + rc.string() + ") &").c_str()), 0);
  const auto ckpt_file = ckpt("killed");
  auto waited = std::chrono::steady_clock::now();
  while (!fs::exists(ckpt_file) && std::chrono::steady_clock::now() - waited < std::chrono::seconds(120))
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(fs::exists(ckpt_file)) << read_file(dir / "log");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // The ranks are the processes training into this run's directory; kill the last one.
  ASSERT_EQ(std::system(("pgrep -f -- '--out " + (dir / "killed").string() + "' | sort -n > " + pids.string()).c_str()), 0);
  std::string victim;
  for (std::string line, all = read_file(pids); !all.empty();) {
    const auto nl = all.find('\n');
    line = all.substr(0, nl);
    all = nl == std::string::npos ? "" : all.substr(nl + 1);
    const std::string cmdline = read_file("/proc/" + line + "/cmdline");
    if (cmdline.rfind(FLOWCEPTION_CLI_PATH, 0) == 0) victim = line;  // a rank, not mpirun or the shell
  }
  ASSERT_FALSE(victim.empty()) << read_file(pids);
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_EQ(std::system(("kill -9 " + victim).c_str()), 0);
  while (!fs::exists(rc) && std::chrono::steady_clock::now() - killed_at < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // (rc written, not yet flushed)
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  ASSERT_TRUE(fs::exists(rc)) << "the job was still running 60 s after a rank died";
  EXPECT_LT(seconds, 30.0);
  EXPECT_NE(std::stoi(read_file(rc)), 0) << read_file(dir / "log");
  std::printf("  the job ended %.2f s after SIGKILL to rank process %s\n", seconds, victim.c_str());
  // The checkpoint is whole (atomic writes by rank 0) and continues.
  const auto model = train::load_model(ckpt_file, true);
  EXPECT_GT(model.parameter_count(), 0u);
  const auto step = io::load_safetensors(ckpt_file).metadata_u64("train.step");
  EXPECT_EQ(step % 20, 0u);
  const auto r = on_ranks(1, "train --data ring --depth 2 --width 32 --heads 2 --batch 8 --quiet --save-every 0 --steps " +
                                 std::to_string(step + 2) + " --resume " + ckpt_file.string() + " --out " +
                                 (dir / "resumed").string());
  EXPECT_EQ(r.code, 0) << r.output;
  for (const auto& e : fs::directory_iterator(dir / "killed"))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << "left behind: " << e.path();
}
