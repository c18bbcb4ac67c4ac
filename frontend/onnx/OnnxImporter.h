//===- OnnxImporter.h - ONNX ModelProto -> transformer dialect --*- C++ -*-===//
#ifndef TRANSFUSE_FRONTEND_ONNX_ONNXIMPORTER_H
#define TRANSFUSE_FRONTEND_ONNX_ONNXIMPORTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringMap.h"

#include <string>

namespace transfuse::onnx_frontend {

/// Imports the ONNX model at `path` as `func.func @main_graph` of graph ops.
/// Each graph input and output keeps its ONNX name and symbolic dim names as
/// `transformer.name` / `transformer.dims` attributes. A symbolic dim
/// (dim_param) named in `dimValues` becomes that static size in every graph
/// input and output; naming a dim that no graph input has is an error. On
/// failure returns null and sets `error`, naming the node and its op type.
mlir::OwningOpRef<mlir::ModuleOp>
importOnnxModel(mlir::MLIRContext &ctx, const std::string &path,
                std::string &error,
                const llvm::StringMap<int64_t> &dimValues = {});

} // namespace transfuse::onnx_frontend

#endif
