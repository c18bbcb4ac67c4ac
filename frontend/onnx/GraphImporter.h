//===- GraphImporter.h - state shared by the ONNX op importers --*- C++ -*-===//
#ifndef TRANSFUSE_FRONTEND_ONNX_GRAPHIMPORTER_H
#define TRANSFUSE_FRONTEND_ONNX_GRAPHIMPORTER_H

#include "dialects/transformer/TransformerDialect.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringMap.h"

#include <onnx/onnx_pb.h>

#include <vector>

namespace transfuse::onnx_frontend {

/// Translates one ONNX graph node by node. OnnxImporter.cpp handles the
/// graph (inputs, initializers, outputs); OnnxOps.cpp translates each op.
class GraphImporter {
public:
  GraphImporter(mlir::MLIRContext *ctx, int64_t opset, std::string baseDir)
      : ctx(ctx), b(ctx), opset(opset), baseDir(std::move(baseDir)),
        loc(mlir::UnknownLoc::get(ctx)) {}

  mlir::MLIRContext *ctx;
  mlir::OpBuilder b;
  int64_t opset;
  std::string baseDir;
  llvm::StringMap<mlir::Value> values;
  const onnx::NodeProto *node = nullptr;
  mlir::Location loc;
  std::string error;

  /// Records an error about the current node and returns failure.
  mlir::LogicalResult fail(const llvm::Twine &msg);

  /// Translates `n`, binding its outputs in `values`.
  mlir::LogicalResult importNode(const onnx::NodeProto &n);

  /// A constant from a TensorProto (weights become dense_resource blobs).
  mlir::FailureOr<mlir::Value> constantFromProto(const onnx::TensorProto &t);
  /// A weight (a dense_resource blob named after `name`) that takes over
  /// `bytes`, row-major of `type`, without a copy.
  mlir::Value weightConstant(llvm::StringRef name, mlir::RankedTensorType type,
                             std::vector<char> bytes);

  // Node inputs and attributes.
  size_t numInputs() const { return node->input_size(); }
  /// Input i, or null when absent or given as "".
  mlir::Value input(int i) const;
  const onnx::AttributeProto *attr(llvm::StringRef name) const;
  int64_t attrInt(llvm::StringRef name, int64_t dflt) const;
  float attrFloat(llvm::StringRef name, float dflt) const;
  std::optional<llvm::SmallVector<int64_t>> attrInts(llvm::StringRef name) const;
  mlir::LogicalResult setOutputs(mlir::ValueRange results);

  // Building blocks.
  mlir::Value constI64(llvm::ArrayRef<int64_t> v, bool scalar = false);
  mlir::Value constScalar(mlir::Type elem, double v);
  /// Compile-time values of an integer input (error when not constant).
  mlir::FailureOr<llvm::SmallVector<int64_t>> constInts(mlir::Value v,
                                                        llvm::StringRef what);

  /// Builds a graph op, infers its result type, and reports a shape error
  /// against the current node.
  template <typename OpTy, typename... Args>
  mlir::FailureOr<mlir::Value> make(mlir::Type elem, Args &&...args) {
    std::string err;
    auto v = transformer::createWithInferredType<OpTy>(
        b, loc, elem, err, std::forward<Args>(args)...);
    if (mlir::failed(v))
      return fail(err);
    return *v;
  }

  static mlir::Type elemOf(mlir::Value v) {
    return mlir::cast<mlir::ShapedType>(v.getType()).getElementType();
  }
  static int64_t rankOf(mlir::Value v) {
    return mlir::cast<mlir::RankedTensorType>(v.getType()).getRank();
  }
  /// MLIR element type of an ONNX dtype; null when unsupported.
  mlir::Type elementType(int32_t dtype);
};

/// ONNX ops imported straight into fused ops (OnnxFusedOps.cpp).
mlir::LogicalResult importOnnxAttention(GraphImporter &imp);
mlir::LogicalResult importOnnxRmsNorm(GraphImporter &imp);
mlir::LogicalResult importOnnxRotaryEmbedding(GraphImporter &imp);
mlir::LogicalResult importMsAttention(GraphImporter &imp);
mlir::LogicalResult importMsMultiHeadAttention(GraphImporter &imp);
mlir::LogicalResult importMsGroupQueryAttention(GraphImporter &imp);
mlir::LogicalResult importMsSkipNorm(GraphImporter &imp, bool simplified);
mlir::LogicalResult importMsGelu(GraphImporter &imp);
mlir::LogicalResult importMsEmbedLayerNorm(GraphImporter &imp);
mlir::LogicalResult importMsMatMulNBits(GraphImporter &imp);

} // namespace transfuse::onnx_frontend

#endif
