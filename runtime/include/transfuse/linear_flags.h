//===- linear_flags.h - the flags of the runtime's linear calls -*- C++ -*-===//
//
// The `flags` operand of transfuse_linear_{f32,bf16}_{packed,panels}
// (runtime/src/gemm.cpp, gemm_bf16.cpp): the compiler sets them
// (transfuse-cpu-matmul-to-microkernel, transfuse-cpu-a-panels) and the
// runtime reads them (Epilogue::fromFlags in epilogue.cpp, the _panels
// entries). One definition, used by both, so they cannot drift apart.
//
//===----------------------------------------------------------------------===//
#ifndef TRANSFUSE_LINEAR_FLAGS_H
#define TRANSFUSE_LINEAR_FLAGS_H

#include <cstdint>

namespace transfuse::linear {

/// Bits 0-7: the activation (Epilogue::Act in runtime/src/gemm.h).
constexpr int64_t kActMask = 0xff;
constexpr int64_t kHasBias = 1 << 8;     // C += bias, per column
constexpr int64_t kHasResidual = 1 << 9; // C += residual, after act
/// The bits above are the epilogue's; the _panels entries add:
constexpr int64_t kEpilogueMask = (1 << 10) - 1;
constexpr int64_t kPanelsIn = 1 << 10;   // A is read from its panels
constexpr int64_t kPanelsOut = 1 << 11;  // C's panels are written
constexpr int64_t kPanelsOnly = 1 << 12; // with kPanelsOut: not C itself

} // namespace transfuse::linear

#endif // TRANSFUSE_LINEAR_FLAGS_H
