//===- alloc.cpp - the allocator generated code calls for its buffers -----===//
//
// The CPU pipeline lowers memref.alloc/dealloc with MLIR's generic allocation
// functions, which this file defines. A model allocates the same buffer sizes
// in the same order on every run, so freed blocks are kept, by size, and
// handed out again: after the first run no buffer maps fresh pages (with
// plain malloc, glibc returned large blocks to the kernel and every run paid
// for page faults on them: about 12% of bert-base). Blocks are 64-byte
// aligned (or more, when asked). The cache is capped; beyond the cap, blocks
// go back to the system.
//
// Sizes that change from run to run (a decode step's KV cache, one row
// longer each step) would each leave their blocks in the cache for good:
// `transfuse generate` of 400 tokens on an 8-layer Llama (16 presents a
// step) held 1.76 GB at its peak against 0.72 GB for 16 tokens, and every
// step's new sizes mapped fresh pages (about 680 page faults a step). So a
// block above 64 KiB is rounded up to a size class, sixteen to each
// doubling (at most 1/16 more), which the next few steps' sizes share, and
// when a run ends (endRun, from core.cpp), the cached blocks of a class
// that no allocation asked for during the last kIdleRuns runs go back to
// the system. A model that allocates the same sizes every run keeps all of
// its blocks.
//
// Each thread first keeps its last kLocalBlocks freed blocks of at most
// kLocalBytes, and takes a block of the same size from them before the
// shared cache: a task's scratch (the attention kernel's packed K and V and
// its scores, a product's packed A) then stays in the caches of the core
// that uses it, where from the shared cache the other core's last block came
// with every line still in that core's cache. The fused attention of
// t5-base (12 heads, 128 tokens) at two threads: 0.36-0.40 -> 0.29-0.32 ms
// per layer; paired runs at two threads (7 rounds): t5-base encoder f32
// 72.0 -> 69.9 ms, bert-base f32 70.7 -> 68.9, bert-base bf16 19.1 -> 16.1.
//
// A block the system cannot give ends the run with an out-of-memory error
// (failRunOutOfMemory, core.cpp). On the run's own thread, outside the
// pool's tasks, that unwinds the run at once; in a pool task (any thread)
// the task unwinds first (failTask, thread_pool.cpp), the loop's other
// tasks finish or never start, and the run ends when the loop returns.
// The blocks that the unwound frames held are given back then, as after a
// failed check: each block a run allocates is in the run's set (RunBlocks,
// alloc.h) until freed, and a failed run frees what is left in it. Outside
// a run (the runtime allocating outputs) the allocation returns null; a
// pool loop outside a run aborts with a message. A size of 2^48 bytes or
// more fails without asking the system: no machine has that much, a
// negative size computed at run time arrives as one, and near SIZE_MAX the
// rounding below would wrap to a small block.
//
// transfuse_scratch_peak_bytes() reports the most bytes live at once, which
// is the scratch memory a model's runs need.
//
//===----------------------------------------------------------------------===//
#include "alloc.h"
#include "thread_pool.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

/// What precedes each block's returned pointer.
struct transfuse::runtime::Header {
  void *block;         // what the system gave
  size_t size;         // its bytes
  RunBlocks *set;      // the run's set it is in, or null
  Header *prev, *next; // in that set: newer, older
};

namespace {

using transfuse::runtime::Header;
using transfuse::runtime::RunBlocks;

constexpr size_t kCacheCap = size_t(2) << 30;

constexpr int kLocalBlocks = 8;
constexpr size_t kLocalBytes = size_t(1) << 20;

/// Above this, sizes are rounded up to one of sixteen classes a doubling.
constexpr size_t kClassesFrom = size_t(64) << 10;
/// Runs after which a class no allocation asked for is given back.
constexpr uint64_t kIdleRuns = 2;

/// The size of the block a request of `bytes` (whole pages) gets.
size_t classSize(size_t bytes) {
  if (bytes <= kClassesFrom)
    return bytes;
  size_t step = (size_t(1) << (63 - __builtin_clzll(bytes))) / 16;
  return (bytes + step - 1) / step * step;
}

/// The cached blocks of one size, and the run count when an allocation
/// last asked for that size.
struct Bin {
  std::vector<void *> blocks;
  uint64_t asked = 0;
};

struct Cache {
  std::mutex mu;
  std::map<size_t, Bin> free; // by size
  size_t cached = 0;
  uint64_t runs = 0; // runs ended (endRun)
  std::atomic<size_t> live{0}, peak{0};
  std::atomic<uint64_t> fromSystem{0};
};

Cache &cache() {
  static Cache *c = new Cache; // never destroyed: models may free at exit
  return *c;
}

/// Puts a free block in the shared cache, or back to the system beyond the
/// cap.
void release(void *block, size_t size) {
  Cache &c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.cached + size <= kCacheCap) {
      c.free[size].blocks.push_back(block);
      c.cached += size;
      return;
    }
  }
  std::free(block);
}

/// A thread's own free blocks; they go to the shared cache when it exits.
struct Local {
  size_t size[kLocalBlocks];
  void *block[kLocalBlocks];
  int count = 0;

  ~Local() {
    for (int i = 0; i < count; ++i)
      release(block[i], size[i]);
  }
  void *take(size_t bytes) {
    for (int i = count - 1; i >= 0; --i)
      if (size[i] == bytes) {
        void *b = block[i];
        --count;
        size[i] = size[count];
        block[i] = block[count];
        return b;
      }
    return nullptr;
  }
  bool keep(void *b, size_t bytes) {
    if (count == kLocalBlocks || bytes > kLocalBytes)
      return false;
    size[count] = bytes;
    block[count++] = b;
    return true;
  }
};
thread_local Local local;

thread_local RunBlocks *runSet = nullptr; // this thread's current run's

/// Links `h` into `set` (newest first).
void join(RunBlocks *set, Header *h) {
  std::lock_guard<std::mutex> lock(set->mu);
  h->set = set;
  h->prev = nullptr;
  h->next = set->newest;
  if (set->newest)
    set->newest->prev = h;
  set->newest = h;
}

/// Unlinks `h` from its set, when it is in one.
void leave(Header *h) {
  RunBlocks *set = h->set;
  if (!set)
    return;
  std::lock_guard<std::mutex> lock(set->mu);
  if (h->prev)
    h->prev->next = h->next;
  else
    set->newest = h->next;
  if (h->next)
    h->next->prev = h->prev;
  h->set = nullptr;
}

/// A block of at least bytes + align (whole pages), 64-byte aligned; the
/// returned pointer is the first `align` boundary past a Header (the block,
/// its size, and its place in a run's set), which joins the thread's
/// current run's set when there is one.
void *allocate(size_t bytes, size_t align) {
  align = align < 64 ? 64 : align;
  if (bytes >= (size_t(1) << 48))
    return nullptr;
  size_t size = classSize((bytes + align + 4095) / 4096 * 4096);
  Cache &c = cache();
  size_t live = c.live.fetch_add(size) + size;
  for (size_t peak = c.peak.load(); live > peak;)
    if (c.peak.compare_exchange_weak(peak, live))
      break;
  void *block = local.take(size);
  if (!block) {
    std::lock_guard<std::mutex> lock(c.mu);
    Bin &bin = c.free[size];
    bin.asked = c.runs;
    if (!bin.blocks.empty()) {
      block = bin.blocks.back();
      bin.blocks.pop_back();
      c.cached -= size;
    }
  }
  if (!block) {
    if (!(block = std::aligned_alloc(64, size))) {
      c.live.fetch_sub(size);
      return nullptr;
    }
    c.fromSystem.fetch_add(1);
  }
  uintptr_t at =
      (reinterpret_cast<uintptr_t>(block) + sizeof(Header) + align - 1) /
      align * align;
  Header *h = reinterpret_cast<Header *>(at) - 1;
  h->block = block;
  h->size = size;
  h->set = nullptr;
  if (runSet)
    join(runSet, h);
  return reinterpret_cast<void *>(at);
}

/// Gives `h`'s block back (it has left any set).
void giveBack(Header *h) {
  void *block = h->block;
  size_t size = h->size;
  cache().live.fetch_sub(size);
  if (!local.keep(block, size))
    release(block, size);
}

/// allocate(), or the run's end when it fails (see the top of the file).
void *allocateOrFail(size_t bytes, size_t align) {
  if (void *p = allocate(bytes, align))
    return p;
  transfuse::runtime::failRunOutOfMemory(bytes);
  if (transfuse::runtime::inPoolTask())
    transfuse::runtime::failTask(bytes);
  return nullptr;
}

} // namespace

extern "C" __attribute__((visibility("default"))) void *
_mlir_memref_to_llvm_alloc(size_t bytes) {
  return allocateOrFail(bytes, 64);
}

extern "C" __attribute__((visibility("default"))) void *
_mlir_memref_to_llvm_aligned_alloc(size_t alignment, size_t bytes) {
  return allocateOrFail(bytes, alignment);
}

extern "C" __attribute__((visibility("default"))) void
_mlir_memref_to_llvm_free(void *ptr) {
  if (!ptr)
    return;
  Header *h = static_cast<Header *>(ptr) - 1;
  leave(h);
  giveBack(h);
}

namespace transfuse::runtime {

RunBlocks *runBlocks() { return runSet; }

void setRunBlocks(RunBlocks *blocks) { runSet = blocks; }

void freeRunBlocks(RunBlocks &blocks) {
  Header *h;
  {
    std::lock_guard<std::mutex> lock(blocks.mu);
    h = blocks.newest;
    blocks.newest = nullptr;
  }
  while (h) {
    Header *next = h->next;
    h->set = nullptr;
    giveBack(h);
    h = next;
  }
}

void forgetRunBlocks(RunBlocks &blocks) {
  std::lock_guard<std::mutex> lock(blocks.mu);
  for (Header *h = blocks.newest; h; h = h->next)
    h->set = nullptr;
  blocks.newest = nullptr;
}

void endRun() {
  Cache &c = cache();
  std::vector<void *> idle;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    ++c.runs;
    for (auto it = c.free.begin(); it != c.free.end();) {
      if (it->second.asked + kIdleRuns >= c.runs) {
        ++it;
        continue;
      }
      c.cached -= it->first * it->second.blocks.size();
      idle.insert(idle.end(), it->second.blocks.begin(),
                  it->second.blocks.end());
      it = c.free.erase(it);
    }
  }
  for (void *block : idle)
    std::free(block);
}

size_t cachedBytes() {
  Cache &c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.cached;
}

uint64_t blocksFromSystem() { return cache().fromSystem.load(); }

} // namespace transfuse::runtime

extern "C" __attribute__((visibility("default"))) uint64_t
transfuse_live_scratch_bytes() {
  return cache().live.load();
}

extern "C" __attribute__((visibility("default"))) uint64_t
transfuse_scratch_peak_bytes() {
  return cache().peak.load();
}
