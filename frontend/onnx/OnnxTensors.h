//===- OnnxTensors.h - TensorProto contents, inline or external -*- C++ -*-===//
#ifndef TRANSFUSE_FRONTEND_ONNX_ONNXTENSORS_H
#define TRANSFUSE_FRONTEND_ONNX_ONNXTENSORS_H

#include <cstdint>
#include <string>
#include <string_view>
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
  /// Instead of `data`, when decodeTensor was told to borrow them: the
  /// proto's inline raw_data bytes (valid while the proto is).
  const std::string *borrowed = nullptr;
  int64_t numElements() const;
  /// The tensor's bytes: the borrowed ones, else `data`.
  std::string_view bytes() const {
    return borrowed ? std::string_view(*borrowed)
                    : std::string_view(data.data(), data.size());
  }
};

/// Size of one element of an ONNX dtype; 0 for unsupported ones (string,
/// complex, unsigned wider than 8 bits).
size_t onnxElementSize(int32_t dtype);

/// An ONNX dtype for an error message: its name ("FLOAT16"), or its number
/// for one newer than the ONNX schema Transfuse was built with (opset 25's
/// INT2 is 26).
std::string onnxDataTypeName(int32_t dtype);

/// Decodes `proto` (raw_data, typed fields, or external data resolved
/// against `baseDir`). On failure returns false and sets `error`. With
/// `borrow`, inline raw_data is not copied (HostTensor::borrowed).
bool decodeTensor(const onnx::TensorProto &proto, const std::string &baseDir,
                  HostTensor &out, std::string &error, bool borrow = false);

/// Reads a serialized TensorProto file (ONNX test-data `input_0.pb`).
bool readTensorFile(const std::string &path, HostTensor &out,
                    std::string &error);

} // namespace transfuse::onnx_frontend

#endif
