//===- norms.cpp - LayerNorm and RMSNorm, one row at a time ---------------===//
//
// `transfuse-cpu-lower-to-linalg` (with `norm-kernel`, which the CPU
// pipeline sets) lowers an f32 `transformer.layer_norm` or `rms_norm` of
// rank at most 4 into one call
//   _mlir_ciface_transfuse_norm_f32(&X, &R, &scale, &bias, &Y, &S, eps,
//                                   flags)
// on rank-4 strided descriptors (leading dims of 1 added by the compiler)
// and 1-D scale and bias. Y's sizes are the rows; X and R (the residual)
// each have Y's size or 1 (broadcast) in every dim. flags:
//   bit 0: R is present: x = X + R (else x = X);
//   bit 1: bias is present;
//   bit 2: x is written to S;
//   bit 3: RMSNorm: y = x / sqrt(mean(x^2) + eps) * scale; else LayerNorm:
//          y = (x - mean) / sqrt(var + eps) * scale + bias, var biased.
// Absent operands' descriptors are not read.
//
// _mlir_ciface_transfuse_norm_f32_panels takes one more operand, P
// (memref<?xbf16>): Y's rows (all dims but the last, in order) are also
// rounded into the bf16 panels of a product's A there (bf16_panels.h;
// transfuse-cpu-a-panels passes them to the product Y feeds), each row
// as it is written, while it is in L1.
//
// The generated alternative (LowerToLinalg.cpp buildLayerNorm) takes
// several passes over the tensor, each its own parallel loop, with the
// row sums split into partial sums. Here one task takes a block of rows
// and makes three passes over each row while it is in L1: sum, centered
// sum of squares, output (with a residual, a first pass writes x = X + R
// to the sum output, or to the output, which the later passes read). Rows
// with unit strides run on one scalar source compiled for AVX-512, AVX2
// and baseline x86-64 (as f32Path() picks), which the compiler vectorizes;
// strided rows one float at a time.
//
//===----------------------------------------------------------------------===//
#include "gemm.h"
#include "profile.h"

#include "transfuse/bf16_panels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

using namespace transfuse::runtime;
using namespace transfuse::runtime::gemm;

namespace {

enum Flags : int64_t { kResidual = 1, kBias = 2, kSum = 4, kRms = 8 };

/// Row (i0, i1, i2) of a descriptor broadcast to `out`'s sizes: its first
/// element and the step along the last dim (0 where that dim is 1).
struct Row {
  const float *at;
  int64_t step;
};

Row rowOf(const Desc4D &d, const int64_t idx[3], int64_t n) {
  int64_t off = d.offset;
  for (int k = 0; k < 3; ++k)
    off += (d.sizes[k] == 1 ? 0 : idx[k]) * d.strides[k];
  return {d.data + off, d.sizes[3] == 1 && n != 1 ? 0 : d.strides[3]};
}

/// One row with unit strides, in one scalar source for every instruction
/// set (as epilogue.cpp's tiles): the wrappers below compile it for
/// AVX-512, AVX2 and baseline x86-64, and the compiler vectorizes it. The
/// sums run in partial results (laneSum), so that vectorizing them
/// reorders no float additions. x = X (+ R) is kept in the sum output (or
/// in `out` until the last pass) so that the later passes read one row.
constexpr int kLanes = 16;

/// sum_j f(xv[j]), j < n, in 4 x kLanes partial sums (four vector
/// accumulators on AVX-512, whose additions overlap; one was a chain of
/// dependent additions, 4 cycles each), folded into kLanes, which also
/// take a tail of whole kLanes, then summed in order. The order is the
/// source's on every instruction set.
/// The norm alone (128 rows of 768, residual and sum output, one thread):
/// 32.5 -> 30.6 us (median of 2000 calls).
template <typename F>
__attribute__((always_inline)) inline float laneSum(const float *xv, int64_t n,
                                                    F f) {
  constexpr int kWide = 4 * kLanes;
  float acc[kWide] = {};
  int64_t j = 0;
  for (; j + kWide <= n; j += kWide)
    for (int l = 0; l < kWide; ++l)
      acc[l] += f(xv[j + l]);
  float lanes[kLanes];
  for (int l = 0; l < kLanes; ++l)
    lanes[l] = (acc[l] + acc[l + kLanes]) +
               (acc[l + 2 * kLanes] + acc[l + 3 * kLanes]);
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l)
      lanes[l] += f(xv[j + l]);
  for (; j < n; ++j)
    lanes[0] += f(xv[j]);
  float total = 0.0f;
  for (int l = 0; l < kLanes; ++l)
    total += lanes[l];
  return total;
}

__attribute__((always_inline)) inline void
normRow(const float *xp, const float *rp, const float *g, const float *b,
        float *out, float *sum, int64_t n, float eps, bool rms) {
  // The elementwise loops may run in place (the output, or the sum output,
  // can be X's buffer, and xv can be `out`): each reads element j only
  // where it writes element j, which assume_safety tells the vectorizer;
  // its run-time overlap check sent every in-place row down a scalar loop
  // (bert-base bf16, one thread: 6% of the time in these rows).
  float *xs = sum ? sum : out;
  const float *xv = xp;
  if (rp || sum) {
#pragma clang loop vectorize(assume_safety)
    for (int64_t j = 0; j < n; ++j)
      xs[j] = rp ? xp[j] + rp[j] : xp[j];
    xv = xs;
  }
  float mean =
      rms ? 0.0f
          : laneSum(xv, n, [](float v) { return v; }) / static_cast<float>(n);
  float sq = laneSum(xv, n, [mean](float v) { return (v - mean) * (v - mean); });
  float inv = 1.0f / std::sqrt(sq / static_cast<float>(n) + eps);
  if (b) {
#pragma clang loop vectorize(assume_safety)
    for (int64_t j = 0; j < n; ++j)
      out[j] = (xv[j] - mean) * inv * g[j] + b[j];
  } else {
#pragma clang loop vectorize(assume_safety)
    for (int64_t j = 0; j < n; ++j)
      out[j] = (xv[j] - mean) * inv * g[j];
  }
}

using UnitRowFn = void (*)(const float *, const float *, const float *,
                           const float *, float *, float *, int64_t, float,
                           bool);
#define TF_NORM_ROW(NAME, ATTR)                                                \
  ATTR void NAME(const float *xp, const float *rp, const float *g,             \
                 const float *b, float *out, float *sum, int64_t n, float eps, \
                 bool rms) {                                                   \
    normRow(xp, rp, g, b, out, sum, n, eps, rms);                              \
  }
TF_NORM_ROW(rowAvx512, __attribute__((target("avx512f"))))
TF_NORM_ROW(rowAvx2, __attribute__((target("avx2,fma"))))
TF_NORM_ROW(rowPortable, )
#undef TF_NORM_ROW

struct Call {
  const Desc4D &x, &r, &y, &s;
  const Desc1D &scale, &bias;
  float eps;
  int64_t flags;
  UnitRowFn unitRow;
  uint16_t *panels; // Y's rows as A panels, or null
  int64_t kp;       // their padded depth

  /// Row i of Y (idx its index in the first three dims).
  void row(int64_t i, const int64_t idx[3]) const {
    int64_t n = y.sizes[3];
    float *out = y.data + y.offset + idx[0] * y.strides[0] +
                 idx[1] * y.strides[1] + idx[2] * y.strides[2];
    compute(idx, out);
    if (!panels)
      return;
    if (y.strides[3] == 1)
      return storeBf16PanelRows(out, 0, i, 1, 0, n, kp, panels);
    for (int64_t p = 0; p < kp; ++p)
      panels[transfuse::bf16::aIndex(kp, i, p)] =
          p < n ? transfuse::bf16::fromFloat(out[p * y.strides[3]]) : 0;
  }

  /// The norm of row idx into `out` (Y's row there).
  void compute(const int64_t idx[3], float *out) const {
    int64_t n = y.sizes[3];
    Row xr = rowOf(x, idx, n);
    Row rr = flags & kResidual ? rowOf(r, idx, n) : Row{nullptr, 0};
    float *sum = flags & kSum ? s.data + s.offset + idx[0] * s.strides[0] +
                                    idx[1] * s.strides[1] +
                                    idx[2] * s.strides[2]
                              : nullptr;
    const float *g = scale.data + scale.offset, *b = bias.data + bias.offset;
    int64_t gStep = scale.sizes[0] == 1 ? 0 : scale.strides[0],
            bStep = bias.sizes[0] == 1 ? 0 : bias.strides[0];
    bool unit = xr.step == 1 && (!rr.at || rr.step == 1) &&
                y.strides[3] == 1 && (!sum || s.strides[3] == 1) &&
                gStep == 1 && (!(flags & kBias) || bStep == 1);
    if (unit)
      return unitRow(xr.at, rr.at, g, flags & kBias ? b : nullptr, out, sum, n,
                     eps, (flags & kRms) != 0);
    // Strided: x, then the mean and the (centered) sum of squares, one
    // float at a time.
    auto xAt = [&](int64_t j) {
      float v = xr.at[j * xr.step];
      return rr.at ? v + rr.at[j * rr.step] : v;
    };
    float mean = 0.0f;
    if (!(flags & kRms)) {
      float total = 0.0f;
      for (int64_t j = 0; j < n; ++j)
        total += xAt(j);
      mean = total / static_cast<float>(n);
    }
    float sq = 0.0f;
    for (int64_t j = 0; j < n; ++j) {
      float c = xAt(j) - mean;
      sq += c * c;
    }
    float inv = 1.0f / std::sqrt(sq / static_cast<float>(n) + eps);
    for (int64_t j = 0; j < n; ++j) {
      float v = xAt(j);
      if (sum)
        sum[j * s.strides[3]] = v;
      float o = (v - mean) * inv * g[j * gStep];
      if (flags & kBias)
        o += b[j * bStep];
      out[j * y.strides[3]] = o;
    }
  }
};

} // namespace

namespace {

void norm(Desc4D *x, Desc4D *r, Desc1D *scale, Desc1D *bias, Desc4D *y,
          Desc4D *s, float eps, int64_t flags, Desc1DBf16 *panels) {
  int64_t d0 = y->sizes[0], d1 = y->sizes[1], d2 = y->sizes[2],
          n = y->sizes[3];
  int64_t rows = d0 * d1 * d2;
  profile::Scope scope(panels ? "norm_f32_panels" : "norm_f32", {rows, n});
  if (rows == 0 || n == 0)
    return;
  // Panels only where the products read them (and, as the compiler
  // always passes, large enough).
  uint16_t *out = panels && bf16PanelsUsed(rows) &&
                          panels->sizes[0] >=
                              transfuse::bf16::aPanelsSize(rows, n)
                      ? panels->begin()
                      : nullptr;
  int64_t kp = transfuse::bf16::paddedK(n);
  if (out)
    zeroBf16PanelTail(rows, kp, out);
  F32Path path = f32Path();
  Call call{*x,
            *r,
            *y,
            *s,
            *scale,
            *bias,
            eps,
            flags,
            path == F32Path::Avx512 ? rowAvx512
            : path == F32Path::Avx2 ? rowAvx2
                                    : rowPortable,
            out,
            kp};
  // Blocks of rows of about 64 KiB per task.
  int64_t perTask = std::max<int64_t>(1, (16 << 10) / n);
  int64_t tasks = (rows + perTask - 1) / perTask;
  forEach(tasks, numThreads() > 1 && tasks > 1 && rows * n >= (1 << 15),
          [&](int64_t t) {
            int64_t end = std::min(rows, (t + 1) * perTask);
            for (int64_t i = t * perTask; i < end; ++i) {
              int64_t idx[3] = {i / (d1 * d2), i / d2 % d1, i % d2};
              call.row(i, idx);
            }
          });
}

} // namespace

extern "C" __attribute__((visibility("default"))) void
_mlir_ciface_transfuse_norm_f32(Desc4D *x, Desc4D *r, Desc1D *scale,
                                Desc1D *bias, Desc4D *y, Desc4D *s, float eps,
                                int64_t flags) {
  norm(x, r, scale, bias, y, s, eps, flags, nullptr);
}

extern "C" __attribute__((visibility("default"))) void
_mlir_ciface_transfuse_norm_f32_panels(Desc4D *x, Desc4D *r, Desc1D *scale,
                                       Desc1D *bias, Desc4D *y, Desc4D *s,
                                       float eps, int64_t flags,
                                       Desc1DBf16 *panels) {
  norm(x, r, scale, bias, y, s, eps, flags, panels);
}
