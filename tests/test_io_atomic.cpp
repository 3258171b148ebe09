#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
#include <algorithm>

#include "flowception/io/atomic_file.hpp"

namespace fs = std::filesystem;
using namespace flowception;

TEST(AtomicFile, WritesAndReplacesWithoutLeftovers) {
  const fs::path dir = fs::temp_directory_path() / "fc_atomic_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path p = dir / "a.txt";
  io::write_file_atomically(p, "first");
  io::write_file_atomically(p, "second");
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "second");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);
  // A writer that fails leaves the old file and no temporary behind.
  EXPECT_THROW(io::write_atomically(p, [](std::ostream&) { throw IoError("boom"); }), IoError);
  std::ifstream again(p);
  std::stringstream s2;
  s2 << again.rdbuf();
  EXPECT_EQ(s2.str(), "second");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);
  try {
    io::write_file_atomically(dir / "missing" / "x", "y");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos);
  }
  fs::remove_all(dir);
}

namespace {
std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

// Temporary files of our naming whose writer is gone are removed by the next save of the same
// target; those of live processes (this one), of other targets and of other naming stay.
TEST(AtomicFile, NextSaveRemovesStaleTemporariesOfDeadWriters) {
  const fs::path dir = fs::temp_directory_path() / ("fc_atomic_stale_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string mine = "a.txt.tmp." + std::to_string(::getpid()) + ".7";
  for (const std::string name : {"a.txt.tmp.2147483000.5", mine.c_str(), "b.txt.tmp.2147483000.1", "a.txt.tmpx", "a.txt.tmp..3"})
    std::ofstream(dir / name) << "partial";
  io::write_file_atomically(dir / "a.txt", "whole");
  EXPECT_EQ(listing(dir), (std::vector<std::string>{"a.txt", "a.txt.tmp..3", mine, "a.txt.tmpx", "b.txt.tmp.2147483000.1"}));
  EXPECT_EQ(read_all(dir / "a.txt"), "whole");
  fs::remove_all(dir);
}

// A writer killed with SIGKILL in the middle of a save leaves the old file whole and its
// temporary behind; the next save removes the temporary.
TEST(AtomicFile, SaveKilledMidwayKeepsTheOldFileAndItsTemporaryIsCleanedUp) {
  const fs::path dir = fs::temp_directory_path() / ("fc_atomic_kill_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path p = dir / "ckpt";
  io::write_file_atomically(p, "old content");
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    io::write_atomically(p, [&](std::ostream& out) {
      out << std::string(3 << 20, 'n');  // several buffers reach the file
      out.flush();
      (void)!::write(ready[1], "x", 1);
      ::pause();  // killed here, in the middle of the save
    });
    ::_exit(0);
  }
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(read_all(p), "old content");
  EXPECT_EQ(listing(dir).size(), 2u) << "the killed save's temporary should be there";
  io::write_file_atomically(p, "new content");
  EXPECT_EQ(listing(dir), std::vector<std::string>{"ckpt"});
  EXPECT_EQ(read_all(p), "new content");
  ::close(ready[0]);
  ::close(ready[1]);
  fs::remove_all(dir);
}

// A write that fails for lack of space (here the file-size limit, EFBIG, as a full disk gives
// ENOSPC) is an IoError naming the cause; the old file stays and no temporary is left.
TEST(AtomicFile, FailedWriteNamesTheCauseAndKeepsTheOldFile) {
  const fs::path dir = fs::temp_directory_path() / ("fc_atomic_full_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path p = dir / "ckpt";
  io::write_file_atomically(p, "old content");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit lim{1 << 16, 1 << 16};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    try {
      io::write_file_atomically(p, std::string(1 << 22, 'x'));
    } catch (const IoError& e) {
      const std::string what = e.what();
      ::_exit(what.find("File too large") != std::string::npos && what.find("ckpt") != std::string::npos ? 0 : 2);
    }
    ::_exit(1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: no error raised; 2: the message names neither the cause nor the file";
  EXPECT_EQ(read_all(p), "old content");
  EXPECT_EQ(listing(dir), std::vector<std::string>{"ckpt"});
  // A directory in the way of the target is named as such.
  fs::create_directories(dir / "sub");
  try {
    io::write_file_atomically(dir / "sub", "y");
    ADD_FAILURE() << "wrote over a directory";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}
