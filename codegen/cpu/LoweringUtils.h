//===- LoweringUtils.h - helpers shared by the linalg lowerings -*- C++ -*-===//
#ifndef TRANSFUSE_CODEGEN_CPU_LOWERINGUTILS_H
#define TRANSFUSE_CODEGEN_CPU_LOWERINGUTILS_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

namespace transfuse::cpu {

using ScalarBodyFn = llvm::function_ref<mlir::Value(
    mlir::OpBuilder &, mlir::Location, mlir::ValueRange)>;

/// The ranked tensor type of `v`.
inline mlir::RankedTensorType tensorType(mlir::Value v) {
  return mlir::cast<mlir::RankedTensorType>(v.getType());
}

/// An index constant.
inline mlir::Value cIdx(mlir::OpBuilder &b, mlir::Location loc, int64_t v) {
  return mlir::arith::ConstantIndexOp::create(b, loc, v);
}

/// The dims of a ranked tensor as index values (constants where static).
llvm::SmallVector<mlir::Value> getDimValues(mlir::OpBuilder &b,
                                            mlir::Location loc, mlir::Value t);

/// tensor.empty of `type`, taking its dynamic dims from `dims`.
mlir::Value createEmpty(mlir::OpBuilder &b, mlir::Location loc,
                        mlir::RankedTensorType type,
                        llvm::ArrayRef<mlir::Value> dims);

/// tensor.reshape of `input` to `type` with run-time dims `dims`.
mlir::Value reshapeTo(mlir::OpBuilder &b, mlir::Location loc, mlir::Value input,
                      mlir::RankedTensorType type,
                      llvm::ArrayRef<mlir::Value> dims);

/// The run-time dims of the ONNX broadcast of `inputs` into `outType`.
llvm::SmallVector<mlir::Value>
broadcastDims(mlir::OpBuilder &b, mlir::Location loc, mlir::ValueRange inputs,
              mlir::RankedTensorType outType);

/// Materializes `input` broadcast (right-aligned) to `outDims`; a run-time
/// size of 1 reads index 0.
mlir::Value broadcastTo(mlir::OpBuilder &b, mlir::Location loc,
                        mlir::Value input, mlir::RankedTensorType outType,
                        llvm::ArrayRef<mlir::Value> outDims);

/// What the caller of buildElementwise knows of the dims the types leave
/// open (two dynamic sizes, or a dynamic one against a static one other
/// than 1).
enum class ElementwiseShapes {
  Unknown, // checked at run time: equal takes the fast path
  Same,    // equal (checked by the caller): identity maps, no check
  Differ,  // not all equal (checked by the caller): the broadcasting path
};

/// An elementwise linalg.generic over the broadcast of `inputs`. Dims the
/// types prove equal (or 1) use indexing maps; when two dims are dynamic the
/// generated code checks at run time and takes a broadcasting path only when
/// sizes differ (unless `shapes` says which path applies).
mlir::Value
buildElementwise(mlir::OpBuilder &b, mlir::Location loc,
                 mlir::ValueRange inputs, mlir::RankedTensorType outType,
                 ScalarBodyFn body,
                 ElementwiseShapes shapes = ElementwiseShapes::Unknown);

/// A constant scalar of `type` (float or integer) holding `value`.
mlir::Value scalarConstant(mlir::OpBuilder &b, mlir::Location loc,
                           mlir::Type type, double value);

/// Converts an index value to a float or integer scalar of `type`.
mlir::Value indexToScalar(mlir::OpBuilder &b, mlir::Location loc,
                          mlir::Value index, mlir::Type type);

/// Module attribute listing the message of each run-time check.
inline constexpr llvm::StringLiteral kFailSitesAttr = "transfuse.fail_sites";
/// Module attribute set by transfuse-cpu-plan-buffers: [the most arena
/// bytes one run holds, buffers planned, buffers left to the allocator].
inline constexpr llvm::StringLiteral kMemoryPlanAttr = "transfuse.memory_plan";
/// The runtime function a failed check calls (see model_abi.h).
inline constexpr llvm::StringLiteral kFailFunc = "__transfuse_fail";

/// Emits `if (!ok) __transfuse_fail(site)`, where the site's message names
/// the ONNX node (from `loc`) and says what `what` expected. The model then
/// returns an error instead of running on inconsistent shapes.
void emitRuntimeCheck(mlir::OpBuilder &b, mlir::Location loc, mlir::Value ok,
                      llvm::StringRef what);

/// The runtime's `name` taking `args`, declared once at the top of `module`
/// (private, `llvm.emit_c_interface`, so that a call links against
/// `_mlir_ciface_<name>`); an existing declaration is returned as it is.
/// `b`'s insertion point is kept.
mlir::func::FuncOp declareRuntimeFunction(mlir::OpBuilder &b,
                                          mlir::ModuleOp module,
                                          llvm::StringRef name,
                                          mlir::TypeRange args);

/// An integer scalar (i32 or i64, as indices come) as an index value.
mlir::Value toIndex(mlir::OpBuilder &b, mlir::Location loc, mlir::Value v);

/// Reads element `i` of a 1-D i64 tensor as an index value.
mlir::Value extractIndex(mlir::OpBuilder &b, mlir::Location loc,
                         mlir::Value tensor, int64_t i);

enum class ReduceKind { Sum, Max };

/// Reduces `input` over `axes` (sorted, normalized), dropping them.
mlir::Value reduce(mlir::OpBuilder &b, mlir::Location loc, mlir::Value input,
                   llvm::ArrayRef<int64_t> axes, ReduceKind kind);

/// Reduces and keeps the reduced dims as 1s.
mlir::Value reduceKeepDims(mlir::OpBuilder &b, mlir::Location loc,
                           mlir::Value input, llvm::ArrayRef<int64_t> axes,
                           ReduceKind kind);

/// The number of elements in the `axes` dims of `input`, as a scalar of `type`.
mlir::Value countOf(mlir::OpBuilder &b, mlir::Location loc, mlir::Value input,
                    llvm::ArrayRef<int64_t> axes, mlir::Type type);

/// ONNX LayerNormalization of `x` over dims [axis, rank) (`bias` optional).
mlir::Value buildLayerNorm(mlir::OpBuilder &b, mlir::Location loc, mlir::Value x,
                           mlir::Value scale, mlir::Value bias, int64_t axis,
                           double epsilon);

/// numpy.matmul of `lhs` and `rhs` into `resultType`, with batch broadcasting
/// and run-time checks of K and the batch dims; null for non-numeric types.
/// An f32 [..., K] x [K, N] product (every `linear`, and a graph matmul by a
/// matrix) is one 2-D linalg.matmul on the rows, which
/// transfuse-cpu-matmul-to-microkernel turns into the runtime's GEMM.
mlir::Value buildMatMul(mlir::OpBuilder &b, mlir::Location loc, mlir::Value lhs,
                        mlir::Value rhs, mlir::RankedTensorType resultType);

} // namespace transfuse::cpu

#endif
