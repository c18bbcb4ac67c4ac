//===- BufferAliasing.cpp - buffer views, escapes, calls -------------===//
#include "codegen/cpu/BufferAliasing.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/SmallPtrSet.h"

using namespace mlir;

namespace transfuse::cpu {

Value viewedBuffer(Operation *op) {
  if (auto view = dyn_cast<ViewLikeOpInterface>(op))
    return view.getViewSource();
  if (auto transpose = dyn_cast<memref::TransposeOp>(op))
    return transpose.getIn();
  return Value();
}

Value viewRoot(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    if (Value source = viewedBuffer(def))
      v = source;
    else if (auto meta = dyn_cast<memref::ExtractStridedMetadataOp>(def))
      v = meta.getSource();
    else
      break;
  }
  return v;
}

bool isViewOfArgument(Value v) { return isa<BlockArgument>(viewRoot(v)); }

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

bool mayOutlive(Value v, CallResults &calls) {
  Value root = viewRoot(v);
  if (!root.getDefiningOp<memref::AllocOp>() &&
      !root.getDefiningOp<memref::AllocaOp>())
    return true;
  SmallVector<Value> aliases{root};
  llvm::SmallPtrSet<Value, 8> seen{root};
  for (size_t i = 0; i < aliases.size(); ++i) {
    for (Operation *user : aliases[i].getUsers()) {
      if (user->hasTrait<OpTrait::IsTerminator>())
        return true;
      Value viewed = viewedBuffer(user);
      bool view = viewed != nullptr;
      if (view && viewed != aliases[i])
        continue; // a view of something else, into this buffer's data
      auto call = dyn_cast<func::CallOp>(user);
      if (!view && !isa<memref::ExtractStridedMetadataOp>(user) &&
          !(call && calls.mayReturnOperand(call)))
        continue; // reads, writes or frees it
      for (Value r : user->getResults())
        if (isa<BaseMemRefType>(r.getType()) && seen.insert(r).second)
          aliases.push_back(r);
    }
  }
  return false;
}

} // namespace transfuse::cpu
