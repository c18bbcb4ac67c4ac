//===- OnnxImporter.cpp - ONNX ModelProto -> transformer dialect ----------===//
//
// The graph level: opset check, inputs with symbolic dims, initializers as
// constants, outputs with their names. Per-op translation is in OnnxOps.cpp.
//
//===----------------------------------------------------------------------===//
#include "frontend/onnx/OnnxImporter.h"
#include "frontend/onnx/GraphImporter.h"
#include "frontend/onnx/OnnxTensors.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/Verifier.h"
#include "mlir/IR/Diagnostics.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"

#include <fstream>

using namespace mlir;

namespace transfuse::onnx_frontend {

LogicalResult GraphImporter::fail(const Twine &msg) {
  if (error.empty()) {
    if (node)
      error = "node '" + node->name() + "' (" + node->op_type() +
              "): " + msg.str();
    else
      error = msg.str();
  }
  return failure();
}

Value GraphImporter::input(int i) const {
  if (i >= node->input_size() || node->input(i).empty())
    return {};
  return values.lookup(node->input(i));
}

const onnx::AttributeProto *GraphImporter::attr(StringRef name) const {
  for (const auto &a : node->attribute())
    if (a.name() == name)
      return &a;
  return nullptr;
}

int64_t GraphImporter::attrInt(StringRef name, int64_t dflt) const {
  const auto *a = attr(name);
  return a ? a->i() : dflt;
}

float GraphImporter::attrFloat(StringRef name, float dflt) const {
  const auto *a = attr(name);
  return a ? a->f() : dflt;
}

std::optional<SmallVector<int64_t>> GraphImporter::attrInts(StringRef name) const {
  const auto *a = attr(name);
  if (!a)
    return std::nullopt;
  return SmallVector<int64_t>(a->ints().begin(), a->ints().end());
}

LogicalResult GraphImporter::setOutputs(ValueRange results) {
  for (int i = 0; i < node->output_size(); ++i) {
    if (node->output(i).empty())
      continue;
    // An importer passes a null value for an output it does not give.
    if (i >= (int)results.size() || !results[i])
      return fail("output " + std::to_string(i) + " ('" + node->output(i) +
                  "') is not supported");
    values[node->output(i)] = results[i];
  }
  return success();
}

Value GraphImporter::constI64(ArrayRef<int64_t> v, bool scalar) {
  auto type = RankedTensorType::get(
      scalar ? ArrayRef<int64_t>{} : ArrayRef<int64_t>{(int64_t)v.size()},
      b.getI64Type());
  return transformer::ConstantOp::create(b, loc, type,
                                         DenseIntElementsAttr::get(type, v));
}

Value GraphImporter::constScalar(Type elem, double v) {
  auto type = RankedTensorType::get({}, elem);
  Attribute a;
  if (auto ft = dyn_cast<FloatType>(elem))
    a = DenseElementsAttr::get(type, FloatAttr::get(ft, v));
  else
    a = DenseElementsAttr::get(type, IntegerAttr::get(elem, (int64_t)v));
  return transformer::ConstantOp::create(b, loc, type, cast<ElementsAttr>(a));
}

FailureOr<SmallVector<int64_t>> GraphImporter::constInts(Value v,
                                                          StringRef what) {
  auto values = transformer::getConstantIntValues(v);
  if (!values)
    return fail(what + " must be a compile-time constant");
  return *values;
}

Type GraphImporter::elementType(int32_t dtype) {
  using TP = onnx::TensorProto;
  switch (dtype) {
  case TP::FLOAT: return b.getF32Type();
  case TP::DOUBLE: return b.getF64Type();
  case TP::FLOAT16: return b.getF16Type();
  case TP::BFLOAT16: return b.getBF16Type();
  case TP::INT64: return b.getI64Type();
  case TP::INT32: return b.getI32Type();
  case TP::INT16: return b.getI16Type();
  case TP::INT8: return b.getI8Type();
  // Quantized weights only (MatMulNBits): importNode rejects a uint8 input
  // of any other op, readValueInfo a uint8 graph input or output.
  case TP::UINT8:
    return b.getIntegerType(8, /*isSigned=*/false);
  case TP::BOOL: return b.getI1Type();
  default: return {};
  }
}

/// A weight's resource blob name: its tensor's name, with characters the
/// IR's resource keys do not take replaced.
static std::string blobName(StringRef tensor) {
  std::string name = tensor.empty() ? "weight" : tensor.str();
  for (char &c : name)
    if (!isalnum((unsigned char)c) && c != '_' && c != '.')
      c = '_';
  return name;
}

Value GraphImporter::weightConstant(StringRef name, RankedTensorType type,
                                    std::vector<char> bytes) {
  // A resource blob keeps IR printable and parsing fast; it takes the
  // bytes over without a copy.
  auto *owned = new std::vector<char>(std::move(bytes));
  AsmResourceBlob blob(
      ArrayRef<char>(owned->data(), owned->size()), alignof(char),
      [owned](void *, size_t, size_t) { delete owned; },
      /*dataIsMutable=*/false);
  auto value =
      DenseResourceElementsAttr::get(type, blobName(name), std::move(blob));
  return transformer::ConstantOp::create(b, loc, type, value);
}

FailureOr<Value> GraphImporter::constantFromProto(const onnx::TensorProto &t) {
  HostTensor host;
  std::string err;
  if (!decodeTensor(t, baseDir, host, err, /*borrow=*/true))
    return fail(err);
  std::string_view bytes = host.bytes();
  Type elem = elementType(host.dtype);
  if (!elem)
    return fail("tensor '" + t.name() + "' has unsupported data type " +
                onnxDataTypeName(host.dtype));
  auto type = RankedTensorType::get(host.shape, elem);
  ElementsAttr value;
  if (elem.isInteger(1)) {
    SmallVector<bool> bits;
    for (char c : bytes)
      bits.push_back(c != 0);
    value = DenseElementsAttr::get(type, ArrayRef<bool>(bits));
  } else if (host.numElements() > 64) {
    // Bytes the decoding owns (external data, typed fields) become the
    // blob's without a copy: a weight of several GB is held once.
    if (!host.borrowed)
      return weightConstant(t.name(), type, std::move(host.data));
    value = DenseResourceElementsAttr::get(
        type, blobName(t.name()),
        HeapAsmResourceBlob::allocateAndCopyInferAlign<char>(
            ArrayRef<char>(bytes.data(), bytes.size()),
            /*dataIsMutable=*/false));
  } else {
    bool splat = false;
    ArrayRef<char> raw(bytes.data(), bytes.size());
    if (!DenseElementsAttr::isValidRawBuffer(type, raw, splat))
      return fail("tensor '" + t.name() + "' has malformed data");
    value = DenseElementsAttr::getFromRawBuffer(type, raw);
  }
  return (Value)transformer::ConstantOp::create(b, loc, type, value);
}

/// Reads a ValueInfo's tensor type; dims without a value are dynamic and
/// keep their dim_param name (or "" when anonymous), unless `dimValues`
/// gives that name a size.
static LogicalResult readValueInfo(GraphImporter &imp, const onnx::ValueInfoProto &vi,
                                   RankedTensorType &type,
                                   SmallVector<Attribute> &dimNames,
                                   const llvm::StringMap<int64_t> &dimValues) {
  if (!vi.type().has_tensor_type())
    return imp.fail("graph value '" + vi.name() + "' is not a tensor");
  const auto &tt = vi.type().tensor_type();
  Type elem = imp.elementType(tt.elem_type());
  // uint8 is for MatMulNBits' weights, never a model's input or output.
  if (!elem || elem.isUnsignedInteger())
    return imp.fail("graph value '" + vi.name() +
                    "' has unsupported data type " +
                    onnxDataTypeName(tt.elem_type()));
  if (!tt.has_shape())
    return imp.fail("graph value '" + vi.name() +
                    "' has no shape; its rank must be known");
  SmallVector<int64_t> shape;
  for (const auto &d : tt.shape().dim()) {
    if (d.has_dim_value() && d.dim_value() >= 0) {
      shape.push_back(d.dim_value());
      dimNames.push_back(imp.b.getI64IntegerAttr(d.dim_value()));
    } else if (auto it = dimValues.find(d.dim_param());
               d.has_dim_param() && it != dimValues.end()) {
      shape.push_back(it->second);
      dimNames.push_back(imp.b.getI64IntegerAttr(it->second));
    } else {
      shape.push_back(ShapedType::kDynamic);
      dimNames.push_back(imp.b.getStringAttr(d.dim_param()));
    }
  }
  type = RankedTensorType::get(shape, elem);
  return success();
}

OwningOpRef<ModuleOp> importOnnxModel(MLIRContext &ctx, const std::string &path,
                                      std::string &error,
                                      const llvm::StringMap<int64_t> &dimValues) {
  ctx.loadDialect<transformer::TransformerDialect, func::FuncDialect>();
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    error = "cannot open '" + path + "'";
    return nullptr;
  }
  onnx::ModelProto model;
  if (!model.ParseFromIstream(&f)) {
    error = "'" + path + "' is not a valid ONNX ModelProto";
    return nullptr;
  }
  int64_t opset = -1;
  for (const auto &o : model.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx")
      opset = o.version();
  if (opset < 0) {
    error = "the model imports no default-domain opset";
    return nullptr;
  }
  // Opsets 24 and 25 changed, of the ops the importer reads, only Attention
  // (nonpad_kv_seqlen and sliding windows, OnnxFusedOps.cpp) and the type
  // lists (float8e8m0, int2, uint2: errors naming the tensor); 26 on are
  // not read.
  if (opset < 1 || opset > 25) {
    error = "opset " + std::to_string(opset) +
            " is not supported (Transfuse reads opsets up to 25; before 13, "
            "only ops whose semantics did not change)";
    return nullptr;
  }
  std::string baseDir = ".";
  if (auto slash = path.find_last_of('/'); slash != std::string::npos)
    baseDir = path.substr(0, slash);

  GraphImporter imp(&ctx, opset, baseDir);
  const onnx::GraphProto &g = model.graph();
  OwningOpRef<ModuleOp> module = ModuleOp::create(UnknownLoc::get(&ctx));
  imp.b.setInsertionPointToEnd(module->getBody());

  llvm::StringSet<> initNames;
  for (const auto &t : g.initializer())
    initNames.insert(t.name());

  // Every dim given a size must name a symbolic dim of a graph input.
  llvm::StringSet<> inputDimNames;
  for (const auto &in : g.input())
    if (!initNames.contains(in.name()) && in.type().has_tensor_type())
      for (const auto &d : in.type().tensor_type().shape().dim())
        if (d.has_dim_param() && !d.has_dim_value())
          inputDimNames.insert(d.dim_param());
  for (const auto &kv : dimValues) {
    if (inputDimNames.contains(kv.getKey()))
      continue;
    std::vector<std::string> names;
    for (const auto &n : inputDimNames)
      names.push_back(n.getKey().str());
    llvm::sort(names);
    error = "no graph input has a symbolic dim named '" + kv.getKey().str() +
            "' (the inputs' symbolic dims: " +
            (names.empty() ? std::string("none") : llvm::join(names, ", ")) +
            ")";
    return nullptr;
  }

  SmallVector<Type> argTypes;
  SmallVector<DictionaryAttr> argAttrs;
  SmallVector<std::string> argNames;
  for (const auto &in : g.input()) {
    if (initNames.contains(in.name()))
      continue; // an initializer listed as an input (old exporters)
    RankedTensorType type;
    SmallVector<Attribute> dims;
    if (failed(readValueInfo(imp, in, type, dims, dimValues))) {
      error = imp.error;
      return nullptr;
    }
    argTypes.push_back(type);
    argNames.push_back(in.name());
    argAttrs.push_back(imp.b.getDictionaryAttr(
        {imp.b.getNamedAttr("transformer.name", imp.b.getStringAttr(in.name())),
         imp.b.getNamedAttr("transformer.dims", imp.b.getArrayAttr(dims))}));
  }
  auto func = func::FuncOp::create(imp.b, UnknownLoc::get(&ctx), "main_graph",
                                   imp.b.getFunctionType(argTypes, {}));
  Block *body = func.addEntryBlock();
  imp.b.setInsertionPointToStart(body);
  for (auto [i, name] : llvm::enumerate(argNames))
    imp.values[name] = body->getArgument(i);

  // Each initializer's bytes leave the parsed model once its constant holds
  // a copy, so that the weights are not held twice (gpt2: the import
  // peaked at 1.09 GB of RSS for 498 MB of weights).
  for (onnx::TensorProto &t : *model.mutable_graph()->mutable_initializer()) {
    imp.loc = NameLoc::get(imp.b.getStringAttr(t.name()));
    auto c = imp.constantFromProto(t);
    if (failed(c)) {
      error = imp.error;
      return nullptr;
    }
    imp.values[t.name()] = *c;
    delete t.release_raw_data();
  }

  for (const auto &n : g.node()) {
    imp.node = &n;
    std::string label = n.name().empty() ? n.op_type() : n.name();
    imp.loc = NameLoc::get(imp.b.getStringAttr(label + " (" + n.op_type() + ")"));
    for (int i = 0; i < n.input_size(); ++i)
      if (!n.input(i).empty() && !imp.values.count(n.input(i))) {
        (void)imp.fail("input '" + n.input(i) +
                 "' is not produced by any earlier node (the graph is not "
                 "topologically sorted, or the name is wrong)");
        error = imp.error;
        return nullptr;
      }
    // ONNX graphs are SSA: a second definition would silently replace the
    // first for every later reader.
    for (const std::string &out : n.output())
      if (!out.empty() && imp.values.count(out)) {
        (void)imp.fail("output '" + out +
                       "' is already defined by an earlier node, a graph "
                       "input or an initializer (each name is defined once)");
        error = imp.error;
        return nullptr;
      }
    if (failed(imp.importNode(n))) {
      error = imp.error;
      return nullptr;
    }
  }
  imp.node = nullptr;

  SmallVector<Value> results;
  SmallVector<DictionaryAttr> resAttrs;
  for (const auto &out : g.output()) {
    Value v = imp.values.lookup(out.name());
    if (!v) {
      error = "graph output '" + out.name() + "' is not produced by any node";
      return nullptr;
    }
    if (imp.elemOf(v).isUnsignedInteger()) {
      error =
          "graph output '" + out.name() + "' has unsupported data type UINT8";
      return nullptr;
    }
    RankedTensorType declared;
    SmallVector<Attribute> dims;
    if (out.type().has_tensor_type() && out.type().tensor_type().has_shape() &&
        succeeded(readValueInfo(imp, out, declared, dims, dimValues))) {
      auto actual = cast<RankedTensorType>(v.getType());
      if (!transformer::areCompatible(actual, declared)) {
        error = "graph output '" + out.name() + "' is declared as a " +
                std::to_string(declared.getRank()) +
                "-D tensor but computes a different type";
        return nullptr;
      }
    }
    imp.error.clear();
    results.push_back(v);
    resAttrs.push_back(imp.b.getDictionaryAttr(
        {imp.b.getNamedAttr("transformer.name", imp.b.getStringAttr(out.name())),
         imp.b.getNamedAttr("transformer.dims", imp.b.getArrayAttr(dims))}));
  }
  func::ReturnOp::create(imp.b, UnknownLoc::get(&ctx), results);
  func.setType(imp.b.getFunctionType(argTypes, ValueRange(results).getTypes()));
  for (auto [i, a] : llvm::enumerate(argAttrs))
    func.setArgAttrs(i, a);
  for (auto [i, a] : llvm::enumerate(resAttrs))
    func.setResultAttrs(i, a);

  std::string diag;
  {
    ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &d) {
      llvm::raw_string_ostream os(diag);
      os << d.getLocation() << ": " << d.str() << "\n";
      return success();
    });
    if (failed(verify(*module))) {
      error = "imported IR does not verify:\n" + diag;
      return nullptr;
    }
  }
  return module;
}

} // namespace transfuse::onnx_frontend
