//===- FusionUtils.h - matching helpers shared by the fusion passes -*- C++
//-*-===//
//
// Every fusion pass is a set of greedy rewrite patterns. These helpers give
// them one way to read scalar constants, to name the ONNX nodes they replace
// (the fused op's location is a FusedLoc of those nodes), and to explain why
// a candidate did not fuse (--explain-fusion).
//
//===----------------------------------------------------------------------===//
#ifndef TRANSFUSE_PASSES_FUSIONUTILS_H
#define TRANSFUSE_PASSES_FUSIONUTILS_H

#include "dialects/transformer/ShapeInference.h"
#include "dialects/transformer/TransformerDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Rewrite/FrozenRewritePatternSet.h"

#include <optional>
#include <string>
#include <vector>

namespace transfuse::fusion {

/// The ranked tensor type of `v` (every graph-op value has one).
inline mlir::RankedTensorType tensorType(mlir::Value v) {
  return mlir::cast<mlir::RankedTensorType>(v.getType());
}

/// The value of a constant holding exactly one element (of any shape), or of
/// a cast of one.
std::optional<double> scalarValue(mlir::Value v);

/// True when `v` is a one-element constant within 1e-6 (relative) of `x`.
bool isScalar(mlir::Value v, double x);

/// The ONNX node name of `op` ("name (OpType)"), or its op name.
std::string nodeName(mlir::Operation *op);

/// The names of the ONNX nodes in `loc` (NameLocs, also inside FusedLocs), in
/// order and without repeats.
llvm::SmallVector<std::string> onnxNodeNames(mlir::Location loc);

/// A FusedLoc of the locations of `ops`: the nodes a fused op replaces.
mlir::Location fusedLocOf(llvm::ArrayRef<mlir::Operation *> ops);

/// The single user of `v`, when it has exactly one use.
mlir::Operation *singleUser(mlir::Value v);

/// The other operand of a binary op, given one.
mlir::Value otherOperand(mlir::Operation *op, mlir::Value one);

/// True when `axis` (possibly negative) is the last of `rank` dims.
inline bool isLastAxis(int64_t axis, int64_t rank) {
  return transformer::normalizeAxis(axis, rank) == rank - 1;
}

/// A `slice` of one range [start, end) with a positive `step` of the last
/// axis of a tensor whose last dim is static; the bounds are constants,
/// clamped as ONNX does.
struct LastAxisSlice {
  mlir::Value input;
  int64_t start, end, step;
};
std::optional<LastAxisSlice> asLastAxisSlice(mlir::Value v);

/// Concatenates constant tensors along their last axis at compile time
/// ([K, N1] and [K, N2] matrices give [K, N1 + N2]; 1-D tensors append),
/// as a new constant. Null unless every part is a float constant and all
/// agree on the element type and the leading dims.
mlir::Value concatConstants(mlir::OpBuilder &b, mlir::Location loc,
                            llvm::ArrayRef<mlir::Value> parts);

/// A [1] x i64 constant holding `v` (a slice's start or end).
mlir::Value i64Element(mlir::OpBuilder &b, mlir::Location loc, int64_t v);

/// Builds a graph op typed by shape inference (createWithInferredType).
/// Callers check operands first; an op that fails inference is a bug.
template <typename OpTy, typename... Args>
mlir::Value createInferred(mlir::OpBuilder &b, mlir::Location loc,
                           mlir::Type elem, Args &&...args) {
  std::string err;
  auto v = transformer::createWithInferredType<OpTy>(
      b, loc, elem, err, std::forward<Args>(args)...);
  if (mlir::failed(v))
    llvm::report_fatal_error(llvm::Twine("fusion built an invalid ") +
                             OpTy::getOperationName() + ": " + err);
  return *v;
}

/// Applies `patterns` to `func` to a fixed point. With `explain`, emits a
/// remark "not fused as <what>: <reason>" at every op that `isCandidate`
/// accepts and that survived, with the last reason a pattern gave for it.
llvm::LogicalResult
applyFusionPatterns(mlir::func::FuncOp func,
                    const mlir::FrozenRewritePatternSet &patterns, bool explain,
                    llvm::StringRef what,
                    llvm::function_ref<bool(mlir::Operation *)> isCandidate);

} // namespace transfuse::fusion

#endif
