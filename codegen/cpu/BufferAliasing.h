//===- BufferAliasing.h - buffer views, escapes, calls -*- C++ -*-===//
//
// Shared by the passes that reason about buffer lifetimes after
// bufferization (EarlyDealloc.cpp, PlanBuffers.cpp, StreamLargeCopies.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef TRANSFUSE_CODEGEN_CPU_BUFFERALIASING_H
#define TRANSFUSE_CODEGEN_CPU_BUFFERALIASING_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/DenseMap.h"

namespace transfuse::cpu {

/// The buffer `op` is a view of, when it is one: the source of a
/// ViewLikeOpInterface op (subview, casts, reshapes), or the input of
/// memref.transpose (metadata only too, but not a ViewLikeOpInterface
/// upstream; the attention kernel reads and writes heads through them);
/// else null.
mlir::Value viewedBuffer(mlir::Operation *op);

/// The buffer `v` views: `v` followed back through views, casts and
/// extract_strided_metadata.
mlir::Value viewRoot(mlir::Value v);

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

/// Whether the buffer `v` views may outlive the function: it is not a
/// fresh `memref.alloc`/`alloca` (an argument, a call's result), or the
/// buffer or an alias of it (views, casts, metadata, the results of calls
/// that may hand back an operand) reaches a terminator: returned, or
/// yielded out of a region. Other users read, write or free it in place.
bool mayOutlive(mlir::Value v, CallResults &calls);

} // namespace transfuse::cpu

#endif
