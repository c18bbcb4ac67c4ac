//===- bf16_panels.h - the layout of bf16 weights for the AMX GEMM -*- C++ -*-//
//
// `transfuse compile --precision bf16` packs each constant weight B [K][N]
// of a product into this layout at compile time
// (transfuse-cpu-matmul-to-microkernel), and the runtime's
// transfuse_matmul_bf16_packed (runtime/src/gemm_bf16.cpp) reads it. One
// definition, used by both, so they cannot drift apart.
//
// N is split into panels of 32 columns and K is zero padded to Kp, a
// multiple of 32. Each panel is Kp / 32 blocks of two AMX B tiles (columns
// 0-15, then 16-31); a tile is 16 rows of 64 bytes, row q holding, for each
// of its 16 columns, the pair B[2q][j], B[2q + 1][j] of its block (the
// "VNNI" pairing TDPBF16PS reads). As a memref: [ceil(N / 32)][Kp][32] bf16.
//
// An activation A [M][K] rounded for the same products ("A panels") is
// split into panels of 16 rows, each Kp / 32 blocks of one AMX A tile: 16
// rows of 32 consecutive K values (64 bytes), rows past M and K past its
// end zero. The GEMM packs A so itself, or reads it so from a producer
// (transfuse-cpu-a-panels: the norm kernel or a linear's epilogue writes
// the panels of the product it feeds). As a memref: [ceil(M / 16) * 16 *
// Kp] bf16.
//
//===----------------------------------------------------------------------===//
#ifndef TRANSFUSE_BF16_PANELS_H
#define TRANSFUSE_BF16_PANELS_H

#include <cstdint>
#include <cstring>

namespace transfuse::bf16 {

constexpr int64_t kPanelCols = 32; // columns per panel (two tiles of 16)
constexpr int64_t kBlockK = 32;    // K per tile block (16 pairs)

/// K zero padded to whole tile blocks.
inline int64_t paddedK(int64_t k) {
  return (k + kBlockK - 1) / kBlockK * kBlockK;
}

constexpr int64_t kPanelRows = 16; // rows per A panel (one AMX A tile)

/// Elements of A [m][k]'s panels.
inline int64_t aPanelsSize(int64_t m, int64_t k) {
  return (m + kPanelRows - 1) / kPanelRows * kPanelRows * paddedK(k);
}

/// Where A[i][p] lies in A's panels (K padded to kp).
inline int64_t aIndex(int64_t kp, int64_t i, int64_t p) {
  return i / kPanelRows * kPanelRows * kp + p / kBlockK * kPanelRows * kBlockK +
         i % kPanelRows * kBlockK + p % kBlockK;
}

/// bf16 bits of `f`, rounded to nearest, ties to even (what the hardware's
/// VCVTNEPS2BF16 does); a NaN stays a quiet NaN.
inline uint16_t fromFloat(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float toFloat(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// `f` rounded to bf16 as fromFloat rounds it, kept as f32.
inline float rounded(float f) { return toFloat(fromFloat(f)); }

/// Where B[p][j] lies in the packed array of a weight with padded depth kp.
inline int64_t index(int64_t kp, int64_t p, int64_t j) {
  int64_t c = j % kPanelCols;
  return (j / kPanelCols) * kp * kPanelCols + (p / kBlockK) * kBlockK * 32 +
         (c / 16) * 512 + (p % kBlockK) / 2 * 32 + (c % 16) * 2 + p % 2;
}

/// Packs row-major B [k][n] (row stride ldb) into `out`, which holds
/// ceil(n / 32) * paddedK(k) * 32 elements; padding is zero.
inline void pack(const float *b, int64_t k, int64_t n, int64_t ldb,
                 uint16_t *out) {
  int64_t kp = paddedK(k);
  std::memset(out, 0,
              (n + kPanelCols - 1) / kPanelCols * kp * kPanelCols *
                  sizeof(uint16_t));
  // A panel at a time, so that `out` is written a panel after another.
  for (int64_t j0 = 0; j0 < n; j0 += kPanelCols)
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = j0; j < n && j < j0 + kPanelCols; ++j)
        out[index(kp, p, j)] = fromFloat(b[p * ldb + j]);
}

} // namespace transfuse::bf16

#endif
