//===- RefineShapes.cpp - make result types more static -------------------===//
#include "passes/Passes.h"

#include "mlir/IR/BuiltinTypes.h"

namespace transfuse {
#define GEN_PASS_DEF_REFINESHAPES
#include "passes/Passes.h.inc"
} // namespace transfuse

using namespace mlir;
using namespace transfuse;

/// `b` is at least as static as `a` everywhere and more static somewhere.
static bool isMoreStatic(Type a, Type b) {
  auto ta = dyn_cast<RankedTensorType>(a), tb = dyn_cast<RankedTensorType>(b);
  if (!ta || !tb || !transformer::areCompatible(ta, tb))
    return false;
  bool better = false;
  for (auto [x, y] : llvm::zip(ta.getShape(), tb.getShape())) {
    if (ShapedType::isDynamic(y) && !ShapedType::isDynamic(x))
      return false;
    better |= ShapedType::isDynamic(x) && !ShapedType::isDynamic(y);
  }
  return better;
}

bool transfuse::refineShapes(func::FuncOp func) {
  bool changed = false;
  func.walk([&](Operation *op) {
    if (!isa<transformer::TransformerDialect>(op->getDialect()))
      return;
    std::string error;
    auto inferred = transformer::inferResultTypes(op, error);
    if (failed(inferred))
      return;
    for (auto [res, type] : llvm::zip(op->getResults(), *inferred))
      if (isMoreStatic(res.getType(), type)) {
        res.setType(type);
        changed = true;
      }
  });
  // The signature follows the returned values; a caller-visible dim that
  // becomes static is checked by the runtime against the signature.
  Operation *ret = func.getBody().back().getTerminator();
  auto type = FunctionType::get(func.getContext(), func.getArgumentTypes(),
                                ret->getOperandTypes());
  func.setType(type);
  return changed;
}

namespace {
struct RefineShapesPass : transfuse::impl::RefineShapesBase<RefineShapesPass> {
  void runOnOperation() override { refineShapes(getOperation()); }
};
} // namespace
