// Crash safety of training, end to end: a run of the flowception program is killed with SIGKILL
// at random moments (at least 10 times, at least 2 of them in the middle of a checkpoint save,
// seen by the save's temporary file being there) and resumed each time; it must end with the
// checkpoint of an uninterrupted run bit for bit (weights, EMA, optimizer, smoothed loss, log),
// every checkpoint left by a kill must load and verify, and no temporary file may be left.
#include <gtest/gtest.h>

#include <signal.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "flowception/io/safetensors.hpp"
#include "flowception/random/stream.hpp"

namespace fs = std::filesystem;
using namespace flowception;

namespace {

std::vector<std::string> train_args(const fs::path& out, bool resume) {
  std::vector<std::string> a{FLOWCEPTION_CLI_PATH, "train", "--data", "shapes", "--model", "tiny", "--depth", "1",
                             "--width", "32", "--heads", "2", "--batch", "2", "--steps", "1000", "--save-every", "1",
                             "--seed", "5", "--threads", "1", "--quiet", "--out", out.string()};
  if (resume) {
    a.push_back("--resume");
    a.push_back((out / "checkpoint.safetensors").string());
  }
  return a;
}

pid_t start(const std::vector<std::string>& args) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& s : args) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

std::size_t temporaries(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp.") != std::string::npos) ++n;
  return n;
}

nlohmann::json run_json(const fs::path& dir) {
  std::ifstream in(dir / "run.json");
  return nlohmann::json::parse(in);
}

}  // namespace

TEST(CrashSafety, TrainingKilledAtRandomMomentsResumesToTheSameBits) {
  const fs::path root = fs::temp_directory_path() / ("fc_crash_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  const fs::path whole = root / "whole", killed = root / "killed";
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(wait_for(start(train_args(whole, false))), 0);
  const auto whole_us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();

  // Kill at a random moment of each start (fixed seed), until at least 10 kills of which at
  // least 2 hit a save; then let the run finish. Each start resumes from whatever checkpoint the
  // last kill left (none: a fresh start).
  random::Stream rng(2024, 1);
  std::size_t kills = 0, in_save = 0, starts = 0;
  fs::create_directories(killed);
  for (; starts < 200; ++starts) {
    const bool resume = fs::exists(killed / "checkpoint.safetensors");
    const pid_t pid = start(train_args(killed, resume));
    if (kills >= 10 && in_save >= 2) {
      ASSERT_EQ(wait_for(pid), 0) << "the last resume did not finish";
      break;
    }
    // Somewhere in the first twelfth of a whole run's time (which includes the start-up): each
    // start makes some progress on average, and the run ends after enough kills.
    std::this_thread::sleep_for(std::chrono::microseconds(rng.below(static_cast<std::uint64_t>(whole_us / 12) + 1)));
    if (::kill(pid, SIGKILL) != 0) {  // finished before the kill
      ASSERT_EQ(wait_for(pid), 0);
      break;
    }
    const int code = wait_for(pid);
    if (code == 0) break;  // it finished just before the signal
    ASSERT_EQ(code, -SIGKILL);
    ++kills;
    if (temporaries(killed) > 0) ++in_save;
    if (fs::exists(killed / "checkpoint.safetensors")) {
      const auto f = io::load_safetensors(killed / "checkpoint.safetensors");  // whole and verified
      EXPECT_TRUE(f.verified());
    }
  }
  EXPECT_GE(kills, 10u);
  EXPECT_GE(in_save, 2u) << "kills in a save";
  std::printf("crash safety: %zu kills (%zu during a checkpoint save) over %zu starts\n", kills, in_save, starts + 1);
  EXPECT_EQ(temporaries(killed), 0u) << "a stale temporary file was left";

  const auto a = io::load_safetensors(whole / "checkpoint.safetensors");
  const auto b = io::load_safetensors(killed / "checkpoint.safetensors");
  ASSERT_EQ(a.names(), b.names());
  for (const auto& n : a.names()) {
    const auto va = a.view(n), vb = b.view(n);
    ASSERT_EQ(va.bytes.size(), vb.bytes.size()) << n;
    EXPECT_EQ(std::memcmp(va.bytes.data(), vb.bytes.data(), va.bytes.size()), 0) << "tensor " << n << " differs";
  }
  for (const char* key : {"train.step", "train.loss_smoothed", "train.log", "optimizer.step", "ema.updates"})
    EXPECT_EQ(a.metadata_string(key), b.metadata_string(key)) << key;
  const auto ja = run_json(whole), jb = run_json(killed);
  EXPECT_EQ(ja["final_loss_smoothed"], jb["final_loss_smoothed"]);
  EXPECT_EQ(ja["log"], jb["log"]);
  EXPECT_EQ(jb["steps_done"].get<int>(), 1000);
  EXPECT_GE(jb["segments"].size(), 2u);
  EXPECT_EQ(jb["segments"].back()["to_step"].get<int>(), 1000);
  fs::remove_all(root);
}
