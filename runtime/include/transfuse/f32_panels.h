//===- f32_panels.h - the layout of the f32 GEMM's A panels -----*- C++ -*-===//
//
// The f32 GEMM (runtime/src/gemm.cpp) packs a product's A [M][K] into
// panels of kPanelRows rows, each [K][kPanelRows]: A[i][p] at
// (i / kPanelRows) * kPanelRows * K + p * kPanelRows + i % kPanelRows. The
// last panel's rows past M are never read. Where the compiler asks
// (transfuse-cpu-a-panels), the linear that produces A writes it so, and
// the product reads it instead of packing A itself. As a memref:
// [ceil(M / kPanelRows) * kPanelRows * K] f32.
//
// A weight B [K][N] is packed at compile time
// (transfuse-cpu-matmul-to-microkernel) into panels of kPanelCols
// columns, each [K][kPanelCols]: B[p][j] at (j / kPanelCols) * K *
// kPanelCols + p * kPanelCols + j % kPanelCols, columns past N zero.
//
// One definition, used by both, so they cannot drift apart.
//
//===----------------------------------------------------------------------===//
#ifndef TRANSFUSE_F32_PANELS_H
#define TRANSFUSE_F32_PANELS_H

#include <cstdint>
#include <cstring>

namespace transfuse::f32 {

constexpr int64_t kPanelRows = 12; // rows per A panel (the kernel's rows)
constexpr int64_t kPanelCols = 32; // columns per B panel (the kernel's)

/// Elements of A [m][k]'s panels.
inline int64_t aPanelsSize(int64_t m, int64_t k) {
  return (m + kPanelRows - 1) / kPanelRows * kPanelRows * k;
}

/// Packs row-major B [k][n] (row stride ldb) into `out`, which holds
/// ceil(n / kPanelCols) * k * kPanelCols floats: a panel at a time, each
/// row of it copied whole, so that `out` is written in order.
inline void packB(const float *b, int64_t k, int64_t n, int64_t ldb,
                  float *out) {
  for (int64_t j0 = 0; j0 < n; j0 += kPanelCols) {
    int64_t w = n - j0 < kPanelCols ? n - j0 : kPanelCols;
    for (int64_t p = 0; p < k; ++p, out += kPanelCols) {
      std::memcpy(out, b + p * ldb + j0, w * sizeof(float));
      std::memset(out + w, 0, (kPanelCols - w) * sizeof(float));
    }
  }
}

} // namespace transfuse::f32

#endif // TRANSFUSE_F32_PANELS_H
