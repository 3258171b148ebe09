// expect_error<E>(fn, substring): fn must throw E whose message starts "flowception: " and
// contains `substring`; failures are reported at the caller's line.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <source_location>
#include <string>

namespace fc_test {

template <class E, class Fn>
void expect_error(Fn&& fn, const std::string& substring,
                  const std::source_location loc = std::source_location::current()) {
  testing::ScopedTrace trace(loc.file_name(), static_cast<int>(loc.line()), "expect_error");
  try {
    fn();
    ADD_FAILURE() << "no exception thrown; wanted one containing '" << substring << "'";
  } catch (const E& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(substring), std::string::npos) << "message: " << msg;
    EXPECT_EQ(msg.rfind("flowception: ", 0), 0u) << "message: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

}  // namespace fc_test
