//===- TransformerDialect.cpp - the `transformer` dialect -----------------===//
#include "dialects/transformer/TransformerDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace transfuse::transformer;

#include "dialects/transformer/TransformerDialect.cpp.inc"

void TransformerDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "dialects/transformer/TransformerOps.cpp.inc"
      >();
}

Operation *TransformerDialect::materializeConstant(OpBuilder &builder,
                                                   Attribute value, Type type,
                                                   Location loc) {
  auto elements = dyn_cast<ElementsAttr>(value);
  if (!elements || elements.getType() != type)
    return nullptr;
  return ConstantOp::create(builder, loc, type, elements);
}

#define GET_OP_CLASSES
#include "dialects/transformer/TransformerOps.cpp.inc"

bool transfuse::transformer::isElementwiseOp(Operation *op) {
  return isa<AddOp, SubOp, MulOp, DivOp, PowOp, MinOp, MaxOp, EqualOp, LessOp,
             GreaterOp, AndOp, OrOp, NotOp, SqrtOp, ReciprocalOp, ErfOp, TanhOp,
             ExpOp, LogOp, SinOp, CosOp, FloorOp, CeilOp, NegOp, AbsOp, ReluOp,
             SigmoidOp, CastOp, WhereOp, IsNaNOp, ModOp>(op);
}
