//===- TransformerDialect.h - the `transformer` dialect ---------*- C++ -*-===//
#ifndef TRANSFUSE_DIALECTS_TRANSFORMER_TRANSFORMERDIALECT_H
#define TRANSFUSE_DIALECTS_TRANSFORMER_TRANSFORMERDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/transformer/ShapeInference.h"
#include "dialects/transformer/TransformerDialect.h.inc"

#define GET_OP_CLASSES
#include "dialects/transformer/TransformerOps.h.inc"

namespace transfuse::transformer {
/// The elementwise graph ops: one result, whose every element is a
/// function of the same element of each operand after ONNX broadcasting
/// (the binary and unary ops, cast, where, is_nan, mod).
bool isElementwiseOp(mlir::Operation *op);
} // namespace transfuse::transformer

#endif
