//===- gemm.h - what the f32 and bf16 GEMMs share ---------------*- C++ -*-===//
//
// Internal to the runtime: the strided 2-D descriptor generated code passes,
// the rule for when a product goes to the thread pool, loops that may,
// packing buffers from the caching allocator, and what the two GEMMs'
// decode kernels share (four weight panels read side by side).
//
//===----------------------------------------------------------------------===//
#ifndef TRANSFUSE_RUNTIME_GEMM_H
#define TRANSFUSE_RUNTIME_GEMM_H

#include "alloc.h"
#include "thread_pool.h"
#include "transfuse/f32_panels.h"
#include "transfuse/linear_flags.h"

#include <algorithm>
#include <cstdint>

#include <immintrin.h>

namespace transfuse::runtime::gemm {

/// A memref<?x?xf32, strided<[?, ?], offset: ?>> descriptor.
struct Desc2D {
  float *base, *data;
  int64_t offset, sizes[2], strides[2];
  float *at(int64_t i, int64_t j) const {
    return data + offset + i * strides[0] + j * strides[1];
  }
};

/// A memref<?x?x?xf32> descriptor: a weight prepacked for the f32 GEMM,
/// [ceil(N / 32)][K][32].
struct Desc3D {
  float *base, *data;
  int64_t offset, sizes[3], strides[3];
};

/// A memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>> descriptor:
/// the fused attention's and norms' operands (rank padded to 4 with
/// leading 1s by the compiler).
struct Desc4D {
  float *base, *data;
  int64_t offset, sizes[4], strides[4];
};

/// A memref<?xf32, strided<[?], offset: ?>> descriptor: a bias.
struct Desc1D {
  float *base, *data;
  int64_t offset, sizes[1], strides[1];
};

/// A memref<?xi8> descriptor: a 4-bit weight's codes
/// (transfuse/q4_panels.h).
struct Desc1DU8 {
  uint8_t *base, *data;
  int64_t offset, sizes[1], strides[1];
};

/// What a `linear` does to its product besides the product (the runtime's
/// `transfuse_linear_f32_packed`): C = act(C + bias) + residual, applied to
/// each tile of C right after the kernel has written its last K slice,
/// while the tile is in L1, instead of in a separate pass over C.
struct Epilogue {
  /// The activations, numbered as `flags & 0xff` of the entry point.
  enum Act : int64_t { None = 0, Relu, Gelu, GeluTanh, Silu, NumActs };
  const float *bias = nullptr; // bias[j] for column j, or null
  int64_t biasStride = 1;
  const Desc2D *residual = nullptr; // C's shape, or null
  Act act = None;
  /// The loop over a tile for this activation, operands and CPU (chosen
  /// once per call, by fromFlags).
  using TileFn = void (*)(float *, int64_t, const float *, int64_t,
                          const float *, int64_t, int64_t, int64_t, int64_t);
  TileFn tile = nullptr;
  /// Whether it leaves C as it is (no bias, residual or activation: a
  /// plain bf16 or 4-bit product, which the compiler passes as a linear
  /// with flags 0).
  bool none() const { return !bias && !residual && act == None; }
  /// C's rows [i0, i0 + h) x columns [j0, j0 + w), held at `out` with row
  /// stride `ldo` and unit column stride (C itself, or a tile buffer).
  void apply(float *out, int64_t ldo, int64_t i0, int64_t j0, int64_t h,
             int64_t w) const;
  /// All of C, any strides: the paths that do not apply it per tile.
  void applyAll(const Desc2D &c) const;
  /// The epilogue a `transfuse_linear_*_packed` call describes: `flags`
  /// holds the activation in bits 0-7, bit 8 when there is a bias ([N]),
  /// bit 9 when there is a residual (C's shape); the absent operands'
  /// descriptors are not read.
  static Epilogue fromFlags(int64_t flags, const Desc1D *bias,
                            const Desc2D *residual);
};

/// The instruction set of the f32 GEMM's kernels and of the code around
/// them (epilogues, bf16 operands widened to f32), chosen once: AVX-512,
/// else AVX2 with FMA, else the portable loops. TRANSFUSE_GEMM=avx2 and
/// =portable force the lower ones.
enum class F32Path { Portable, Avx2, Avx512 };
F32Path f32Path();

/// Whether an m x k x n product pays for the pool: below 2^18
/// multiply-adds (a few microseconds) it runs on the calling thread, and so
/// does a product called from a pool task (the fused attention's, one head
/// per task), whose parallelFor would run inline anyway: planned for one
/// thread, it is not cut into the pool's smaller chunks and tasks.
inline bool parallel(int64_t m, int64_t n, int64_t k) {
  return numThreads() > 1 && !inPoolTask() && m * n * k >= (int64_t(1) << 18);
}

/// fn(i) for i in [0, n): on the pool when `parallel`, else here.
template <typename Fn> void forEach(int64_t n, bool parallel, Fn fn) {
  if (parallel) {
    parallelFor(n, fn);
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    fn(i);
}

/// A packing buffer of `count` T from the runtime's caching allocator
/// (alloc.cpp), so that a model's products do not map fresh pages on every
/// call; none (null) for a count of 0, which the kernels ask for where a
/// path does not need the buffer.
template <typename T> struct Scratch {
  T *data;
  explicit Scratch(int64_t count)
      : data(count > 0 ? static_cast<T *>(
                             _mlir_memref_to_llvm_alloc(count * sizeof(T)))
                       : nullptr) {}
  ~Scratch() { _mlir_memref_to_llvm_free(data); }
  Scratch(const Scratch &) = delete;
  Scratch &operator=(const Scratch &) = delete;
};

/// A task's block of C, row block x column chunk, is at most about this
/// many bytes, so that it stays in L2 between the K passes over it.
constexpr int64_t kChunkBytes = 256 << 10;

/// Column panels [start[c], start[c + 1]) of task chunk c, c < count: each
/// at most maxPanels (at least one); on one thread that is all, else each
/// takes 1 / threads of the panels still left, so the first tasks are
/// large and the last small, and the thread that finishes last waits
/// little (a product's tasks are claimed in order). Which panels a chunk
/// holds changes no result: every element of C is summed by one kernel
/// call sequence in a fixed order. 1 / threads rather than 1 / (2 threads)
/// (fewer, larger chunks; paired runs, 4 rounds, two threads): on a Xeon
/// bert-base f32 at 128 tokens 59.3 -> 57.4 ms, the t5-base encoder 58.9
/// -> 57.1 at 128 tokens and 243.2 -> 241.1 at 512; on a Zen 4 level in
/// f32 (104.4 -> 104.3) and bf16 (54.2 -> 53.9).
struct ColumnChunks {
  static constexpr int64_t kMax = 64;
  int64_t start[kMax + 1], count = 0;
  ColumnChunks(int64_t panels, int64_t threads, int64_t maxPanels) {
    start[0] = 0;
    for (int64_t left = panels; left > 0 && count < kMax; ++count) {
      int64_t take = threads <= 1
                         ? left
                         : std::max<int64_t>(1, (left + threads - 1) / threads);
      if (count + 1 < kMax)
        take = std::min(take, std::max<int64_t>(1, maxPanels));
      else
        take = left;
      left -= take;
      start[count + 1] = start[count] + take;
    }
  }
};

/// Prefetches into L2 a tile of `rows` rows of 32 floats at `p`, `ld`
/// apart (of C or of a residual; the products' tiles are 32 columns wide):
/// two cache lines a row.
inline void prefetchTile(const float *p, int64_t ld, int64_t rows) {
  for (int64_t r = 0; r < rows; ++r) {
    _mm_prefetch((const char *)(p + r * ld), _MM_HINT_T1);
    _mm_prefetch((const char *)(p + r * ld + 16), _MM_HINT_T1);
  }
}

/// The mask of the first w of 16 lanes: none for w <= 0, all from 16 on
/// (a vector loop's tail).
inline __mmask16 firstLanes(int64_t w) {
  return w >= 16  ? __mmask16(0xFFFF)
         : w <= 0 ? __mmask16(0)
                  : __mmask16((1u << w) - 1);
}

/// Masks of the first w of 32 lanes, as two 16-lane halves: edge columns
/// of a 32-wide panel, a K tail of a 32-deep block.
inline void laneMasks(int64_t w, __mmask16 &lo, __mmask16 &hi) {
  lo = firstLanes(w);
  hi = firstLanes(w - 16);
}

/// r[c] <- column c of the 16 x 16 matrix of 32-bit words whose row i is
/// r[i]: three stages of in-lane unpacks and cross-lane shuffles. Packs
/// the keys of attention's scores (Kᵀ) into the f32 GEMM's panels
/// (gemm.cpp) and, as bf16 pairs, into the bf16 GEMM's (gemm_bf16.cpp),
/// and turns the decode attention's sixteen dot products' partial sums
/// into one vector of them (attention.cpp).
__attribute__((target("avx512f"))) inline void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  // u[4i + k], 128-bit lane L: rows 4i..4i+3 of column 4L + k.
  for (int i = 0; i < 4; ++i) {
    u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int k = 0; k < 4; ++k) {
    __m512i ab0 = _mm512_shuffle_i32x4(u[k], u[4 + k], 0x44),
            ab1 = _mm512_shuffle_i32x4(u[k], u[4 + k], 0xEE),
            cd0 = _mm512_shuffle_i32x4(u[8 + k], u[12 + k], 0x44),
            cd1 = _mm512_shuffle_i32x4(u[8 + k], u[12 + k], 0xEE);
    r[k] = _mm512_shuffle_i32x4(ab0, cd0, 0x88);
    r[4 + k] = _mm512_shuffle_i32x4(ab0, cd0, 0xDD);
    r[8 + k] = _mm512_shuffle_i32x4(ab1, cd1, 0x88);
    r[12 + k] = _mm512_shuffle_i32x4(ab1, cd1, 0xDD);
  }
}

/// Decode: a product with at most kStreamRows rows of A multiplies them by
/// up to kStreamPanels adjacent 32-column panels of B at once
/// (streamPanels), each panel its own stream from DRAM (gemm.cpp's
/// kernelStreams, gemm_bf16.cpp's dpStreams): one core reads DRAM faster
/// with several streams in flight than with one (on the Xeon of
/// docs/benchmarks.md, 15-16 GB/s from one sequential stream, 18 from
/// four).
///
/// Up to 6 rows (a decode step of up to 6 sequences), in fewer panels at
/// once as the rows grow (24 accumulators at most). Before, 4 or more rows
/// went panel by panel through the row-panel kernels: on a Zen 4 at one
/// thread, gpt2 decode on a 128-token past at batch 4 spent 26.9 ms per
/// step in its f32 products against 19.7 at batch 1, and 14.9 against 9.9
/// in bf16, for the same weights from DRAM. Paired runs (3 rounds, faster
/// in each), f32: batch 4 27.4 -> 24.3 ms per step at one thread, 17.6 ->
/// 16.6 at two; batch 5 and 6 10-20% faster at one thread; batch 1 and the
/// t5 decoder step level. bf16 (VDPBF16PS; no AMX there): batch 4 18.1 ->
/// 14.3 ms at one thread, 11.4 -> 9.9 at two, batch 6 19.4 -> 14.5; on an
/// AMX CPU 4-6 rows now take these kernels instead of 16-row tiles, not
/// measured there. More rows are bound by their FMAs more than by
/// DRAM: at batch 8, f32 rows in groups of six, the rest reading the same
/// panels again from L2, were level with the single stream (28.6 against
/// 29.0 ms per step).
constexpr int kStreamRows = 6, kStreamPanels = 4;

/// Panels at once for `rows` rows: four up to three rows, then as many as
/// 24 accumulators (rows x panels x two halves) allow.
constexpr int streamPanels(int64_t rows) {
  return rows <= 3 ? kStreamPanels : int(12 / rows);
}

/// Those kernels' accumulators: C's R rows x P panels x two halves of 16
/// columns, row stride ldc, panel i's columns masked by masks[2 i] and
/// masks[2 i + 1]; loaded from C (zeros unless `load`), and stored back.
template <int P, int R>
__attribute__((target("avx512f"), always_inline)) inline void
loadStreamTiles(__m512 (&acc)[P][R][2], const float *c, int64_t ldc,
                const __mmask16 *masks, bool load) {
#pragma GCC unroll 4
  for (int i = 0; i < P; ++i)
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h)
        acc[i][r][h] = _mm512_maskz_loadu_ps(load ? masks[2 * i + h] : 0,
                                             c + r * ldc + 32 * i + 16 * h);
}
template <int P, int R>
__attribute__((target("avx512f"), always_inline)) inline void
storeStreamTiles(const __m512 (&acc)[P][R][2], float *c, int64_t ldc,
                 const __mmask16 *masks) {
#pragma GCC unroll 4
  for (int i = 0; i < P; ++i)
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h)
        _mm512_mask_storeu_ps(c + r * ldc + 32 * i + 16 * h,
                              masks[2 * i + h], acc[i][r][h]);
}

/// Column panels [jp0, jp1) of C (m rows, unit column stride) for those
/// kernels, streamPanels(m) at a time: run(jp, panels, masks) computes the
/// group from panel jp (masks as above, for C's edge), then `ep`, when
/// given, goes over each of its panels.
template <typename Run>
void forStreamGroups(int64_t jp0, int64_t jp1, const Desc2D &c, int64_t m,
                     const Epilogue *ep, Run run) {
  int64_t n = c.sizes[1], group = streamPanels(m);
  for (int64_t jp = jp0; jp < jp1; jp += group) {
    int64_t panels = std::min<int64_t>(group, jp1 - jp);
    __mmask16 masks[2 * kStreamPanels];
    for (int64_t i = 0; i < panels; ++i)
      laneMasks(std::min<int64_t>(32, n - (jp + i) * 32), masks[2 * i],
                masks[2 * i + 1]);
    run(jp, panels, masks);
    for (int64_t i = 0; i < panels && ep; ++i)
      ep->apply(c.at(0, (jp + i) * 32), c.strides[0], 0, (jp + i) * 32, m,
                std::min<int64_t>(32, n - (jp + i) * 32));
  }
}

/// C = 0, any strides.
inline void zero(const Desc2D &c) {
  for (int64_t i = 0; i < c.sizes[0]; ++i)
    for (int64_t j = 0; j < c.sizes[1]; ++j)
      *c.at(i, j) = 0.0f;
}

/// What every entry point does first: nothing for an empty C, and for an
/// empty K, C = 0 unless accumulating. True when the product must still run.
inline bool needsProduct(const Desc2D &a, const Desc2D &c, bool accumulate) {
  if (c.sizes[0] == 0 || c.sizes[1] == 0)
    return false;
  if (a.sizes[1] == 0) {
    if (!accumulate)
      zero(c);
    return false;
  }
  return true;
}

/// The portable paths are forced by TRANSFUSE_GEMM=portable, which the
/// tests use to cover them on any machine.
bool forcedPortable();

/// TRANSFUSE_GEMM=avx2: the f32 GEMM runs its AVX2 kernels even where
/// AVX-512 is present (the tests cover them this way).
bool forcedAvx2();

/// TRANSFUSE_GEMM=no-amx: the bf16 GEMM uses its AVX512-BF16 kernel even
/// where AMX is present (the tests cover that kernel this way on AMX
/// machines).
bool amxDisabled();

/// TRANSFUSE_GEMM=f32: the bf16 GEMM widens its operands and runs the f32
/// GEMM, as on a CPU with neither AMX nor AVX512-BF16.
bool bf16OnF32();

/// B (K x N, any strides; a transposed view reads its contiguous columns)
/// into the f32 GEMM's panel layout, [ceil(N / 32)][K][32], zero padded on
/// the right, on the calling thread: the layout
/// _mlir_ciface_transfuse_matmul_f32_packed takes.
void packF32Panels(const Desc2D &b, float *out);
constexpr int64_t kF32PanelWidth = transfuse::f32::kPanelCols;

/// B (K x N, f32, any strides) rounded to bf16 into the bf16 GEMM's panel
/// layout (transfuse/bf16_panels.h), on the calling thread: true when done;
/// false, writing nothing, where the bf16 GEMM has no bf16 kernels (no AMX
/// or AVX512-BF16, or TRANSFUSE_GEMM=f32) or B's columns are too far apart
/// for the packing's 32-bit gathers (2^26 floats or more), and the caller
/// should stay in f32.
bool packBf16Panels(const Desc2D &b, uint16_t *out);

/// A memref<?xbf16> descriptor: the panels (transfuse/bf16_panels.h) of a
/// product's A, written by the op that produces A (the norm kernel, a
/// linear's epilogue) and read by the product
/// (transfuse-cpu-a-panels).
struct Desc1DBf16 {
  uint16_t *base, *data;
  int64_t offset, sizes[1], strides[1];
  uint16_t *begin() const { return data + offset; }
};

/// Whether an A of m rows goes from its producer to a bf16 product as
/// panels: where the products run on the bf16 kernels (not without AMX or
/// AVX512-BF16, or with TRANSFUSE_GEMM=f32) and for more rows than a decode
/// step's (kStreamRows; a 16-row panel would be mostly padding to write,
/// and the product packs a few rows itself at no cost). Elsewhere
/// producers write no panels and products read their f32 A, which is
/// always written then.
bool bf16PanelsUsed(int64_t m);

/// Rows [i, i + h) x columns [j, j + w) of A, f32 at `src` (row stride ld,
/// unit column stride), rounded into A's panels (K padded to kp; j a
/// multiple of 32): the rest of the last 32-deep block, up to j + w rounded
/// up to 32, is zero. Only where the bf16 kernels run (bf16PanelsUsed).
void storeBf16PanelRows(const float *src, int64_t ld, int64_t i, int64_t h,
                        int64_t j, int64_t w, int64_t kp, uint16_t *panels);

/// Rows from m to the end of the last panel zero.
void zeroBf16PanelTail(int64_t m, int64_t kp, uint16_t *panels);

/// C = (accumulate ? C : 0) + bf16(A) * B, B from packBf16Panels.
void matmulBf16Packed(const Desc2D &a, const uint16_t *packed,
                      const Desc2D &c, bool accumulate);

/// C = (accumulate ? C : 0) + A * B, A (m x k) as bf16 panels
/// (transfuse/bf16_panels.h, rows past m zero), B from packBf16Panels;
/// only where packBf16Panels packs.
void matmulBf16PrepackedA(const uint16_t *aPacked, int64_t m, int64_t k,
                          const uint16_t *packed, const Desc2D &c,
                          bool accumulate);

/// The flags of transfuse_linear_{f32,bf16}_panels beyond those of
/// Epilogue::fromFlags, as transfuse-cpu-a-panels sets them.
using transfuse::linear::kPanelsIn;
using transfuse::linear::kPanelsOnly;
using transfuse::linear::kPanelsOut;

/// Whether an A of m rows goes from its producer to an f32 product as
/// panels (transfuse_linear_f32_panels): where the packed products run on
/// AVX-512 or AVX2 (not on the portable loops) and for more rows than a
/// decode step's (kStreamRows: those products read A in place).
/// Elsewhere producers write no panels and products read their A, which
/// is always written then.
bool f32PanelsUsed(int64_t m);

/// C = A * B on AVX-512 (f32Path() == Avx512 only), A (m x k) already in
/// the f32 GEMM's A panels: ceil(m / 12) panels of [k][12] floats, row r
/// of panel i at aPanels + i * 12 * k + p * 12 + r for K step p (rows past
/// m unread); B from packF32Panels.
void matmulF32PackedA(const float *aPanels, int64_t m, int64_t k,
                      const float *packed, const Desc2D &c);
constexpr int64_t kF32PanelRows = transfuse::f32::kPanelRows;

/// Rows q < 4 of 16 K steps each (v[q]) into four adjacent rows of an f32
/// A panel ([K][kF32PanelRows]; dst: the first row's element of the first
/// K step), transposed in registers as four 4 x 4 blocks per 128-bit lane,
/// so that each store writes the four rows of one K step (one store
/// instead of four).
__attribute__((target("avx512f"), always_inline)) inline void
storeRows4(const __m512 v[4], float *dst) {
  constexpr int64_t kR = kF32PanelRows;
  __m512 t0 = _mm512_unpacklo_ps(v[0], v[1]),
         t1 = _mm512_unpackhi_ps(v[0], v[1]),
         t2 = _mm512_unpacklo_ps(v[2], v[3]),
         t3 = _mm512_unpackhi_ps(v[2], v[3]);
  // u[q], lane L: rows 0-3 of K step 4 L + q.
  __m512 u[4] = {_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t0),
                                                     _mm512_castps_pd(t2))),
                 _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t0),
                                                     _mm512_castps_pd(t2))),
                 _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t1),
                                                     _mm512_castps_pd(t3))),
                 _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t1),
                                                     _mm512_castps_pd(t3)))};
  for (int q = 0; q < 4; ++q) {
    float *d = dst + q * kR;
    _mm_storeu_ps(d, _mm512_castps512_ps128(u[q]));
    _mm_storeu_ps(d + 4 * kR, _mm512_extractf32x4_ps(u[q], 1));
    _mm_storeu_ps(d + 8 * kR, _mm512_extractf32x4_ps(u[q], 2));
    _mm_storeu_ps(d + 12 * kR, _mm512_extractf32x4_ps(u[q], 3));
  }
}

/// n floats from src to dst (memref_copy.cpp): with AVX-512, non-temporal
/// stores past dst's first 64-byte boundary, so that dst is not read into
/// the cache before it is overwritten (then _mm_sfence before another
/// thread reads dst); else memcpy.
void streamFloats(float *dst, const float *src, int64_t n);

} // namespace transfuse::runtime::gemm

/// The f32 GEMM's entry points (gemm.cpp), for the runtime's own callers:
/// gemm_bf16.cpp and attention.cpp use the prepacked one, the tests both.
extern "C" void
_mlir_ciface_transfuse_matmul_f32(transfuse::runtime::gemm::Desc2D *a,
                                  transfuse::runtime::gemm::Desc2D *b,
                                  transfuse::runtime::gemm::Desc2D *c,
                                  int64_t accumulate);
extern "C" void
_mlir_ciface_transfuse_matmul_f32_packed(transfuse::runtime::gemm::Desc2D *a,
                                         transfuse::runtime::gemm::Desc3D *b,
                                         transfuse::runtime::gemm::Desc2D *c,
                                         int64_t accumulate);
extern "C" void
_mlir_ciface_transfuse_linear_q4(transfuse::runtime::gemm::Desc2D *a,
                                 transfuse::runtime::gemm::Desc1DU8 *codes,
                                 transfuse::runtime::gemm::Desc1D *params,
                                 transfuse::runtime::gemm::Desc2D *c,
                                 transfuse::runtime::gemm::Desc1D *bias,
                                 transfuse::runtime::gemm::Desc2D *residual,
                                 int64_t flags, int64_t accumulate);

#endif
