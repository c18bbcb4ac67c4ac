//===- BufferAliasing.cpp - which calls may hand back their operands ------===//
#include "codegen/cpu/BufferAliasing.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

using namespace mlir;

namespace transfuse::cpu {

bool isViewOfArgument(Value v) {
  while (true) {
    if (isa<BlockArgument>(v))
      return true;
    Operation *def = v.getDefiningOp();
    if (auto view = dyn_cast_or_null<ViewLikeOpInterface>(def)) {
      v = view.getViewSource();
      continue;
    }
    if (auto meta = dyn_cast_or_null<memref::ExtractStridedMetadataOp>(def)) {
      v = meta.getSource();
      continue;
    }
    return false;
  }
}

bool CallResults::mayReturnOperand(func::CallOp call) {
  if (call.getNumResults() == 0)
    return false;
  auto [it, inserted] = known.try_emplace(call.getCalleeAttr(), true);
  if (inserted) {
    auto callee =
        symbols.lookupNearestSymbolFrom<func::FuncOp>(root, call.getCalleeAttr());
    if (callee && !callee.isExternal()) {
      bool returnsArg = false;
      callee.walk([&](func::ReturnOp ret) {
        for (Value v : ret.getOperands())
          returnsArg |= isa<BaseMemRefType>(v.getType()) && isViewOfArgument(v);
      });
      it->second = returnsArg;
    }
  }
  return it->second;
}

} // namespace transfuse::cpu
