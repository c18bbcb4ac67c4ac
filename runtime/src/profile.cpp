//===- profile.cpp - TRANSFUSE_PROFILE: the runtime's kernels timed -------===//
#include "profile.h"

#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace transfuse::runtime::profile {
namespace {

struct Row {
  double seconds = 0, flop = 0;
  int64_t calls = 0;
};

using Rows = std::map<std::tuple<std::string, std::string>, Row>;

struct Table {
  std::mutex mu;
  // (kernel, shape) -> totals: of the first run (and of calls before it),
  // and of the runs after it. The first run pays for page faults on the
  // weights and the pool's start; with more runs it is left out.
  Rows first, rows;
  double firstSeconds = 0, runSeconds = 0;
  int64_t runs = 0; // after the first
  bool firstDone = false;

  ~Table() {
    if (!enabled())
      return;
    // The model.so (or program) this runtime is linked into.
    Dl_info info;
    const char *where = dladdr((void *)&report, &info) && info.dli_fname
                            ? info.dli_fname
                            : "this program";
    std::string title = std::string("transfuse profile of ") + where;
    report(stderr, title.c_str());
  }
};

Table &table() {
  static Table t;
  return t;
}

// -1: not read yet; else 0 or 1.
std::atomic<int> state{-1};
// Kernel scopes open on this thread.
thread_local int depth = 0;

/// Seconds on the steady clock.
double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

} // namespace

bool enabled() {
  int s = state.load(std::memory_order_relaxed);
  if (s >= 0)
    return s;
  const char *e = std::getenv("TRANSFUSE_PROFILE");
  int on = e && *e && std::strcmp(e, "0") != 0;
  state.store(on, std::memory_order_relaxed);
  if (on)
    table(); // constructed now, so destroyed (and printed) at exit
  return on;
}

void setEnabled(bool on) {
  if (on)
    table();
  state.store(on, std::memory_order_relaxed);
}

Scope::Scope(const char *kernel, const int64_t *ds, int n, double flop)
    : kernel(kernel), flop(flop) {
  if (!enabled())
    return;
  counted = true;
  if (depth++ > 0 || inPoolTask())
    return;
  for (int i = 0; i < n && rank < 5; ++i)
    dims[rank++] = ds[i];
  recording = true;
  start = now();
}

Scope::~Scope() {
  if (!counted)
    return;
  --depth;
  if (!recording)
    return;
  double s = now() - start;
  std::string shape;
  for (int i = 0; i < rank; ++i)
    shape += (i ? "x" : "") + std::to_string(dims[i]);
  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  Row &row = (t.firstDone ? t.rows : t.first)[{kernel, shape}];
  row.seconds += s;
  row.flop += flop;
  ++row.calls;
}

double runStart() { return enabled() ? now() : -1; }

int openScopes() { return depth; }

void setOpenScopes(int n) { depth = n; }

void runEnd(double start) {
  if (start < 0)
    return;
  double s = now() - start;
  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  if (!t.firstDone) {
    t.firstDone = true;
    t.firstSeconds = s;
    return;
  }
  t.runSeconds += s;
  ++t.runs;
}

void report(FILE *out, const char *title) {
  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  // The runs after the first, else the first run (or calls outside runs).
  bool later = t.runs > 0;
  const Rows &rows = later ? t.rows : t.first;
  int64_t runs = later ? t.runs : t.firstDone;
  double runSeconds = later ? t.runSeconds : t.firstSeconds;
  if (rows.empty() && runs == 0)
    return;
  using Entry = Rows::value_type;
  std::vector<const Entry *> sorted;
  double kernels = 0;
  for (const Entry &e : rows) {
    sorted.push_back(&e);
    kernels += e.second.seconds;
  }
  std::sort(sorted.begin(), sorted.end(), [](const Entry *a, const Entry *b) {
    return a->second.seconds > b->second.seconds;
  });
  // Per run when runs were timed; else (kernels called directly) totals.
  double whole = runs ? runSeconds : kernels, per = runs ? runs : 1;
  if (later)
    fprintf(out, "%s: %lld runs after the first (%.3f ms), %.3f ms per run\n",
            title, (long long)runs, 1e3 * t.firstSeconds,
            1e3 * runSeconds / runs);
  else if (runs)
    fprintf(out, "%s: one run, %.3f ms\n", title, 1e3 * runSeconds);
  else
    fprintf(out, "%s: kernels called outside a model run, totals\n", title);
  fprintf(out, "%8s %10s %10s %9s  %s\n", runs ? "% of run" : "% of all",
          runs ? "ms/run" : "ms", runs ? "calls/run" : "calls", "GFLOP/s",
          "kernel shape");
  for (const Entry *e : sorted) {
    const Row &r = e->second;
    char rate[32] = "";
    if (r.flop > 0 && r.seconds > 0)
      snprintf(rate, sizeof rate, "%.1f", r.flop / r.seconds / 1e9);
    fprintf(out, "%8.1f %10.3f %10.4g %9s  %s %s\n",
            whole > 0 ? 100 * r.seconds / whole : 0.0, 1e3 * r.seconds / per,
            r.calls / per, rate, std::get<0>(e->first).c_str(),
            std::get<1>(e->first).c_str());
  }
  if (runs)
    fprintf(out, "%8.1f %10.3f %10s %9s  %s\n",
            whole > 0 ? 100 * (whole - kernels) / whole : 0.0,
            1e3 * (whole - kernels) / per, "", "",
            "rest: generated code (elementwise loops, reductions, copies) "
            "and the calls' overhead");
}

void reset() {
  Table &t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  t.first.clear();
  t.rows.clear();
  t.firstSeconds = t.runSeconds = 0;
  t.runs = 0;
  t.firstDone = false;
}

} // namespace transfuse::runtime::profile
