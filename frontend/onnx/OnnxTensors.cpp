//===- OnnxTensors.cpp - TensorProto contents, inline or external ---------===//
#include "frontend/onnx/OnnxTensors.h"

#include <onnx/onnx_pb.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace transfuse::onnx_frontend {

int64_t HostTensor::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::string onnxDataTypeName(int32_t dtype) {
  using TP = onnx::TensorProto;
  if (!TP::DataType_IsValid(dtype))
    return std::to_string(dtype);
  return TP::DataType_Name((TP::DataType)dtype);
}

size_t onnxElementSize(int32_t dtype) {
  using TP = onnx::TensorProto;
  switch (dtype) {
  case TP::FLOAT: case TP::INT32: return 4;
  case TP::DOUBLE: case TP::INT64: return 8;
  case TP::FLOAT16: case TP::BFLOAT16: case TP::INT16: return 2;
  case TP::INT8: case TP::UINT8: case TP::BOOL: return 1;
  default: return 0;
  }
}

template <typename Src, typename Dst>
static void copyField(const google::protobuf::RepeatedField<Src> &field,
                      std::vector<char> &data) {
  data.resize(field.size() * sizeof(Dst));
  Dst *out = reinterpret_cast<Dst *>(data.data());
  for (int i = 0; i < field.size(); ++i)
    out[i] = static_cast<Dst>(field.Get(i));
}

bool decodeTensor(const onnx::TensorProto &proto, const std::string &baseDir,
                  HostTensor &out, std::string &error, bool borrow) {
  using TP = onnx::TensorProto;
  out.name = proto.name();
  out.dtype = proto.data_type();
  out.shape.assign(proto.dims().begin(), proto.dims().end());
  size_t elem = onnxElementSize(out.dtype);
  if (!elem) {
    error = "tensor '" + proto.name() + "' has unsupported data type " +
            onnxDataTypeName(out.dtype);
    return false;
  }
  for (int64_t d : out.shape)
    if (d < 0) {
      error = "tensor '" + proto.name() + "' has a negative dim";
      return false;
    }
  size_t bytes = out.numElements() * elem;
  if (proto.data_location() == TP::EXTERNAL) {
    std::string location;
    int64_t offset = 0, length = -1;
    for (const auto &kv : proto.external_data()) {
      if (kv.key() == "location")
        location = kv.value();
      else if (kv.key() == "offset")
        offset = std::stoll(kv.value());
      else if (kv.key() == "length")
        length = std::stoll(kv.value());
    }
    if (location.empty() || location[0] == '/' ||
        location.find("..") != std::string::npos) {
      error = "tensor '" + proto.name() +
              "': external data location must be a relative path inside the "
              "model's directory, got '" + location + "'";
      return false;
    }
    std::string path = baseDir.empty() ? location : baseDir + "/" + location;
    std::ifstream f(path, std::ios::binary);
    if (!f) {
      error = "tensor '" + proto.name() + "': cannot open external data file '" +
              path + "'";
      return false;
    }
    if (length >= 0 && (size_t)length != bytes) {
      error = "tensor '" + proto.name() + "': external data length " +
              std::to_string(length) + " does not match its shape (" +
              std::to_string(bytes) + " bytes)";
      return false;
    }
    out.data.resize(bytes);
    f.seekg(offset);
    f.read(out.data.data(), bytes);
    if ((size_t)f.gcount() != bytes) {
      error = "tensor '" + proto.name() + "': external data file '" + path +
              "' is too short";
      return false;
    }
    return true;
  }
  if (proto.has_raw_data()) {
    if (proto.raw_data().size() != bytes) {
      error = "tensor '" + proto.name() + "': raw_data has " +
              std::to_string(proto.raw_data().size()) + " bytes, shape needs " +
              std::to_string(bytes);
      return false;
    }
    if (borrow)
      out.borrowed = &proto.raw_data();
    else
      out.data.assign(proto.raw_data().begin(), proto.raw_data().end());
    return true;
  }
  switch (out.dtype) {
  case TP::FLOAT: copyField<float, float>(proto.float_data(), out.data); break;
  case TP::DOUBLE: copyField<double, double>(proto.double_data(), out.data); break;
  case TP::INT64: copyField<int64_t, int64_t>(proto.int64_data(), out.data); break;
  case TP::INT32: copyField<int32_t, int32_t>(proto.int32_data(), out.data); break;
  case TP::INT16: copyField<int32_t, int16_t>(proto.int32_data(), out.data); break;
  case TP::INT8: copyField<int32_t, int8_t>(proto.int32_data(), out.data); break;
  case TP::UINT8: case TP::BOOL:
    copyField<int32_t, uint8_t>(proto.int32_data(), out.data); break;
  case TP::FLOAT16: case TP::BFLOAT16:
    copyField<int32_t, uint16_t>(proto.int32_data(), out.data); break;
  }
  if (out.data.size() != bytes) {
    error = "tensor '" + proto.name() + "' holds " +
            std::to_string(out.data.size() / elem) + " values, its shape needs " +
            std::to_string(out.numElements());
    return false;
  }
  return true;
}

bool readTensorFile(const std::string &path, HostTensor &out,
                    std::string &error) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    error = "cannot open " + path;
    return false;
  }
  onnx::TensorProto proto;
  if (!proto.ParseFromIstream(&f)) {
    error = path + " is not a serialized TensorProto";
    return false;
  }
  std::string dir = path.substr(0, path.find_last_of('/'));
  return decodeTensor(proto, dir, out, error);
}

} // namespace transfuse::onnx_frontend
