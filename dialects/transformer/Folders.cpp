//===- Folders.cpp - folds of transformer graph ops -----------------------===//
#include "dialects/transformer/TransformerDialect.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace transfuse::transformer;

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

/// `shape` of a tensor whose requested dims are all static is a constant.
OpFoldResult ShapeOp::fold(FoldAdaptor) {
  auto values = getConstantIntValues(getResult());
  if (!values)
    return {};
  auto type = cast<RankedTensorType>(getType());
  return DenseIntElementsAttr::get(type, ArrayRef(*values));
}
