//===- BufferAliasing.h - which calls may hand back their operands -*- C++ -*-===//
//
// Shared by the passes that reason about buffer lifetimes after
// bufferization (EarlyDealloc.cpp, PlanBuffers.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef TRANSFUSE_CODEGEN_CPU_BUFFERALIASING_H
#define TRANSFUSE_CODEGEN_CPU_BUFFERALIASING_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/DenseMap.h"

namespace transfuse::cpu {

/// Whether `v` is a view of a function argument (through views and casts).
bool isViewOfArgument(mlir::Value v);

/// Whether calls may hand back (a view of) one of their memref operands;
/// each callee's body is looked at once. A call to an external function,
/// which cannot be looked at, may.
class CallResults {
public:
  explicit CallResults(mlir::Operation *root) : root(root) {}
  bool mayReturnOperand(mlir::func::CallOp call);

private:
  mlir::Operation *root;
  mlir::SymbolTableCollection symbols;
  llvm::DenseMap<mlir::Attribute, bool> known;
};

} // namespace transfuse::cpu

#endif
