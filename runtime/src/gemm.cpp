//===- gemm.cpp - the f32 GEMM microkernel generated code calls -----------===//
//
// IREE-style split: the compiler keeps the fusion, and calls this routine
// for the product itself. `transfuse-cpu-matmul-to-microkernel` rewrites
// each f32 `linalg.matmul` on buffers into
//   _mlir_ciface_transfuse_matmul_f32(&A, &B, &C, accumulate)
// on strided 2-D descriptors, or, when B is a constant (a weight), with B
// packed into the kernel's panel layout at compile time:
//   _mlir_ciface_transfuse_matmul_f32_packed(&A, &Bpacked, &C, accumulate)
// Both compute C = A * B, plus C's old value when `accumulate` is non-zero
// (the compiler passes 0 where the product's C was just filled with zeros,
// and drops the fill). A `linear`'s epilogue, act(C + bias) + residual,
// comes along when the pass recognizes it:
//   _mlir_ciface_transfuse_linear_f32_packed(&A, &Bpacked, &C, &bias,
//                                            &residual, flags)
// applies it to each tile of C after its last K slice (epilogue.cpp);
// any other epilogue stays a pass the compiler generates. Where one
// linear's output is another's A (the FFN's up and down products),
// transfuse-cpu-a-panels makes both
//   _mlir_ciface_transfuse_linear_f32_panels(&A, &Apanels, &Bpacked, &C,
//                                            &bias, &residual, flags,
//                                            &Cpanels)
// and the first writes each finished tile of C straight into the second's
// A panels (transposed in registers, storeRows4), instead of into C for
// the second to pack: where nothing else reads C, only there. Paired runs
// on the Xeon of docs/benchmarks.md (alternated `.so`s, medians of 3-4
// rounds, faster in every round): t5-base encoder at 512 tokens 483.7 ->
// 471.7 ms at one thread, 250.5 -> 245.3 at two; bert-base at 512 tokens
// 482.7 -> 472.3, gpt2 prefill at 512 496.1 -> 484.6; bert-base at 128
// tokens 107.2 -> 106.0 and 60.3 -> 59.5.
//
// Layout and blocking (Goto/BLIS): B is in panels of kNr = 32 columns, each
// [K][32] (a weight comes so; any other B is packed so first); A is packed
// into panels of kMr = 12 rows, each [K][12]. Register-blocked kernels
// run over K slices of one A panel and B panels (all of a K up to
// kWholeK, else kWholeK deep): on AVX-512, where two whole B panels are
// left, R x 64 (kernelWide: R <= 6 rows of the A panel, 4R accumulators,
// two calls a panel), else R x 32 (`kernel`: R <= 12 rows, 2R
// accumulators; the AVX2 kernels always). The B slices stay in L2 while
// the kernels walk down a block of rows (rowBlockRows), and the next ones
// are prefetched into L2 meanwhile (weights come from DRAM), as is the
// next tile of C (and of a residual) before
// the call that first touches it; a single row panel (decode) takes whole
// panels, K unsplit: with at most 6 rows (AVX-512) several panels at a time
// (four up to 3 rows, three at 4, two at 5-6: streamPanels), as that many
// streams from DRAM, else one stream prefetched 4 KiB ahead. Edge rows take a
// kernel with fewer rows, edge columns masked loads and stores; only a C with
// strided columns goes through a tile buffer. Packing buffers come from
// alloc.cpp's cache.
//
// A product by a B that is not prepacked, with at most kFewRows rows of A
// (decode attention), reads B directly instead: its rows (matmulFewRows),
// or, when B is a transposed view with contiguous columns (the keys of a
// score product, K^T), dot products of A's rows with those columns
// (matmulFewRowsTransposed).
//
// matmulF32PackedA takes an A already in its panels (the attention's
// probabilities, written there by its softmax pass).
//
// Threads: the pool in thread_pool.cpp. Packing A is split by row panels;
// the product by (row block, column chunk) tasks, several per thread and
// shrinking toward the end (ColumnChunks in gemm.h), taken dynamically.
// Each element of C is computed by one task in a fixed order, so results
// do not depend on the thread count.
//
// Without AVX-512 (or with TRANSFUSE_GEMM=avx2), the same driver runs AVX2
// kernels (`kernelAvx2`: R x 32 as groups of 3 rows x 4 ymm accumulators,
// masked loads and stores at the edges) on A packed without the vector
// transposes; the few-row paths are AVX-512 only, so few rows go through
// the packed product there. Without AVX2 and FMA either (or with
// TRANSFUSE_GEMM=portable) a portable loop nest runs instead: hundreds of
// times slower (bert-base: 33 s against 0.12 s).
//
//===----------------------------------------------------------------------===//
#include "gemm.h"
#include "profile.h"
#include "transfuse/q4_panels.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <immintrin.h>
#include <unistd.h>

using namespace transfuse::runtime::gemm;
using transfuse::runtime::numThreads;
namespace profile = transfuse::runtime::profile;

namespace {

constexpr int64_t kMr = 12, kNr = 32;
static_assert(kMr == kF32PanelRows); // matmulF32PackedA's panels
/// A K up to this is one pass, its B slice (96 KiB) read from L2 by each
/// row panel, so that C's tiles are written once instead of read and
/// written again on every later pass: a cold C (a model's output buffer,
/// out of cache) cost the most of a product's operands. Paired runs on a
/// Xeon (alternated `.so`s, 5 rounds): bert-base f32 at 128 tokens 113.7
/// -> 110.7 ms at one thread, 62.2 -> 61.5 at two; gpt2 prefill 112.8 ->
/// 111.0 and 63.3 -> 62.9; the t5-base encoder and bert-base at 512 tokens
/// level. A driver on 512 x 768 x 3072 (one thread): 212-213 -> 216-217
/// GFLOP/s warm, 203 -> 206-207 cold.
///
/// A larger K goes in passes of kWholeK. On AVX-512 these were passes of
/// 256 (a 32 KiB B slice, in L1) until the products with K = 3072 (the FFN
/// down products: 12 passes, each loading and storing C's tiles, instead
/// of 4) were measured on a Zen 4 (1 MiB of L2 per core). That product in
/// the models (TRANSFUSE_PROFILE=1, passes of 256 against 768, alternated,
/// 3 rounds each, faster in each): bert-base at 128 tokens 100.4-106.7 ->
/// 105.8-110.3 GFLOP/s at one thread (1536 and 3072: 106.7-109.6),
/// 204.7-213.2 -> 213.9-217.5 at two; the t5-base encoder at 512 tokens
/// 104.7-106.9 -> 109.2-109.8 at one. The sums are the same to the bit: a
/// pass starts from the tile the last one stored, so each element adds its
/// K terms in the same order either way. On a Xeon (family 6, model 167,
/// 2 MiB of L2) too: the t5-base encoder at 512 tokens, one thread, `.so`s
/// alternated over 4 rounds, 702-728 ms with 768 against 709-761 with
/// 256, faster in each round.
///
/// The AVX2 kernels, which sweep the B slice once per group of three rows,
/// gain more: each pass loads and stores the C tile, which for a 3-row
/// group costs as much as several K steps. On a Zen 4 (AVX2's FMA peak the
/// same as AVX-512's there), bench/gemm_bench.cpp with TRANSFUSE_GEMM=avx2:
/// 79-85% of the peak with passes of 256 (64 and 128 were slower), 87-88%
/// with 512, 89-93% with 768; 1024 and 3072 no better. In the models (same
/// Zen 4, alternated `.so`s, TRANSFUSE_GEMM=avx2, faster in every round):
/// bert-base at 128 tokens 241.6 -> 225.0 ms at one thread (4 rounds),
/// 127.3 -> 119.8 at two (3); the t5-base encoder at 512 tokens 1061 ->
/// 993 ms (3). Not measured on an AVX2-only CPU (smaller L2s: the 96 KiB
/// slice still fits a 256 KiB one).
constexpr int64_t kWholeK = 768;

/// The most rows of A a row block has (tasks are row blocks x column
/// chunks): A's block, kWholeK deep, stays in L2 while the kernel sweeps it
/// once per B slice, so it takes at most half of L2 (the rest: the B slice,
/// the next one being prefetched, C's tiles), and at most 240 rows. 240
/// was tuned on a Xeon with 2 MiB of L2 (a 720 KiB block); on a Zen 4
/// with 1 MiB, that block left too little room, and 168 rows (4 blocks of
/// 132 at 512 tokens instead of 3 of 180; measured as 144, which splits
/// 512 rows the same way) was faster in every pair at one thread
/// (TRANSFUSE_PROFILE=1, alternated, 4 pairs each, ms per run): the
/// t5-base encoder at 512 tokens 888.7-896.2 against 890.3-900.2,
/// bert-base 897.0-906.6 against 902.7-926.0; at two threads level within
/// the noise (t5: 485.6-503.6 against 452.6-508.5). L2's size comes from
/// sysconf (240 rows when it is not known).
int64_t rowBlockRows() {
  static const int64_t rows = [] {
    long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (l2 <= 0)
      return int64_t(240);
    int64_t fit = l2 / 2 / int64_t(kWholeK * sizeof(float)) / kMr * kMr;
    return std::clamp<int64_t>(fit, 4 * kMr, 240);
  }();
  return rows;
}

/// C[i][j] = (accumulate ? C[i][j] : 0) + sum_k A[i][k] B[k][j], any strides.
void matmulPortable(const Desc2D &a, const Desc2D &b, const Desc2D &c,
                    bool accumulate) {
  if (!accumulate)
    zero(c);
  int64_t m = a.sizes[0], k = a.sizes[1], n = b.sizes[1];
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < k; ++p) {
      float av = *a.at(i, p);
      float *crow = c.at(i, 0);
      const float *brow = b.at(p, 0);
      for (int64_t j = 0; j < n; ++j)
        crow[j * c.strides[1]] += av * brow[j * b.strides[1]];
    }
}

/// The portable path on prepacked B.
void matmulPackedPortable(const Desc2D &a, const float *packed,
                          const Desc2D &c, bool accumulate) {
  if (!accumulate)
    zero(c);
  int64_t m = a.sizes[0], k = a.sizes[1], n = c.sizes[1];
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < k; ++p) {
      float av = *a.at(i, p);
      for (int64_t j = 0; j < n; ++j)
        *c.at(i, j) += av * packed[(j / kNr) * k * kNr + p * kNr + j % kNr];
    }
}

/// dst[c * ldd + r] = src[r * lds + c] for r, c < 16, through transpose16.
__attribute__((target("avx512f"))) void
transposeBlock(const float *src, int64_t lds, float *dst, int64_t ldd) {
  __m512i r[16];
  for (int i = 0; i < 16; ++i)
    r[i] = _mm512_castps_si512(_mm512_loadu_ps(src + i * lds));
  transpose16(r);
  for (int c = 0; c < 16; ++c)
    _mm512_storeu_ps(dst + c * ldd, _mm512_castsi512_ps(r[c]));
}

/// B as panels of kNr columns, each [K][kNr], zero padded on the right.
void packB(const Desc2D &b, float *out, bool parallel) {
  int64_t k = b.sizes[0], n = b.sizes[1], panels = (n + kNr - 1) / kNr;
  bool avx512 = f32Path() == F32Path::Avx512;
  forEach(panels, parallel, [&](int64_t jp) {
    int64_t j0 = jp * kNr, w = std::min(kNr, n - j0);
    float *panel = out + jp * k * kNr;
    if (b.strides[0] == 1 && b.strides[1] != 1) {
      // A transposed view (B = K^T, the keys of attention's scores): each
      // column of B is contiguous. Full panels go 16 columns x 16 K steps
      // at a time through transposeBlock; the rest is read a column at a time
      // and scattered down the panel, as all of it was before (t5-base
      // encoder at two threads, keys read at the merged QKV projection's
      // row stride: packB 1.4 ms of CPU per run in perf, then the 16 x 16
      // transposes 0.44 and packB 0.02; the encoder 67.0 -> 64.6 ms, 9
      // paired rounds).
      int64_t p0 = 0;
      if (avx512 && w == kNr)
        for (; p0 + 16 <= k; p0 += 16)
          for (int64_t h = 0; h < kNr; h += 16)
            transposeBlock(b.at(p0, j0 + h), b.strides[1], panel + p0 * kNr + h,
                           kNr);
      for (int64_t j = 0; j < kNr; ++j) {
        const float *src = j < w ? b.at(0, j0 + j) : nullptr;
        for (int64_t p = p0; p < k; ++p)
          panel[p * kNr + j] = src ? src[p] : 0.0f;
      }
      return;
    }
    for (int64_t p = 0; p < k; ++p) {
      const float *src = b.at(p, j0);
      float *dst = panel + p * kNr;
      if (b.strides[1] == 1)
        std::memcpy(dst, src, w * sizeof(float));
      else
        for (int64_t j = 0; j < w; ++j)
          dst[j] = src[j * b.strides[1]];
      std::fill(dst + w, dst + kNr, 0.0f);
    }
  });
}

/// Row r of A's row panel ip, K steps from p0 on, into the panel. A panel
/// of h < kMr rows (the last) keeps its other rows unwritten: the h-row
/// kernel that multiplies it reads none of them.
inline void packRow(const Desc2D &a, int64_t ip, int64_t r, int64_t p0,
                    float *panel) {
  int64_t k = a.sizes[1];
  const float *src = a.at(ip * kMr + r, 0);
  for (int64_t p = p0; p < k; ++p)
    panel[p * kMr + r] = src[p * a.strides[1]];
}

/// K steps [p, p + 16) of four rows of A with unit column stride (src[q],
/// q < 4) into a panel's columns r0..r0+3 (dst = panel + r0), through
/// storeRows4.
__attribute__((target("avx512f"))) inline void
packRows4(const float *const src[4], int64_t p, float *dst) {
  __m512 v[4];
  for (int q = 0; q < 4; ++q)
    v[q] = _mm512_loadu_ps(src[q] + p);
  storeRows4(v, dst + p * kMr);
}

/// A as panels of kMr rows, each [K][kMr] (see packRow). With unit
/// column stride, groups of four rows go through packRows4, all groups of
/// a panel per 16 K steps, so each stretch of the panel is written whole
/// while it is in L1.
__attribute__((target("avx512f"))) void packA(const Desc2D &a, float *out,
                                              bool parallel) {
  int64_t m = a.sizes[0], k = a.sizes[1], panels = (m + kMr - 1) / kMr;
  forEach(panels, parallel, [&](int64_t ip) {
    float *panel = out + ip * k * kMr;
    int64_t h = std::min(kMr, m - ip * kMr);
    int64_t groups = a.strides[1] == 1 ? h / 4 : 0, vecK = k / 16 * 16;
    const float *src[kMr / 4][4];
    for (int64_t g = 0; g < groups; ++g)
      for (int q = 0; q < 4; ++q)
        src[g][q] = a.at(ip * kMr + 4 * g + q, 0);
    for (int64_t p = 0; p < vecK && groups > 0; p += 16)
      for (int64_t g = 0; g < groups; ++g)
        packRows4(src[g], p, panel + 4 * g);
    for (int64_t r = 0; r < h; ++r)
      packRow(a, ip, r, r < 4 * groups ? vecK : 0, panel);
  });
}

/// packA without the vector transposes (the AVX2 path).
void packAScalar(const Desc2D &a, float *out, bool parallel) {
  int64_t m = a.sizes[0], k = a.sizes[1], panels = (m + kMr - 1) / kMr;
  forEach(panels, parallel, [&](int64_t ip) {
    int64_t h = std::min(kMr, m - ip * kMr);
    for (int64_t r = 0; r < h; ++r)
      packRow(a, ip, r, 0, out + ip * k * kMr);
  });
}

/// A tile of C (h <= kMr rows, w <= kNr columns, at src with row stride
/// ld) into the A panels of the product C feeds, whose K is C's N: dst is
/// the panel's element for the tile's first row and column, and column x
/// of row r goes to dst[x * kMr + r].
void storePanelScalar(const float *src, int64_t ld, int64_t h, int64_t w,
                      float *dst) {
  for (int64_t r = 0; r < h; ++r)
    for (int64_t x = 0; x < w; ++x)
      dst[x * kMr + r] = src[r * ld + x];
}

/// storePanelScalar with groups of four rows of a whole-width tile
/// transposed in registers (storeRows4).
__attribute__((target("avx512f"))) void storePanelAvx512(const float *src,
                                                         int64_t ld, int64_t h,
                                                         int64_t w,
                                                         float *dst) {
  int64_t groups = w == kNr ? h / 4 : 0;
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t half = 0; half < 2; ++half) {
      __m512 v[4];
      for (int q = 0; q < 4; ++q)
        v[q] = _mm512_loadu_ps(src + (4 * g + q) * ld + 16 * half);
      storeRows4(v, dst + 16 * half * kMr + 4 * g);
    }
  storePanelScalar(src + 4 * groups * ld, ld, h - 4 * groups, w,
                   dst + 4 * groups);
}

/// Prefetches into L2 a share of the next B slice while a kernel runs:
/// `lines` cache lines from `pf`, at the start of each group of four K
/// steps, as many per group as it takes to cover them in the first groups
/// (one, where there are no more lines than groups). The kernels test this
/// once per group: before, each step tested whether it was its turn to
/// prefetch, spreading the lines over the whole call, and that test and
/// its counters were several integer instructions a step next to the
/// FMAs. With this, the pointer-walking loops and (AVX-512) kernelWide,
/// bench/gemm_bench.cpp's products went from 71-79% of the FMA peak to
/// 77-84% on the Xeon of docs/benchmarks.md, and its AVX2 kernels
/// (TRANSFUSE_GEMM=avx2) from 73-77% of theirs to 85-91%.
struct SlicePrefetch {
  const char *pf;
  int64_t perGroup, groups;
  SlicePrefetch(const float *p, int64_t lines, int64_t kc)
      : pf(reinterpret_cast<const char *>(p)) {
    int64_t all = std::max<int64_t>(1, kc / 4);
    perGroup = lines > 0 ? (lines + all - 1) / all : 0;
    groups = perGroup > 0 ? (lines + perGroup - 1) / perGroup : 0;
  }
  /// The lines of group g (K steps 4g..4g+3), groups taken in order.
  __attribute__((always_inline)) void at(int64_t g) {
    if (g >= groups)
      return;
    _mm_prefetch(pf, _MM_HINT_T1);
    pf += 64;
    // More than one a group only where a product has few row panels.
    if (__builtin_expect(perGroup > 1, 0))
      for (int64_t q = 1; q < perGroup; ++q, pf += 64)
        _mm_prefetch(pf, _MM_HINT_T1);
  }
};

/// The kernels' K loop (`kernel`, kernelWide, groupAvx2): STEP(b, a) for
/// KC K steps from B0 and A0, b and a advancing by a B panel row (kNr
/// floats) and an A panel row (kMr), in groups of four (unrolled: -5% of
/// the product's time in bench/gemm_bench.cpp), each group starting with
/// NEXT.at(g) (a SlicePrefetch) when PREFETCH, then the steps left. The
/// loops advance pointers, not indices, which left several integer
/// instructions a step competing with the FMAs for their ports. A macro,
/// not a template: a template could not take the kernels' step lambdas,
/// whose target attributes clang does not inline into a function without
/// them.
#define TF_K_LOOP(KC, B0, A0, PREFETCH, NEXT, STEP)                            \
  do {                                                                         \
    const float *b_ = (B0), *a_ = (A0);                                        \
    int64_t p_ = 0;                                                            \
    for (int64_t g_ = 0; p_ + 4 <= (KC);                                       \
         ++g_, p_ += 4, b_ += 4 * kNr, a_ += 4 * kMr) {                        \
      if (PREFETCH)                                                            \
        (NEXT).at(g_);                                                         \
      _Pragma("GCC unroll 4") for (int u_ = 0; u_ < 4; ++u_)                   \
          STEP(b_ + u_ * kNr, a_ + u_ * kMr);                                  \
    }                                                                          \
    for (; p_ < (KC); ++p_, b_ += kNr, a_ += kMr)                              \
      STEP(b_, a_);                                                            \
  } while (0)

/// out[R][32] (row stride ldo; columns masked by m0, m1) = (load ? out : 0)
/// + A panel slice (kc x kMr, first R rows used) * B panel slice (kc x kNr).
/// Along the way it prefetches `pfLines` cache lines from `pf` into L2
/// (SlicePrefetch: a share of the next B slice).
/// With `Stream` (a single row panel, decode): B is read as one stream
/// from DRAM, panel after panel, and each step prefetches into L2 the two
/// lines kStreamAhead steps (4 KiB) further on, past the panel's end into
/// the next one; `pf` is unused. The hardware's streamer stops at every
/// 4 KiB page; on the Xeon of docs/benchmarks.md this took the M = 1
/// product from DRAM from 0.77 to 0.69 ms (bench/gemm_bench.cpp, medians
/// of 4; 16, 48, 64, 96 and 128 steps ahead, and prefetches into L1, were
/// slower).
constexpr int64_t kStreamAhead = 32;

template <int R, bool Stream = false>
__attribute__((target("avx512f"))) void
kernel(int64_t kc, const float *ap, const float *bp, float *out, int64_t ldo,
       __mmask16 m0, __mmask16 m1, bool load, const float *pf,
       int64_t pfLines) {
  __m512 c0[R], c1[R];
  __mmask16 l0 = load ? m0 : 0, l1 = load ? m1 : 0;
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    c0[r] = _mm512_maskz_loadu_ps(l0, out + r * ldo);
    c1[r] = _mm512_maskz_loadu_ps(l1, out + r * ldo + 16);
  }
  SlicePrefetch next(pf, Stream ? 0 : pfLines, kc);
  // One K step at b (the B slice's row) and a (the A panel's).
  auto step = [&](const float *b, const float *a)
      __attribute__((always_inline, target("avx512f"))) {
    if (Stream) {
      _mm_prefetch((const char *)(b + kStreamAhead * kNr), _MM_HINT_T1);
      _mm_prefetch((const char *)(b + kStreamAhead * kNr + 16), _MM_HINT_T1);
    }
    __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      __m512 av = _mm512_set1_ps(a[r]);
      c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
    }
  };
  TF_K_LOOP(kc, bp, ap, !Stream, next, step);
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    _mm512_mask_storeu_ps(out + r * ldo, m0, c0[r]);
    _mm512_mask_storeu_ps(out + r * ldo + 16, m1, c1[r]);
  }
}

/// Two whole B panels at once: out[R][64] (row stride ldo) = (load ? out :
/// 0) + A panel slice (kc x kMr; rows ap[0..R), R <= 6) * the slices of
/// two adjacent B panels (bp and bp + panelStride, kc x kNr each), with
/// SlicePrefetch's share of the next slices. The product runs each row
/// panel as two of these (rows 0-5, then 6-11) where two whole panels are
/// left, instead of one 12 x 32 `kernel`: four B vectors and six
/// broadcasts a step instead of two and twelve, for the same 24 FMAs.
/// Each element is summed in the same order as by `kernel`, so the results
/// are the same to the bit. On the Xeon of docs/benchmarks.md (family 6,
/// model 167), one thread, a copy of both kernels in a driver of the
/// product's loops (132 x 768 x N, N = 768, 2304, 3072, B from L3, best of
/// 15): 12 x 32 at 80-84% of the FMA peak, this at 82-88%; with A and B
/// in L1, 83-84% against 84-86%. That core loses FMA throughput to loads
/// even from L1 (a loop of 24 independent FMAs ran at 91% of its peak
/// with 6 zmm loads beside them, 85% with 10, 78% with 14; with 10
/// broadcasts 93%, 14 90%): fewer loads per FMA is what pays.
template <int R>
__attribute__((target("avx512f"))) void
kernelWide(int64_t kc, const float *ap, const float *bp, int64_t panelStride,
           float *out, int64_t ldo, bool load, const float *pf,
           int64_t pfLines) {
  __m512 c0[R], c1[R], c2[R], c3[R];
  __mmask16 l = load ? 0xFFFF : 0;
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    c0[r] = _mm512_maskz_loadu_ps(l, out + r * ldo);
    c1[r] = _mm512_maskz_loadu_ps(l, out + r * ldo + 16);
    c2[r] = _mm512_maskz_loadu_ps(l, out + r * ldo + 32);
    c3[r] = _mm512_maskz_loadu_ps(l, out + r * ldo + 48);
  }
  SlicePrefetch next(pf, pfLines, kc);
  // As in `kernel`: one step at b (the first panel's row; the second's is
  // panelStride on) and a.
  auto step = [&](const float *b, const float *a)
      __attribute__((always_inline, target("avx512f"))) {
    __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
    __m512 b2 = _mm512_loadu_ps(b + panelStride);
    __m512 b3 = _mm512_loadu_ps(b + panelStride + 16);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      __m512 av = _mm512_set1_ps(a[r]);
      c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
      c2[r] = _mm512_fmadd_ps(av, b2, c2[r]);
      c3[r] = _mm512_fmadd_ps(av, b3, c3[r]);
    }
  };
  TF_K_LOOP(kc, bp, ap, true, next, step);
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    _mm512_storeu_ps(out + r * ldo, c0[r]);
    _mm512_storeu_ps(out + r * ldo + 16, c1[r]);
    _mm512_storeu_ps(out + r * ldo + 32, c2[r]);
    _mm512_storeu_ps(out + r * ldo + 48, c3[r]);
  }
}

/// Rows of A a kernelWide call takes (a row panel is two calls).
constexpr int64_t kWideRows = 6;
static_assert(2 * kWideRows == kMr);

using WideKernel = void (*)(int64_t, const float *, const float *, int64_t,
                            float *, int64_t, bool, const float *, int64_t);
constexpr WideKernel kWideKernels[kWideRows] = {kernelWide<1>, kernelWide<2>,
                                                kernelWide<3>, kernelWide<4>,
                                                kernelWide<5>, kernelWide<6>};

using Kernel = void (*)(int64_t, const float *, const float *, float *,
                        int64_t, __mmask16, __mmask16, bool, const float *,
                        int64_t);
constexpr Kernel kKernels[kMr] = {kernel<1>, kernel<2>,  kernel<3>,
                                  kernel<4>, kernel<5>,  kernel<6>,
                                  kernel<7>, kernel<8>,  kernel<9>,
                                  kernel<10>, kernel<11>, kernel<12>};

/// The AVX2 kernel's G rows (G <= 3: 4G accumulators of 8 columns, G
/// broadcasts and one B vector fill the 16 ymm registers): out[G][32] =
/// (load ? out : 0) + A panel slice rows (ap, kMr apart per K step) * B
/// panel slice; mk: the column masks of the four 8-lane quarters.
template <int G>
__attribute__((target("avx2,fma"))) inline void
groupAvx2(int64_t kc, const float *ap, const float *bp, float *out,
          int64_t ldo, const __m256i mk[4], bool load, const float *pf,
          int64_t pfLines) {
  __m256 c[G][4];
  for (int r = 0; r < G; ++r)
    for (int v = 0; v < 4; ++v)
      c[r][v] = load ? _mm256_maskload_ps(out + r * ldo + 8 * v, mk[v])
                     : _mm256_setzero_ps();
  SlicePrefetch next(pf, pfLines, kc);
  // As in `kernel`: one K step at b and a.
  auto step = [&](const float *b, const float *a)
      __attribute__((always_inline, target("avx2,fma"))) {
    __m256 av[G];
    for (int r = 0; r < G; ++r)
      av[r] = _mm256_broadcast_ss(a + r);
    for (int v = 0; v < 4; ++v) {
      __m256 bv = _mm256_loadu_ps(b + 8 * v);
      for (int r = 0; r < G; ++r)
        c[r][v] = _mm256_fmadd_ps(av[r], bv, c[r][v]);
    }
  };
  TF_K_LOOP(kc, bp, ap, true, next, step);
  for (int r = 0; r < G; ++r)
    for (int v = 0; v < 4; ++v)
      _mm256_maskstore_ps(out + r * ldo + 8 * v, mk[v], c[r][v]);
}
#undef TF_K_LOOP

/// The AVX2 kernels' column masks: the four 8-lane quarters of a 32-column
/// panel's (m0: columns 0-15, m1: 16-31, as laneMasks gives them).
__attribute__((target("avx2,fma"), always_inline)) inline void
avx2Masks(__mmask16 m0, __mmask16 m1, __m256i mk[4]) {
  alignas(32) int32_t bits[kNr];
  for (int j = 0; j < kNr; ++j)
    bits[j] = ((j < 16 ? m0 >> j : m1 >> (j - 16)) & 1) ? -1 : 0;
  for (int v = 0; v < 4; ++v)
    mk[v] = _mm256_load_si256(reinterpret_cast<const __m256i *>(bits + 8 * v));
}

/// `kernel` for CPUs with AVX2 and FMA but not AVX-512: the R rows three
/// at a time (each group sweeps the B slice, from L1, again).
template <int R>
__attribute__((target("avx2,fma"))) void
kernelAvx2(int64_t kc, const float *ap, const float *bp, float *out,
           int64_t ldo, __mmask16 m0, __mmask16 m1, bool load, const float *pf,
           int64_t pfLines) {
  __m256i mk[4];
  avx2Masks(m0, m1, mk);
  constexpr int kFull = R / 3, kRest = R % 3;
  for (int g = 0; g < kFull; ++g)
    groupAvx2<3>(kc, ap + 3 * g, bp, out + 3 * g * ldo, ldo, mk, load,
                 g == 0 ? pf : nullptr, g == 0 ? pfLines : 0);
  if constexpr (kRest > 0)
    groupAvx2<kRest>(kc, ap + 3 * kFull, bp, out + 3 * kFull * ldo, ldo, mk,
                     load, kFull == 0 ? pf : nullptr,
                     kFull == 0 ? pfLines : 0);
}

constexpr Kernel kKernelsAvx2[kMr] = {
    kernelAvx2<1>, kernelAvx2<2>,  kernelAvx2<3>,  kernelAvx2<4>,
    kernelAvx2<5>, kernelAvx2<6>,  kernelAvx2<7>,  kernelAvx2<8>,
    kernelAvx2<9>, kernelAvx2<10>, kernelAvx2<11>, kernelAvx2<12>};

/// The AVX-512 kernels of a single row panel (decode): `kernel` streaming.
constexpr Kernel kStreamKernels[kMr] = {
    kernel<1, true>,  kernel<2, true>,  kernel<3, true>,  kernel<4, true>,
    kernel<5, true>,  kernel<6, true>,  kernel<7, true>,  kernel<8, true>,
    kernel<9, true>,  kernel<10, true>, kernel<11, true>, kernel<12, true>};

/// Decode (a single row panel of at most kStreamRows rows, see gemm.h):
/// the R rows of A (read in place: A[r][p] at a[r * aRow + p * aCol])
/// times P adjacent B panels at once, whole K. Each element of C is summed
/// in the same order as by `kernel`, so either gives the same result.
/// Each stream prefetches kStreamAhead steps ahead into L2, as `kernel`
/// does for its one stream (one core's reads from DRAM, bench driver: 18.9
/// GB/s from four streams without, 19.4 with). Paired runs, one / two
/// threads (5 and 4 rounds, faster in each at one thread): gpt2 decode at
/// a 128-token past 28.6 -> 27.0 ms, 14.6 -> 14.3; the t5 decoder step
/// 29.9 -> 29.0, 16.2 -> 15.7 (16 and 64 steps ahead: level with 32).
template <int R, int P>
__attribute__((target("avx512f"))) void
kernelStreams(int64_t k, const float *a, int64_t aRow, int64_t aCol,
              const float *bp, int64_t panelStride, float *out, int64_t ldo,
              const __mmask16 *masks, bool load) {
  static_assert(kNr == 32);
  __m512 c[P][R][2];
  loadStreamTiles(c, out, ldo, masks, load);
  for (int64_t p = 0; p < k; ++p) {
    __m512 av[R];
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
      av[r] = _mm512_set1_ps(a[r * aRow + p * aCol]);
    // Each stream's two lines kStreamAhead steps on, into the L2; past a
    // panel's end, the next group's panel of this stream.
    int64_t ahead = p + kStreamAhead,
            skip = ahead < k ? 0 : P * panelStride - k * kNr;
#pragma GCC unroll 4
    for (int i = 0; i < P; ++i) {
      const float *b = bp + i * panelStride + p * kNr;
      const char *pf =
          (const char *)(bp + i * panelStride + ahead * kNr + skip);
      _mm_prefetch(pf, _MM_HINT_T1);
      _mm_prefetch(pf + 64, _MM_HINT_T1);
      __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) {
        c[i][r][0] = _mm512_fmadd_ps(av[r], b0, c[i][r][0]);
        c[i][r][1] = _mm512_fmadd_ps(av[r], b1, c[i][r][1]);
      }
    }
  }
  storeStreamTiles(c, out, ldo, masks);
}

using StreamsKernel = void (*)(int64_t, const float *, int64_t, int64_t,
                               const float *, int64_t, float *, int64_t,
                               const __mmask16 *, bool);
/// By rows and panels (streamPanels(rows) at most; null past that).
constexpr StreamsKernel kStreamsKernels[kStreamRows][kStreamPanels] = {
    {kernelStreams<1, 1>, kernelStreams<1, 2>, kernelStreams<1, 3>,
     kernelStreams<1, 4>},
    {kernelStreams<2, 1>, kernelStreams<2, 2>, kernelStreams<2, 3>,
     kernelStreams<2, 4>},
    {kernelStreams<3, 1>, kernelStreams<3, 2>, kernelStreams<3, 3>,
     kernelStreams<3, 4>},
    {kernelStreams<4, 1>, kernelStreams<4, 2>, kernelStreams<4, 3>, nullptr},
    {kernelStreams<5, 1>, kernelStreams<5, 2>, nullptr, nullptr},
    {kernelStreams<6, 1>, kernelStreams<6, 2>, nullptr, nullptr}};
static_assert(streamPanels(4) == 3 && streamPanels(5) == 2 &&
              streamPanels(kStreamRows) == 2);

/// Panels [jp, jp + count) of a 4-bit B (transfuse/q4_panels.h; K = k),
/// K steps [p0, p0 + kc), dequantized into f32 panel slices, [count][kc][32]
/// at out: (float(q) - z) * s, the importer's expression, so the floats
/// are those of the f32 weight.
void dequantSlicesScalar(const uint8_t *codes, const float *params, int64_t k,
                         int64_t jp, int64_t count, int64_t p0, int64_t kc,
                         float *out) {
  namespace q4 = transfuse::q4;
  for (int64_t i = 0; i < count; ++i)
    for (int64_t p = p0; p < p0 + kc; ++p)
      for (int64_t x = 0; x < kNr; ++x)
        *out++ = q4::value(codes, params, k, p, (jp + i) * kNr + x);
}

/// Dequantizing a 4-bit B (transfuse/q4_panels.h) on AVX-512, a block's
/// constants: a step's 16 code bytes, zero extended to 32-bit lanes (byte
/// x: column x in bits 0-3, column x + 16 in bits 4-7), are read as floats
/// by OR-ing them into the mantissa of 2^23: 2^23 + q for the low nibble,
/// 2^23 + 16 q for the high one, less 2^23 + z (2^23 + 16 z: the block's
/// zero points, stored as the codes are, read the same way), give q - z
/// (16 (q - z)) exactly, and times s (s / 16, exact: q4::fitBlock) the
/// weight the importer computed, (float(q) - z) * s, to the bit. A step
/// is two ternary-logic instructions, two subtractions and two products,
/// where an and, a shift and two conversions took the place of the first
/// two.
struct Q4Block {
  __m512 zl, zh, sl, sh;
};

/// 16 code (or zero point) bytes as 2^23 + the low nibbles (lo) and 2^23 +
/// 16 times the high ones (hi), as floats' bits.
__attribute__((target("avx512f"), always_inline)) inline void
q4Nibbles(const uint8_t *bytes, __m512 &lo, __m512 &hi) {
  const __m512i magic = _mm512_set1_epi32(0x4B000000);
  __m512i x = _mm512_cvtepu8_epi32(
      _mm_loadu_si128(reinterpret_cast<const __m128i *>(bytes)));
  // (x & mask) | magic
  lo = _mm512_castsi512_ps(
      _mm512_ternarylogic_epi32(x, _mm512_set1_epi32(0x0F), magic, 0xEA));
  hi = _mm512_castsi512_ps(
      _mm512_ternarylogic_epi32(x, _mm512_set1_epi32(0xF0), magic, 0xEA));
}

__attribute__((target("avx512f"), always_inline)) inline Q4Block
q4Block(const float *params) {
  Q4Block blk;
  q4Nibbles(reinterpret_cast<const uint8_t *>(params + kNr), blk.zl, blk.zh);
  blk.sl = _mm512_loadu_ps(params);
  blk.sh = _mm512_mul_ps(_mm512_set1_ps(0.0625f), _mm512_loadu_ps(params + 16));
  return blk;
}

/// One K step's 32 weights (columns 0-15 in w0, 16-31 in w1).
__attribute__((target("avx512f"), always_inline)) inline void
q4Step(const Q4Block &blk, const uint8_t *step, __m512 &w0, __m512 &w1) {
  __m512 lo, hi;
  q4Nibbles(step, lo, hi);
  w0 = _mm512_mul_ps(_mm512_sub_ps(lo, blk.zl), blk.sl);
  w1 = _mm512_mul_ps(_mm512_sub_ps(hi, blk.zh), blk.sh);
}

/// dequantSlices' walk: for panels [jp, jp + count) of a 4-bit B (K = k),
/// K steps [p0, p0 + kc) in that order, run(params, codes, steps) for each
/// run of steps within one block of q4::kBlock (the block's params, the
/// run's first step's codes). The runs of each instruction set's
/// dequantizer, which writes the steps' 32 floats each in turn.
template <typename Run>
inline void forQ4Runs(const uint8_t *codes, const float *params, int64_t k,
                      int64_t jp, int64_t count, int64_t p0, int64_t kc,
                      Run run) {
  namespace q4 = transfuse::q4;
  int64_t nb = q4::blocks(k);
  for (int64_t i = 0; i < count; ++i)
    for (int64_t p = p0; p < p0 + kc;) {
      int64_t pb = (jp + i) * nb + p / q4::kBlock,
              end = std::min(p0 + kc, (p / q4::kBlock + 1) * q4::kBlock);
      run(params + pb * q4::kParamFloats,
          codes + (pb * q4::kBlock + p % q4::kBlock) * q4::kStepBytes, end - p);
      p = end;
    }
}

__attribute__((target("avx512f"))) void
dequantSlicesAvx512(const uint8_t *codes, const float *params, int64_t k,
                    int64_t jp, int64_t count, int64_t p0, int64_t kc,
                    float *out) {
  forQ4Runs(
      codes, params, k, jp, count, p0, kc,
      [&](const float *blockParams, const uint8_t *step, int64_t steps)
          __attribute__((target("avx512f"))) {
            Q4Block blk = q4Block(blockParams);
            for (; steps > 0;
                 --steps, step += transfuse::q4::kStepBytes, out += kNr) {
              __m512 w0, w1;
              q4Step(blk, step, w0, w1);
              _mm512_storeu_ps(out, w0);
              _mm512_storeu_ps(out + 16, w1);
            }
          });
}

/// q4Nibbles on AVX2 (no ternary logic: an and and an or a nibble), in
/// 8-lane quarters: n[0] columns 0-7 and n[1] 8-15 (low nibbles of bytes 0-7 and
/// 8-15), n[2] 16-23 and n[3] 24-31 (their high nibbles, times 16).
__attribute__((target("avx2,fma"), always_inline)) inline void
q4NibblesAvx2(const uint8_t *bytes, __m256 n[4]) {
  const __m256i magic = _mm256_set1_epi32(0x4B000000);
  const __m256i low = _mm256_set1_epi32(0x0F), high = _mm256_set1_epi32(0xF0);
  __m256i x[2] = {_mm256_cvtepu8_epi32(_mm_loadl_epi64(
                      reinterpret_cast<const __m128i *>(bytes))),
                  _mm256_cvtepu8_epi32(_mm_loadl_epi64(
                      reinterpret_cast<const __m128i *>(bytes + 8)))};
  for (int h = 0; h < 2; ++h) {
    n[h] = _mm256_castsi256_ps(
        _mm256_or_si256(_mm256_and_si256(x[h], low), magic));
    n[2 + h] = _mm256_castsi256_ps(
        _mm256_or_si256(_mm256_and_si256(x[h], high), magic));
  }
}

/// A block's zero points (as q4NibblesAvx2 reads codes) and scales (s / 16
/// for the high nibbles), by quarter.
struct Q4BlockAvx2 {
  __m256 z[4], s[4];
};

__attribute__((target("avx2,fma"), always_inline)) inline Q4BlockAvx2
q4BlockAvx2(const float *params) {
  Q4BlockAvx2 blk;
  q4NibblesAvx2(reinterpret_cast<const uint8_t *>(params + kNr), blk.z);
  for (int v = 0; v < 4; ++v) {
    blk.s[v] = _mm256_loadu_ps(params + 8 * v);
    if (v >= 2)
      blk.s[v] = _mm256_mul_ps(_mm256_set1_ps(0.0625f), blk.s[v]);
  }
  return blk;
}

/// One K step's 32 weights, by quarter: (float(q) - z) * s, to the bit.
__attribute__((target("avx2,fma"), always_inline)) inline void
q4StepAvx2(const Q4BlockAvx2 &blk, const uint8_t *step, __m256 w[4]) {
  q4NibblesAvx2(step, w);
  for (int v = 0; v < 4; ++v)
    w[v] = _mm256_mul_ps(_mm256_sub_ps(w[v], blk.z[v]), blk.s[v]);
}

__attribute__((target("avx2,fma"))) void
dequantSlicesAvx2(const uint8_t *codes, const float *params, int64_t k,
                  int64_t jp, int64_t count, int64_t p0, int64_t kc,
                  float *out) {
  forQ4Runs(
      codes, params, k, jp, count, p0, kc,
      [&](const float *blockParams, const uint8_t *step, int64_t steps)
          __attribute__((target("avx2,fma"))) {
            Q4BlockAvx2 blk = q4BlockAvx2(blockParams);
            for (; steps > 0;
                 --steps, step += transfuse::q4::kStepBytes, out += kNr) {
              __m256 w[4];
              q4StepAvx2(blk, step, w);
              for (int v = 0; v < 4; ++v)
                _mm256_storeu_ps(out + 8 * v, w[v]);
            }
          });
}

/// The instruction sets the packed product runs on: its kernels and A's
/// packing.
struct Isa {
  const Kernel *kernels;
  const WideKernel *wideKernels; // two panels at once (AVX2: none)
  const Kernel *streamKernels;   // a single row panel's (AVX2: the same)
  void (*packA)(const Desc2D &, float *, bool);
  void (*storePanel)(const float *, int64_t, int64_t, int64_t, float *);
  void (*dequantSlices)(const uint8_t *, const float *, int64_t, int64_t,
                        int64_t, int64_t, int64_t, float *);
  bool multiStream; // kernelStreams for decode with few rows (AVX-512)
};
constexpr Isa kAvx512{kKernels, kWideKernels,     kStreamKernels,
                      packA,    storePanelAvx512, dequantSlicesAvx512,
                      true},
    kAvx2{kKernelsAvx2,     nullptr,           kKernelsAvx2, packAScalar,
          storePanelScalar, dequantSlicesAvx2, false};

/// What a product reads and writes besides its operands
/// (transfuse_linear_f32_panels): A as panels its producer wrote, instead
/// of packing A itself; the panels of the product C feeds, written from
/// each tile of C as it is finished; whether C itself may be left
/// unwritten, as nothing else reads it.
struct PanelsIO {
  const float *a = nullptr;
  float *c = nullptr;
  bool panelsOnly = false;
  /// A 4-bit B (transfuse/q4_panels.h) instead of f32 panels: each task
  /// dequantizes the slices it reads into a buffer (dequantSlices) and
  /// runs the f32 kernels on them.
  const uint8_t *q4Codes = nullptr;
  const float *q4Params = nullptr;
};

/// C = (accumulate ? C : 0) + A * B, B in panel layout (packed), A and C
/// any strides, on `isa`'s kernels; then `ep`, when given, on each tile of C
/// right after its last K slice (while it is in L1). With io.a, A is read
/// from those panels (only A's sizes are read); with io.c, each tile's
/// final values also go into those panels (rows past m unwritten), and
/// with io.panelsOnly a tile computed in one K pass goes only there,
/// through the task's tile buffer. Inlined into one function per
/// instruction set (matmulAvx512, matmulAvx2), compiled for its target: as
/// generic x86-64 code the driver cost bert-base 3-6%.
__attribute__((always_inline)) inline void
matmulPanels(const Desc2D &a, const float *packed, const Desc2D &c,
             bool accumulate, const Epilogue *ep, const Isa &isa,
             const PanelsIO &io = {}) {
  // An epilogue that leaves C as it is (a 4-bit product's without one) is
  // no pass over each tile, as in the bf16 product.
  if (ep && ep->none())
    ep = nullptr;
  int64_t m = a.sizes[0], k = a.sizes[1], n = c.sizes[1];
  int64_t rowPanels = (m + kMr - 1) / kMr, colPanels = (n + kNr - 1) / kNr;
  // Tasks: row blocks of at most rowBlockRows() rows x column chunks
  // (ColumnChunks: large ones first, shrinking, so that a slowed core takes
  // fewer and no thread waits long at the end).
  int64_t threads = parallel(m, n, k) ? numThreads() : 1;
  bool unitColumns = c.strides[1] == 1;
  // Decode with few rows: kernelStreams, on A in place.
  bool streams = !io.a && !io.c && !io.q4Codes && rowPanels == 1 &&
                 isa.multiStream && unitColumns && m <= kStreamRows;
  Scratch<float> aPack(streams || io.a ? 0 : rowPanels * kMr * k);
  if (!streams && !io.a)
    isa.packA(a, aPack.data, threads > 1);
  const float *aBase = io.a ? io.a : aPack.data;
  int64_t mc = rowBlockRows();
  int64_t rowBlocks = (m + mc - 1) / mc;
  // Row panels per block: as many in each (the last may have fewer), not
  // the most rows then the rest: 512 rows were 240 + 240 + 32, and the last
  // block's tasks read each B slice for 3 row panels. Paired runs (4 and
  // 3 rounds, faster in each at one thread): t5-base encoder at 512
  // tokens 469.0 -> 464.7 ms, bert-base 471.7 -> 468.1; level at two
  // threads (245.3 / 245.9, 245.7 / 245.4).
  int64_t blockPanels = (rowPanels + rowBlocks - 1) / rowBlocks;
  ColumnChunks chunks(colPanels, threads,
                      kChunkBytes / (std::min(m, mc) * 32 * sizeof(float)));
  // K is split into passes of kWholeK (so that a B slice stays in L2 while
  // the row panels pass it), unless it is at most that. A single row panel
  // (decode) reuses nothing: it reads whole panels in one contiguous sweep each
  // (gpt2 decode, past 128, on an AMD EPYC at one thread: 20.4 -> 17.7 ms
  // with whole panels, -> 15.6 ms without the slice prefetch below), on the
  // stream kernels, which prefetch a fixed distance ahead in that sweep (on
  // a Xeon with AMX, paired runs: gpt2 decode past 128 39.2 -> 36.7 ms,
  // past 1023 52.4 -> 49.6, t5 decoder step 42.7 -> 40.1 at one thread;
  // 3-6% at two; not measured on AMD). With at most kStreamRows rows
  // (one token per sequence), kernelStreams reads several panels side by
  // side instead (streamPanels; with up to three rows, four: same Xeon,
  // paired runs: gpt2 decode past 128 38.6 -> 34.4 ms at one thread, 20.4
  // -> 18.2 at two; past 1023 51.3 -> 46.8, 27.6 -> 25.2; t5 decoder step
  // 43.2 -> 37.0, 23.9 -> 20.8).
  bool decode = rowPanels == 1;
  int64_t kBlock = decode || k <= kWholeK ? k : kWholeK;
  auto task = [&](int64_t t) {
    // The large chunks of every row block first, then the smaller ones.
    int64_t rb = t % rowBlocks, cc = t / rowBlocks;
    int64_t ip0 = rb * blockPanels,
            ip1 = std::min(rowPanels, ip0 + blockPanels);
    int64_t jp0 = chunks.start[cc], jp1 = chunks.start[cc + 1];
    if (streams)
      return forStreamGroups(
          jp0, jp1, c, m, ep,
          [&](int64_t jp, int64_t panels, const __mmask16 *masks) {
            kStreamsKernels[m - 1][panels - 1](
                k, a.at(0, 0), a.strides[0], a.strides[1],
                packed + jp * k * kNr, k * kNr, c.at(0, jp * kNr),
                c.strides[0], masks, accumulate);
          });
    alignas(64) float tile[kMr * 2 * kNr];
    // A 4-bit B's slices, dequantized for each step.
    Scratch<float> slices(io.q4Codes ? 2 * kBlock * kNr : 0);
    // The column panels a step of the sweep takes from jp on: two whole
    // ones where the chunk has them (kernelWide), else one.
    auto stepPanels = [&](int64_t jp, int64_t end) -> int64_t {
      return isa.wideKernels && unitColumns && !decode && jp + 1 < end &&
                     (jp + 2) * kNr <= n
                 ? 2
                 : 1;
    };
    for (int64_t p0 = 0; p0 < k; p0 += kBlock) {
      int64_t kc = std::min(kBlock, k - p0);
      bool load = accumulate || p0 > 0, final = p0 + kc == k;
      const Epilogue *last = final ? ep : nullptr;
      // Tiles that go only to io.c's panels: through `tile`.
      bool onlyPanels = final && io.panelsOnly && !load;
      for (int64_t jp = jp0, sp; jp < jp1; jp += sp) {
        sp = stepPanels(jp, jp1);
        // A 4-bit B (no f32 panels): this step's slices, dequantized.
        if (io.q4Codes)
          isa.dequantSlices(io.q4Codes, io.q4Params, k, jp, sp, p0, kc,
                            slices.data);
        const float *bp =
            io.q4Codes ? slices.data : packed + jp * k * kNr + p0 * kNr;
        int64_t panelStride = io.q4Codes ? kc * kNr : k * kNr;
        // The B slices this task reads next (the next step's panels, or
        // the first step's at the next K block) are prefetched into L2
        // while these are used, a share per kernel call: a weight comes
        // from DRAM, and read on demand by the first row panel alone it
        // stalled that kernel (bench/gemm_bench.cpp's "B cold" column on
        // BERT-base shapes: 115-124 GFLOP/s without, 134-150 with).
        // Past the task's last step, the first step of task t + 1 (the
        // next one on one thread; on more, a guess, as tasks are taken as
        // threads come free).
        int64_t nextJp = -1, nextP0 = p0, nextEnd = jp1;
        if (!decode && jp + sp < jp1)
          nextJp = jp + sp;
        else if (!decode && p0 + kBlock < k)
          nextJp = jp0, nextP0 = p0 + kBlock;
        else if (!decode && (t + 1) / rowBlocks < chunks.count)
          nextJp = chunks.start[(t + 1) / rowBlocks], nextP0 = 0,
          nextEnd = chunks.start[(t + 1) / rowBlocks + 1];
        // (None from a 4-bit B: its next codes are read in order.)
        int64_t nextSlices =
            nextJp < 0 || io.q4Codes ? 0 : stepPanels(nextJp, nextEnd);
        int64_t sliceLines = std::min(kBlock, k - nextP0) * kNr / 16;
        // Kernel calls in this step: one per row panel, or one per
        // kWideRows rows on the wide kernels.
        int64_t calls = ip1 - ip0;
        if (sp == 2)
          calls = 2 * (ip1 - ip0) -
                  (std::min(m, ip1 * kMr) - (ip1 - 1) * kMr <= kWideRows);
        // Call q's share: lines [v0, v1) of the slices end to end, cut at
        // the end of the slice v0 is in (the slices of two panels are
        // apart where K is split).
        auto share = [&](int64_t q, int64_t &lines) -> const float * {
          int64_t all = nextSlices * sliceLines, v0 = all * q / calls,
                  v1 = all * (q + 1) / calls;
          if (v1 <= v0) {
            lines = 0;
            return nullptr;
          }
          int64_t sl = v0 / sliceLines;
          lines = std::min(v1, (sl + 1) * sliceLines) - v0;
          return packed + (nextJp + sl) * k * kNr + nextP0 * kNr +
                 (v0 - sl * sliceLines) * 16;
        };
        int64_t j = jp * kNr, w = std::min(sp * kNr, n - j), q = 0;
        __mmask16 m0, m1;
        laneMasks(w, m0, m1);
        for (int64_t ip = ip0; ip < ip1; ++ip) {
          int64_t h = std::min(kMr, m - ip * kMr);
          const float *ap = aBase + ip * k * kMr + p0 * kMr;
          float *cij = c.at(ip * kMr, j);
          // This tile's place in the panels C feeds (K there is n).
          float *pij = final && io.c ? io.c + ip * kMr * n + j * kMr : nullptr;
          if (unitColumns) {
            // The tile of C this task computes next (the next row panel's,
            // else the next step's first) is prefetched into L2 while this
            // one is computed, when the next call touches it first: on the
            // first K slice its C, on the last its residual. In a model C
            // is a buffer last used a layer ago, out of L2, and the
            // kernel's stores waited for it (BERT-base's QKV product at two
            // threads, on a C and an A other than the last call's: 8%
            // slower than on the same ones, 2-3% with this; in t5-base's
            // encoder, per call, QKV 353 -> 363 GFLOP/s, FFN down 322 ->
            // 330).
            int64_t nip = ip + 1 < ip1 ? ip + 1 : ip0,
                    njp = ip + 1 < ip1 ? jp : jp + sp;
            int64_t nsp = njp == jp ? sp : njp < jp1 ? stepPanels(njp, jp1) : 0;
            int64_t nh = std::min(kMr, m - nip * kMr);
            for (int64_t x = njp; x < njp + nsp; ++x) {
              if (p0 == 0 && !onlyPanels)
                prefetchTile(c.at(nip * kMr, x * kNr), c.strides[0], nh);
              // Only panels: the next tile's 1.5 KiB there per panel, as
              // 12 rows of 128 bytes.
              if (onlyPanels)
                prefetchTile(io.c + nip * kMr * n + x * kNr * kMr, kNr, kMr);
              if (last && last->residual && last->residual->strides[1] == 1)
                prefetchTile(last->residual->at(nip * kMr, x * kNr),
                             last->residual->strides[0], nh);
            }
            float *out = onlyPanels ? tile : cij;
            int64_t ldo = onlyPanels ? 2 * kNr : c.strides[0], lines;
            if (sp == 2) {
              // The rows in two calls of as many (8 rows: 4 + 4, not 6 + 2)
              // where there are more than kWideRows.
              int64_t top = h > kWideRows ? (h + 1) / 2 : h;
              for (int64_t r0 = 0, rows = top; r0 < h;
                   r0 += rows, rows = h - top) {
                const float *pf = share(q++, lines);
                isa.wideKernels[rows - 1](kc, ap + r0, bp, panelStride,
                                          out + r0 * ldo, ldo, load, pf, lines);
              }
            } else {
              const float *pf = share(q++, lines);
              (decode ? isa.streamKernels : isa.kernels)[h - 1](
                  kc, ap, bp, out, ldo, m0, m1, load, pf, lines);
            }
            if (last)
              last->apply(out, ldo, ip * kMr, j, h, w);
            for (int64_t x = 0; pij && x < w; x += kNr)
              isa.storePanel(out + x, ldo, h, std::min(kNr, w - x),
                             pij + x * kMr);
            continue;
          }
          // C with strided columns: through a buffer (one panel a step).
          for (int64_t r = 0; r < h && load; ++r)
            for (int64_t x = 0; x < w; ++x)
              tile[r * kNr + x] = cij[r * c.strides[0] + x * c.strides[1]];
          isa.kernels[h - 1](kc, ap, bp, tile, kNr, m0, m1, load, nullptr, 0);
          if (last)
            last->apply(tile, kNr, ip * kMr, j, h, w);
          if (pij)
            isa.storePanel(tile, kNr, h, w, pij);
          for (int64_t r = 0; r < h && !onlyPanels; ++r)
            for (int64_t x = 0; x < w; ++x)
              cij[r * c.strides[0] + x * c.strides[1]] = tile[r * kNr + x];
        }
      }
    }
  };
  forEach(rowBlocks * chunks.count, threads > 1, task);
}

__attribute__((target("avx512f"))) void
matmulAvx512(const Desc2D &a, const float *packed, const Desc2D &c,
             bool accumulate, const Epilogue *ep, const PanelsIO &io) {
  matmulPanels(a, packed, c, accumulate, ep, kAvx512, io);
}

__attribute__((target("avx2,fma"))) void
matmulAvx2(const Desc2D &a, const float *packed, const Desc2D &c,
           bool accumulate, const Epilogue *ep, const PanelsIO &io) {
  matmulPanels(a, packed, c, accumulate, ep, kAvx2, io);
}

/// Rows of A at most this many: C = A * B straight from B's rows, without
/// packing B (which would copy all of B for a product that reads it once:
/// a decode step's attention, one query row against the whole cache).
constexpr int64_t kFewRows = 4;

/// Columns [64 jb, 64 jb + 64) of C = (accumulate ? C : 0) + A * B, for
/// m <= kFewRows, B and C with unit column strides: 64 columns of a C row
/// in four registers while p runs over K in order (the order of the packed
/// kernel, so either path gives the same sums).
__attribute__((target("avx512f"))) void
fewRowsBlock(const Desc2D &a, const Desc2D &b, const Desc2D &c,
             bool accumulate, int64_t jb) {
  int64_t m = a.sizes[0], k = a.sizes[1], n = c.sizes[1];
  int64_t j0 = jb * 64, w = std::min<int64_t>(64, n - j0);
  __mmask16 mk[4];
  laneMasks(std::min<int64_t>(w, 32), mk[0], mk[1]);
  mk[2] = mk[3] = 0;
  if (w > 32)
    laneMasks(w - 32, mk[2], mk[3]);
  for (int64_t i = 0; i < m; ++i) {
    float *crow = c.at(i, j0);
    __m512 acc[4];
    for (int q = 0; q < 4; ++q)
      acc[q] = _mm512_maskz_loadu_ps(accumulate ? mk[q] : 0, crow + 16 * q);
    for (int64_t p = 0; p < k; ++p) {
      __m512 av = _mm512_set1_ps(*a.at(i, p));
      const float *brow = b.at(p, j0);
      for (int q = 0; q < 4; ++q)
        acc[q] = _mm512_fmadd_ps(
            av, _mm512_maskz_loadu_ps(mk[q], brow + 16 * q), acc[q]);
    }
    for (int q = 0; q < 4; ++q)
      _mm512_mask_storeu_ps(crow + 16 * q, mk[q], acc[q]);
  }
}

void matmulFewRows(const Desc2D &a, const Desc2D &b, const Desc2D &c,
                   bool accumulate) {
  int64_t n = c.sizes[1];
  forEach((n + 63) / 64, parallel(a.sizes[0], n, a.sizes[1]),
          [&](int64_t jb) { fewRowsBlock(a, b, c, accumulate, jb); });
}

/// Columns [64 jb, 64 jb + 64) of C = (accumulate ? C : 0) + A * B, for
/// m <= kFewRows, A with unit column stride and B with unit row stride: B
/// is a transposed view (the keys of an attention score product, B = K^T,
/// each column of B one contiguous key row). Each element of C is the dot
/// product of A's row with one of those columns, 16 lanes at a time.
__attribute__((target("avx512f"))) void
fewRowsBlockTransposed(const Desc2D &a, const Desc2D &b, const Desc2D &c,
                       bool accumulate, int64_t jb) {
  int64_t m = a.sizes[0], k = a.sizes[1], n = c.sizes[1];
  int64_t j0 = jb * 64, j1 = std::min<int64_t>(n, j0 + 64);
  for (int64_t i = 0; i < m; ++i) {
    const float *arow = a.at(i, 0);
    for (int64_t j = j0; j < j1; ++j) {
      const float *bcol = b.at(0, j);
      __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
      int64_t p = 0;
      for (; p + 32 <= k; p += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(arow + p),
                             _mm512_loadu_ps(bcol + p), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(arow + p + 16),
                             _mm512_loadu_ps(bcol + p + 16), s1);
      }
      for (; p < k; p += 16) {
        __mmask16 mk = firstLanes(k - p);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, arow + p),
                             _mm512_maskz_loadu_ps(mk, bcol + p), s0);
      }
      float v = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
      float *cij = c.at(i, j);
      *cij = accumulate ? *cij + v : v;
    }
  }
}

void matmulFewRowsTransposed(const Desc2D &a, const Desc2D &b,
                             const Desc2D &c, bool accumulate) {
  int64_t n = c.sizes[1];
  forEach((n + 63) / 64, parallel(a.sizes[0], n, a.sizes[1]), [&](int64_t jb) {
    fewRowsBlockTransposed(a, b, c, accumulate, jb);
  });
}

using PackedProduct = void (*)(const Desc2D &, const float *, const Desc2D &,
                               bool, const Epilogue *, const PanelsIO &);

/// The packed product of f32Path(): matmulAvx512, matmulAvx2, or null (the
/// portable loops).
PackedProduct packedProduct() {
  switch (f32Path()) {
  case F32Path::Avx512:
    return matmulAvx512;
  case F32Path::Avx2:
    return matmulAvx2;
  case F32Path::Portable:
    break;
  }
  return nullptr;
}

} // namespace

F32Path transfuse::runtime::gemm::f32Path() {
  static const F32Path chosen = [] {
    if (forcedPortable())
      return F32Path::Portable;
    if (__builtin_cpu_supports("avx512f") && !forcedAvx2())
      return F32Path::Avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      return F32Path::Avx2;
    return F32Path::Portable;
  }();
  return chosen;
}

/// TRANSFUSE_GEMM, read once: "portable", "avx2", "no-amx", "f32" or unset.
static const char *gemmMode() {
  static const char *mode = [] {
    const char *e = std::getenv("TRANSFUSE_GEMM");
    return e ? e : "";
  }();
  return mode;
}

void transfuse::runtime::gemm::packF32Panels(const Desc2D &b, float *out) {
  static_assert(kF32PanelWidth == kNr);
  packB(b, out, false);
}

bool transfuse::runtime::gemm::forcedPortable() {
  return std::strcmp(gemmMode(), "portable") == 0;
}

bool transfuse::runtime::gemm::forcedAvx2() {
  return std::strcmp(gemmMode(), "avx2") == 0;
}

bool transfuse::runtime::gemm::amxDisabled() {
  return std::strcmp(gemmMode(), "no-amx") == 0;
}

bool transfuse::runtime::gemm::bf16OnF32() {
  return std::strcmp(gemmMode(), "f32") == 0;
}

extern "C" __attribute__((visibility("default"))) void
_mlir_ciface_transfuse_matmul_f32(Desc2D *a, Desc2D *b, Desc2D *c,
                                  int64_t accumulate) {
  auto scope = profile::Scope::product("matmul_f32", a->sizes[0], a->sizes[1],
                                       c->sizes[1]);
  if (!needsProduct(*a, *c, accumulate))
    return;
  PackedProduct product = packedProduct();
  if (!product)
    return matmulPortable(*a, *b, *c, accumulate);
  // The few-row paths are AVX-512 only.
  bool fewRows = product == matmulAvx512 && a->sizes[0] <= kFewRows;
  if (fewRows && b->strides[1] == 1 && c->strides[1] == 1)
    return matmulFewRows(*a, *b, *c, accumulate);
  if (fewRows && a->strides[1] == 1 && b->strides[0] == 1)
    return matmulFewRowsTransposed(*a, *b, *c, accumulate);
  int64_t k = b->sizes[0], n = b->sizes[1];
  Scratch<float> bPack((n + kNr - 1) / kNr * kNr * k);
  packB(*b, bPack.data, parallel(a->sizes[0], n, k));
  product(*a, bPack.data, *c, accumulate, nullptr, {});
}

__attribute__((target("avx512f"))) void
transfuse::runtime::gemm::matmulF32PackedA(const float *aPanels, int64_t m,
                                           int64_t k, const float *packed,
                                           const Desc2D &c) {
  Desc2D a{nullptr, nullptr, 0, {m, k}, {k, 1}};
  PanelsIO io;
  io.a = aPanels;
  if (needsProduct(a, c, false))
    matmulPanels(a, packed, c, false, nullptr, kAvx512, io);
}

/// B prepacked at compile time: [ceil(N / 32)][K][32].
extern "C" __attribute__((visibility("default"))) void
_mlir_ciface_transfuse_matmul_f32_packed(Desc2D *a, Desc3D *b, Desc2D *c,
                                         int64_t accumulate) {
  auto scope = profile::Scope::product("matmul_f32_packed", a->sizes[0],
                                       a->sizes[1], c->sizes[1]);
  if (!needsProduct(*a, *c, accumulate))
    return;
  const float *packed = b->data + b->offset;
  PackedProduct product = packedProduct();
  if (!product)
    return matmulPackedPortable(*a, packed, *c, accumulate);
  product(*a, packed, *c, accumulate, nullptr, {});
}

/// C = act(A * B + bias) + residual (`ep`) on a prepacked B, with the
/// panels of `io` (none on the portable loops, see f32PanelsUsed).
static void linear(const Desc2D &a, const Desc3D &b, const Desc2D &c,
                   const Epilogue &ep, const PanelsIO &io) {
  // An empty K: C = 0, then the epilogue (nothing for an empty C), and
  // C's panels from C.
  if (!needsProduct(a, c, false)) {
    ep.applyAll(c);
    if (io.c)
      (f32Path() == F32Path::Avx512 ? packA : packAScalar)(c, io.c, false);
    return;
  }
  const float *packed = b.data + b.offset;
  PackedProduct product = packedProduct();
  if (!product) {
    matmulPackedPortable(a, packed, c, false);
    return ep.applyAll(c);
  }
  product(a, packed, c, false, &ep, io);
}

/// A 4-bit B's (transfuse/q4_panels.h) column panel, for at most
/// kStreamRows rows of A (decode): out[R][32] (columns masked by m0, m1) =
/// (load ? out : 0) + A * B, A's R rows read in place (A[r][p] at a[r * aRow
/// + p * aCol]), codes and params the panel's own, each K step's 32
/// weights dequantized in registers as dequantSlices does. Each element is
/// summed in the order of `kernel`, on the same floats, so the results are
/// those of the f32 weight. A decode step reads under a quarter of the
/// f32 weight's bytes (codes and params: 0.64 bytes a weight) and
/// spends seven vector instructions a K step of 32 weights on the
/// dequantization (q4Step), which bounds it. One thread of the Xeon of
/// docs/benchmarks.md, a decode step of bench/genai.py's int4 Llama
/// (TRANSFUSE_PROFILE=1): its FFN's 1024 x 5632 products at 32-33
/// GFLOP/s, 25.5-26.4 with an and, a shift and two conversions in place
/// of the two ternary-logic instructions, 6.8 on the f32 weight (from
/// DRAM).
template <int R>
__attribute__((target("avx512f"))) void
kernelQ4(int64_t k, const float *a, int64_t aRow, int64_t aCol,
         const uint8_t *codes, const float *params, float *out, int64_t ldo,
         __mmask16 m0, __mmask16 m1, bool load) {
  namespace q4 = transfuse::q4;
  __m512 c0[R], c1[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    c0[r] = _mm512_maskz_loadu_ps(load ? m0 : 0, out + r * ldo);
    c1[r] = _mm512_maskz_loadu_ps(load ? m1 : 0, out + r * ldo + 16);
  }
  const uint8_t *step = codes;
  for (int64_t p0 = 0; p0 < k; p0 += q4::kBlock, params += q4::kParamFloats) {
    Q4Block blk = q4Block(params);
    int64_t end = std::min(k, p0 + q4::kBlock);
    // The block after next's codes (8 lines) into L2, at the block's
    // start rather than a line every fourth step, which tested each step
    // (the int4 Llama's decode step at past 128, alternated, 3 rounds: one
    // thread 7.93-8.36 -> 7.38-7.89 ms, two 4.59-4.95 -> 4.38-4.57).
    constexpr int64_t kBlockBytes = q4::kBlock * q4::kStepBytes;
#pragma GCC unroll 8
    for (int64_t l = 0; l < kBlockBytes; l += 64)
      _mm_prefetch((const char *)(step + 2 * kBlockBytes + l), _MM_HINT_T1);
    for (int64_t p = p0; p < end; ++p, step += q4::kStepBytes) {
      __m512 w0, w1;
      q4Step(blk, step, w0, w1);
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) {
        __m512 av = _mm512_set1_ps(a[r * aRow + p * aCol]);
        c0[r] = _mm512_fmadd_ps(av, w0, c0[r]);
        c1[r] = _mm512_fmadd_ps(av, w1, c1[r]);
      }
    }
    // The last block's padding steps are skipped.
    step += (p0 + q4::kBlock - end) * q4::kStepBytes;
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    _mm512_mask_storeu_ps(out + r * ldo, m0, c0[r]);
    _mm512_mask_storeu_ps(out + r * ldo + 16, m1, c1[r]);
  }
}

using Q4Kernel = void (*)(int64_t, const float *, int64_t, int64_t,
                          const uint8_t *, const float *, float *, int64_t,
                          __mmask16, __mmask16, bool);
constexpr Q4Kernel kQ4Kernels[kStreamRows] = {kernelQ4<1>, kernelQ4<2>,
                                              kernelQ4<3>, kernelQ4<4>,
                                              kernelQ4<5>, kernelQ4<6>};

/// kernelQ4 on AVX2: out[R][32] (columns masked by m0, m1; R <= 3, as 4R
/// accumulators of 8 lanes fill most of the 16 ymm registers) =
/// (load ? out : 0) + A's R rows * one 4-bit column panel, each K step's
/// 32 weights dequantized in registers (q4StepAvx2), summed in the order
/// of kernelAvx2, so that the results are the f32 weight's. Without it an
/// AVX2 CPU dequantized each panel into a buffer for the packed product,
/// one row of A at a time: the int4 Llama of bench/genai.py decoded at
/// 221-224 ms a step with TRANSFUSE_GEMM=avx2, five times its f32
/// weights' 40.9 ms.
constexpr int64_t kQ4RowsAvx2 = 3;

template <int R>
__attribute__((target("avx2,fma"))) void
kernelQ4Avx2(int64_t k, const float *a, int64_t aRow, int64_t aCol,
             const uint8_t *codes, const float *params, float *out, int64_t ldo,
             __mmask16 m0, __mmask16 m1, bool load) {
  namespace q4 = transfuse::q4;
  __m256i mk[4];
  avx2Masks(m0, m1, mk);
  __m256 c[R][4];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 4; ++v)
      c[r][v] = load ? _mm256_maskload_ps(out + r * ldo + 8 * v, mk[v])
                     : _mm256_setzero_ps();
  const uint8_t *step = codes;
  for (int64_t p0 = 0; p0 < k; p0 += q4::kBlock, params += q4::kParamFloats) {
    Q4BlockAvx2 blk = q4BlockAvx2(params);
    int64_t end = std::min(k, p0 + q4::kBlock);
    // As kernelQ4: the block after next's codes into L2.
    constexpr int64_t kBlockBytes = q4::kBlock * q4::kStepBytes;
    for (int64_t l = 0; l < kBlockBytes; l += 64)
      _mm_prefetch((const char *)(step + 2 * kBlockBytes + l), _MM_HINT_T1);
    for (int64_t p = p0; p < end; ++p, step += q4::kStepBytes) {
      __m256 wv[4];
      q4StepAvx2(blk, step, wv);
      for (int r = 0; r < R; ++r) {
        __m256 av = _mm256_broadcast_ss(a + r * aRow + p * aCol);
        for (int v = 0; v < 4; ++v)
          c[r][v] = _mm256_fmadd_ps(av, wv[v], c[r][v]);
      }
    }
    step += (p0 + q4::kBlock - end) * q4::kStepBytes;
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 4; ++v)
      _mm256_maskstore_ps(out + r * ldo + 8 * v, mk[v], c[r][v]);
}

constexpr Q4Kernel kQ4KernelsAvx2[kQ4RowsAvx2] = {
    kernelQ4Avx2<1>, kernelQ4Avx2<2>, kernelQ4Avx2<3>};

/// C = (accumulate ? C : 0) + A * B with B 4-bit (transfuse/q4_panels.h:
/// the form transfuse-cpu-matmul-to-microkernel gives a weight that is a
/// 4-bit code times a scale in every block of 32 K steps of a column, as
/// MatMulNBits' are), then act(C + bias) + residual (flags as in
/// transfuse_linear_f32_packed; the compiler passes them only without
/// accumulate). The results are those of the f32 weight (the same floats,
/// summed in the same order). With AVX-512 and at most kStreamRows rows,
/// kernelQ4 a column panel at a time (AVX2: kernelQ4Avx2, at most
/// kQ4RowsAvx2 rows); with more rows, the packed product,
/// each task dequantizing the B slices it reads (dequantSlices), as the f32
/// kernels read B many times; without AVX2, all of B dequantized first,
/// then the portable loops.
extern "C" __attribute__((visibility("default"))) void
_mlir_ciface_transfuse_linear_q4(Desc2D *a, Desc1DU8 *codes, Desc1D *params,
                                 Desc2D *c, Desc1D *bias, Desc2D *residual,
                                 int64_t flags, int64_t accumulate) {
  auto scope = profile::Scope::product("linear_q4", a->sizes[0], a->sizes[1],
                                       c->sizes[1]);
  Epilogue ep = Epilogue::fromFlags(flags, bias, residual);
  if (!needsProduct(*a, *c, accumulate))
    return ep.applyAll(*c);
  int64_t m = a->sizes[0], k = a->sizes[1], n = c->sizes[1];
  const uint8_t *q = codes->data + codes->offset;
  const float *sz = params->data + params->offset;
  int64_t panels = (n + kNr - 1) / kNr, nb = transfuse::q4::blocks(k);
  PackedProduct product = packedProduct();
  if (!product) {
    Scratch<float> b(panels * k * kNr);
    dequantSlicesScalar(q, sz, k, 0, panels, 0, k, b.data);
    matmulPackedPortable(*a, b.data, *c, accumulate);
    return ep.applyAll(*c);
  }
  bool avx512 = product == matmulAvx512;
  if (c->strides[1] == 1 && m <= (avx512 ? kStreamRows : kQ4RowsAvx2)) {
    forEach(panels, parallel(m, n, k), [&](int64_t jp) {
      int64_t j = jp * kNr, w = std::min(kNr, n - j);
      const uint8_t *codes =
          q + jp * nb * transfuse::q4::kBlock * transfuse::q4::kStepBytes;
      const float *params = sz + jp * nb * transfuse::q4::kParamFloats;
      __mmask16 m0, m1;
      laneMasks(w, m0, m1);
      (avx512 ? kQ4Kernels : kQ4KernelsAvx2)[m - 1](
          k, a->at(0, 0), a->strides[0], a->strides[1], codes, params,
          c->at(0, j), c->strides[0], m0, m1, accumulate);
      if (!ep.none())
        ep.apply(c->at(0, j), c->strides[0], 0, j, m, w);
    });
    return;
  }
  PanelsIO io;
  io.q4Codes = q;
  io.q4Params = sz;
  product(*a, nullptr, *c, accumulate, &ep, io);
}

/// A `linear` on a prepacked B: C = act(A * B + bias) + residual, the
/// epilogue (Epilogue::fromFlags) applied to each tile of C as the product
/// finishes it.
extern "C" __attribute__((visibility("default"))) void
_mlir_ciface_transfuse_linear_f32_packed(Desc2D *a, Desc3D *b, Desc2D *c,
                                         Desc1D *bias, Desc2D *residual,
                                         int64_t flags) {
  auto scope = profile::Scope::product("linear_f32_packed", a->sizes[0],
                                       a->sizes[1], c->sizes[1]);
  linear(*a, *b, *c, Epilogue::fromFlags(flags, bias, residual), {});
}

bool transfuse::runtime::gemm::f32PanelsUsed(int64_t m) {
  return m > kStreamRows && packedProduct() != nullptr;
}

/// transfuse_linear_f32_packed with A's panels and C's (transfuse-cpu-a-
/// panels): flags as there, plus bit 10: A is read from `aPanels`, which
/// its producer wrote (A's sizes give its shape); bit 11: C's final values
/// are also written into `cPanels`, the A panels of the product C feeds;
/// bit 12 (with 11): only the panels need to be written, as nothing else
/// reads C. All only where f32PanelsUsed(M) (elsewhere the producers write
/// no panels and all of C, and A's values are there); panels smaller than
/// the shapes need (which the compiler never passes) are not used either.
/// An empty K writes all of C anyway.
extern "C" __attribute__((visibility("default"))) void
_mlir_ciface_transfuse_linear_f32_panels(Desc2D *a, Desc1D *aPanels, Desc3D *b,
                                         Desc2D *c, Desc1D *bias,
                                         Desc2D *residual, int64_t flags,
                                         Desc1D *cPanels) {
  auto scope = profile::Scope::product("linear_f32_panels", a->sizes[0],
                                       a->sizes[1], c->sizes[1]);
  Epilogue ep = Epilogue::fromFlags(flags & transfuse::linear::kEpilogueMask,
                                    bias, residual);
  int64_t m = c->sizes[0], k = a->sizes[1], n = c->sizes[1];
  bool usable = f32PanelsUsed(m);
  PanelsIO io;
  io.a = usable && (flags & kPanelsIn) &&
                 aPanels->sizes[0] >= transfuse::f32::aPanelsSize(m, k)
             ? aPanels->data + aPanels->offset
             : nullptr;
  io.c = usable && (flags & kPanelsOut) &&
                 cPanels->sizes[0] >= transfuse::f32::aPanelsSize(m, n)
             ? cPanels->data + cPanels->offset
             : nullptr;
  io.panelsOnly = io.c && (flags & kPanelsOnly);
  linear(*a, *b, *c, ep, io);
}
