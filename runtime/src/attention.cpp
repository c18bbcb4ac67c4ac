//===- attention.cpp - fused attention, one head's rows at a time ---------===//
//
// `transfuse-cpu-lower-to-linalg` lowers an f32 `transformer.attention`
// with at most two masks, when select-attention chose its algorithm (no
// --attention=...), into one call
//   _mlir_ciface_transfuse_attention_f32(&Q, &K, &V, &M0, &M1, &O, masks,
//                                        scale, softcap, flags)
// on rank-4 strided descriptors: Q [B, H, Sq, D], K [B, Hkv, Sk, D],
// V [B, Hkv, Sk, Dv], O [B, H, Sq, Dv]; the first `masks` of M0, M1 are
// additive terms, each dim either the scores' or 1 (broadcast). It computes
//   O = softmax(cap(Q K^T * scale) + M0 + M1) V
// (cap(s) = softcap * tanh(s / softcap) when softcap > 0, Gemma 2's; else
// s) per (batch, head), query head h reading K/V head h / (H / Hkv); a row
// whose scores are all -inf gives zeros. `flags` bit 0 (--precision bf16,
// unless --bf16-attention=false) rounds both operands of the two products
// to bf16 (K and V once per head; Q, unscaled, as the bf16 GEMM packs its
// A operand; the probabilities unnormalized, exp(s - max), as the softmax
// pass writes them, the output's rows divided by their sums after the
// product) and runs them on the bf16 GEMM (AMX or AVX512-BF16),
// accumulating in f32; where that GEMM has no bf16 kernels, the same
// rounded operands go through the f32 GEMM, so the results do not depend
// on the CPU beyond accumulation order (test/models/bf16_reference.py
// --attention reproduces this rounding).
// The few-row path (a decode step) stays f32.
//
// The generated alternative (LowerFused.cpp) makes several passes over
// B x H x Sq x block scores in memory per block of keys. Here each task
// takes one head: it packs K^T and V once into the GEMM's panel layout
// (f32, or bf16), then for each block of kRowBlock query rows
// (kBf16RowBlock on the bf16 kernels) computes the block's scores (in L2)
// with the GEMM and turns them into unnormalized probabilities in place:
// one pass scales them, adds the masks and finds the row max, one
// exponentiates and sums (on the bf16 kernels, and in f32 on AVX-512, it
// writes P straight into the GEMM's A panels). It multiplies them by V
// with the GEMM into O and
// divides each row by its sum. Memory per task is linear in Sk: the packed
// K and V and one block of scores. A head with fewer than kFewRows query
// rows (decode) reads K and V in place instead: a dot product per key,
// then a weighted sum of V's rows. A block of query rows (on the decode
// path, each row) reads keys only from the first to the last one that a
// row of it can attend to, no mask term -inf or finfo.min there
// (LiveKeys: a causal mask's upper triangle, right and left padding, a
// sliding window's start, a KV cache's rows past the sequence). A mask whose
// query rows are all the same (an exporter's expanded padding mask) is read as
// one row (rowsRepeat).
//
// transfuse-cpu-fuse-kv-append turns a decode step's attention, whose K
// and V a copy of the KV cache's past (rows [0, Sp)) and one of the new
// tokens just filled, into
//   _mlir_ciface_transfuse_attention_f32_past(&Q, &K, &V, &M0, &M1, &O,
//                                             &KPast, &VPast, masks,
//                                             scale, softcap, flags)
// without the past's copy: the kernel copies each head's past rows into K
// and V itself (Past, below), so that they are read from DRAM once. An
// empty KPast or VPast (sizes[2] = 0) copies nothing.
//
// The row passes and the decode path's dot products and weighted sums are
// one scalar source compiled for AVX-512, AVX2 and baseline x86-64 (as
// f32Path() picks), which the compiler vectorizes; on AVX-512 the row max,
// the exponentials (expLanes) and the decode path's products
// (scoresAvx512, weightedSumAvx512) are intrinsics.
//
// Threads: one task per (batch, head) on the pool (each head's products
// then run on its thread); with fewer heads than four per thread, the
// rows of each head are split over tasks too. No result depends on the
// thread count.
//
//===----------------------------------------------------------------------===//
#include "approx_math.h"
#include "gemm.h"
#include "profile.h"

#include "transfuse/bf16_panels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>


using namespace transfuse::runtime;
using namespace transfuse::runtime::gemm;

namespace {

/// Query rows per block of scores: 48 on the f32 GEMM (its panels hold 12
/// rows), 64 on the bf16 kernels (four 16-row AMX panels, so no half-used
/// tile pair: the attention alone, 12 heads of 512 tokens on one thread,
/// 2.45 -> 2.35 ms, and 220 -> 212 us at 128; f32 level or slower at 64).
/// A head with fewer than kFewRows query rows per task takes the few-row
/// path.
constexpr int64_t kRowBlock = 48, kBf16RowBlock = 64, kFewRows = 12;
static_assert(kBf16RowBlock >= kRowBlock); // packedRows' inv[]
/// How many rows ahead of the mask pass a mask's rows are prefetched
/// (Call::prefetchMaskRows).
constexpr int64_t kMaskRowsAhead = 4;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

/// One additive mask term as seen from row i of head (b, h): a pointer to
/// its first key and the step between keys (0 when the key dim is 1).
struct MaskRow {
  const float *at;
  int64_t step;
};

MaskRow maskRow(const Desc4D &m, int64_t b, int64_t h, int64_t i) {
  int64_t idx[3] = {b, h, i}, off = m.offset;
  for (int d = 0; d < 3; ++d)
    off += (m.sizes[d] == 1 ? 0 : idx[d]) * m.strides[d];
  return {m.data + off, m.sizes[3] == 1 ? 0 : m.strides[3]};
}

/// The row passes, one scalar source for every instruction set (as
/// epilogue.cpp's tiles): the wrappers below compile it for AVX-512, AVX2
/// and baseline x86-64, and the compiler vectorizes it. Each reduction runs
/// in kLanes partial results, so that vectorizing it reorders no float
/// additions.
constexpr int kLanes = 16;

/// How a mask term reaches the keys of a row: absent, one value for every
/// key (its key dim is 1), one per key at unit stride, or at another.
enum MaskKind { kNoMask, kOneValue, kPerKey, kOtherStride };

/// Score j's masks, added in order as separate statements (so no FMA
/// contracts them, and the sum is the one the unfused loops gave).
template <MaskKind K0, MaskKind K1>
__attribute__((always_inline)) inline float
maskedScore(float v, const float *m0, const float *m1, int64_t j) {
  if constexpr (K0 != kNoMask)
    v += m0[K0 == kPerKey ? j : 0];
  if constexpr (K1 != kNoMask)
    v += m1[K1 == kPerKey ? j : 0];
  return v;
}

/// s[j] = s[j] * scale + the masks at key j, for j < n, in one pass, for
/// up to two masks of the kinds K0, K1 (scores and masks never overlap).
template <MaskKind K0, MaskKind K1>
__attribute__((always_inline)) inline void
scaleAndMask(float *__restrict s, int64_t n, float scale,
             const float *__restrict m0, const float *__restrict m1) {
  for (int64_t j = 0; j < n; ++j) {
    float v = s[j] * scale;
    s[j] = maskedScore<K0, K1>(v, m0, m1, j);
  }
}

/// s[j] = s[j] * scale + sum of the masks at key j, for j < n. Masks of
/// unit or zero key stride (all that models give) are added in the pass
/// that scales (scaleAndMask), others in a pass each.
/// With expRow's exponentials and sum in one pass too: bert-base bf16 at
/// 512 tokens, paired runs of 4 rounds, 143.6 -> 140.0 ms at one thread,
/// 80.6 -> 80.2 at two.
__attribute__((always_inline)) inline void addMasksRow(float *s, int64_t n,
                                                       float scale,
                                                       const MaskRow *masks,
                                                       int64_t count) {
  auto kind = [&](int64_t t) {
    if (t >= count)
      return kNoMask;
    return masks[t].step == 0   ? kOneValue
           : masks[t].step == 1 ? kPerKey
                                : kOtherStride;
  };
  MaskKind k0 = kind(0), k1 = kind(1);
  const float *m0 = count > 0 ? masks[0].at : nullptr,
              *m1 = count > 1 ? masks[1].at : nullptr;
  if (count <= 2 && k0 != kOtherStride && k1 != kOtherStride) {
    // One instance per pair of kinds that can occur (a second mask only
    // with a first).
    if (k0 == kNoMask)
      scaleAndMask<kNoMask, kNoMask>(s, n, scale, m0, m1);
    else if (k0 == kPerKey)
      k1 == kNoMask   ? scaleAndMask<kPerKey, kNoMask>(s, n, scale, m0, m1)
      : k1 == kPerKey ? scaleAndMask<kPerKey, kPerKey>(s, n, scale, m0, m1)
                      : scaleAndMask<kPerKey, kOneValue>(s, n, scale, m0, m1);
    else
      k1 == kNoMask   ? scaleAndMask<kOneValue, kNoMask>(s, n, scale, m0, m1)
      : k1 == kPerKey ? scaleAndMask<kOneValue, kPerKey>(s, n, scale, m0, m1)
                      : scaleAndMask<kOneValue, kOneValue>(s, n, scale, m0, m1);
  } else {
    for (int64_t j = 0; j < n; ++j)
      s[j] *= scale;
    for (int64_t t = 0; t < count; ++t) {
      const float *m = masks[t].at;
      int64_t step = masks[t].step;
      if (step == 1)
        for (int64_t j = 0; j < n; ++j)
          s[j] += m[j];
      else if (step == 0)
        for (int64_t j = 0; j < n; ++j)
          s[j] += m[0];
      else
        for (int64_t j = 0; j < n; ++j)
          s[j] += m[j * step];
    }
  }
}

/// The max of s[0, n) (-inf for none), in kLanes partial maxima.
__attribute__((always_inline)) inline float rowMax(const float *s, int64_t n) {
  float mx[kLanes];
  for (int l = 0; l < kLanes; ++l)
    mx[l] = kNegInf;
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l)
      mx[l] = s[j + l] > mx[l] ? s[j + l] : mx[l];
  for (; j < n; ++j)
    mx[0] = s[j] > mx[0] ? s[j] : mx[0];
  float m = kNegInf;
  for (int l = 0; l < kLanes; ++l)
    m = mx[l] > m ? mx[l] : m;
  return m;
}

/// rowMax in AVX-512 intrinsics: four vectors of partial maxima, folded as
/// a tree at the end (a max is exact in any order). The compiler kept
/// rowMax's sixteen lanes in order at the end, a chain of sixteen scalar
/// steps per row that took a third of this pass at 512 keys (perf); told
/// to fold them as a tree, it vectorized the loop two lanes wide.
__attribute__((target("avx512f"), always_inline)) inline float
rowMaxAvx512(const float *s, int64_t n) {
  __m512 m[4];
  for (__m512 &v : m)
    v = _mm512_set1_ps(kNegInf);
  int64_t j = 0;
  for (; j + 64 <= n; j += 64)
    for (int v = 0; v < 4; ++v)
      m[v] = _mm512_max_ps(m[v], _mm512_loadu_ps(s + j + 16 * v));
  for (; j < n; j += 16) {
    __mmask16 lanes = firstLanes(n - j);
    m[0] = _mm512_mask_max_ps(m[0], lanes, m[0],
                              _mm512_maskz_loadu_ps(lanes, s + j));
  }
  return _mm512_reduce_max_ps(
      _mm512_max_ps(_mm512_max_ps(m[0], m[1]), _mm512_max_ps(m[2], m[3])));
}

/// s[j] = exp(s[j] - mx), for j < n; returns their sum (in kLanes partial
/// sums, in one pass: key j in sum j % kLanes, as expRowAvx512's vector
/// of sums, so that keys past n that are 0 would change none of them,
/// LiveKeys).
__attribute__((always_inline)) inline float expRow(float *s, int64_t n,
                                                   float mx) {
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      float e = expApprox(s[j + l] - mx);
      s[j + l] = e;
      acc[l] += e;
    }
  for (; j < n; ++j) {
    float e = expApprox(s[j] - mx);
    s[j] = e;
    acc[j % kLanes] += e;
  }
  float sum = 0.0f;
  for (int l = 0; l < kLanes; ++l)
    sum += acc[l];
  return sum;
}

/// sum_d a[d] * b[d], d < n.
__attribute__((always_inline)) inline float dotRow(const float *a,
                                                   const float *b, int64_t n) {
  float acc[kLanes] = {};
  int64_t d = 0;
  for (; d + kLanes <= n; d += kLanes)
    for (int l = 0; l < kLanes; ++l)
      acc[l] += a[d + l] * b[d + l];
  for (; d < n; ++d)
    acc[0] += a[d] * b[d];
  float sum = 0.0f;
  for (int l = 0; l < kLanes; ++l)
    sum += acc[l];
  return sum;
}

/// out[d] += w * v[d], d < n.
__attribute__((always_inline)) inline void axpyRow(float *out, float w,
                                                   const float *v, int64_t n) {
  for (int64_t d = 0; d < n; ++d)
    out[d] += w * v[d];
}

/// The few-row path's two products for one query row, K's and V's rows
/// with unit strides (kv and vv: their first rows, ldk and ldv floats
/// apart): s[j] = q . K[j] for j < sk, a dot product per key.
__attribute__((always_inline)) inline void
scoresRows(const float *q, const float *kv, int64_t ldk, int64_t sk,
           int64_t d, float *s) {
  for (int64_t j = 0; j < sk; ++j)
    s[j] = dotRow(q, kv + j * ldk, d);
}

/// o = sum_j w * s[j] * V[j], j < sk, an axpy per key.
__attribute__((always_inline)) inline void
weightedSumRows(const float *s, float w, const float *vv, int64_t ldv,
                int64_t sk, int64_t dv, float *o) {
  for (int64_t t = 0; t < dv; ++t)
    o[t] = 0.0f;
  for (int64_t j = 0; j < sk; ++j)
    axpyRow(o, s[j] * w, vv + j * ldv, dv);
}

/// exp(x - max) for the `lanes` of x = at[0, 16), the other lanes zero:
/// expApprox's arithmetic step by step (the same values as its AVX-512
/// build), with p * 2^n as one VSCALEFPS, for x - max <= 0 (a row's
/// scores less its max; expApprox's upper clamp never applies).
__attribute__((target("avx512f"), always_inline)) inline __m512
expLanes(__mmask16 lanes, const float *at, __m512 max) {
  const __m512 floor = _mm512_set1_ps(-87.0f);
  __m512 x = _mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, at), max);
  __mmask16 keep = _mm512_mask_cmp_ps_mask(lanes, x, floor, _CMP_NLT_US);
  x = _mm512_max_ps(x, floor);
  __m512 n = _mm512_roundscale_ps(
      _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
      _MM_FROUND_CUR_DIRECTION);
  __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693145751953125f), x);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(-1.42860682030941723e-6f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_maskz_scalef_ps(keep, p, n);
}

/// expRow on AVX-512 in intrinsics: the same values (expLanes), their sum
/// in one vector of partial sums. The f32 attention alone (BERT-base's
/// layout, 12 heads of 128 tokens, one thread): 437 -> 419 us (medians
/// of 6 alternated runs; faster in 5).
__attribute__((target("avx512f"), always_inline)) inline float
expRowAvx512(float *s, int64_t n, float mx) {
  const __m512 max = _mm512_set1_ps(mx);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    __mmask16 lanes = firstLanes(n - j);
    __m512 e = expLanes(lanes, s + j, max);
    _mm512_mask_storeu_ps(s + j, lanes, e);
    sum = _mm512_add_ps(sum, e);
  }
  return _mm512_reduce_add_ps(sum);
}

/// The row passes compiled for one instruction set (TF_ROW_OPS below).
struct RowOps {
  float (*addMasks)(float *, int64_t, float, const MaskRow *, int64_t);
  float (*exp)(float *, int64_t, float);
  void (*scores)(const float *, const float *, int64_t, int64_t, int64_t,
                 float *);
  void (*weightedSum)(const float *, float, const float *, int64_t, int64_t,
                      int64_t, float *);
};

/// One row of scores in place: s = exp(s * scale + masks - max), 0 where
/// the whole row is -inf; returns 1 / the row sum (0 for such a row).
float softmaxRow(float *s, int64_t n, float scale, const MaskRow *masks,
                 int64_t count, const RowOps &ops) {
  float mx = ops.addMasks(s, n, scale, masks, count);
  if (mx == kNegInf) {
    std::fill(s, s + n, 0.0f);
    return 0.0f;
  }
  float sum = ops.exp(s, n, mx);
  return sum > 0.0f ? 1.0f / sum : 0.0f;
}

/// s[j] = cap * tanh(s[j] * scale / cap) for j < n (Gemma 2's softcap),
/// tanh(y) as 1 - 2 / (e^2y + 1) with expApprox: within a few float ulps
/// of cap in absolute error, which is what the softmax sees.
void capRow(float *s, int64_t n, float scale, float cap) {
  float in = 2.0f * scale / cap;
  for (int64_t j = 0; j < n; ++j)
    s[j] = cap * (1.0f - 2.0f / (expApprox(s[j] * in) + 1.0f));
}

/// The bf16 products' softmax pass, on the CPUs whose bf16 GEMM kernels
/// (AMX, AVX512-BF16) it feeds: e[j] = exp(s[j] - mx) for j < n, rounded
/// to bf16 into one row of P's A panels (bf16_panels.h: 32 keys at each
/// of `dst`, dst + 512, ...; keys from n to kp zero), in one pass that
/// also returns the f32 sum of the unrounded values (expLanes; mx is the
/// row's finite max). P stays unnormalized: the product's rows are divided
/// by the sums after, as in f32. (Normalizing before rounding took a
/// second pass over the scores: 15% of the attention's time at 512
/// tokens, perf.)
__attribute__((target("avx512f,avx512bw,avx512bf16"))) float
expRowToBf16Panel(const float *s, int64_t n, float mx, int64_t kp,
                  uint16_t *dst) {
  const __m512 max = _mm512_set1_ps(mx);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t j = 0; j < kp; j += transfuse::bf16::kBlockK, dst += 512) {
    __mmask16 lo, hi;
    laneMasks(n - j, lo, hi);
    __m512 e0 = expLanes(lo, s + j, max), e1 = expLanes(hi, s + j + 16, max);
    sum = _mm512_add_ps(sum, _mm512_add_ps(e0, e1));
    _mm512_storeu_si512(dst, (__m512i)_mm512_cvtne2ps_pbh(e1, e0));
  }
  return _mm512_reduce_add_ps(sum);
}

/// The f32 softmax pass on AVX-512, into the f32 GEMM's A panels: for
/// rows r < rows of the scores (s, ld floats apart) with their maxima mx,
/// e = exp(s - mx) (expLanes) goes to row r of the panels (gemm.h,
/// matmulF32PackedA: K step p of row r at panels + (r / 12) * 12 * n +
/// p * 12 + r % 12), and sums[r] gets its sum (as expRowAvx512 sums); a
/// row whose max is -inf gets zeros. Four rows at a time go through the
/// GEMM's own transposing store (storeRows4), so P is written once,
/// already in the product's layout, instead of exponentiated in place and
/// then packed. The attention alone (12 heads, 512 tokens, a T5-like bias,
/// one thread): 5.52-5.81 -> 5.03-5.53 ms, 2.89 -> 2.63-2.65 at two
/// threads; the t5-base encoder at 512 tokens (profile, one thread) 71.2 /
/// 73.1 -> 64.3 / 67.3 ms of attention per run, and paired runs 499.5 ->
/// 492.6 ms; bert-base at 512 tokens 545.2 -> 520.4 ms (4 rounds, faster
/// in each).
__attribute__((target("avx512f"))) void
expRowsToF32Panels(float *s, int64_t ld, int64_t rows, int64_t n,
                   const float *mx, float *panels, float *sums) {
  constexpr int64_t kR = kF32PanelRows;
  static_assert(kR % 4 == 0);
  int64_t vecN = n / 16 * 16;
  for (int64_t r0 = 0; r0 < rows; r0 += 4) {
    float *dst = panels + r0 / kR * kR * n + r0 % kR;
    int64_t g = std::min<int64_t>(4, rows - r0);
    bool whole = g == 4;
    for (int64_t q = 0; q < g; ++q)
      whole &= mx[r0 + q] != kNegInf;
    // Fewer than four rows, or a fully masked one among them: a row at a
    // time, exponentiated in place, then copied down the panel.
    for (int64_t q = 0; q < g && !whole; ++q) {
      float *row = s + (r0 + q) * ld;
      bool masked = mx[r0 + q] == kNegInf;
      sums[r0 + q] = masked ? 0.0f : expRowAvx512(row, n, mx[r0 + q]);
      for (int64_t p = 0; p < n; ++p)
        dst[p * kR + q] = masked ? 0.0f : row[p];
    }
    if (!whole)
      continue;
    __m512 max[4], acc[4], e[4];
    for (int q = 0; q < 4; ++q) {
      max[q] = _mm512_set1_ps(mx[r0 + q]);
      acc[q] = _mm512_setzero_ps();
    }
    for (int64_t p = 0; p < vecN; p += 16) {
      for (int q = 0; q < 4; ++q) {
        e[q] = expLanes(0xFFFF, s + (r0 + q) * ld + p, max[q]);
        acc[q] = _mm512_add_ps(acc[q], e[q]);
      }
      storeRows4(e, dst + p * kR);
    }
    for (int q = 0; q < 4 && vecN < n; ++q) {
      __m512 tail =
          expLanes(firstLanes(n - vecN), s + (r0 + q) * ld + vecN, max[q]);
      acc[q] = _mm512_add_ps(acc[q], tail);
      alignas(64) float v[16];
      _mm512_store_ps(v, tail);
      for (int64_t p = vecN; p < n; ++p)
        dst[p * kR + q] = v[p - vecN];
    }
    for (int q = 0; q < 4; ++q)
      sums[r0 + q] = _mm512_reduce_add_ps(acc[q]);
  }
}

/// x[0, n) rounded to bf16 (nearest, ties to even), kept as f32.
void roundToBf16(float *x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    x[i] = transfuse::bf16::rounded(x[i]);
}

/// scoresRows and weightedSumRows on AVX-512. scoresAvx512: sixteen keys
/// at a time, each in one vector of partial sums (d in steps of 16), the
/// sixteen vectors transposed and added into one vector of sixteen
/// scores. dotRow's ordered fold of sixteen lanes was a chain of sixteen
/// dependent additions per key. weightedSumAvx512: 64 of o's elements at a
/// time in registers over all keys (two sets, even and odd keys, summed at
/// the end), where axpyRow loaded and stored o for every key. gpt2 decode
/// at a 1023-token past, one thread: the attention 7.84 -> 5.90 ms per run
/// (profile), the model 43.2 -> 40.9 ms (7 paired rounds; 22.4 -> 21.5 at
/// two threads).
__attribute__((target("avx512f"), always_inline)) inline void
scoresAvx512(const float *q, const float *kv, int64_t ldk, int64_t sk,
             int64_t d, float *s) {
  for (int64_t j0 = 0; j0 < sk; j0 += 16) {
    int64_t keys = std::min<int64_t>(16, sk - j0);
    __m512 acc[16];
    for (__m512 &a : acc)
      a = _mm512_setzero_ps();
    for (int64_t t = 0; t < d; t += 16) {
      __mmask16 m = firstLanes(d - t);
      __m512 qv = _mm512_maskz_loadu_ps(m, q + t);
      for (int kk = 0; kk < 16; ++kk) // absent keys: nothing loaded
        acc[kk] = _mm512_fmadd_ps(
            qv,
            _mm512_maskz_loadu_ps(kk < keys ? m : 0,
                                  kv + (j0 + kk) * ldk + t),
            acc[kk]);
    }
    __m512i r[16];
    for (int kk = 0; kk < 16; ++kk)
      r[kk] = _mm512_castps_si512(acc[kk]);
    transpose16(r);
    __m512 sum = _mm512_castsi512_ps(r[0]);
    for (int c = 1; c < 16; ++c)
      sum = _mm512_add_ps(sum, _mm512_castsi512_ps(r[c]));
    _mm512_mask_storeu_ps(s + j0, firstLanes(keys), sum);
  }
}

__attribute__((target("avx512f"), always_inline)) inline void
weightedSumAvx512(const float *s, float w, const float *vv, int64_t ldv,
                  int64_t sk, int64_t dv, float *o) {
  for (int64_t t0 = 0; t0 < dv; t0 += 64) {
    __mmask16 m[4];
    for (int c = 0; c < 4; ++c)
      m[c] = firstLanes(dv - t0 - 16 * c);
    __m512 even[4], odd[4];
    for (int c = 0; c < 4; ++c)
      even[c] = odd[c] = _mm512_setzero_ps();
    const float *v = vv + t0;
    int64_t j = 0;
    for (; j + 2 <= sk; j += 2) {
      __m512 we = _mm512_set1_ps(s[j] * w), wo = _mm512_set1_ps(s[j + 1] * w);
      for (int c = 0; c < 4; ++c) {
        even[c] = _mm512_fmadd_ps(
            we, _mm512_maskz_loadu_ps(m[c], v + j * ldv + 16 * c), even[c]);
        odd[c] = _mm512_fmadd_ps(
            wo, _mm512_maskz_loadu_ps(m[c], v + (j + 1) * ldv + 16 * c),
            odd[c]);
      }
    }
    if (j < sk) {
      __m512 we = _mm512_set1_ps(s[j] * w);
      for (int c = 0; c < 4; ++c)
        even[c] = _mm512_fmadd_ps(
            we, _mm512_maskz_loadu_ps(m[c], v + j * ldv + 16 * c), even[c]);
    }
    for (int c = 0; c < 4; ++c)
      _mm512_mask_storeu_ps(o + t0 + 16 * c, m[c],
                            _mm512_add_ps(even[c], odd[c]));
  }
}

#define TF_ROW_OPS(NAME, ATTR, MAX, EXP, SCORES, WEIGHTED_SUM)                 \
  ATTR float addMasks##NAME(float *s, int64_t n, float scale,                  \
                            const MaskRow *masks, int64_t count) {             \
    addMasksRow(s, n, scale, masks, count);                                    \
    return MAX(s, n);                                                          \
  }                                                                            \
  ATTR float exp##NAME(float *s, int64_t n, float mx) {                        \
    return EXP(s, n, mx);                                                      \
  }                                                                            \
  ATTR void fewScores##NAME(const float *q, const float *kv, int64_t ldk,      \
                         int64_t sk, int64_t d, float *s) {                    \
    SCORES(q, kv, ldk, sk, d, s);                                              \
  }                                                                            \
  ATTR void fewWeightedSum##NAME(const float *s, float w, const float *vv,     \
                              int64_t ldv, int64_t sk, int64_t dv, float *o) { \
    WEIGHTED_SUM(s, w, vv, ldv, sk, dv, o);                                    \
  }                                                                            \
  constexpr RowOps kRowOps##NAME{addMasks##NAME, exp##NAME, fewScores##NAME,   \
                                 fewWeightedSum##NAME};
TF_ROW_OPS(Avx512, __attribute__((target("avx512f"))), rowMaxAvx512,
           expRowAvx512, scoresAvx512, weightedSumAvx512)
TF_ROW_OPS(Avx2, __attribute__((target("avx2,fma"))), rowMax, expRow,
           scoresRows, weightedSumRows)
TF_ROW_OPS(Portable, , rowMax, expRow, scoresRows, weightedSumRows)
#undef TF_ROW_OPS

const RowOps &rowOps(F32Path path) {
  return path == F32Path::Avx512 ? kRowOpsAvx512
         : path == F32Path::Avx2 ? kRowOpsAvx2
                                 : kRowOpsPortable;
}

/// Whether every query row of mask `m` (per batch and head slice) holds
/// the same bits as the slice's first, so that the kernel may read it as
/// one row (sizes[2] = 1). Exporters expand a padding mask [B, 1, 1, Sk]
/// to [B, 1, Sq, Sk] (transformers builds it from the keys' padding and an
/// always-true test on the query's position); read as it is, each head
/// reads all of it again, 1 MiB at 512 tokens. Comparing its rows reads it
/// once per call and stops at the first row that differs (a causal mask's
/// second). The attention alone, 12 heads of 512 tokens, bf16, one
/// thread, with the expanded mask: 2.52 ms read as it is, 2.22 with this
/// (2.19 given one row).
bool rowsRepeat(const Desc4D &m) {
  if (m.sizes[2] <= 1 || m.strides[3] != 1)
    return false;
  for (int64_t b = 0; b < m.sizes[0]; ++b)
    for (int64_t h = 0; h < m.sizes[1]; ++h) {
      const float *first =
          m.data + m.offset + b * m.strides[0] + h * m.strides[1];
      for (int64_t i = 1; i < m.sizes[2]; ++i)
        if (std::memcmp(first + i * m.strides[2], first,
                        m.sizes[3] * sizeof(float)) != 0)
          return false;
    }
  return true;
}

/// The past rows of a KV cache, copied into K and V by the attention
/// itself (transfuse-cpu-fuse-kv-append): K[b, h, 0:Sp] = k[b, h], the same
/// for V, where Sp is the past's sizes[2]; null where there is none. The
/// generated code's copy streamed them to DRAM, from where the attention
/// read them again. Here each head's rows are copied by the task that
/// reads them: a decode step's streams them to K and V (non-temporal
/// stores) and reads its keys [0, Sp) from the past, which the copy just
/// brought into the cache; other tasks copy with plain stores, then read
/// K and V. Paired runs on a Xeon (against the generated copy): gpt2
/// decode at a 1023-token past 42.3 -> 38.0 ms at one thread, 22.1 -> 19.5
/// at two; at a 128-token past 29.5 -> 29.2 and 15.3 -> 14.9; the t5-base
/// decoder step 31.6 -> 30.7 and 17.4 -> 16.7. Plain stores in the decode
/// tasks too, K and V then read back: 42.3 -> 40.4 at a 1023-token past
/// (each destination line read before it is written).
struct Past {
  const Desc4D *k, *v;

  /// Rows [0, Sp) of head (b, h) of `to` from `from` (none when null),
  /// streamed when `stream`.
  static void copyHead(const Desc4D *from, const Desc4D &to, int64_t b,
                       int64_t h, bool stream) {
    if (!from)
      return;
    int64_t sp = std::min(from->sizes[2], to.sizes[2]), d = from->sizes[3];
    const float *src =
        from->data + from->offset + b * from->strides[0] + h * from->strides[1];
    float *dst = to.data + to.offset + b * to.strides[0] + h * to.strides[1];
    bool rows = from->strides[3] == 1 && to.strides[3] == 1;
    auto copy = [stream](float *t, const float *s, int64_t n) {
      if (stream)
        streamFloats(t, s, n);
      else
        std::memcpy(t, s, n * sizeof(float));
    };
    if (rows && from->strides[2] == d && to.strides[2] == d) {
      copy(dst, src, sp * d);
    } else {
      for (int64_t i = 0; i < sp; ++i) {
        const float *s = src + i * from->strides[2];
        float *t = dst + i * to.strides[2];
        if (rows) {
          copy(t, s, d);
          continue;
        }
        for (int64_t j = 0; j < d; ++j)
          t[j * to.strides[3]] = s[j * from->strides[3]];
      }
    }
    // Non-temporal stores are weakly ordered: visible before the task is
    // reported done.
    if (stream)
      _mm_sfence();
  }
};

/// Which keys a block of query rows must read. A key with a mask term of
/// -inf, or of at most kDeadMask (-1e30; exporters' finite "minus
/// infinity" is finfo.min, -3.4e38), scores at least 1e30 below any key
/// whose terms are all above it, so in a row that has such a live key its
/// exponential is exactly 0 (expApprox: below -87), and it adds exactly
/// nothing to the row's sum and to its row of P V (a 0 added to a sum, in
/// order). So where every row of a block has only such keys before key b
/// and from key e on (a causal mask's upper triangle, right padding; left
/// padding, a sliding window), both of the block's products and its
/// softmax pass read keys [b, e) only, b rounded down to a whole panel of
/// K^T (kKeyAlign keys), and give the same results to the bit (for scores
/// and other mask terms below 1e22 in magnitude): the row sums' lanes and
/// the products' K steps are the same from key b on, and before b they
/// only added zeros. A row with no live key gives zeros whatever is read
/// when each key has a -inf term, and does not widen its block; else
/// (finfo.min: a padded query row) it is a uniform softmax over the keys
/// whose dead terms are the largest, which on the f32 GEMM Call::uniformRow
/// computes from the masks alone, to the same bits, after its block (on
/// the bf16 kernels its block reads every key). On a Zen 4, one thread
/// (profile): gpt2 prefill at 512 tokens, the attention 123.5 -> 77-85 ms
/// per run with the causal mask's ends (paired runs of the model 999 ->
/// 951 ms, 3 rounds); a batch of 4 left-padded to 512 tokens (512, 384,
/// 256 and 128 live), 241 / 249 -> 180 / 191 ms with the starts too. The
/// profile's GFLOP/s still count every key.
///
/// The ranges are found once per call for the mask terms that do not
/// differ by head, per query row, by scanning each row from its ends
/// inwards to its first and last live keys. A term that differs by head
/// with a value per key (a position bias; the t5 fixtures' exports add the
/// causal mask into it) is scanned in the head's task, row by row, inside
/// the range the shared terms left (a finite bias, as ALiBi, costs a check
/// at each end). A block's range spans its rows'.
constexpr float kDeadMask = -1e30f;
constexpr int64_t kKeyAlign = kF32PanelWidth;
static_assert(kKeyAlign == transfuse::bf16::kPanelCols &&
              kKeyAlign % transfuse::bf16::kBlockK == 0 &&
              kKeyAlign % kLanes == 0);

/// Which of keys [x, x + 16) no term of `rows` kills (LiveKeys), a bit per
/// key, on AVX-512 for terms of unit or zero key step. Every layer's call
/// scans its causal mask again (S^2 / 2 values); one key at a time on one
/// thread that was 0.35% of gpt2 prefill at 512 tokens (perf), and with
/// this and the rows split over the threads, paired runs (3 rounds,
/// faster in each) went 869 -> 867 ms at one thread, 443.6 -> 440.0 at
/// two.
__attribute__((target("avx512f"))) __mmask16
liveLanesAvx512(const MaskRow *rows, int64_t count, int64_t x) {
  const __m512 dead = _mm512_set1_ps(kDeadMask);
  __mmask16 live = 0xFFFF;
  for (int64_t t = 0; t < count; ++t) {
    __m512 v = rows[t].step ? _mm512_loadu_ps(rows[t].at + x)
                            : _mm512_set1_ps(rows[t].at[0]);
    live &= _mm512_cmp_ps_mask(v, dead, _CMP_NLE_UQ); // NaN: live
  }
  return live;
}

/// Keys [begin, end) of a query row: outside them every key is dead.
/// Empty ({0, 0}): the row gives zeros. `uniform`: no key is live, and
/// not every key has a -inf term; all keys ([0, Sk)), as the row is a
/// uniform softmax over the keys whose dead terms are the largest
/// (Call::uniformRow).
struct KeyRange {
  int64_t begin = 0, end = 0;
  bool uniform = false;
};

struct LiveKeys {
  /// The keys of mask row `rows` (MaskRow, one per term) from its first to
  /// its last that no term kills (at most kDeadMask; a NaN is live),
  /// looked for inside `within` (every key outside it is dead). With none:
  /// empty when every key has a -inf term, else all `sk`. `simd`:
  /// liveLanesAvx512 applies.
  static KeyRange rowRange(const MaskRow *rows, int64_t count, int64_t sk,
                           bool simd, KeyRange within) {
    auto live = [&](int64_t j) {
      bool l = true;
      for (int64_t t = 0; t < count; ++t)
        l &= !(rows[t].at[j * rows[t].step] <= kDeadMask);
      return l;
    };
    auto anyLive = [&](int64_t x) { // in [x, x + kLanes)
      if (simd)
        return liveLanesAvx512(rows, count, x) != 0;
      bool any = false;
      for (int64_t j = x; j < x + kLanes; ++j)
        any |= live(j);
      return any;
    };
    if (within.begin >= within.end)
      return {};
    // From each end inwards, sixteen keys at a time while all are dead,
    // then one at a time.
    int64_t b = within.begin, e = within.end;
    while (e - b >= kLanes && !anyLive(e - kLanes))
      e -= kLanes;
    while (e > b && !live(e - 1))
      --e;
    if (e > b) {
      while (e - b >= kLanes && !anyLive(b))
        b += kLanes;
      while (!live(b)) // key e - 1 is live
        ++b;
      return {b, e};
    }
    // No live key: zeros whatever is read when every key has a -inf term;
    // else (finfo.min) a uniform softmax over all of them.
    for (int64_t x = 0; x < sk; ++x) {
      bool inf = false;
      for (int64_t t = 0; t < count; ++t)
        inf |= rows[t].at[x * rows[t].step] == kNegInf;
      if (!inf)
        return {0, sk, true};
    }
    return {};
  }

  /// The ranges of every query row of every batch (or of batch 0 alone,
  /// when the masks broadcast over it), from the mask terms that do not
  /// differ by head; none (batches 0) when no such term has a value per
  /// key.
  Scratch<KeyRange> ranges;
  int64_t batches;
  /// A term that differs by head has a value per key: each head's task
  /// scans its rows (Call::blockKeys).
  bool perHead;
  /// Every term has unit or zero key step, on AVX-512: liveLanesAvx512.
  bool simd;

  LiveKeys(const Desc4D *masks[2], int64_t count, int64_t batch, int64_t sq,
           int64_t sk)
      : LiveKeys(Terms(masks, count, batch), sq, sk) {}

private:
  /// The terms shared by all heads, and the batches their ranges cover: 1
  /// when they broadcast over the batch, 0 when none has a value per key;
  /// over all terms, `perHead` and `simd` as above.
  struct Terms {
    const Desc4D *masks[2];
    int64_t count = 0, batches = 0;
    bool perHead = false, simd = f32Path() == F32Path::Avx512;
    Terms(const Desc4D *all[2], int64_t n, int64_t batch) {
      bool perKey = false, perBatch = false;
      for (int64_t t = 0; t < n; ++t) {
        simd &= all[t]->sizes[3] == 1 || all[t]->strides[3] == 1;
        if (all[t]->sizes[1] != 1) {
          perHead |= all[t]->sizes[3] != 1;
          continue;
        }
        masks[count++] = all[t];
        perKey |= all[t]->sizes[3] != 1;
        perBatch |= all[t]->sizes[0] != 1;
      }
      batches = !perKey ? 0 : perBatch ? batch : 1;
    }
  };

  LiveKeys(const Terms &terms, int64_t sq, int64_t sk)
      : ranges(terms.batches * sq), batches(terms.batches),
        perHead(terms.perHead), simd(terms.simd) {
    bool oneRow = true; // every term the same for all query rows
    for (int64_t t = 0; t < terms.count; ++t)
      oneRow &= terms.masks[t]->sizes[2] == 1;
    auto row = [&](int64_t b, int64_t i) {
      MaskRow rows[2];
      for (int64_t t = 0; t < terms.count; ++t)
        rows[t] = maskRow(*terms.masks[t], b, 0, i);
      return rowRange(rows, terms.count, sk, simd, {0, sk});
    };
    if (oneRow) {
      for (int64_t b = 0; b < batches; ++b)
        std::fill_n(ranges.data + b * sq, sq, row(b, 0));
      return;
    }
    // Rows in chunks of 64 over the threads (the attention's tasks wait on
    // all of them).
    constexpr int64_t kChunk = 64;
    int64_t total = batches * sq;
    forEach((total + kChunk - 1) / kChunk, numThreads() > 1, [&](int64_t c) {
      for (int64_t r = c * kChunk; r < std::min(total, (c + 1) * kChunk); ++r)
        ranges.data[r] = row(r / sq, r % sq);
    });
  }
};

struct Call {
  const Desc4D &q, &k, &v, &o;
  const Desc4D *masks[2];
  int64_t maskCount;
  float scale;
  float softcap; // > 0: scores capped at softcap * tanh(s / softcap)
  int64_t group; // query heads per K/V head
  const RowOps &ops;
  bool bf16; // the products on bf16 operands (flags bit 0)
  Past past;
  /// Where the rows' live keys are; null: all Sk keys.
  const LiveKeys *live = nullptr;

  const float *qAt(int64_t b, int64_t h, int64_t i) const {
    return q.data + q.offset + b * q.strides[0] + h * q.strides[1] +
           i * q.strides[2];
  }
  float *oAt(int64_t b, int64_t h, int64_t i) const {
    return o.data + o.offset + b * o.strides[0] + h * o.strides[1] +
           i * o.strides[2];
  }
  /// K or V of head (b, h) as a 2-D view: [Sk, D] (or Dv).
  static Desc2D view(const Desc4D &x, int64_t b, int64_t head) {
    return {x.base,
            x.data,
            x.offset + b * x.strides[0] + head * x.strides[1],
            {x.sizes[2], x.sizes[3]},
            {x.strides[2], x.strides[3]}};
  }
  /// Caps a row of scores in place when softcap is set, which scales
  /// them; returns the scale the mask pass still applies (1 or `scale`).
  float cap(float *row, int64_t n) const {
    if (softcap <= 0.0f)
      return scale;
    capRow(row, n, scale, softcap);
    return 1.0f;
  }
  void maskRows(int64_t b, int64_t h, int64_t i, MaskRow *out) const {
    for (int64_t t = 0; t < maskCount; ++t)
      out[t] = maskRow(*masks[t], b, h, i);
  }

  /// Prefetches into L2 the rows [i0, i1) of head (b, h) of the masks with
  /// a row per query and a value per key at unit stride (t5's position
  /// bias, [1, H, Sq, Sk]: 12.6 MB a layer at 512 tokens, out of cache):
  /// a block's first kMaskRowsAhead rows before its scores product, then
  /// each row kMaskRowsAhead rows ahead of the mask pass, which had waited
  /// on DRAM (perf: a quarter of the attention at 512 tokens). The t5-base
  /// encoder at 512 tokens (profile, two runs each): the attention 97.4 /
  /// 95.4 -> 92.3 / 91.6 ms per run at one thread, 44.7 / 44.1 -> 41.5 /
  /// 41.7 at two; level at 128 tokens. All of a block's rows before its
  /// product instead: about half of that (the prefetches stalled). Not a
  /// mask whose rows overlap (a relative position bias read through a view
  /// of its diagonals: a few KB per head, in cache).
  void prefetchMaskRows(int64_t b, int64_t h, int64_t i0, int64_t i1) const {
    for (int64_t t = 0; t < maskCount; ++t) {
      const Desc4D &m = *masks[t];
      if (m.sizes[2] == 1 || m.sizes[3] == 1 || m.strides[3] != 1 ||
          std::abs(m.strides[2]) < m.sizes[3])
        continue;
      for (int64_t i = i0; i < i1; ++i) {
        const char *row =
            reinterpret_cast<const char *>(maskRow(m, b, h, i).at);
        for (int64_t x = 0; x < m.sizes[3] * int64_t(sizeof(float)); x += 64)
          _mm_prefetch(row + x, _MM_HINT_T1);
      }
    }
  }

  /// The keys that rows [r0, r0 + rows) (at most 64) of head (b, h) read
  /// (LiveKeys): from the first live key of any of them, rounded down to
  /// kKeyAlign, to one past the last; at least one, so that a block of
  /// rows whose every key is -inf still gives its zeros. With `uniform`,
  /// the rows with no live key whose softmax is uniform (KeyRange) are
  /// left out, a bit each (bit r - r0), for uniformRow.
  KeyRange blockKeys(int64_t b, int64_t h, int64_t r0, int64_t rows,
                     uint64_t *uniform) const {
    int64_t sq = q.sizes[2], sk = k.sizes[2];
    if (!live || (live->batches == 0 && !live->perHead))
      return {0, sk};
    int64_t lo = sk, hi = 0;
    for (int64_t r = r0; r < r0 + rows; ++r) {
      KeyRange keys{0, sk};
      if (live->batches)
        keys = live->ranges.data[(live->batches == 1 ? 0 : b) * sq + r];
      if (live->perHead) {
        MaskRow mr[2];
        maskRows(b, h, r, mr);
        keys = LiveKeys::rowRange(mr, maskCount, sk, live->simd, keys);
      }
      if (keys.uniform && uniform) {
        *uniform |= uint64_t(1) << (r - r0);
        continue;
      }
      if (keys.begin < keys.end) {
        lo = std::min(lo, keys.begin);
        hi = std::max(hi, keys.end);
      }
    }
    if (hi == 0)
      return {0, 1};
    return {lo / kKeyAlign * kKeyAlign, hi};
  }

  /// Row i of head (b, h) when it has no live key and its softmax is
  /// uniform (KeyRange), from the masks alone: the scores drop out of each
  /// key's sum, as they are below 1e22 and a dead term at most -1e30
  /// (LiveKeys), leaving D_j = (0 + M0_j) + M1_j (the terms, added in the
  /// softmax pass's order); exp(D_j - max D) is exactly 1 where D_j is the
  /// max and 0 elsewhere (two dead values differ by more than 87). So the
  /// row of P V is the sum, in key order, of the rows of V (the packed
  /// panels `vPack`, Sk deep, as the product reads them) at those keys,
  /// times one over their count: the same bits as the product over every
  /// key (f32 adds of 1 * V and 0 * V), without it.
  void uniformRow(int64_t b, int64_t h, int64_t i, const float *vPack,
                  float *out, int64_t outStride) const {
    int64_t sk = k.sizes[2], dv = v.sizes[3];
    constexpr int64_t w = kF32PanelWidth;
    MaskRow mr[2];
    maskRows(b, h, i, mr);
    auto dead = [&](int64_t j) {
      float x = 0.0f;
      for (int64_t t = 0; t < maskCount; ++t)
        x += mr[t].at[j * mr[t].step];
      return x;
    };
    float mx = kNegInf;
    for (int64_t j = 0; j < sk; ++j)
      mx = std::max(mx, dead(j));
    Scratch<float> acc(dv);
    std::fill_n(acc.data, dv, 0.0f);
    float count = 0.0f;
    for (int64_t j = 0; j < sk; ++j) {
      if (dead(j) != mx)
        continue;
      count += 1.0f;
      for (int64_t t = 0; t < dv; ++t)
        acc.data[t] += vPack[(t / w * sk + j) * w + t % w];
    }
    float inv = 1.0f / count;
    for (int64_t t = 0; t < dv; ++t)
      out[t * outStride] = acc.data[t] * inv;
  }

  /// Whether fewRows can read keys [0, Sp) from the past: unit strides.
  bool pastReadable() const {
    return q.strides[3] == 1 && k.strides[3] == 1 && v.strides[3] == 1 &&
           o.strides[3] == 1 && (!past.k || past.k->strides[3] == 1) &&
           (!past.v || past.v->strides[3] == 1);
  }

  /// Rows [i0, i1) of head (b, h), K and V read in place; with fromPast
  /// (pastReadable), keys [0, Sp) of K and of V from the past instead.
  /// With unit strides, each row reads only its live keys (blockKeys: a
  /// sliding window's,
  /// after a left padding's, before the zero rows of a cache longer than
  /// the sequence), from a multiple of kKeyAlign: each of its sums (the
  /// exponentials' 16 lanes, the weighted sum's even and odd keys) adds
  /// the same terms in the same order as over all keys, less the dead
  /// keys' exact zeros, so the result has the same bits. A window of 256
  /// keys at a 1024-token past, 16 heads on 4 K/V heads, one thread: 116
  /// -> 28 us in cache, 232 -> 37-41 us from DRAM.
  void fewRows(int64_t b, int64_t h, int64_t i0, int64_t i1,
               bool fromPast) const {
    Desc2D kv = view(k, b, h / group), vv = view(v, b, h / group);
    int64_t sk = k.sizes[2], d = q.sizes[3], dv = v.sizes[3];
    Desc2D kp{}, vp{};
    int64_t spk = 0, spv = 0; // keys read from the past, K's and V's
    if (fromPast && past.k) {
      kp = view(*past.k, b, h / group);
      spk = std::min(kp.sizes[0], sk);
    }
    if (fromPast && past.v) {
      vp = view(*past.v, b, h / group);
      spv = std::min(vp.sizes[0], sk);
    }
    Scratch<float> row(std::max<int64_t>(sk, 1)), rest(spv > 0 ? dv : 0);
    bool unit = q.strides[3] == 1 && k.strides[3] == 1 &&
                v.strides[3] == 1 && o.strides[3] == 1;
    for (int64_t i = i0; i < i1; ++i) {
      const float *qi = qAt(b, h, i);
      MaskRow mr[2];
      maskRows(b, h, i, mr);
      if (unit) {
        // Keys [lo, hi): row.data[j - lo] is key j's score.
        uint64_t uniform = 0;
        KeyRange keys = blockKeys(b, h, i, 1, &uniform);
        if (uniform)
          keys = {0, sk};
        int64_t lo = keys.begin, hi = keys.end, n = hi - lo;
        for (int64_t t = 0; t < maskCount; ++t)
          mr[t].at += lo * mr[t].step;
        // Scores and weighted sums over keys [from, to) of the past and
        // of K (V), clipped to [lo, hi).
        auto pastPart = [&](int64_t sp) {
          return std::make_pair(lo, std::max(lo, std::min(hi, sp)));
        };
        auto [pk0, pk1] = pastPart(spk);
        if (pk1 > pk0)
          ops.scores(qi, kp.at(pk0, 0), kp.strides[0], pk1 - pk0, d, row.data);
        if (hi > pk1)
          ops.scores(qi, kv.at(pk1, 0), kv.strides[0], hi - pk1, d,
                     row.data + (pk1 - lo));
        float inv =
            softmaxRow(row.data, n, cap(row.data, n), mr, maskCount, ops);
        float *oi = oAt(b, h, i);
        auto [pv0, pv1] = pastPart(spv);
        if (pv1 == pv0) {
          ops.weightedSum(row.data, inv, vv.at(lo, 0), vv.strides[0], n, dv,
                          oi);
          continue;
        }
        ops.weightedSum(row.data, inv, vp.at(pv0, 0), vp.strides[0], pv1 - pv0,
                        dv, oi);
        if (hi > pv1) {
          ops.weightedSum(row.data + (pv1 - lo), inv, vv.at(pv1, 0),
                          vv.strides[0], hi - pv1, dv, rest.data);
          for (int64_t t = 0; t < dv; ++t)
            oi[t] += rest.data[t];
        }
        continue;
      }
      // Strided operands, one float at a time.
      for (int64_t j = 0; j < sk; ++j) {
        const float *kj = kv.at(j, 0);
        float acc = 0.0f;
        for (int64_t t = 0; t < d; ++t)
          acc += qi[t * q.strides[3]] * kj[t * k.strides[3]];
        row.data[j] = acc;
      }
      float inv =
          softmaxRow(row.data, sk, cap(row.data, sk), mr, maskCount, ops);
      float *oi = oAt(b, h, i);
      for (int64_t t = 0; t < dv; ++t)
        oi[t * o.strides[3]] = 0.0f;
      for (int64_t j = 0; j < sk; ++j) {
        float w = row.data[j] * inv;
        const float *vj = vv.at(j, 0);
        for (int64_t t = 0; t < dv; ++t)
          oi[t * o.strides[3]] += w * vj[t * v.strides[3]];
      }
    }
  }

  /// Rows [i0, i1) of head (b, h) on the GEMM: K^T and V packed once, then
  /// kRowBlock (bf16 kernels: kBf16RowBlock) rows at a time.
  void packedRows(int64_t b, int64_t h, int64_t i0, int64_t i1) const {
    int64_t sk = k.sizes[2], d = q.sizes[3], dv = v.sizes[3];
    constexpr int64_t w = kF32PanelWidth;
    int64_t kPanels = (sk + w - 1) / w, vPanels = (dv + w - 1) / w;
    Desc2D kv = view(k, b, h / group), vv = view(v, b, h / group);
    // K^T: [D, Sk], a transposed view of K.
    Desc2D kt{kv.base, kv.data, kv.offset, {d, sk},
              {kv.strides[1], kv.strides[0]}};
    // The products' B operands, bf16 or f32.
    int64_t kpV = transfuse::bf16::paddedK(sk); // V's bf16 panels' depth
    Scratch<uint16_t> kBf16(bf16 ? kPanels * transfuse::bf16::paddedK(d) * w
                                 : 0),
        vBf16(bf16 ? vPanels * kpV * w : 0);
    bool onBf16 = bf16 && packBf16Panels(kt, kBf16.data) &&
                  packBf16Panels(vv, vBf16.data);
    // bf16 without bf16 kernels: the f32 GEMM on rounded operands.
    bool rounded = bf16 && !onBf16;
    Scratch<float> kPack(onBf16 ? 0 : kPanels * d * w),
        vPack(onBf16 ? 0 : vPanels * sk * w),
        qRounded(rounded ? kRowBlock * d : 0);
    int64_t rowBlock = onBf16 ? kBf16RowBlock : kRowBlock;
    // f32 on AVX-512: P straight into the GEMM's A panels.
    bool direct = !bf16 && f32Path() == F32Path::Avx512;
    Scratch<float> pPanels(direct ? (kRowBlock + kF32PanelRows - 1) /
                                        kF32PanelRows * kF32PanelRows * sk
                                  : 0);
    float mx[kRowBlock];
    if (!onBf16) {
      packF32Panels(kt, kPack.data);
      packF32Panels(vv, vPack.data);
    }
    if (rounded) {
      roundToBf16(kPack.data, kPanels * d * w);
      roundToBf16(vPack.data, vPanels * sk * w);
    }
    // The scores of a block's keys [k0, k0 + n) (k0 a multiple of w): Q K^T
    // on K^T's panels from k0 / w.
    auto scoresProduct = [&](Desc2D &a, Desc2D &c, int64_t k0) {
      if (onBf16)
        return matmulBf16Packed(
            a, kBf16.data + k0 / w * transfuse::bf16::paddedK(d) * w, c, false);
      Desc3D kDesc{kPack.data,
                   kPack.data,
                   k0 / w * d * w,
                   {kPanels - k0 / w, d, w},
                   {d * w, w, 1}};
      _mlir_ciface_transfuse_matmul_f32_packed(&a, &kDesc, &c, 0);
    };
    // P V over the block's keys [k0, k0 + n) (a's columns): V's panels are
    // Sk deep, so unless those are all Sk a product per panel of V (and of
    // C's columns), each reading rows [k0, k0 + n) of its panel.
    auto valuesProduct = [&](auto &&product, int64_t k0, int64_t n,
                             const Desc2D &c) {
      if (k0 == 0 && n == sk)
        return product(0, c);
      for (int64_t jp = 0; jp < vPanels; ++jp) {
        Desc2D cj = c;
        cj.offset += jp * w * c.strides[1];
        cj.sizes[1] = std::min(w, dv - jp * w);
        product(jp, cj);
      }
    };
    // Scores rows padded to a multiple of 16 floats, plus 16 so that rows
    // do not fall on the same cache sets.
    int64_t ld = (sk + 15) / 16 * 16 + 16;
    Scratch<float> scores(rowBlock * ld);
    // On the bf16 kernels, P goes from the scores straight into the GEMM's
    // A panels, unnormalized, in the pass that exponentiates it
    // (expRowToBf16Panel).
    Scratch<uint16_t> pPack(onBf16 ? transfuse::bf16::aPanelsSize(rowBlock, sk)
                                   : 0);
    float inv[kBf16RowBlock];
    for (int64_t r0 = i0; r0 < i1; r0 += rowBlock) {
      int64_t rows = std::min(rowBlock, i1 - r0);
      // The block's keys: [k0, k0 + n). On the f32 GEMM, rows whose softmax
      // is uniform are left out of them, and computed alone at the end.
      uint64_t uniform = 0;
      KeyRange keys = blockKeys(b, h, r0, rows, onBf16 ? nullptr : &uniform);
      int64_t k0 = keys.begin, n = keys.end - keys.begin;
      int64_t kpP = transfuse::bf16::paddedK(n);
      Desc2D qb{q.base, q.data,
                q.offset + b * q.strides[0] + h * q.strides[1] +
                    r0 * q.strides[2],
                {rows, d}, {q.strides[2], q.strides[3]}};
      if (rounded) {
        for (int64_t r = 0; r < rows; ++r) {
          float *dst = qRounded.data + r * d;
          for (int64_t t = 0; t < d; ++t)
            dst[t] = *qb.at(r, t);
          roundToBf16(dst, d);
        }
        qb = {qRounded.data, qRounded.data, 0, {rows, d}, {d, 1}};
      }
      Desc2D s{scores.data, scores.data, 0, {rows, n}, {ld, 1}};
      prefetchMaskRows(b, h, r0, r0 + std::min(rows, kMaskRowsAhead));
      scoresProduct(qb, s, k0);
      for (int64_t r = 0; r < rows; ++r) {
        if (r + kMaskRowsAhead < rows)
          prefetchMaskRows(b, h, r0 + r + kMaskRowsAhead,
                           r0 + r + kMaskRowsAhead + 1);
        MaskRow mr[2];
        maskRows(b, h, r0 + r, mr);
        for (int64_t t = 0; t < maskCount; ++t)
          mr[t].at += k0 * mr[t].step;
        float *row = scores.data + r * ld;
        if (direct) {
          mx[r] = ops.addMasks(row, n, cap(row, n), mr, maskCount);
          continue;
        }
        if (!onBf16) {
          inv[r] = softmaxRow(row, n, cap(row, n), mr, maskCount, ops);
          if (rounded) // the unnormalized probabilities, as on bf16 kernels
            roundToBf16(row, n);
          continue;
        }
        uint16_t *panelRow = pPack.data + transfuse::bf16::aIndex(kpP, r, 0);
        float mx = ops.addMasks(row, n, cap(row, n), mr, maskCount);
        if (mx == kNegInf) { // a fully masked row: zeros
          for (int64_t p = 0; p < kpP; p += transfuse::bf16::kBlockK)
            std::fill_n(panelRow + p * transfuse::bf16::kPanelRows,
                        transfuse::bf16::kBlockK, uint16_t(0));
          inv[r] = 0.0f;
          continue;
        }
        float sum = expRowToBf16Panel(row, n, mx, kpP, panelRow);
        inv[r] = sum > 0.0f ? 1.0f / sum : 0.0f;
      }
      Desc2D ob{o.base, o.data,
                o.offset + b * o.strides[0] + h * o.strides[1] +
                    r0 * o.strides[2],
                {rows, dv}, {o.strides[2], o.strides[3]}};
      if (onBf16) {
        zeroBf16PanelTail(rows, kpP, pPack.data);
        valuesProduct(
            [&](int64_t jp, const Desc2D &c) {
              matmulBf16PrepackedA(pPack.data, rows, n,
                                   vBf16.data + (jp * kpV + k0) * w, c, false);
            },
            k0, n, ob);
      } else if (direct) {
        float sums[kRowBlock];
        expRowsToF32Panels(scores.data, ld, rows, n, mx, pPanels.data, sums);
        for (int64_t r = 0; r < rows; ++r)
          inv[r] = sums[r] > 0.0f ? 1.0f / sums[r] : 0.0f;
        valuesProduct(
            [&](int64_t jp, const Desc2D &c) {
              matmulF32PackedA(pPanels.data, rows, n,
                               vPack.data + (jp * sk + k0) * w, c);
            },
            k0, n, ob);
      } else {
        valuesProduct(
            [&](int64_t jp, Desc2D c) {
              Desc3D vDesc{vPack.data,
                           vPack.data,
                           (jp * sk + k0) * w,
                           {vPanels - jp, sk - k0, w},
                           {sk * w, w, 1}};
              _mlir_ciface_transfuse_matmul_f32_packed(&s, &vDesc, &c, 0);
            },
            k0, n, ob);
      }
      // P was not normalized: the rows' sums divide the output.
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t t = 0; t < dv; ++t)
          *ob.at(r, t) *= inv[r];
      for (int64_t r = 0; r < rows; ++r)
        if (uniform >> r & 1)
          uniformRow(b, h, r0 + r, vPack.data, ob.at(r, 0), ob.strides[1]);
    }
  }
};

void attention(Desc4D *q, Desc4D *k, Desc4D *v, Desc4D *m0, Desc4D *m1,
               Desc4D *o, int64_t masks, float scale, float softcap,
               int64_t flags, Past past) {
  int64_t batch = q->sizes[0], heads = q->sizes[1], sq = q->sizes[2],
          sk = k->sizes[2], dv = v->sizes[3], kvHeads = k->sizes[1];
  double flops = 2.0 * batch * heads * sq * sk * (q->sizes[3] + dv);
  profile::Scope scope((flags & 1) ? "attention_bf16" : "attention_f32",
                       {batch, heads, sq, sk, dv}, flops);
  // The tasks of a call of under 2^20 flops (a decode step's over a short
  // past) that copies under 512 KiB of past K and V run on the calling
  // thread, split as for `threads`: two parallel loops (the grouped heads'
  // past copies, the heads) cost more than they save. bench/genai.py's
  // int4 Llama (4 K/V heads of 64: 264 KB at past 128), a decode step at
  // two threads, alternated .so's, 3 rounds: past 128 (0.5 MFLOP a call)
  // 4.97-5.47 -> 4.63-4.74 ms; past 1023 (4.2 MFLOP) level with the loops
  // kept (7.8-8.4 ms), and 8.0-8.3 without them. GPT-2's decode at past
  // 128 (12 heads: 0.4 MFLOP, but 792 KB of copies), same rounds, on the
  // pool 18.5-19.1 ms, on one thread 18.8-20.0, with this bound 18.3-18.8:
  // its copies want both cores.
  int64_t threads = numThreads();
  bool copies = past.k || past.v;
  double copyBytes =
      copies ? 4.0 * batch * kvHeads * sk * (q->sizes[3] + dv) : 0.0;
  bool onPool = threads > 1 &&
                (flops >= double(1 << 20) || copyBytes >= double(512 << 10));
  auto copyPast = [&](int64_t b, int64_t h, bool stream) {
    Past::copyHead(past.k, *k, b, h, stream);
    Past::copyHead(past.v, *v, b, h, stream);
  };
  // Every K/V head's past rows, a task each, with plain stores.
  auto copyAllPast = [&] {
    forEach(k->sizes[0] * kvHeads, onPool,
            [&](int64_t t) { copyPast(t / kvHeads, t % kvHeads, false); });
  };
  if (batch == 0 || heads == 0 || sq == 0 || dv == 0) {
    // No output, but the cache's rows are still the call's to write.
    if (copies)
      copyAllPast();
    return;
  }
  masks = std::clamp<int64_t>(masks, 0, 2);
  Desc4D maskViews[2];
  for (int64_t t = 0; t < masks; ++t) {
    maskViews[t] = *(t == 0 ? m0 : m1);
    if (rowsRepeat(maskViews[t]))
      maskViews[t].sizes[2] = 1;
  }
  int64_t group = heads / std::max<int64_t>(kvHeads, 1);
  Call call{*q,
            *k,
            *v,
            *o,
            {&maskViews[0], &maskViews[1]},
            masks,
            scale,
            softcap,
            group,
            rowOps(f32Path()),
            (flags & 1) != 0,
            past};

  // Rows of a head per task: all of them, unless there are fewer than four
  // heads per thread.
  int64_t bh = batch * heads;
  int64_t split = bh >= 4 * threads ? 1
                                    : std::min((sq + kRowBlock - 1) / kRowBlock,
                                               (4 * threads + bh - 1) / bh);
  split = std::max<int64_t>(split, 1);
  // A task copies its head's past rows when it is the only one to read
  // them; else (grouped K/V heads, a head's rows split) the copies come
  // first, one task per K/V head.
  bool copyInTask = copies && group == 1 && split == 1;
  if (copies && !copyInTask)
    copyAllPast();
  if (sk == 0) {
    // No keys: every row is empty, and gives zeros.
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < sq; ++i)
          for (int64_t t = 0; t < dv; ++t)
            call.oAt(b, h, i)[t * o->strides[3]] = 0.0f;
    return;
  }
  int64_t rowsPerTask = (sq + split - 1) / split;
  bool packed = rowsPerTask >= kFewRows;
  // Where each block of query rows (a decode step's: each row) may stop
  // reading keys.
  const Desc4D *maskPtrs[2] = {&maskViews[0], &maskViews[1]};
  LiveKeys live(maskPtrs, masks, batch, sq, sk);
  call.live = &live;
  // A decode step's task streams its head's past rows into K and V and
  // reads them from the past.
  bool fromPast = copyInTask && !packed && call.pastReadable();
  auto task = [&](int64_t t) {
    int64_t head = t / split, part = t % split;
    int64_t b = head / heads, h = head % heads;
    if (copyInTask)
      copyPast(b, h, fromPast);
    int64_t i0 = part * rowsPerTask, i1 = std::min(sq, i0 + rowsPerTask);
    if (i0 >= i1)
      return;
    if (packed)
      call.packedRows(b, h, i0, i1);
    else
      call.fewRows(b, h, i0, i1, fromPast);
  };
  forEach(bh * split, onPool, task);
}

} // namespace

extern "C" __attribute__((visibility("default"))) void
_mlir_ciface_transfuse_attention_f32(Desc4D *q, Desc4D *k, Desc4D *v,
                                     Desc4D *m0, Desc4D *m1, Desc4D *o,
                                     int64_t masks, float scale, float softcap,
                                     int64_t flags) {
  attention(q, k, v, m0, m1, o, masks, scale, softcap, flags,
            {nullptr, nullptr});
}

/// The attention with a KV cache's past rows to copy into K and V first
/// (Past); an empty kPast or vPast (sizes[2] = 0) copies nothing.
extern "C" __attribute__((visibility("default"))) void
_mlir_ciface_transfuse_attention_f32_past(Desc4D *q, Desc4D *k, Desc4D *v,
                                          Desc4D *m0, Desc4D *m1, Desc4D *o,
                                          Desc4D *kPast, Desc4D *vPast,
                                          int64_t masks, float scale,
                                          float softcap, int64_t flags) {
  attention(q, k, v, m0, m1, o, masks, scale, softcap, flags,
            {kPast->sizes[2] > 0 ? kPast : nullptr,
             vPast->sizes[2] > 0 ? vPast : nullptr});
}
