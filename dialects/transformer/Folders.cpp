//===- Folders.cpp - folds of transformer graph ops -----------------------===//
#include "dialects/transformer/TransformerDialect.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace transfuse::transformer;

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

LogicalResult ConstantOp::inferReturnTypes(
    MLIRContext *, std::optional<Location>, ValueRange, DictionaryAttr attributes,
    OpaqueProperties properties, RegionRange, SmallVectorImpl<Type> &types) {
  auto value = static_cast<Properties *>(properties.as<void *>())->value;
  if (!value)
    return failure();
  types.push_back(cast<TypedAttr>(value).getType());
  return success();
}

/// `shape` of a tensor whose requested dims are all static is a constant.
OpFoldResult ShapeOp::fold(FoldAdaptor) {
  auto values = getConstantIntValues(getResult());
  if (!values)
    return {};
  auto type = cast<RankedTensorType>(getType());
  return DenseIntElementsAttr::get(type, ArrayRef(*values));
}

/// A cast to the type it already has (exporters emit f32 -> f32 casts).
OpFoldResult CastOp::fold(FoldAdaptor) {
  if (getInput().getType() == getType())
    return getInput();
  return {};
}
