//===- Passes.h - transformer-level passes ----------------------*- C++ -*-===//
#ifndef TRANSFUSE_PASSES_PASSES_H
#define TRANSFUSE_PASSES_PASSES_H

#include "dialects/transformer/TransformerDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"

namespace transfuse {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// Refines the result types of every graph op in `func` (see RefineShapes);
/// true when some type changed.
bool refineShapes(mlir::func::FuncOp func);

} // namespace transfuse

#endif
