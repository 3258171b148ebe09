#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

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
