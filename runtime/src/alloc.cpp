//===- alloc.cpp - the allocator generated code calls for its buffers -----===//
//
// The CPU pipeline lowers memref.alloc/dealloc with MLIR's generic allocation
// functions, which this file defines. A model allocates the same buffer sizes
// in the same order on every run, so freed blocks are kept, by size, and
// handed out again: after the first run no buffer maps fresh pages (with
// plain malloc, glibc returned large blocks to the kernel and every run paid
// for page faults on them: about 12% of bert-base). Blocks are 64-byte
// aligned (or more, when asked). The cache is capped; beyond the cap, blocks go back to the system.
// transfuse_scratch_peak_bytes() reports the most bytes live at once, which
// is the scratch memory a model's runs need.
//
//===----------------------------------------------------------------------===//
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

namespace {

constexpr size_t kCacheCap = size_t(2) << 30;

struct Cache {
  std::mutex mu;
  std::map<size_t, std::vector<void *>> free; // blocks, by size
  size_t cached = 0, live = 0, peak = 0;
};

Cache &cache() {
  static Cache *c = new Cache; // never destroyed: models may free at exit
  return *c;
}

/// A block of at least bytes + align (whole pages), 64-byte aligned; the
/// returned pointer is the first `align` boundary past a 16-byte header that
/// holds the block and its size.
void *allocate(size_t bytes, size_t align) {
  align = align < 64 ? 64 : align;
  size_t size = (bytes + align + 4095) / 4096 * 4096;
  Cache &c = cache();
  void *block = nullptr;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.free.find(size);
    if (it != c.free.end() && !it->second.empty()) {
      block = it->second.back();
      it->second.pop_back();
      c.cached -= size;
    }
    c.live += size;
    if (c.live > c.peak)
      c.peak = c.live;
  }
  if (!block && !(block = std::aligned_alloc(64, size)))
    return nullptr;
  uintptr_t at = (reinterpret_cast<uintptr_t>(block) + 16 + align - 1) /
                 align * align;
  void **header = reinterpret_cast<void **>(at) - 2;
  header[0] = block;
  header[1] = reinterpret_cast<void *>(size);
  return reinterpret_cast<void *>(at);
}

} // namespace

extern "C" __attribute__((visibility("default"))) void *
_mlir_memref_to_llvm_alloc(size_t bytes) {
  return allocate(bytes, 64);
}

extern "C" __attribute__((visibility("default"))) void *
_mlir_memref_to_llvm_aligned_alloc(size_t alignment, size_t bytes) {
  return allocate(bytes, alignment);
}

extern "C" __attribute__((visibility("default"))) void
_mlir_memref_to_llvm_free(void *ptr) {
  if (!ptr)
    return;
  void **header = static_cast<void **>(ptr) - 2;
  void *block = header[0];
  size_t size = reinterpret_cast<size_t>(header[1]);
  Cache &c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.live -= size;
    if (c.cached + size <= kCacheCap) {
      c.free[size].push_back(block);
      c.cached += size;
      return;
    }
  }
  std::free(block);
}

extern "C" __attribute__((visibility("default"))) uint64_t
transfuse_scratch_peak_bytes() {
  Cache &c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.peak;
}
