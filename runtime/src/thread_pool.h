//===- thread_pool.h - the runtime's one pool of worker threads -*- C++ -*-===//
//
// Every parallel loop of a model runs on one process-wide pool: the calling
// thread and numThreads() - 1 workers, started on first use and kept. Tasks
// are claimed one at a time from a shared counter, so a core that the
// machine's other work slows down takes fewer of them; which task computes
// what never depends on the thread count, so results do not either.
//
//===----------------------------------------------------------------------===//
#ifndef TRANSFUSE_RUNTIME_THREAD_POOL_H
#define TRANSFUSE_RUNTIME_THREAD_POOL_H

#include <cstddef>
#include <cstdint>

namespace transfuse::runtime {

/// TRANSFUSE_NUM_THREADS when set (at least 1), else the CPUs this process
/// may run on; read once.
int numThreads();

/// Runs task(ctx, i) for every i in [0, n) on the pool and returns when all
/// are done. Runs inline when the pool has one thread, when n <= 1, or when
/// called from inside a task.
void parallelFor(int64_t n, void (*task)(void *ctx, int64_t i), void *ctx);

/// Whether this thread is running a task of parallelFor (a worker, or the
/// caller while it takes part).
bool inPoolTask();

/// Called in a task of the pool's loop when a buffer of `bytes` could not
/// be allocated (alloc.cpp): unwinds the task (longjmp, as a failed check
/// unwinds a run), no further task of the loop starts, the other threads
/// finish the ones they hold, and parallelFor then ends the run on its own
/// thread with the out-of-memory error (failRunOutOfMemory). Only in a
/// pool task (inPoolTask()).
[[noreturn]] void failTask(size_t bytes);

/// parallelFor with a callable.
template <typename Fn> void parallelFor(int64_t n, Fn &fn) {
  parallelFor(
      n, [](void *ctx, int64_t i) { (*static_cast<Fn *>(ctx))(i); },
      static_cast<void *>(&fn));
}

} // namespace transfuse::runtime

#endif
