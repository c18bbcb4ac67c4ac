//===- Passes.h - CPU code generation passes --------------------*- C++ -*-===//
#ifndef TRANSFUSE_CODEGEN_CPU_PASSES_H
#define TRANSFUSE_CODEGEN_CPU_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

#include <optional>
#include <string>

namespace transfuse::cpu {

#define GEN_PASS_DECL
#include "codegen/cpu/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "codegen/cpu/Passes.h.inc"

/// A value of `precision` (transfuse-cpu-matmul-to-microkernel, and the
/// tools' --precision): f32 or bf16.
inline bool isKnownPrecision(llvm::StringRef p) {
  return p == "f32" || p == "bf16";
}

/// What is wrong with the tools' --precision, --bf16-attention (nullopt
/// when not given) and --attention, or an empty string when they go
/// together.
inline std::string precisionError(llvm::StringRef precision,
                                  std::optional<bool> bf16Attention,
                                  llvm::StringRef attention) {
  if (!isKnownPrecision(precision))
    return ("--precision " + precision + ": use f32 or bf16").str();
  if (bf16Attention.value_or(false) && precision != "bf16")
    return "--bf16-attention needs --precision bf16";
  if (bf16Attention.value_or(false) && attention != "auto")
    return ("--bf16-attention is for the fused attention kernel, which "
            "--attention " +
            attention + " turns off")
        .str();
  return "";
}

/// Whether the fused attention kernel's products (Q K^T, P V) take bf16
/// operands: under --precision bf16 with the kernel (--attention auto),
/// unless --bf16-attention=false keeps them f32.
inline bool bf16AttentionOn(llvm::StringRef precision,
                            std::optional<bool> bf16Attention,
                            llvm::StringRef attention) {
  return precision == "bf16" && attention == "auto" &&
         bf16Attention.value_or(true);
}

/// Adds the linalg lowering patterns for every transformer graph op.
void populateLowerToLinalgPatterns(mlir::RewritePatternSet &patterns);
void populateLowerElementwisePatterns(mlir::RewritePatternSet &patterns);
/// The fused ops (attention, layer_norm, rms_norm, gelu, silu, linear).
void populateLowerFusedPatterns(mlir::RewritePatternSet &patterns,
                                bool attentionKernel = false,
                                bool bf16Attention = false,
                                bool normKernel = false);

} // namespace transfuse::cpu

#endif
