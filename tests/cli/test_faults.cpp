// Faults and hostile inputs end to end through the built binary: each test is the exact
// reproducer of a finding of issue 13, and expects one `bitnet: error:` line and the
// documented exit code instead of a hang, a crash or a silent wrong answer.
#include <stdlib.h>

#include <string>

#include <gtest/gtest.h>

#include "support/cli_runner.hpp"

namespace bitnet::test {
namespace {

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s)
    n += c == '\n';
  return n;
}

// A failed thread creation used to hang forever (pthread_cond_destroy while the pool's
// constructor unwound). BITNET_FAIL_THREAD_CREATE makes the creation of worker 2 fail.
TEST(Faults, FailedThreadCreationExitsWithTheCause) {
  ASSERT_EQ(setenv("BITNET_FAIL_THREAD_CREATE", "2", 1), 0);
  const CliResult r = run_cli({"run", "-m", tiny_model(), "-t", "4", "-p", "hi", "-n", "1",
                               "--no-echo", "--log-level", "error"});
  unsetenv("BITNET_FAIL_THREAD_CREATE");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err, "bitnet: error: cannot create worker thread 2 of 4: Resource temporarily "
                   "unavailable\n");
  EXPECT_EQ(r.out, "");
}

// -t above the usable CPUs runs (with a warning); above the shared limit it is refused.
TEST(Faults, ThreadCountLimitIsTheSessionLimit) {
  const CliResult ok =
      run_cli({"run", "-m", tiny_model(), "-t", "64", "-p", "hi", "-n", "2", "--temp", "0"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.err.find("warning: 64 threads on"), std::string::npos) << ok.err;
  const CliResult bad = run_cli({"run", "-m", tiny_model(), "-t", "513", "-p", "hi"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(count_lines(bad.err), 1) << bad.err;
}

} // namespace
} // namespace bitnet::test
