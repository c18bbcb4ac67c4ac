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

namespace transfuse::runtime {
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
}

#endif
