//===- gemm_bf16.cpp - the bf16 GEMM on AMX tiles or AVX512-BF16 ----------===//
//
// `transfuse compile --precision bf16` packs each constant weight into the
// bf16 tile layout of transfuse/bf16_panels.h and calls
//   _mlir_ciface_transfuse_matmul_bf16_packed(&A, &Bpacked, &C, accumulate)
// with A and C f32 (strided 2-D) and Bpacked [ceil(N / 32)][Kp][32] bf16:
// C = A * B, plus C's old value when `accumulate` is non-zero (as gemm.cpp).
// A is rounded to bf16 (nearest, ties to even) while it is packed; products
// accumulate in f32. The epilogue, softmax and norms stay f32. Unless
// `--bf16-attention=false`, the fused attention (attention.cpp) rounds K and
// V into the same layout once per head (packBf16Panels, through packBPanel)
// and multiplies its scores and probabilities by them on the same kernels
// (matmulBf16Packed; the probabilities, which its softmax pass writes as
// A panels itself, through matmulBf16PrepackedA).
//
// AMX (TDPBF16PS): A is packed into panels of 16 rows, [Kp / 32][16][32]
// each, so that every tile load is 1 KiB of contiguous memory. A block of
// C, 32 x 32 (four 16 x 16 f32 accumulator tiles; 16 x 32 for a last odd
// row panel), is loaded into tiles (or zeroed, see `accumulate`),
// accumulates over 256 of K (kKcAmx) from two A and two B tiles per
// 32-deep step, and is stored back. One column panel's 16 KiB slice of B
// stays in L1 while the row block's A panels (16 KiB a pair) stream past it
// from L2. Measured on a Xeon with AMX (one core, alternating runs of
// bert-base bf16 `.so`s, medians of 4 rounds): K passes of 256 took the
// model from 42.2 to 39.2 ms against passes of 768, whose 48 KiB B slice
// and 48 KiB A pair could not share L1; at 2 threads the two were level.
// Tile loads must not straddle cache lines: with 16-byte aligned operands
// the same kernel ran at a third of its speed (packed weights and runtime
// buffers are 64-byte aligned). The next B slice is prefetched into L2
// meanwhile, as in gemm.cpp. Between its K passes a block's sums wait in
// a buffer of the task's (`part`: the panel's column of C blocks, rows 128
// bytes apart) instead of in C, whose tile rows lie a row of C apart: the
// first pass reads C (when accumulating) and the last writes it, so no
// copy is added. Paired runs of bert-base bf16 on that Xeon: 30.4 -> 28.7
// ms at one thread (5 rounds), 21.8 -> 21.1 at two (7 rounds), faster in
// every round; the FFN's down product with its weight from DRAM (K =
// 3072, 12 passes) 456 -> 394 us at two.
// The same buffer in gemm.cpp's f32 product was level (t5-base encoder).
// Where the compiler asks (transfuse-cpu-a-panels), A comes as panels
// its producer wrote, and a block's final values are also rounded into
// the panels of the product C feeds; where nothing else reads C, only
// those: bert-base's FFN-up, whose C rows lie 12 KiB apart (the same L1
// sets), then keeps each block in the task's 32 x 32 buffer, and bf16
// bert-base took 22.5 -> 19.6 ms at two threads.
// Blocks at C's edges, or of a C with strided columns, go through a
// 32 x 32 buffer.
// Threads take (row block, column chunk) tasks as in gemm.cpp, after
// tasks that pack A's row panels in the same parallel loop; a thread
// configures its tiles at its first task of a product (amxProducts).
// Decode (at most kStreamRows = 6 rows of A) skips the tiles: `dpStreams`
// reads several panels side by side with VDPBF16PS (four up to 3 rows,
// then fewer: streamPanels), as many streams from DRAM (paired runs on
// that Xeon, one thread, up to 3 rows: gpt2 decode past 128 23.9 -> 17.9
// ms, t5 decoder step 25.8 -> 21.5; 12.3 -> 9.4 and 15.0 -> 12.3 at two;
// 4-6 rows measured on a Zen 4 only, gemm.h).
//
// Without AMX (CPUID, and Linux granting the tile state with
// arch_prctl(ARCH_REQ_XCOMP_PERM)), or with TRANSFUSE_GEMM=no-amx, the same
// tasks, blocks and packed operands go through an AVX512-BF16 kernel
// (VDPBF16PS, `dpBlock`) eight rows at a time: AMD Zen 4 and later have it
// and no AMX. Without either (or with TRANSFUSE_GEMM=f32 or =portable), the
// operands are widened to f32 and the f32 GEMM of gemm.cpp computes the
// same products (`matmulOnF32`). That reads each weight three times (bf16
// in, f32 out, f32 in): bert-base runs about 1.3x slower than in f32.
//
//===----------------------------------------------------------------------===//
#include "gemm.h"
#include "profile.h"

#include "transfuse/bf16_panels.h"

#include <algorithm>
#include <atomic>
#include <cpuid.h>
#include <cstdint>
#include <cstring>

#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

using namespace transfuse::runtime::gemm;
namespace bf16 = transfuse::bf16;
using transfuse::runtime::numThreads;
namespace profile = transfuse::runtime::profile;

namespace {

struct Desc3DBf16 {
  uint16_t *base, *data;
  int64_t offset, sizes[3], strides[3];
};

constexpr int64_t kRows = bf16::kPanelRows; // rows of an A tile
constexpr int64_t kKcAmx = 256;  // K per pass over a C block: AMX
// VDPBF16PS: on a Zen 4, 384, 1536 and 3072 were level with 768 in
// bench/gemm_bench.cpp (93-98% of the VDPBF16PS peak either way).
constexpr int64_t kKcDot = 768;
constexpr int64_t kMc = 128;     // rows per task's row block

/// Whether this CPU has AVX512-BF16 (and the AVX-512 the packing uses).
bool avx512Bf16Usable() {
  unsigned a, b, c, d;
  return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 5 & 1) &&
         __builtin_cpu_supports("avx512bw");
}

/// Whether this CPU has AMX-BF16 and AVX512-BF16 and the kernel lets this
/// process use the tile registers (asked once, by chooseProduct).
bool amxUsable() {
  unsigned a, b, c, d;
  if (!avx512Bf16Usable() || !__get_cpuid_count(7, 0, &a, &b, &c, &d))
    return false;
  bool amx = (d >> 22 & 1) && (d >> 24 & 1); // AMX-BF16, AMX-TILE
  constexpr long kReqXcompPerm = 0x1023, kXtileData = 18;
  return amx && syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
}

/// Panel jp of the packed bf16 B widened to f32 in the f32 GEMM's layout,
/// [K][32] at out: B's bf16 bits become the high half of each f32.
__attribute__((target("avx512f"))) void widenPanelAvx512(const uint16_t *panel,
                                                        int64_t k, float *out) {
  // Each 32-deep block holds two tiles (columns 0-15, 16-31) of 16 rows q,
  // each row the pairs (B[2q][j], B[2q + 1][j]): the even halves are row 2q,
  // the odd halves row 2q + 1.
  const __m512i high = _mm512_set1_epi32(int(0xffff0000u));
  for (int64_t p0 = 0; p0 < k; p0 += bf16::kBlockK)
    for (int64_t t = 0; t < 2; ++t)
      for (int64_t q = 0; q < 16 && p0 + 2 * q < k; ++q) {
        __m512i v =
            _mm512_loadu_si512(panel + p0 * 32 + t * 512 + q * 32);
        float *row = out + (p0 + 2 * q) * 32 + t * 16;
        _mm512_storeu_si512(row, _mm512_slli_epi32(v, 16));
        if (p0 + 2 * q + 1 < k)
          _mm512_storeu_si512(row + 32, _mm512_and_si512(v, high));
      }
}

/// What a product reads and writes besides its f32 operands
/// (transfuse_linear_bf16_panels): A as panels (bf16_panels.h) instead of
/// packing A itself; C's panels besides C; whether C's f32 values may be
/// left unwritten, as nothing else reads them.
struct PanelsIO {
  const uint16_t *a = nullptr;
  uint16_t *c = nullptr;
  bool panelsOnly = false;
};

/// Without AMX or AVX512-BF16: the same products on the f32 GEMM. A is
/// rounded to bf16 once and B widened to f32 (exact) into the f32 GEMM's
/// packed layout, which the f32 GEMM then reads as a prepacked weight. No
/// panels reach it (bf16PanelsUsed).
void matmulOnF32(const Desc2D &a, const uint16_t *packed, const Desc2D &c,
                 bool accumulate, const Epilogue *ep, const PanelsIO &) {
  int64_t m = a.sizes[0], k = a.sizes[1], n = c.sizes[1];
  int64_t kp = bf16::paddedK(k), panels = (n + 31) / 32;
  bool par = parallel(m, n, k);
  Scratch<float> rounded(m * k);
  forEach(m, par, [&](int64_t i) {
    for (int64_t p = 0; p < k; ++p)
      rounded.data[i * k + p] = bf16::rounded(*a.at(i, p));
  });
  Desc2D ar{rounded.data, rounded.data, 0, {m, k}, {k, 1}};
  Scratch<float> wide(panels * k * 32);
  static const bool avx512 = f32Path() == F32Path::Avx512;
  forEach(panels, par, [&](int64_t jp) {
    float *out = wide.data + jp * k * 32;
    if (avx512)
      return widenPanelAvx512(packed + jp * kp * 32, k, out);
    for (int64_t p = 0; p < k; ++p)
      for (int64_t x = 0; x < 32; ++x)
        out[p * 32 + x] =
            bf16::toFloat(packed[bf16::index(kp, p, jp * 32 + x)]);
  });
  Desc3D wb{wide.data, wide.data, 0, {panels, k, 32}, {k * 32, 32, 1}};
  Desc2D cc = c; // the C entry takes non-const descriptors
  _mlir_ciface_transfuse_matmul_f32_packed(&ar, &wb, &cc, accumulate);
  if (ep)
    ep->applyAll(c);
}

/// One row of an A tile's 32-deep block: the first w (1 to 32) floats at
/// src (unit stride) rounded to bf16 into dst's 32 words; the rest zero.
__attribute__((target("avx512f,avx512bw,avx512bf16"),
               always_inline)) inline void
roundBlockRow(const float *src, int64_t w, uint16_t *dst) {
  __mmask16 m0, m1;
  laneMasks(w, m0, m1);
  __m512 lo = _mm512_maskz_loadu_ps(m0, src);
  __m512 hi = _mm512_maskz_loadu_ps(m1, src + 16);
  _mm512_storeu_si512(dst, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

/// Row panel `ip` of A rounded to bf16: 16 rows of each 32-deep block kb at
/// out[kb * 512], rows past M and K past its end zero.
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void
packAPanel(const Desc2D &a, int64_t ip, uint16_t *out) {
  int64_t m = a.sizes[0], k = a.sizes[1];
  int64_t blocks = bf16::paddedK(k) / bf16::kBlockK;
  for (int64_t r = 0; r < kRows; ++r) {
    int64_t i = ip * kRows + r;
    for (int64_t kb = 0; kb < blocks; ++kb) {
      uint16_t *dst = out + kb * 512 + r * 32;
      int64_t p0 = kb * bf16::kBlockK, w = std::min<int64_t>(32, k - p0);
      if (i >= m) {
        _mm512_storeu_si512(dst, _mm512_setzero_si512());
        continue;
      }
      const float *src = a.at(i, p0);
      if (a.strides[1] != 1) {
        for (int64_t x = 0; x < 32; ++x)
          dst[x] = x < w ? bf16::fromFloat(src[x * a.strides[1]]) : 0;
        continue;
      }
      roundBlockRow(src, w, dst);
    }
  }
}

/// A rounded to bf16, as panels of 16 rows: panel ip is
/// out[ip * 16 * Kp], [Kp / 32][16][32].
void packA(const Desc2D &a, uint16_t *out, bool parallel) {
  int64_t kp = bf16::paddedK(a.sizes[1]);
  int64_t panels = (a.sizes[0] + kRows - 1) / kRows;
  forEach(panels, parallel,
          [&](int64_t ip) { packAPanel(a, ip, out + ip * kRows * kp); });
}

} // namespace

__attribute__((target("avx512f,avx512bw,avx512bf16"))) void
transfuse::runtime::gemm::storeBf16PanelRows(const float *src, int64_t ld,
                                             int64_t i, int64_t h, int64_t j,
                                             int64_t w, int64_t kp,
                                             uint16_t *panels) {
  for (int64_t r = 0; r < h; ++r)
    for (int64_t x = 0; x < w; x += bf16::kBlockK)
      roundBlockRow(src + r * ld + x, std::min<int64_t>(32, w - x),
                    panels + bf16::aIndex(kp, i + r, j + x));
}

void transfuse::runtime::gemm::zeroBf16PanelTail(int64_t m, int64_t kp,
                                                 uint16_t *panels) {
  int64_t end = (m + kRows - 1) / kRows * kRows;
  for (int64_t i = m; i < end; ++i)
    for (int64_t p = 0; p < kp; p += bf16::kBlockK)
      std::memset(panels + bf16::aIndex(kp, i, p), 0,
                  bf16::kBlockK * sizeof(uint16_t));
}

namespace {

/// Row p of B's 16 columns from j (`lanes` of them; the rest, and rows
/// past K, zero): one load when B's columns are contiguous, else a gather
/// at `cols` (the columns' offsets).
__attribute__((target("avx512f"))) inline __m512
bRow(const Desc2D &b, int64_t p, int64_t j, __mmask16 lanes, __m512i cols) {
  if (p >= b.sizes[0] || !lanes)
    return _mm512_setzero_ps();
  const float *src = b.at(p, j);
  return b.strides[1] == 1 ? _mm512_maskz_loadu_ps(lanes, src)
                           : _mm512_mask_i32gather_ps(_mm512_setzero_ps(),
                                                      lanes, cols, src,
                                                      sizeof(float));
}

/// packBPanel for a B whose columns are contiguous (attention's K^T, a
/// transposed view of K's rows): each column's 32 K values of a block,
/// rounded, are 16 words (pairs of rows 2q, 2q + 1), and a tile's 16
/// columns of them, transposed as 16 x 16 words, are its 16 rows. With
/// the general path's gathers instead, packing K and V took 1.3% of
/// bert-base bf16's samples at one thread (perf); with this, 0.5%.
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void
packBPanelColumns(const Desc2D &b, int64_t jp, uint16_t *out) {
  int64_t k = b.sizes[0], n = b.sizes[1], kp = bf16::paddedK(k);
  for (int64_t t = 0; t < 2; ++t)
    for (int64_t p0 = 0; p0 < kp; p0 += 32) {
      __mmask16 m0, m1;
      laneMasks(std::min<int64_t>(32, k - p0), m0, m1); // p0 < k <= kp
      __m512i r[16];
      for (int c = 0; c < 16; ++c) {
        int64_t j = jp * bf16::kPanelCols + t * 16 + c;
        if (j >= n) {
          r[c] = _mm512_setzero_si512();
          continue;
        }
        const float *col = b.at(p0, j);
        r[c] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, col + 16),
                                            _mm512_maskz_loadu_ps(m0, col));
      }
      transpose16(r);
      for (int q = 0; q < 16; ++q)
        _mm512_storeu_si512(out + p0 * 32 + t * 512 + q * 32, r[q]);
    }
}

/// Panel jp of B [k][n] (f32, any strides, column stride under 2^26)
/// rounded to bf16 into the layout of bf16_panels.h at out, padding zero:
/// each tile row takes rows 2q and 2q + 1 of its 16 columns (through
/// gathers when the columns are strided), converts them together and
/// interleaves them into pairs. A B with contiguous columns (attention's
/// Kᵀ) goes through packBPanelColumns instead.
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void
packBPanel(const Desc2D &b, int64_t jp, uint16_t *out) {
  if (b.strides[0] == 1 && b.strides[1] != 1)
    return packBPanelColumns(b, jp, out);
  int64_t n = b.sizes[1], kp = bf16::paddedK(b.sizes[0]);
  // Lane 2c of a tile row takes row 2q's column c, lane 2c + 1 row
  // 2q + 1's: in the converted vector, lanes c and 16 + c.
  alignas(64) static const uint16_t pairs[32] = {
      0, 16, 1, 17, 2, 18, 3, 19, 4,  20, 5,  21, 6,  22, 7,  23,
      8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i interleave = _mm512_load_si512(pairs);
  const __m512i cols = _mm512_mullo_epi32(
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
      _mm512_set1_epi32(int32_t(b.strides[1])));
  for (int64_t t = 0; t < 2; ++t) {
    int64_t j = jp * bf16::kPanelCols + t * 16;
    __mmask16 lanes = firstLanes(n - j);
    for (int64_t p0 = 0; p0 < kp; p0 += 2) {
      __m512i v = (__m512i)_mm512_cvtne2ps_pbh(bRow(b, p0 + 1, j, lanes, cols),
                                               bRow(b, p0, j, lanes, cols));
      _mm512_storeu_si512(out + bf16::index(kp, p0, t * 16),
                          _mm512_permutexvar_epi16(interleave, v));
    }
  }
}

struct alignas(64) TileConfig {
  uint8_t palette, startRow, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

/// Tiles 0-3: C (16 x 16 f32), 4-5: A (16 x 32 bf16), 6-7: B (16 pairs x
/// 16 columns); all 16 rows of 64 bytes.
__attribute__((target("amx-tile"))) void configureTiles() {
  TileConfig cfg{};
  cfg.palette = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  _tile_loadconfig(&cfg);
}

/// C (RP * 16 rows x 32 columns, row stride ldc floats) = (load ? In : 0)
/// + `blocks` steps of A panel tiles (a; the second panel at a + aNext) times
/// B panel tiles, where In (row stride ldIn) is the block's sum so far: C
/// itself or the task's buffer between K passes. Along the way, `pfLines`
/// cache lines from `pf` are prefetched into L2, spread over the steps (a
/// share of the next B slice).
template <int RP>
__attribute__((target("amx-tile,amx-bf16"))) void
block(int64_t blocks, const uint16_t *a, int64_t aNext, const uint16_t *b,
      const float *in, int64_t ldIn, float *c, int64_t ldc, bool load,
      const uint16_t *pf, int64_t pfLines) {
  int64_t ldInBytes = ldIn * sizeof(float), ldcBytes = ldc * sizeof(float);
  if (load) {
    _tile_loadd(0, in, ldInBytes);
    _tile_loadd(1, in + 16, ldInBytes);
    if (RP == 2) {
      _tile_loadd(2, in + 16 * ldIn, ldInBytes);
      _tile_loadd(3, in + 16 * ldIn + 16, ldInBytes);
    }
  } else {
    _tile_zero(0);
    _tile_zero(1);
    if (RP == 2) {
      _tile_zero(2);
      _tile_zero(3);
    }
  }
  for (int64_t kb = 0; kb < blocks; ++kb) {
    for (int64_t l = kb * pfLines / blocks; l < (kb + 1) * pfLines / blocks;
         ++l)
      _mm_prefetch((const char *)(pf + l * 32), _MM_HINT_T1);
    const uint16_t *ak = a + kb * 512, *bk = b + kb * 1024;
    _tile_loadd(6, bk, 64);
    _tile_loadd(7, bk + 512, 64);
    _tile_loadd(4, ak, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    if (RP == 2) {
      _tile_loadd(5, ak + aNext, 64);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, c, ldcBytes);
  _tile_stored(1, c + 16, ldcBytes);
  if (RP == 2) {
    _tile_stored(2, c + 16 * ldc, ldcBytes);
    _tile_stored(3, c + 16 * ldc + 16, ldcBytes);
  }
}

__attribute__((target("amx-tile"))) void releaseTiles() { _tile_release(); }

/// Products on AMX so far, and the one this thread's tiles were last
/// configured for: a thread configures its tiles at its first task of a
/// product and keeps them through its later tasks (the pool's workers run
/// nothing else in between). The calling thread releases its tiles when
/// the product returns, as code after it may use AMX with another
/// configuration; the workers' stay configured until their next product.
std::atomic<uint64_t> amxProducts{0};
thread_local uint64_t tilesConfiguredFor = 0;

/// The AVX512-BF16 kernel, for CPUs without AMX (AMD Zen 4 and later,
/// Intel Cooper Lake): C (R rows x 32 columns, row stride ldc floats) =
/// (load ? In : 0) + `blocks` 32-deep steps of R rows of an A panel (a, rows
/// 32 elements apart) times B panel blocks, with VDPBF16PS. It reads the
/// same packed A and B as the AMX tiles: B's row q of a tile is the pair
/// (B[2q][j], B[2q + 1][j]) of 16 columns, and A's pair (A[r][2q],
/// A[r][2q + 1]) is one 32-bit word, broadcast to all 16 lanes. R = 8
/// keeps 16 f32 accumulators; fewer rows (decode) take R = 1, 2 or 4.
/// In, ldIn, `pf` and `pfLines` as in `block`.
template <int kR>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void
dpBlock(int64_t blocks, const uint16_t *a, const uint16_t *b, const float *in,
        int64_t ldIn, float *c, int64_t ldc, bool load, const uint16_t *pf,
        int64_t pfLines) {
  __m512 acc[kR][2];
  for (int r = 0; r < kR; ++r) {
    acc[r][0] = load ? _mm512_loadu_ps(in + r * ldIn) : _mm512_setzero_ps();
    acc[r][1] =
        load ? _mm512_loadu_ps(in + r * ldIn + 16) : _mm512_setzero_ps();
  }
  for (int64_t kb = 0; kb < blocks; ++kb) {
    for (int64_t l = kb * pfLines / blocks; l < (kb + 1) * pfLines / blocks;
         ++l)
      _mm_prefetch((const char *)(pf + l * 32), _MM_HINT_T1);
    const uint16_t *ak = a + kb * 512, *bk = b + kb * 1024;
#pragma clang loop unroll(full)
    for (int q = 0; q < 16; ++q) {
      __m512bh b0 = (__m512bh)_mm512_loadu_si512(bk + q * 32);
      __m512bh b1 = (__m512bh)_mm512_loadu_si512(bk + 512 + q * 32);
      for (int r = 0; r < kR; ++r) {
        int32_t pair;
        std::memcpy(&pair, ak + r * 32 + 2 * q, sizeof pair);
        __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
        acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
      }
    }
  }
  for (int r = 0; r < kR; ++r) {
    _mm512_storeu_ps(c + r * ldc, acc[r][0]);
    _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);
  }
}

/// How far ahead dpStreams prefetches: 2 blocks of 2 KiB per stream. It
/// prefetched nothing before; paired runs, one / two threads (4 and 3
/// rounds, faster in each): bf16 gpt2 decode at a 128-token past 17.5 ->
/// 13.9 ms, 9.3 -> 7.2; the bf16 t5 decoder step 17.9 -> 16.6, 10.1 -> 9.1.
constexpr int64_t kStreamAheadBlocks = 2;

/// Decode (at most kStreamRows rows of A, one row panel; see gemm.h), on
/// AMX and AVX512-BF16 CPUs alike: C (R rows x P adjacent panels, row
/// stride ldc, masked by `masks`) = (load ? C : 0) + A's rows times the P
/// panels, whole K, with VDPBF16PS. A 16-row AMX tile would multiply 15
/// rows of zeros.
template <int R, int P>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void
dpStreams(int64_t blocks, const uint16_t *a, const uint16_t *b,
          int64_t panelStride, float *c, int64_t ldc, const __mmask16 *masks,
          bool load) {
  __m512 acc[P][R][2];
  loadStreamTiles(acc, c, ldc, masks, load);
  for (int64_t kb = 0; kb < blocks; ++kb) {
    const uint16_t *ak = a + kb * 512;
    // Each stream's block 4 KiB on, into the L2, two lines a step; past a
    // panel's end, the next group's panel of this stream (as gemm.cpp's
    // kernelStreams).
    int64_t ahead = kb + kStreamAheadBlocks,
            skip = ahead < blocks ? 0 : P * panelStride - blocks * 1024;
#pragma clang loop unroll(full)
    for (int q = 0; q < 16; ++q) {
      __m512bh av[R];
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) {
        int32_t pair;
        std::memcpy(&pair, ak + r * 32 + 2 * q, sizeof pair);
        av[r] = (__m512bh)_mm512_set1_epi32(pair);
      }
#pragma GCC unroll 4
      for (int i = 0; i < P; ++i) {
        const uint16_t *bk = b + i * panelStride + kb * 1024;
        const char *pf =
            (const char *)(b + i * panelStride + ahead * 1024 + skip) + q * 128;
        _mm_prefetch(pf, _MM_HINT_T1);
        _mm_prefetch(pf + 64, _MM_HINT_T1);
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(bk + q * 32);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(bk + 512 + q * 32);
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) {
          acc[i][r][0] = _mm512_dpbf16_ps(acc[i][r][0], av[r], b0);
          acc[i][r][1] = _mm512_dpbf16_ps(acc[i][r][1], av[r], b1);
        }
      }
    }
  }
  storeStreamTiles(acc, c, ldc, masks);
}

using StreamsKernel = void (*)(int64_t, const uint16_t *, const uint16_t *,
                               int64_t, float *, int64_t, const __mmask16 *,
                               bool);
/// By rows and panels (streamPanels(rows) at most; null past that).
constexpr StreamsKernel kStreamsKernels[kStreamRows][kStreamPanels] = {
    {dpStreams<1, 1>, dpStreams<1, 2>, dpStreams<1, 3>, dpStreams<1, 4>},
    {dpStreams<2, 1>, dpStreams<2, 2>, dpStreams<2, 3>, dpStreams<2, 4>},
    {dpStreams<3, 1>, dpStreams<3, 2>, dpStreams<3, 3>, dpStreams<3, 4>},
    {dpStreams<4, 1>, dpStreams<4, 2>, dpStreams<4, 3>, nullptr},
    {dpStreams<5, 1>, dpStreams<5, 2>, nullptr, nullptr},
    {dpStreams<6, 1>, dpStreams<6, 2>, nullptr, nullptr}};

/// Which kernel computes the bf16 products.
enum class Kernel { Amx, Avx512Bf16 };

/// The tiled product on packed A and B, on `kernel`; A packed here, or
/// given as panels (io.a; then only A's sizes are read). With io.c, C's
/// final values (after `ep`) are also rounded into C's panels there, as
/// the A of a product C feeds: each block of C as its last K pass and
/// epilogue leave it in L1; with io.panelsOnly, a block whose C nothing
/// else reads stays in the task's buffer and only its panels are written.
template <Kernel kernel>
void matmulTiledOn(const Desc2D &a, const uint16_t *packed, const Desc2D &c,
                   bool accumulate, const Epilogue *ep, const PanelsIO &io) {
  if (ep && ep->none())
    ep = nullptr;
  const uint16_t *aPrepacked = io.a;
  uint16_t *cPanels = io.c;
  int64_t m = a.sizes[0], k = a.sizes[1], n = c.sizes[1];
  int64_t kp = bf16::paddedK(k), kBlocks = kp / bf16::kBlockK;
  constexpr int64_t kBlocksPerKc =
      (kernel == Kernel::Amx ? kKcAmx : kKcDot) / bf16::kBlockK;
  int64_t rowPanels = (m + kRows - 1) / kRows;
  int64_t colPanels = (n + bf16::kPanelCols - 1) / bf16::kPanelCols;
  int64_t threads = parallel(m, n, k) ? numThreads() : 1;
  Scratch<uint16_t> aPack(aPrepacked ? 0 : rowPanels * kRows * kp);
  const uint16_t *aData = aPrepacked ? aPrepacked : aPack.data;
  // With threads, packing A's row panels are the loop's first tasks (the
  // pool hands tasks out in order); a product task waits for all of them.
  // One parallel loop instead of two: bert-base bf16 at two threads 21.9
  // -> 21.4 ms (7 paired rounds, faster in all; the same in gemm.cpp was
  // level on bert-base and t5 in f32, whose products take longer).
  int64_t packTasks = threads > 1 && !aPrepacked ? rowPanels : 0;
  std::atomic<int64_t> panelsPacked{0};
  if (packTasks == 0 && !aPrepacked)
    packA(a, aPack.data, false);
  int64_t rowBlocks = (m + kMc - 1) / kMc;
  ColumnChunks chunks(colPanels, threads,
                      kChunkBytes / (std::min(m, kMc) * 32 * sizeof(float)));
  bool unitColumns = c.strides[1] == 1;
  int64_t aNext = kRows * kp; // from one A row panel to the next
  bool streams = rowPanels == 1 && m <= kStreamRows && unitColumns;
  uint64_t product = kernel == Kernel::Amx && !streams ? ++amxProducts : 0;
  int64_t kpOut = bf16::paddedK(n); // C's panels' padded depth
  if (cPanels) // never with streams (bf16PanelsUsed)
    zeroBf16PanelTail(m, kpOut, cPanels);
  auto task = [&](int64_t t) {
    if (streams) // decode: one row block, chunk t
      return forStreamGroups(
          chunks.start[t], chunks.start[t + 1], c, m, ep,
          [&](int64_t jp, int64_t panels, const __mmask16 *masks) {
            kStreamsKernels[m - 1][panels - 1](
                kBlocks, aData, packed + jp * kp * bf16::kPanelCols,
                kp * bf16::kPanelCols, c.at(0, jp * 32), c.strides[0], masks,
                accumulate);
          });
    if constexpr (kernel == Kernel::Amx)
      if (tilesConfiguredFor != product) {
        configureTiles();
        tilesConfiguredFor = product;
      }
    // The large chunks of every row block first, then the smaller ones.
    int64_t rb = t % rowBlocks, cc = t / rowBlocks;
    int64_t ip0 = rb * (kMc / kRows),
            ip1 = std::min(rowPanels, ip0 + kMc / kRows);
    int64_t jp0 = chunks.start[cc], jp1 = chunks.start[cc + 1];
    alignas(64) float tile[32 * 32];
    alignas(64) float part[kMc * 32]; // the panel's C blocks, see below
    // Panel by panel, its K passes in turn: B is read in its layout's order
    // (one stream from DRAM), and the panel's column of C blocks stays in
    // `part` (16 KiB, in L1 and L2) between the passes.
    for (int64_t jp = jp0; jp < jp1; ++jp) {
      int64_t j = jp * bf16::kPanelCols, w = std::min<int64_t>(32, n - j);
      for (int64_t kb0 = 0; kb0 < kBlocks; kb0 += kBlocksPerKc) {
        int64_t blocks = std::min(kBlocksPerKc, kBlocks - kb0);
        bool load = accumulate || kb0 > 0;
        // A linear's epilogue, on each block of C after its last K pass.
        bool final = kb0 + kBlocksPerKc >= kBlocks;
        const Epilogue *last = final ? ep : nullptr;
        const uint16_t *bp = packed + jp * kp * bf16::kPanelCols + kb0 * 1024;
        // The next B slice this task reads (the panel's next K pass, or
        // the next panel's first), prefetched into L2 a share per block
        // call while this one is used: weights come from DRAM (see
        // gemm.cpp).
        const uint16_t *next = nullptr;
        int64_t nextLines = 0;
        if (kb0 + kBlocksPerKc < kBlocks) {
          next = bp + kBlocksPerKc * 1024;
          nextLines = std::min(kBlocksPerKc, kBlocks - kb0 - kBlocksPerKc) *
                      1024 * sizeof(uint16_t) / 64;
        } else if (jp + 1 < jp1) {
          next = packed + (jp + 1) * kp * bf16::kPanelCols;
          nextLines =
              std::min(kBlocksPerKc, kBlocks) * 1024 * sizeof(uint16_t) / 64;
        }
        int64_t calls = (ip1 - ip0 + 1) / 2;
        for (int64_t ip = ip0; ip < ip1; ip += 2) {
          int64_t call = (ip - ip0) / 2, l0 = nextLines * call / calls,
                  l1 = nextLines * (call + 1) / calls;
          const uint16_t *pf = next + l0 * 32;
          int rp = ip + 1 < ip1 ? 2 : 1;
          int64_t i = ip * kRows, h = std::min<int64_t>(rp * kRows, m - i);
          const uint16_t *ap = aData + ip * aNext + kb0 * 512;
          float *cij = c.at(i, j);
          // The block of C the next call finishes (the next row panels',
          // else the next column panel's first) prefetched into L2 while
          // this one is computed, as in gemm.cpp: its C (unless only its
          // panels are written) and its residual.
          if (final && unitColumns) {
            int64_t ni = ip + 2 < ip1 ? i + 2 * kRows : ip0 * kRows,
                    nj = ip + 2 < ip1 ? j : j + 32,
                    nh = std::min<int64_t>(2 * kRows, m - ni);
            if (nj < std::min<int64_t>(n, jp1 * 32)) {
              if (!(cPanels && io.panelsOnly))
                prefetchTile(c.at(ni, nj), c.strides[0], nh);
              if (ep && ep->residual && ep->residual->strides[1] == 1)
                prefetchTile(ep->residual->at(ni, nj), ep->residual->strides[0],
                             nh);
            }
          }
          // run(in, ldIn, dst, ld): the block's C from `in` (unless this
          // is its first pass and nothing accumulates), to dst.
          auto run = [&](const float *in, int64_t ldIn, float *dst,
                         int64_t ld) {
            if constexpr (kernel == Kernel::Amx) {
              if (rp == 2)
                block<2>(blocks, ap, aNext, bp, in, ldIn, dst, ld, load, pf,
                         l1 - l0);
              else
                block<1>(blocks, ap, aNext, bp, in, ldIn, dst, ld, load, pf,
                         l1 - l0);
            } else {
              // Eight rows at a time (panel s / 2, its half s % 2), as few
              // as hold C's last rows.
              for (int s = 0; s * 8 < h; ++s) {
                const uint16_t *as = ap + s / 2 * aNext + s % 2 * 8 * 32;
                const float *is = in + s * 8 * ldIn;
                float *cs = dst + s * 8 * ld;
                int64_t lines = s == 0 ? l1 - l0 : 0, rows = h - s * 8;
                if (rows >= 5)
                  dpBlock<8>(blocks, as, bp, is, ldIn, cs, ld, load, pf, lines);
                else if (rows >= 3)
                  dpBlock<4>(blocks, as, bp, is, ldIn, cs, ld, load, pf, lines);
                else if (rows == 2)
                  dpBlock<2>(blocks, as, bp, is, ldIn, cs, ld, load, pf, lines);
                else
                  dpBlock<1>(blocks, as, bp, is, ldIn, cs, ld, load, pf, lines);
              }
            }
          };
          if (unitColumns && h == rp * kRows && w == 32) {
            // Between its K passes the block waits in `part`, its rows 128
            // bytes apart instead of a row of C (3-12 KiB on bert-base):
            // the first pass reads C (when accumulating), the last writes
            // it.
            float *pij = part + (i - ip0 * kRows) * 32;
            bool first = kb0 == 0;
            if (final && cPanels && io.panelsOnly) {
              // C's rows lie 12 KiB apart on bert-base's FFN (the same L1
              // sets); its panels come from the contiguous tile instead.
              run(first ? cij : pij, first ? c.strides[0] : 32, tile, 32);
              if (last)
                last->apply(tile, 32, i, j, h, w);
              storeBf16PanelRows(tile, 32, i, h, j, w, kpOut, cPanels);
              continue;
            }
            run(first ? cij : pij, first ? c.strides[0] : 32, final ? cij : pij,
                final ? c.strides[0] : 32);
            if (last)
              last->apply(cij, c.strides[0], i, j, h, w);
            if (final && cPanels)
              storeBf16PanelRows(cij, c.strides[0], i, h, j, w, kpOut, cPanels);
            continue;
          }
          // An edge block, or strided columns: through the buffer.
          for (int64_t r = 0; r < rp * kRows && load; ++r)
            for (int64_t x = 0; x < 32; ++x)
              tile[r * 32 + x] = r < h && x < w
                                     ? cij[r * c.strides[0] + x * c.strides[1]]
                                     : 0.0f;
          run(tile, 32, tile, 32);
          if (last)
            last->apply(tile, 32, i, j, h, w);
          if (final && cPanels)
            storeBf16PanelRows(tile, 32, i, h, j, w, kpOut, cPanels);
          for (int64_t r = 0; r < h; ++r)
            for (int64_t x = 0; x < w; ++x)
              cij[r * c.strides[0] + x * c.strides[1]] = tile[r * 32 + x];
        }
      }
    }
  };
  forEach(packTasks + rowBlocks * chunks.count, threads > 1,
          [&](int64_t t) {
            if (t < packTasks) {
              packAPanel(a, t, aPack.data + t * kRows * kp);
              panelsPacked.fetch_add(1, std::memory_order_release);
              return;
            }
            while (panelsPacked.load(std::memory_order_acquire) < packTasks)
              _mm_pause();
            task(t - packTasks);
          });
  if constexpr (kernel == Kernel::Amx)
    if (product != 0 && tilesConfiguredFor == product) {
      releaseTiles();
      tilesConfiguredFor = 0;
    }
}

/// A product of the bf16 GEMM: C = (accumulate ? C : 0) + bf16(A) * B,
/// then the epilogue; A read from its panels when given (then only its
/// sizes are read), C's panels written when given.
using Product = void (*)(const Desc2D &a, const uint16_t *packed,
                         const Desc2D &c, bool accumulate, const Epilogue *ep,
                         const PanelsIO &io);

/// The product this CPU runs (CPUID, the kernel's grant of the tile state,
/// TRANSFUSE_GEMM): AMX tiles, else VDPBF16PS, else the f32 GEMM on widened
/// operands.
Product chooseProduct() {
  if (forcedPortable() || bf16OnF32())
    return matmulOnF32;
  if (!amxDisabled() && amxUsable())
    return matmulTiledOn<Kernel::Amx>;
  if (avx512Bf16Usable())
    return matmulTiledOn<Kernel::Avx512Bf16>;
  return matmulOnF32;
}

/// chooseProduct's choice, made once for all the entry points.
Product bf16Product() {
  static const Product product = chooseProduct();
  return product;
}

} // namespace

/// bf16(A) * B with B prepacked at compile time (bf16_panels.h).
extern "C" __attribute__((visibility("default"))) void
_mlir_ciface_transfuse_matmul_bf16_packed(Desc2D *a, Desc3DBf16 *b, Desc2D *c,
                                          int64_t accumulate) {
  auto scope = profile::Scope::product("matmul_bf16_packed", a->sizes[0],
                                       a->sizes[1], c->sizes[1]);
  if (!needsProduct(*a, *c, accumulate))
    return;
  bf16Product()(*a, b->data + b->offset, *c, accumulate, nullptr, {});
}

bool transfuse::runtime::gemm::bf16PanelsUsed(int64_t m) {
  return m > kStreamRows && bf16Product() != matmulOnF32;
}

bool transfuse::runtime::gemm::packBf16Panels(const Desc2D &b,
                                              uint16_t *out) {
  if (bf16Product() == matmulOnF32 || b.strides[1] >= (1 << 26))
    return false;
  int64_t kp = bf16::paddedK(b.sizes[0]);
  for (int64_t jp = 0; jp * bf16::kPanelCols < b.sizes[1]; ++jp)
    packBPanel(b, jp, out + jp * kp * bf16::kPanelCols);
  return true;
}

void transfuse::runtime::gemm::matmulBf16Packed(const Desc2D &a,
                                                const uint16_t *packed,
                                                const Desc2D &c,
                                                bool accumulate) {
  if (needsProduct(a, c, accumulate))
    bf16Product()(a, packed, c, accumulate, nullptr, {});
}

/// A `linear` on a bf16 prepacked B: C = act(bf16(A) * B + bias) +
/// residual, the epilogue (Epilogue::fromFlags) applied to each block of C
/// as the product finishes it.
extern "C" __attribute__((visibility("default"))) void
_mlir_ciface_transfuse_linear_bf16_packed(Desc2D *a, Desc3DBf16 *b, Desc2D *c,
                                          Desc1D *bias, Desc2D *residual,
                                          int64_t flags) {
  auto scope = profile::Scope::product("linear_bf16_packed", a->sizes[0],
                                       a->sizes[1], c->sizes[1]);
  Epilogue ep = Epilogue::fromFlags(flags, bias, residual);
  // An empty K: C = 0, then the epilogue (nothing for an empty C).
  if (!needsProduct(*a, *c, false))
    return ep.applyAll(*c);
  bf16Product()(*a, b->data + b->offset, *c, false, &ep, {});
}

/// transfuse_linear_bf16_packed with A's panels and C's (transfuse-cpu-a-
/// panels): flags as there, plus bit 10: A is read from `aPanels`,
/// which its producer wrote (A's f32 sizes give its shape); bit 11: C's
/// final values are also rounded into `cPanels` for the product C feeds;
/// bit 12 (with 11): only the panels need to be written, as nothing else
/// reads C. All only where bf16PanelsUsed(M) (the producers write no
/// panels and all of C elsewhere, and A's f32 values are there); panels
/// smaller than the shapes need (which the compiler never passes) are not
/// used either. An empty K writes all of C anyway.
extern "C" __attribute__((visibility("default"))) void
_mlir_ciface_transfuse_linear_bf16_panels(Desc2D *a, Desc1DBf16 *aPanels,
                                          Desc3DBf16 *b, Desc2D *c,
                                          Desc1D *bias, Desc2D *residual,
                                          int64_t flags, Desc1DBf16 *cPanels) {
  auto scope = profile::Scope::product("linear_bf16_panels", a->sizes[0],
                                       a->sizes[1], c->sizes[1]);
  Epilogue ep = Epilogue::fromFlags(flags & transfuse::linear::kEpilogueMask,
                                    bias, residual);
  int64_t m = c->sizes[0], k = a->sizes[1], n = c->sizes[1];
  bool usable = bf16PanelsUsed(m);
  PanelsIO io;
  io.a = usable && (flags & kPanelsIn) &&
                 aPanels->sizes[0] >= bf16::aPanelsSize(m, k)
             ? aPanels->begin()
             : nullptr;
  io.c = usable && (flags & kPanelsOut) &&
                 cPanels->sizes[0] >= bf16::aPanelsSize(m, n)
             ? cPanels->begin()
             : nullptr;
  io.panelsOnly = io.c && (flags & kPanelsOnly);
  if (!needsProduct(*a, *c, false)) {
    ep.applyAll(*c);
    if (io.c && m > 0 && n > 0)
      packA(*c, io.c, false);
    return;
  }
  bf16Product()(*a, b->data + b->offset, *c, false, &ep, io);
}

void transfuse::runtime::gemm::matmulBf16PrepackedA(const uint16_t *aPacked,
                                                    int64_t m, int64_t k,
                                                    const uint16_t *packed,
                                                    const Desc2D &c,
                                                    bool accumulate) {
  Desc2D a{nullptr, nullptr, 0, {m, k}, {k, 1}}; // its sizes only
  if (!needsProduct(a, c, accumulate))
    return;
  if (bf16Product() == matmulOnF32) // packBf16Panels declined: unreachable
    __builtin_trap();
  PanelsIO io;
  io.a = aPacked;
  bf16Product()(a, packed, c, accumulate, nullptr, io);
}
