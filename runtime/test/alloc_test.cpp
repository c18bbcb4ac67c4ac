// The allocator generated code calls (alloc.cpp): freed blocks come back by
// size, a thread's own recent blocks first, larger ones and those of exited
// threads through the shared cache; alignment as asked; the peak counts
// every live byte.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <thread>

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

} // namespace
