// The allocator generated code calls (alloc.cpp): freed blocks come back by
// size, a thread's own recent blocks first, larger ones and those of exited
// threads through the shared cache; alignment as asked; the peak counts
// every live byte; sizes that grow from run to run share size classes, and
// the classes no run asks for any more go back to the system.
#include "alloc.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

extern "C" void *_mlir_memref_to_llvm_alloc(size_t bytes);
extern "C" void *_mlir_memref_to_llvm_aligned_alloc(size_t alignment,
                                                    size_t bytes);
extern "C" void _mlir_memref_to_llvm_free(void *ptr);
extern "C" uint64_t transfuse_scratch_peak_bytes();

namespace {

// Sizes no other test allocates, so the caches hold nothing else of them.
constexpr size_t kSmall = 123 * 1000, kLarge = 5 * 1000 * 1000;

TEST(Alloc, Alignment) {
  for (size_t align : {64, 128, 4096}) {
    void *p = _mlir_memref_to_llvm_aligned_alloc(align, 1000);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << align;
    std::memset(p, 1, 1000);
    _mlir_memref_to_llvm_free(p);
  }
  void *p = _mlir_memref_to_llvm_alloc(1);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  _mlir_memref_to_llvm_free(p);
  _mlir_memref_to_llvm_free(nullptr);
}

TEST(Alloc, OwnBlocksFirstThenExitedThreads) {
  void *mine = _mlir_memref_to_llvm_alloc(kSmall);
  _mlir_memref_to_llvm_free(mine);
  void *theirs = nullptr;
  std::thread([&] {
    // This thread's list is empty and `mine` is in the main thread's: a
    // block of its own.
    theirs = _mlir_memref_to_llvm_alloc(kSmall);
    _mlir_memref_to_llvm_free(theirs);
  }).join();
  EXPECT_NE(theirs, mine);
  // The main thread's own block first, then the one the exited thread left
  // to the shared cache.
  void *first = _mlir_memref_to_llvm_alloc(kSmall);
  void *second = _mlir_memref_to_llvm_alloc(kSmall);
  EXPECT_EQ(first, mine);
  EXPECT_EQ(second, theirs);
  _mlir_memref_to_llvm_free(first);
  _mlir_memref_to_llvm_free(second);
}

TEST(Alloc, LargeBlocksShared) {
  void *large = nullptr;
  std::thread t([&] {
    large = _mlir_memref_to_llvm_alloc(kLarge);
    _mlir_memref_to_llvm_free(large);
  });
  t.join();
  void *again = _mlir_memref_to_llvm_alloc(kLarge);
  EXPECT_EQ(again, large);
  _mlir_memref_to_llvm_free(again);
}

// Outside a run, a block the system cannot give is null (the runtime
// allocating outputs checks); sizes of 2^48 bytes and more (a negative
// size computed at run time arrives as one) fail without asking. In a run
// the model returns an out-of-memory error instead (run-time-checks.test).
TEST(Alloc, ImpossibleSizesAreNullOutsideARun) {
  EXPECT_EQ(_mlir_memref_to_llvm_alloc(size_t(1) << 48), nullptr);
  EXPECT_EQ(_mlir_memref_to_llvm_alloc(SIZE_MAX - 100), nullptr);
  EXPECT_EQ(_mlir_memref_to_llvm_aligned_alloc(64, size_t(1) << 60), nullptr);
  void *p = _mlir_memref_to_llvm_alloc(1000);
  ASSERT_NE(p, nullptr);
  _mlir_memref_to_llvm_free(p);
}

TEST(Alloc, PeakCountsLiveBytes) {
  void *blocks[3];
  for (void *&b : blocks)
    b = _mlir_memref_to_llvm_alloc(1 << 20);
  EXPECT_GE(transfuse_scratch_peak_bytes(), 3u << 20);
  for (void *b : blocks)
    _mlir_memref_to_llvm_free(b);
}

/// A decode loop's outputs: each run allocates 16 KV-cache presents one
/// row (1 KB) longer than the last run's, and its caller frees a run's
/// outputs after the next run. Those blocks share size classes with the
/// next steps' (sixteen a doubling), so few come from the system, and the
/// cache keeps only the classes the last runs asked for: a few runs'
/// worth, where keeping every size it ever held grew by 16 blocks a run.
TEST(Alloc, GrowingSizesShareClassesAndIdleOnesGoBack) {
  using namespace transfuse::runtime;
  constexpr int kRuns = 300, kPerRun = 16;
  uint64_t fromSystem = blocksFromSystem();
  size_t mostCached = 0;
  std::vector<void *> last, before;
  for (int run = 0; run < kRuns; ++run) {
    std::vector<void *> now;
    for (int i = 0; i < kPerRun; ++i) {
      size_t bytes = (300 + run) * size_t(1024);
      now.push_back(_mlir_memref_to_llvm_alloc(bytes));
      std::memset(now.back(), 1, bytes);
    }
    for (void *b : before)
      _mlir_memref_to_llvm_free(b);
    before = last;
    last = now;
    endRun();
    mostCached = std::max(mostCached, cachedBytes());
  }
  // The sizes span 300 KiB to 600 KiB: 16 KiB and 32 KiB classes, about
  // 20 of them; each new class takes at most three runs' blocks fresh.
  EXPECT_LT(blocksFromSystem() - fromSystem, uint64_t(25 * 3 * kPerRun));
  EXPECT_LT(mostCached, size_t(4 * kPerRun) * 640 * 1024);
  for (void *b : before)
    _mlir_memref_to_llvm_free(b);
  for (void *b : last)
    _mlir_memref_to_llvm_free(b);
}

/// A model allocates the same sizes every run: after its first run every
/// block comes from the cache, whatever the number of runs.
TEST(Alloc, SameSizesEveryRunStayCached) {
  using namespace transfuse::runtime;
  const size_t sizes[] = {3000, 70 * 1000, 700 * 1000, 7 * 1000 * 1000};
  uint64_t afterFirst = 0;
  for (int run = 0; run < 10; ++run) {
    std::vector<void *> blocks;
    for (size_t bytes : sizes)
      blocks.push_back(_mlir_memref_to_llvm_alloc(bytes));
    for (void *b : blocks)
      _mlir_memref_to_llvm_free(b);
    endRun();
    if (run == 0)
      afterFirst = blocksFromSystem();
  }
  EXPECT_EQ(blocksFromSystem(), afterFirst);
}

/// A class no run asks for goes back to the system after a few runs.
TEST(Alloc, IdleClassGoesBack) {
  using namespace transfuse::runtime;
  constexpr size_t kBytes = 9 * 1000 * 1000; // past a thread's own blocks
  void *b = _mlir_memref_to_llvm_alloc(kBytes);
  _mlir_memref_to_llvm_free(b);
  size_t held = cachedBytes();
  ASSERT_GE(held, kBytes);
  for (int run = 0; run < 3; ++run)
    endRun();
  EXPECT_LE(cachedBytes(), held - kBytes);
}

} // namespace
