//===- ShapeInference.h - result types of transformer graph ops -*- C++ -*-===//
//
// One set of shape rules serves the importer (which builds ops and then asks
// for their result types), the op verifiers, and the shape-refinement pass.
// Unknown dims are ShapedType::kDynamic; they stay symbolic until run time.
//
//===----------------------------------------------------------------------===//
#ifndef TRANSFUSE_DIALECTS_TRANSFORMER_SHAPEINFERENCE_H
#define TRANSFUSE_DIALECTS_TRANSFORMER_SHAPEINFERENCE_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/SmallVector.h"
#include <optional>
#include <string>
#include <vector>

namespace transfuse::transformer {

/// The result types that `op`'s operands and attributes imply. On failure,
/// `error` says what was expected.
llvm::FailureOr<llvm::SmallVector<mlir::Type>>
inferResultTypes(mlir::Operation *op, std::string &error);

/// Builds a single-result graph op and gives it the result type that shape
/// inference computes. The importer and the fusion passes build ops this way.
/// On failure the op is erased and `error` says why.
template <typename OpTy, typename... Args>
llvm::FailureOr<mlir::Value> createWithInferredType(mlir::OpBuilder &b,
                                                    mlir::Location loc,
                                                    mlir::Type elem,
                                                    std::string &error,
                                                    Args &&...args) {
  auto op = OpTy::create(b, loc, mlir::UnrankedTensorType::get(elem),
                         std::forward<Args>(args)...);
  auto types = inferResultTypes(op, error);
  if (mlir::failed(types)) {
    op->erase();
    return mlir::failure();
  }
  op->getResult(0).setType((*types)[0]);
  return op->getResult(0);
}

/// Verifier hook shared by every graph op: the declared result types must be
/// compatible with (equal to, or less static than) the inferred ones.
llvm::LogicalResult verifyInferredTypes(mlir::Operation *op);

/// True when `a` and `b` have the same element type and rank and every pair
/// of dims is equal or has a dynamic side.
bool areCompatible(mlir::Type a, mlir::Type b);

/// The values of a 0-D or 1-D integer tensor (i32, i64, or bool as 0/1) as
/// far as they are known at compile time: unknown entries are
/// ShapedType::kDynamic. Follows shape computations (shape, gather, concat,
/// slice, unsqueeze, cast, arithmetic, constant_of_shape, equal, where), so
/// `Concat(Unsqueeze(Gather(Shape(x), 0)), [-1, 64])` yields
/// `[x.dim0, -1, 64]`. nullopt when even the length is unknown.
std::optional<llvm::SmallVector<int64_t>> getPartialIntValues(mlir::Value v);

/// All values of a 0-D or 1-D integer tensor, when every one is known.
std::optional<llvm::SmallVector<int64_t>> getConstantIntValues(mlir::Value v);

/// The row-major bytes of a constant of static shape whose elements are
/// whole bytes (floats, integers but i1), dense or a resource (a splat
/// expanded); nullopt for anything else.
std::optional<std::vector<char>> constantBytes(mlir::Value v);

/// Dim `index` of the tensor `value`.
struct DimRef {
  mlir::Value value;
  int64_t index;
  bool operator==(const DimRef &o) const {
    return value == o.value && index == o.index;
  }
};

/// Where dim `index` of `v` comes from: followed back through ops that pass
/// it on unchanged (a norm without a residual, gelu, silu, cast, a linear's
/// leading dims, a slice's other axes, a transpose, attention's batch, head
/// and query dims, a reshape that keeps its leading dims). Two dims of one
/// origin are equal at run time, whatever their sizes.
DimRef dimOrigin(mlir::Value v, int64_t index);

/// True when dim i of `a` and dim j of `b` are known equal at compile time:
/// both static and equal, or of one origin.
bool provablyEqualDims(mlir::Value a, int64_t i, mlir::Value b, int64_t j);

/// The dim that entry i of a 1-D shape value reads, where it is read from a
/// shape (`shape`, a `gather` of one entry of it, `unsqueeze`, `concat`).
std::optional<DimRef> shapeEntryDim(mlir::Value shape, int64_t i);

class ReshapeOp;
/// What a reshape does to its input's dims, as far as compile time proves:
/// nothing (the target is the input's own shape), splits only the last dim
/// in two ([..., E] to [..., E / D, D], the leading dims the input's), or
/// something else (or unknown).
enum class ReshapeKind { Other, Identity, SplitsLastDim };
ReshapeKind classifyReshape(ReshapeOp op);

class ShapeOp;
/// The dims [start, end) that a `shape` op reads, clamped as ONNX does.
std::pair<int64_t, int64_t> shapeOpRange(ShapeOp op);

/// Normalizes an ONNX axis in [-rank, rank) to [0, rank); -1 when invalid.
int64_t normalizeAxis(int64_t axis, int64_t rank);

} // namespace transfuse::transformer

#endif
