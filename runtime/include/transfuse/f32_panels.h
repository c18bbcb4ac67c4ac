//===- f32_panels.h - the layout of the f32 GEMM's A panels -----*- C++ -*-===//
//
// The f32 GEMM (runtime/src/gemm.cpp) packs a product's A [M][K] into
// panels of kPanelRows rows, each [K][kPanelRows]: A[i][p] at
// (i / kPanelRows) * kPanelRows * K + p * kPanelRows + i % kPanelRows. The
// last panel's rows past M are never read. Where the compiler asks
// (transfuse-cpu-a-panels), the linear that produces A writes it so, and
// the product reads it instead of packing A itself. As a memref:
// [ceil(M / kPanelRows) * kPanelRows * K] f32. One definition, used by
// both, so they cannot drift apart.
//
//===----------------------------------------------------------------------===//
#ifndef TRANSFUSE_F32_PANELS_H
#define TRANSFUSE_F32_PANELS_H

#include <cstdint>

namespace transfuse::f32 {

constexpr int64_t kPanelRows = 12; // rows per A panel (the kernel's rows)

/// Elements of A [m][k]'s panels.
inline int64_t aPanelsSize(int64_t m, int64_t k) {
  return (m + kPanelRows - 1) / kPanelRows * kPanelRows * k;
}

} // namespace transfuse::f32

#endif // TRANSFUSE_F32_PANELS_H
