// TRANSFUSE_PROFILE (runtime/src/profile.h): a kernel call counts once, in
// the outermost scope, and not in the pool's tasks; the first run is left
// out when more follow; the report's shares add up to the runs' time.
#include "profile.h"
#include "thread_pool.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

namespace profile = transfuse::runtime::profile;

namespace {

/// The report as text.
std::string reportText() {
  char *buf = nullptr;
  size_t size = 0;
  FILE *f = open_memstream(&buf, &size);
  profile::report(f, "test");
  fclose(f);
  std::string text(buf, size);
  free(buf);
  return text;
}

/// Spins for `ms` milliseconds.
void spin(double ms) {
  auto start = std::chrono::steady_clock::now();
  while (std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now() - start)
             .count() < ms) {
  }
}

/// Turns timing on for one test, and off after it (so that nothing prints
/// at exit).
struct Enabled {
  Enabled() {
    profile::setEnabled(true);
    profile::reset();
  }
  ~Enabled() {
    profile::reset();
    profile::setEnabled(false);
  }
};

TEST(Profile, OutermostScopeOnly) {
  Enabled on;
  {
    profile::Scope outer("outer", {2, 3}, 12);
    { profile::Scope inner("inner", {4}); }
    auto task = [](int64_t) { profile::Scope t("task", {1}); };
    transfuse::runtime::parallelFor(8, task);
  }
  std::string text = reportText();
  EXPECT_NE(text.find("kernels called outside a model run"), std::string::npos)
      << text;
  EXPECT_NE(text.find("outer 2x3"), std::string::npos) << text;
  EXPECT_EQ(text.find("inner"), std::string::npos) << text;
  EXPECT_EQ(text.find("task"), std::string::npos) << text;
}

TEST(Profile, RunsAfterTheFirst) {
  Enabled on;
  for (int run = 0; run < 3; ++run) {
    double start = profile::runStart();
    {
      profile::Scope k("kernel", {8, 8, 8}, 4e6); // 2 GFLOP/s over 2 ms
      spin(run == 0 ? 20 : 2);
    }
    profile::runEnd(start);
  }
  std::string text = reportText();
  EXPECT_NE(text.find("test: 2 runs after the first"), std::string::npos)
      << text;
  // The kernel's row: its share, ms per run (at least the 2 ms it spun, not
  // the first run's 20), one call per run, GFLOP/s, name and shape.
  std::istringstream in(text);
  std::string line;
  double shares = 0;
  bool kernel = false, rest = false;
  while (std::getline(in, line)) {
    if (line.find("kernel 8x8x8") != std::string::npos) {
      double share, ms, calls, gflops;
      ASSERT_EQ(
          sscanf(line.c_str(), "%lf %lf %lf %lf", &share, &ms, &calls, &gflops),
          4)
          << line;
      EXPECT_GE(ms, 2.0) << line;
      EXPECT_LT(ms, 20.0) << line;
      EXPECT_EQ(calls, 1.0) << line;
      EXPECT_GT(gflops, 0.0) << line;
      EXPECT_LE(gflops, 2.0) << line;
      shares += share;
      kernel = true;
    } else if (line.find("rest:") != std::string::npos) {
      double share;
      ASSERT_EQ(sscanf(line.c_str(), "%lf", &share), 1) << line;
      shares += share;
      rest = true;
    }
  }
  EXPECT_TRUE(kernel && rest) << text;
  EXPECT_NEAR(shares, 100.0, 0.2) << text;
}

TEST(Profile, OneRunIsReported) {
  Enabled on;
  double start = profile::runStart();
  { profile::Scope k("norm", {4, 16}); }
  profile::runEnd(start);
  std::string text = reportText();
  EXPECT_NE(text.find("test: one run"), std::string::npos) << text;
  EXPECT_NE(text.find("norm 4x16"), std::string::npos) << text;
}

TEST(Profile, OffRecordsNothing) {
  profile::setEnabled(false);
  profile::reset();
  double start = profile::runStart();
  { profile::Scope k("kernel", {1}); }
  profile::runEnd(start);
  EXPECT_EQ(reportText(), "");
}

} // namespace
