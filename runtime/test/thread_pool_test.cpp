// The runtime's thread pool: every task runs exactly once, nested loops run
// inline, and loops from several user threads at once do not mix.
#include "thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

using transfuse::runtime::parallelFor;

namespace {

TEST(ThreadPool, EveryTaskOnce) {
  for (int64_t n : {0, 1, 2, 7, 1000}) {
    std::vector<std::atomic<int>> hits(n);
    auto task = [&](int64_t i) { hits[i].fetch_add(1); };
    parallelFor(n, task);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(hits[i].load(), 1) << "task " << i << " of " << n;
  }
}

TEST(ThreadPool, NestedLoopsRunInline) {
  std::atomic<int64_t> sum{0};
  auto outer = [&](int64_t i) {
    auto inner = [&](int64_t j) { sum.fetch_add(i * 10 + j); };
    parallelFor(10, inner);
  };
  parallelFor(10, outer);
  EXPECT_EQ(sum.load(), 4950); // sum of 0..99
}

TEST(ThreadPool, CallersOnSeveralThreads) {
  std::vector<std::thread> callers;
  std::vector<int64_t> sums(4, 0);
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&, c] {
      for (int rep = 0; rep < 50; ++rep) {
        std::atomic<int64_t> s{0};
        auto task = [&](int64_t i) { s.fetch_add(i); };
        parallelFor(100, task);
        sums[c] += s.load();
      }
    });
  for (std::thread &t : callers)
    t.join();
  for (int64_t s : sums)
    EXPECT_EQ(s, 50 * 4950);
}

} // namespace
