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

extern "C" {
void *_mlir_memref_to_llvm_alloc(size_t bytes);
void *_mlir_memref_to_llvm_aligned_alloc(size_t alignment, size_t bytes);
void _mlir_memref_to_llvm_free(void *ptr);
uint64_t transfuse_scratch_peak_bytes();
}

#endif
