//===- RuntimeKernels.h - the ops the runtime's kernels take ----*- C++ -*-===//
//
// The one test for whether the CPU codegen lowers a `transformer.attention`
// to the runtime's fused kernel (runtime/src/attention.cpp) when its
// attention-kernel option is on, and a norm to the norm kernel
// (runtime/src/norms.cpp) when norm-kernel is: LowerFused.cpp lowers by
// them, the fusion report (passes/FusionReport.cpp) says "kernel" by the
// first, and transfuse-cpu-outline-kernels leaves the ops the kernels take
// inline (a call of the runtime has nothing to share; inline, a norm's
// output can be seen by transfuse-cpu-a-panels and the attention's
// operands can be strided views).
//
//===----------------------------------------------------------------------===//
#ifndef TRANSFUSE_CODEGEN_CPU_RUNTIMEKERNELS_H
#define TRANSFUSE_CODEGEN_CPU_RUNTIMEKERNELS_H

#include "dialects/transformer/TransformerDialect.h"

namespace transfuse::cpu {

/// f32 attention with at most two masks.
inline bool takesAttentionKernel(transformer::AttentionOp op) {
  auto type = mlir::dyn_cast<mlir::ShapedType>(op.getQuery().getType());
  return type && type.getElementType().isF32() && op.getMasks().size() <= 2;
}

/// An f32 layer_norm or rms_norm of rank at most 4 (input, residual and
/// result) with a 1-D scale and bias.
inline bool takesNormKernel(mlir::Operation *op) {
  mlir::Value x, residual, scale, bias;
  if (auto ln = mlir::dyn_cast<transformer::LayerNormOp>(op)) {
    x = ln.getInput();
    residual = ln.getResidual();
    scale = ln.getScale();
    bias = ln.getBias();
  } else if (auto rms = mlir::dyn_cast<transformer::RmsNormOp>(op)) {
    x = rms.getInput();
    scale = rms.getScale();
  } else {
    return false;
  }
  auto rankIn = [](mlir::Value v, int64_t lo, int64_t hi) {
    if (!v)
      return true;
    auto t = mlir::dyn_cast<mlir::RankedTensorType>(v.getType());
    return t && t.getRank() >= lo && t.getRank() <= hi;
  };
  auto result =
      mlir::dyn_cast<mlir::RankedTensorType>(op->getResult(0).getType());
  return result && result.getElementType().isF32() && result.getRank() <= 4 &&
         rankIn(x, 1, 4) && rankIn(residual, 1, 4) && rankIn(scale, 1, 1) &&
         rankIn(bias, 1, 1);
}

} // namespace transfuse::cpu

#endif
