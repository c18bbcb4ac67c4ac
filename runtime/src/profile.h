//===- profile.h - TRANSFUSE_PROFILE: kernels timed --------*- C++ -*-===//
//
// With TRANSFUSE_PROFILE=1 in the environment (read once), each call of a
// runtime kernel (the GEMMs, attention, norms, layout copies) and each model
// run (tf_run) is timed, and when the process exits the runtime prints to
// stderr a table per model: each kernel and shape with its share of the
// run time, time and calls per run and, for products, GFLOP/s; a last row
// holds the rest (generated code: elementwise loops, reductions, copies
// left in the graph, plus the calls' own overhead). Without it, a kernel
// call costs a call and a branch more.
//
// Only the outermost kernel of a call chain counts (the attention kernel's
// own products are in its row), and only calls from outside the thread
// pool's tasks: with several model runs at once on different threads, each
// thread's kernels count.
//
//===----------------------------------------------------------------------===//
#ifndef TRANSFUSE_RUNTIME_PROFILE_H
#define TRANSFUSE_RUNTIME_PROFILE_H

#include <cstdint>
#include <cstdio>
#include <initializer_list>

namespace transfuse::runtime::profile {

/// Whether kernels are timed: TRANSFUSE_PROFILE set and not "0", unless
/// setEnabled said otherwise.
bool enabled();
/// For tests: turns timing on or off whatever the environment says.
void setEnabled(bool on);

/// Times one kernel call from construction to destruction: `kernel` (a
/// string literal: the entry point's name without `_mlir_ciface_transfuse_`)
/// on `dims` (at most 5, printed as AxBxC), `flop` floating-point
/// operations (0: not a product).
class Scope {
public:
  Scope(const char *kernel, std::initializer_list<int64_t> dims,
        double flop = 0)
      : Scope(kernel, dims.begin(), (int)dims.size(), flop) {}
  Scope(const char *kernel, const int64_t *dims, int rank, double flop = 0);
  /// A product C (m x n) = A (m x k) * B: dims m x k x n, 2mkn flop.
  static Scope product(const char *kernel, int64_t m, int64_t k, int64_t n) {
    return Scope(kernel, {m, k, n}, 2.0 * m * k * n);
  }
  ~Scope();
  Scope(const Scope &) = delete;
  Scope &operator=(const Scope &) = delete;

private:
  const char *kernel;
  int64_t dims[5];
  int rank = 0;
  double flop;
  bool counted = false, recording = false;
  double start = 0; // seconds
};

/// One model run (tf_run), timed around the call of the model's entry: the
/// table's shares are of the runs' total. Two calls, not an object with a
/// destructor: a failed check leaves the run by longjmp (core.cpp), and
/// then the run is not counted.
/// The start of a run: a time in seconds, or a negative value when off.
double runStart();
/// The end of the run that runStart(), which returned `start`, began.
void runEnd(double start);
/// Scopes open on this thread. A run left by longjmp (a failed check, out
/// of memory in a kernel) skips the destructors of the scopes it had open;
/// core.cpp puts back the count from before the run.
int openScopes();
void setOpenScopes(int n);

/// The table as the exit prints it (nothing when nothing was timed);
/// `title` heads it.
void report(FILE *out, const char *title);
/// Forgets what was timed (tests).
void reset();

} // namespace transfuse::runtime::profile

#endif
