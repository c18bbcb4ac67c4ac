//===- thread_pool.cpp - the runtime's one pool of worker threads ---------===//
#include "thread_pool.h"
#include "alloc.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace transfuse::runtime {

int numThreads() {
  static const int n = [] {
    if (const char *e = std::getenv("TRANSFUSE_NUM_THREADS"))
      return std::max(1, std::atoi(e));
    return (int)std::max(1u, std::thread::hardware_concurrency());
  }();
  return n;
}

namespace {

thread_local bool inTask = false;
// Where failTask unwinds to on this thread: its claim() of the loop it
// takes part in.
thread_local jmp_buf *taskExit = nullptr;

void pause() {
#if defined(__x86_64__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

class Pool {
public:
  explicit Pool(int threads) {
    for (int t = 1; t < threads; ++t)
      workers.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
      generation.fetch_add(1);
    }
    wake.notify_all();
    for (std::thread &w : workers)
      w.join();
  }

  /// Runs the loop; returns the size of a buffer a task could not
  /// allocate (failTask), the loop then left unfinished, or 0.
  size_t run(int64_t n, void (*fn)(void *, int64_t), void *c) {
    std::lock_guard<std::mutex> one(dispatch); // one loop at a time
    task = fn;
    ctx = c;
    blocks = runBlocks(); // the tasks' blocks are the caller's run's
    count = n;
    failedBytes.store(0);
    next.store(0);
    busy.store((int)workers.size());
    {
      std::lock_guard<std::mutex> lock(mu);
      generation.fetch_add(1);
    }
    wake.notify_all();
    claim();
    // Workers finish their last task; spin, as tasks are short.
    while (busy.load(std::memory_order_acquire) != 0)
      pause();
    return failedBytes.load();
  }

  /// A task of this loop could not allocate `bytes`: no task starts after
  /// this, and run() reports the size.
  void abandon(size_t bytes) {
    size_t none = 0;
    failedBytes.compare_exchange_strong(none, bytes);
    next.store(count);
  }

private:
  void claim() {
    inTask = true;
    RunBlocks *own = runBlocks();
    setRunBlocks(blocks);
    jmp_buf exit;
    taskExit = &exit;
    if (setjmp(exit) == 0)
      for (int64_t i; (i = next.fetch_add(1)) < count;)
        task(ctx, i);
    taskExit = nullptr;
    setRunBlocks(own);
    inTask = false;
  }

  void work() {
    uint64_t seen = 0;
    for (;;) {
      // Spin briefly for the next loop (they come back to back), then sleep.
      for (int s = 0; s < 20000 && generation.load() == seen; ++s)
        pause();
      if (generation.load() == seen) {
        std::unique_lock<std::mutex> lock(mu);
        wake.wait(lock, [&] { return generation.load() != seen; });
      }
      seen = generation.load();
      if (stopping)
        return;
      claim();
      busy.fetch_sub(1, std::memory_order_release);
    }
  }

  std::vector<std::thread> workers;
  std::mutex dispatch, mu;
  std::condition_variable wake;
  std::atomic<uint64_t> generation{0};
  std::atomic<int64_t> next{0};
  std::atomic<int> busy{0};
  std::atomic<size_t> failedBytes{0};
  int64_t count = 0;
  void (*task)(void *, int64_t) = nullptr;
  void *ctx = nullptr;
  RunBlocks *blocks = nullptr; // the loop's caller's run's (alloc.h)
  bool stopping = false;
};

Pool &pool() {
  static Pool p(numThreads());
  return p;
}

} // namespace

bool inPoolTask() { return inTask; }

void failTask(size_t bytes) {
  pool().abandon(bytes);
  longjmp(*taskExit, 1);
}

void parallelFor(int64_t n, void (*task)(void *, int64_t), void *ctx) {
  if (n <= 1 || inTask || numThreads() == 1) {
    for (int64_t i = 0; i < n; ++i)
      task(ctx, i);
    return;
  }
  if (size_t bytes = pool().run(n, task, ctx)) {
    // On the run's thread, out of the loop: the run ends with the error.
    failRunOutOfMemory(bytes);
    std::fprintf(stderr,
                 "transfuse: out of memory: a buffer of %zu bytes in a "
                 "parallel task, outside a model's run\n",
                 bytes);
    std::abort();
  }
}

} // namespace transfuse::runtime

/// The loops of generated code (transfuse-cpu-parallelize-loops): body(ctx,
/// lo, hi) over chunks of [0, n) that cover it. `work` estimates the whole
/// loop's operations; a loop under two grains runs inline, as dispatching
/// it would cost more than splitting saves. The chunking depends on n and
/// work only, though no result depends on it: the iterations are
/// independent. TRANSFUSE_PARALLEL_LOOPS=0 runs every such loop inline on
/// the calling thread (the GEMMs stay threaded), for comparisons.
extern "C" __attribute__((visibility("default"))) void
transfuse_parallel_loop(int64_t n, int64_t work,
                        void (*body)(void *, int64_t, int64_t), void *ctx) {
  constexpr int64_t kGrain = 16384, kMaxChunks = 64;
  static const bool enabled = [] {
    const char *e = std::getenv("TRANSFUSE_PARALLEL_LOOPS");
    return !e || std::string_view(e) != "0";
  }();
  int64_t chunks = std::min({n, work / kGrain, kMaxChunks});
  if (chunks <= 1 || !enabled || transfuse::runtime::numThreads() == 1) {
    if (n > 0)
      body(ctx, 0, n);
    return;
  }
  struct Split {
    int64_t n, chunks;
    void (*body)(void *, int64_t, int64_t);
    void *ctx;
  } split{n, chunks, body, ctx};
  transfuse::runtime::parallelFor(
      chunks,
      [](void *p, int64_t i) {
        auto *s = static_cast<Split *>(p);
        int64_t lo = s->n * i / s->chunks, hi = s->n * (i + 1) / s->chunks;
        s->body(s->ctx, lo, hi);
      },
      &split);
}
