//===- Folders.cpp - folds of transformer graph ops -----------------------===//
#include "dialects/transformer/TransformerDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"

#include <cstring>
#include <vector>

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

/// A concat of one input (an exporter's Concat of a KV cache's past with
/// nothing, as GPT-2's) is that input: left alone, it became a full copy of
/// the past before the real concatenation copied it again.
OpFoldResult ConcatOp::fold(FoldAdaptor) {
  if (getInputs().size() == 1 && getInputs()[0].getType() == getType())
    return getInputs()[0];
  return {};
}

/// A transpose of a constant (dense or a resource blob, elements of whole
/// bytes, static shape) is the permuted constant, as a new resource blob.
OpFoldResult TransposeOp::fold(FoldAdaptor adaptor) {
  Attribute in = adaptor.getInput();
  auto type = dyn_cast<RankedTensorType>(getType());
  auto inType = dyn_cast<RankedTensorType>(getInput().getType());
  if (!in || !type || !inType || !type.hasStaticShape() ||
      !inType.hasStaticShape())
    return {};
  Type elem = type.getElementType();
  if (!elem.isIntOrFloat() || elem.getIntOrFloatBitWidth() % 8 != 0)
    return {};
  ArrayRef<char> data;
  if (auto dense = dyn_cast<DenseElementsAttr>(in)) {
    if (dense.isSplat())
      return dense.resizeSplat(type);
    data = dense.getRawData();
  } else if (auto resource = dyn_cast<DenseResourceElementsAttr>(in)) {
    AsmResourceBlob *blob = resource.getRawHandle().getBlob();
    if (!blob)
      return {};
    data = blob->getData();
  } else {
    return {};
  }
  size_t width = elem.getIntOrFloatBitWidth() / 8;
  int64_t count = type.getNumElements(), rank = type.getRank();
  if (data.size() != static_cast<size_t>(count) * width)
    return {};
  ArrayRef<int64_t> perm = getPerm(), inShape = inType.getShape();
  SmallVector<int64_t> inStrides(rank, 1);
  for (int64_t d = rank - 2; d >= 0; --d)
    inStrides[d] = inStrides[d + 1] * inShape[d + 1];
  // Result element (row-major index) i reads input dim perm[d] at index[d].
  std::vector<char> out(data.size());
  SmallVector<int64_t> index(rank, 0);
  ArrayRef<int64_t> shape = type.getShape();
  for (int64_t i = 0; i < count; ++i) {
    int64_t src = 0;
    for (int64_t d = 0; d < rank; ++d)
      src += index[d] * inStrides[perm[d]];
    std::memcpy(out.data() + i * width, data.data() + src * width, width);
    for (int64_t d = rank - 1; d >= 0 && ++index[d] == shape[d]; --d)
      index[d] = 0;
  }
  auto blob = HeapAsmResourceBlob::allocateAndCopyInferAlign<char>(
      ArrayRef<char>(out), /*dataIsMutable=*/false);
  return DenseResourceElementsAttr::get(type, "transposed", std::move(blob));
}
