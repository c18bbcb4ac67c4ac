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
// The generated alternative (LowerToLinalg.cpp buildLayerNorm) takes
// several passes over the tensor, each its own parallel loop, with the
// row sums split into partial sums. Here one task takes a block of rows
// and makes three passes over each row while it is in L1: sum, centered
// sum of squares, output (with a residual, a first pass writes x = X + R
// to the sum output, or to the output, which the later passes read). Sums
// run in 16 lanes (AVX-512) or 8 (AVX2) with unit strides, else one float
// at a time.
//
//===----------------------------------------------------------------------===//
#include "gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <immintrin.h>

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

struct Call {
  const Desc4D &x, &r, &y, &s;
  const Desc1D &scale, &bias;
  float eps;
  int64_t flags;
  F32Path path;

  void row(const int64_t idx[3]) const {
    int64_t n = y.sizes[3];
    Row xr = rowOf(x, idx, n);
    Row rr = flags & kResidual ? rowOf(r, idx, n) : Row{nullptr, 0};
    float *out = y.data + y.offset + idx[0] * y.strides[0] +
                 idx[1] * y.strides[1] + idx[2] * y.strides[2];
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
    if (path == F32Path::Avx512 && unit)
      return rowAvx512(xr.at, rr.at, g, flags & kBias ? b : nullptr, out, sum,
                       n);
    if (path == F32Path::Avx2 && unit)
      return rowAvx2(xr.at, rr.at, g, flags & kBias ? b : nullptr, out, sum,
                     n);
    // x, then the mean and the (centered) sum of squares, in float.
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

  __attribute__((target("avx512f"))) void
  rowAvx512(const float *xp, const float *rp, const float *g, const float *b,
            float *out, float *sum, int64_t n) const {
    auto mask = [n](int64_t j) {
      return n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
    };
    // x = X (+ R), kept in the sum output (or in `out` until the last
    // pass) so that the later passes read one row.
    float *xs = sum ? sum : out;
    const float *xv = xp;
    if (rp || sum) {
      for (int64_t j = 0; j < n; j += 16) {
        __mmask16 m = mask(j);
        __m512 v = _mm512_maskz_loadu_ps(m, xp + j);
        if (rp)
          v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, rp + j));
        _mm512_mask_storeu_ps(xs + j, m, v);
      }
      xv = xs;
    }
    float mean = 0.0f;
    if (!(flags & kRms)) {
      __m512 acc = _mm512_setzero_ps();
      for (int64_t j = 0; j < n; j += 16)
        acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(mask(j), xv + j));
      mean = _mm512_reduce_add_ps(acc) / static_cast<float>(n);
    }
    __m512 vmean = _mm512_set1_ps(mean), acc = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 16) {
      __mmask16 m = mask(j);
      __m512 c = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, xv + j),
                                     vmean);
      acc = _mm512_fmadd_ps(c, c, acc);
    }
    float inv = 1.0f / std::sqrt(_mm512_reduce_add_ps(acc) /
                                     static_cast<float>(n) +
                                 eps);
    __m512 vinv = _mm512_set1_ps(inv);
    for (int64_t j = 0; j < n; j += 16) {
      __mmask16 m = mask(j);
      __m512 o = _mm512_mul_ps(
          _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xv + j), vmean),
                        vinv),
          _mm512_maskz_loadu_ps(m, g + j));
      if (b)
        o = _mm512_add_ps(o, _mm512_maskz_loadu_ps(m, b + j));
      _mm512_mask_storeu_ps(out + j, m, o);
    }
  }

  /// rowAvx512 on 8 lanes, tails one element at a time.
  __attribute__((target("avx2,fma"))) void
  rowAvx2(const float *xp, const float *rp, const float *g, const float *b,
          float *out, float *sum, int64_t n) const {
    int64_t full = n / 8 * 8;
    float *xs = sum ? sum : out;
    const float *xv = xp;
    if (rp || sum) {
      for (int64_t j = 0; j < n; ++j)
        xs[j] = rp ? xp[j] + rp[j] : xp[j];
      xv = xs;
    }
    auto hsum = [](__m256 v) __attribute__((target("avx2,fma"))) {
      __m128 h =
          _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
      h = _mm_add_ps(h, _mm_movehl_ps(h, h));
      return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
    };
    float mean = 0.0f;
    if (!(flags & kRms)) {
      __m256 acc = _mm256_setzero_ps();
      for (int64_t j = 0; j < full; j += 8)
        acc = _mm256_add_ps(acc, _mm256_loadu_ps(xv + j));
      float total = hsum(acc);
      for (int64_t j = full; j < n; ++j)
        total += xv[j];
      mean = total / static_cast<float>(n);
    }
    __m256 vmean = _mm256_set1_ps(mean), acc = _mm256_setzero_ps();
    for (int64_t j = 0; j < full; j += 8) {
      __m256 c = _mm256_sub_ps(_mm256_loadu_ps(xv + j), vmean);
      acc = _mm256_fmadd_ps(c, c, acc);
    }
    float sq = hsum(acc);
    for (int64_t j = full; j < n; ++j)
      sq += (xv[j] - mean) * (xv[j] - mean);
    float inv = 1.0f / std::sqrt(sq / static_cast<float>(n) + eps);
    __m256 vinv = _mm256_set1_ps(inv);
    for (int64_t j = 0; j < full; j += 8) {
      __m256 o = _mm256_mul_ps(
          _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xv + j), vmean), vinv),
          _mm256_loadu_ps(g + j));
      if (b)
        o = _mm256_add_ps(o, _mm256_loadu_ps(b + j));
      _mm256_storeu_ps(out + j, o);
    }
    for (int64_t j = full; j < n; ++j)
      out[j] = (xv[j] - mean) * inv * g[j] + (b ? b[j] : 0.0f);
  }
};

} // namespace

extern "C" __attribute__((visibility("default"))) void
_mlir_ciface_transfuse_norm_f32(Desc4D *x, Desc4D *r, Desc1D *scale,
                                Desc1D *bias, Desc4D *y, Desc4D *s, float eps,
                                int64_t flags) {
  int64_t d0 = y->sizes[0], d1 = y->sizes[1], d2 = y->sizes[2],
          n = y->sizes[3];
  int64_t rows = d0 * d1 * d2;
  if (rows == 0 || n == 0)
    return;
  Call call{*x, *r, *y, *s, *scale, *bias, eps, flags, f32Path()};
  // Blocks of rows of about 64 KiB per task.
  int64_t perTask = std::max<int64_t>(1, (16 << 10) / n);
  int64_t tasks = (rows + perTask - 1) / perTask;
  forEach(tasks, numThreads() > 1 && tasks > 1 && rows * n >= (1 << 15),
          [&](int64_t t) {
            int64_t end = std::min(rows, (t + 1) * perTask);
            for (int64_t i = t * perTask; i < end; ++i) {
              int64_t idx[3] = {i / (d1 * d2), i / d2 % d1, i % d2};
              call.row(idx);
            }
          });
}
