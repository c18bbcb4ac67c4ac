//===- OnnxTensors.h - TensorProto contents, inline or external -*- C++ -*-===//
#ifndef TRANSFUSE_FRONTEND_ONNX_ONNXTENSORS_H
#define TRANSFUSE_FRONTEND_ONNX_ONNXTENSORS_H

#include <cstdint>
#include <string>
#include <vector>

namespace onnx {
class TensorProto;
}

namespace transfuse::onnx_frontend {

/// A dense tensor in host memory, as ONNX stores it (bool: one byte each).
struct HostTensor {
  std::string name;
  int32_t dtype = 0; // ONNX TensorProto code
  std::vector<int64_t> shape;
  std::vector<char> data;
  int64_t numElements() const;
};

/// Size of one element of an ONNX dtype; 0 for unsupported ones (string,
/// complex, unsigned wider than 8 bits).
size_t onnxElementSize(int32_t dtype);

/// Decodes `proto` (raw_data, typed fields, or external data resolved
/// against `baseDir`). On failure returns false and sets `error`.
bool decodeTensor(const onnx::TensorProto &proto, const std::string &baseDir,
                  HostTensor &out, std::string &error);

/// Reads a serialized TensorProto file (ONNX test-data `input_0.pb`).
bool readTensorFile(const std::string &path, HostTensor &out,
                    std::string &error);

} // namespace transfuse::onnx_frontend

#endif
