// The runtime's thread pool: every task runs exactly once, nested loops run
// inline, and loops from several user threads at once do not mix; generated
// loops (transfuse_parallel_loop) cover their range exactly once.
#include "thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

using transfuse::runtime::parallelFor;

extern "C" void transfuse_parallel_loop(int64_t n, int64_t work,
                                        void (*body)(void *, int64_t, int64_t),
                                        void *ctx);

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

struct Ranges {
  std::vector<std::atomic<int>> hits;
  std::atomic<int> calls{0};
  explicit Ranges(int64_t n) : hits(n) {}
  static void body(void *p, int64_t lo, int64_t hi) {
    auto *r = static_cast<Ranges *>(p);
    r->calls.fetch_add(1);
    for (int64_t i = lo; i < hi; ++i)
      r->hits[i].fetch_add(1);
  }
};

TEST(ParallelLoop, CoversTheRangeOnce) {
  for (int64_t n : {0, 1, 3, 64, 1000})
    for (int64_t work : {int64_t(0), int64_t(1) << 12, int64_t(1) << 30}) {
      Ranges r(n);
      transfuse_parallel_loop(n, work, &Ranges::body, &r);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(r.hits[i].load(), 1)
            << "iteration " << i << " of " << n << ", work " << work;
    }
}

TEST(ParallelLoop, SmallWorkRunsAsOneCall) {
  Ranges r(1000);
  transfuse_parallel_loop(1000, 1000, &Ranges::body, &r);
  EXPECT_EQ(r.calls.load(), 1);
}

} // namespace
