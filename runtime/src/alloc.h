//===- alloc.h - the runtime's caching allocator (alloc.cpp) ----*- C++ -*-===//
//
// The functions generated code calls for its buffers (MLIR's generic
// allocation functions), declared for the runtime's own use: outputs the
// runtime allocates and the GEMM's packing buffers come from the same cache.
//
//===----------------------------------------------------------------------===//
#ifndef TRANSFUSE_RUNTIME_ALLOC_H
#define TRANSFUSE_RUNTIME_ALLOC_H

#include <cstddef>
#include <cstdint>
#include <mutex>

namespace transfuse::runtime {
struct Header;

/// The blocks a run has allocated and not freed: core.cpp's callEntry makes
/// a set the current one of the run's thread (the pool makes the loop's
/// caller's current in its tasks, thread_pool.cpp); each block allocated
/// while a set is current joins it, and leaves it when freed. A run that
/// fails (a failed check or out of memory unwinds its frames, which never
/// free their buffers) frees what is left in its set; one that succeeds
/// forgets its set (what is left is its outputs, which live on).
struct RunBlocks {
  std::mutex mu;
  Header *newest = nullptr;
};
/// This thread's current set (null: none).
RunBlocks *runBlocks();
void setRunBlocks(RunBlocks *blocks);
/// Frees every block still in `blocks` (a failed run's).
void freeRunBlocks(RunBlocks &blocks);
/// Takes every block out of `blocks`, allocated still (a run's outputs).
void forgetRunBlocks(RunBlocks &blocks);

/// A run ended (core.cpp's callEntry, either way): the cached blocks of a
/// size class no allocation asked for during the last few runs go back to
/// the system (see alloc.cpp).
void endRun();
/// The bytes of the free blocks the cache holds, and how many blocks it
/// has asked the system for so far (for tests).
size_t cachedBytes();
uint64_t blocksFromSystem();

/// core.cpp: a buffer of `bytes` could not be allocated. When a run is in
/// progress on this thread outside the pool's tasks, ends it (it returns
/// TF_ERROR_OUT_OF_MEMORY, naming the size) and does not return; else
/// returns, and the allocation yields null.
void failRunOutOfMemory(size_t bytes);
} // namespace transfuse::runtime

extern "C" {
void *_mlir_memref_to_llvm_alloc(size_t bytes);
void *_mlir_memref_to_llvm_aligned_alloc(size_t alignment, size_t bytes);
void _mlir_memref_to_llvm_free(void *ptr);
uint64_t transfuse_scratch_peak_bytes();
/// The bytes of the blocks allocated and not freed now (whole pages).
uint64_t transfuse_live_scratch_bytes();
}

#endif
