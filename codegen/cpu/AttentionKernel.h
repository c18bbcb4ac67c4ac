//===- AttentionKernel.h - the attention the kernel takes -------*- C++ -*-===//
//
// The one test for whether the CPU codegen lowers a `transformer.attention`
// to the runtime's fused kernel (runtime/src/attention.cpp) when its
// attention-kernel option is on: LowerFused.cpp lowers by it, and the
// fusion report (passes/FusionReport.cpp) says "kernel" by it.
//
//===----------------------------------------------------------------------===//
#ifndef TRANSFUSE_CODEGEN_CPU_ATTENTIONKERNEL_H
#define TRANSFUSE_CODEGEN_CPU_ATTENTIONKERNEL_H

#include "dialects/transformer/TransformerDialect.h"

namespace transfuse::cpu {

/// f32 attention with at most two masks.
inline bool takesAttentionKernel(transformer::AttentionOp op) {
  auto type = mlir::dyn_cast<mlir::ShapedType>(op.getQuery().getType());
  return type && type.getElementType().isF32() && op.getMasks().size() <= 2;
}

} // namespace transfuse::cpu

#endif
