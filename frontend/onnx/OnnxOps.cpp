//===- OnnxOps.cpp - one ONNX node -> transformer graph ops ---------------===//
//
// Faithful translation, no fusion. Sugar (Gemm, Clip, Split, Einsum,
// LessOrEqual, Identity) is desugared here into the dialect's small op set.
// To add an op: add its inputs to `arity` and a case to importNode (a
// com.microsoft op: a row in kMicrosoftOps) and, if it needs a new graph op,
// an op in TransformerOps.td with a shape rule in ShapeInference.cpp.
//
//===----------------------------------------------------------------------===//
#include "frontend/onnx/GraphImporter.h"

#include "mlir/IR/Matchers.h"
#include "llvm/ADT/StringSwitch.h"

#include <optional>

using namespace mlir;
using namespace transfuse::transformer;

namespace transfuse::onnx_frontend {

namespace {
using Importer = GraphImporter;
using VResult = FailureOr<Value>;

LogicalResult one(Importer &imp, VResult v) {
  if (failed(v))
    return failure();
  return imp.setOutputs(*v);
}

template <typename OpTy>
VResult binary(Importer &imp, Value a, Value b) {
  return imp.make<OpTy>(Importer::elemOf(a), a, b);
}

/// Resolves reduce axes from the attribute (old opsets) or the input.
FailureOr<SmallVector<int64_t>> reduceAxes(Importer &imp, bool axesAreInput) {
  if (axesAreInput) {
    Value axes = imp.input(1);
    if (!axes)
      return SmallVector<int64_t>{};
    return imp.constInts(axes, "the axes input");
  }
  return imp.attrInts("axes").value_or(SmallVector<int64_t>{});
}

template <typename OpTy>
LogicalResult importReduce(Importer &imp, int64_t axesInputSince) {
  Value x = imp.input(0);
  auto axes = reduceAxes(imp, imp.opset >= axesInputSince);
  if (failed(axes))
    return failure();
  bool keep = imp.attrInt("keepdims", 1) != 0;
  if (axes->empty() && imp.attrInt("noop_with_empty_axes", 0))
    return imp.setOutputs(x);
  return one(imp, imp.make<OpTy>(Importer::elemOf(x), x,
                                 imp.b.getDenseI64ArrayAttr(*axes),
                                 imp.b.getBoolAttr(keep)));
}

VResult transposeLast2(Importer &imp, Value v) {
  int64_t r = Importer::rankOf(v);
  SmallVector<int64_t> perm;
  for (int64_t i = 0; i < r; ++i)
    perm.push_back(i);
  std::swap(perm[r - 1], perm[r - 2]);
  return imp.make<TransposeOp>(Importer::elemOf(v), v,
                               imp.b.getDenseI64ArrayAttr(perm));
}

LogicalResult importGemm(Importer &imp) {
  Value a = imp.input(0), b = imp.input(1), c = imp.input(2);
  if (Importer::rankOf(a) != 2 || Importer::rankOf(b) != 2)
    return imp.fail("Gemm operands A and B must be 2-D");
  if (imp.attrInt("transA", 0)) {
    auto t = transposeLast2(imp, a);
    if (failed(t)) return failure();
    a = *t;
  }
  if (imp.attrInt("transB", 0)) {
    auto t = transposeLast2(imp, b);
    if (failed(t)) return failure();
    b = *t;
  }
  Type elem = Importer::elemOf(a);
  VResult y = binary<MatMulOp>(imp, a, b);
  if (failed(y)) return failure();
  float alpha = imp.attrFloat("alpha", 1.0f), beta = imp.attrFloat("beta", 1.0f);
  if (alpha != 1.0f)
    y = binary<MulOp>(imp, *y, imp.constScalar(elem, alpha));
  if (failed(y)) return failure();
  if (c) {
    if (beta != 1.0f) {
      auto bc = binary<MulOp>(imp, c, imp.constScalar(elem, beta));
      if (failed(bc)) return failure();
      c = *bc;
    }
    y = binary<AddOp>(imp, *y, c);
  }
  return one(imp, y);
}

LogicalResult importSlice(Importer &imp) {
  Value data = imp.input(0);
  Value starts, ends;
  SmallVector<int64_t> axes, steps;
  if (imp.opset < 10) {
    auto s = imp.attrInts("starts"), e = imp.attrInts("ends");
    if (!s || !e)
      return imp.fail("Slice-1 needs starts and ends attributes");
    starts = imp.constI64(*s);
    ends = imp.constI64(*e);
    if (auto a = imp.attrInts("axes"))
      axes = *a;
  } else {
    starts = imp.input(1);
    ends = imp.input(2);
    if (!starts || !ends)
      return imp.fail("Slice-10 and later take starts and ends as inputs 1 "
                      "and 2");
    if (Value a = imp.input(3)) {
      auto v = imp.constInts(a, "the axes input");
      if (failed(v)) return failure();
      axes = *v;
    }
    if (Value s = imp.input(4)) {
      auto v = imp.constInts(s, "the steps input");
      if (failed(v)) return failure();
      steps = *v;
    }
  }
  auto castI64 = [&](Value v) -> VResult {
    if (Importer::elemOf(v).isInteger(64))
      return v;
    return imp.make<CastOp>(imp.b.getI64Type(), v);
  };
  auto s64 = castI64(starts), e64 = castI64(ends);
  if (failed(s64) || failed(e64)) return failure();
  auto startsType = cast<RankedTensorType>(starts.getType());
  if (startsType.getRank() != 1 || startsType.isDynamicDim(0))
    return imp.fail("starts must be a 1-D tensor of static length");
  int64_t n = startsType.getDimSize(0);
  if (axes.empty())
    for (int64_t i = 0; i < n; ++i)
      axes.push_back(i);
  if (steps.empty())
    steps.assign(n, 1);
  return one(imp, imp.make<SliceOp>(Importer::elemOf(data), data, *s64, *e64,
                                    imp.b.getDenseI64ArrayAttr(axes),
                                    imp.b.getDenseI64ArrayAttr(steps)));
}

LogicalResult importSplit(Importer &imp) {
  Value x = imp.input(0);
  auto type = cast<RankedTensorType>(x.getType());
  int64_t axis = normalizeAxis(imp.attrInt("axis", 0), type.getRank());
  if (axis < 0)
    return imp.fail("axis is out of range");
  SmallVector<int64_t> sizes;
  if (Value s = imp.input(1)) {
    auto v = imp.constInts(s, "the split input");
    if (failed(v)) return failure();
    sizes = *v;
  } else if (auto a = imp.attrInts("split")) {
    sizes = *a;
  }
  int64_t outputs = imp.node->output_size();
  if (sizes.empty()) {
    int64_t dim = type.getDimSize(axis);
    if (ShapedType::isDynamic(dim))
      return imp.fail("an even Split of a dynamic dim is not supported; give "
                      "the split sizes");
    int64_t chunk = (dim + outputs - 1) / outputs;
    for (int64_t i = 0; i < outputs; ++i)
      sizes.push_back(std::min(chunk, dim - i * chunk));
  }
  if ((int64_t)sizes.size() != outputs)
    return imp.fail("split has " + std::to_string(sizes.size()) +
                    " sizes for " + std::to_string(outputs) + " outputs");
  SmallVector<Value> results;
  int64_t offset = 0;
  for (int64_t s : sizes) {
    auto v = imp.make<SliceOp>(Importer::elemOf(x), x, imp.constI64({offset}),
                               imp.constI64({offset + s}),
                               imp.b.getDenseI64ArrayAttr({axis}),
                               imp.b.getDenseI64ArrayAttr({1}));
    if (failed(v)) return failure();
    results.push_back(*v);
    offset += s;
  }
  return imp.setOutputs(results);
}

/// Einsum forms that map to transposes, reductions and one batched matmul:
/// every operand letter appears once per operand, at most one free letter
/// per side and one contracted letter (attention's "bhqd,bhkd->bhqk").
LogicalResult importEinsum(Importer &imp) {
  const auto *eqAttr = imp.attr("equation");
  if (!eqAttr)
    return imp.fail("missing equation");
  std::string eq;
  for (char c : eqAttr->s())
    if (c != ' ')
      eq += c;
  size_t arrow = eq.find("->");
  if (arrow == std::string::npos)
    return imp.fail("implicit-output einsum '" + eq + "' is not supported");
  std::string lhs = eq.substr(0, arrow), out = eq.substr(arrow + 2);
  SmallVector<std::string> terms;
  for (size_t p = 0; p <= lhs.size();) {
    size_t q = lhs.find(',', p);
    if (q == std::string::npos) q = lhs.size();
    terms.push_back(lhs.substr(p, q - p));
    p = q + 1;
  }
  if ((int64_t)terms.size() != (int64_t)imp.numInputs())
    return imp.fail("equation '" + eq + "' does not match the input count");
  auto unsupported = [&]() {
    return imp.fail("einsum '" + eq + "' is not a supported form (one "
                    "contraction between two operands, or a transpose)");
  };
  for (auto &t : terms)
    if (t.find('.') != std::string::npos ||
        llvm::any_of(t, [&](char c) { return llvm::count(t, c) > 1; }))
      return unsupported();
  auto permFor = [&](const std::string &from, const std::string &to) {
    SmallVector<int64_t> perm;
    for (char c : to)
      perm.push_back(from.find(c));
    return perm;
  };
  auto transpose = [&](Value v, const std::string &from,
                       const std::string &to) -> VResult {
    if (from == to)
      return v;
    return imp.make<TransposeOp>(Importer::elemOf(v), v,
                                 imp.b.getDenseI64ArrayAttr(permFor(from, to)));
  };
  if (terms.size() == 1) {
    std::string t = terms[0];
    if (t.size() != out.size() || !llvm::all_of(out, [&](char c) { return t.find(c) != std::string::npos; }))
      return unsupported();
    return one(imp, transpose(imp.input(0), t, out));
  }
  if (terms.size() != 2)
    return unsupported();
  const std::string &a = terms[0], &b = terms[1];
  std::string batch, freeA, freeB, contracted;
  for (char c : a) {
    bool inB = b.find(c) != std::string::npos, inOut = out.find(c) != std::string::npos;
    if (inB && inOut) batch += c;
    else if (inB) contracted += c;
    else if (inOut) freeA += c;
    else return unsupported();
  }
  for (char c : b) {
    bool inA = a.find(c) != std::string::npos, inOut = out.find(c) != std::string::npos;
    if (!inA && inOut) freeB += c;
    else if (!inA) return unsupported();
  }
  if (freeA.size() > 1 || freeB.size() > 1 || contracted.size() != 1)
    return unsupported();
  // Bring A to [batch, freeA, k] and B to [batch, k, freeB]; a missing free
  // letter is a unit dim added with unsqueeze and removed after.
  auto prep = [&](Value v, const std::string &term, const std::string &target,
                  bool addUnit, int64_t unitPos) -> VResult {
    auto t = transpose(v, term, target);
    if (failed(t) || !addUnit) return t;
    return imp.make<UnsqueezeOp>(Importer::elemOf(v), *t,
                                 imp.b.getDenseI64ArrayAttr({unitPos}));
  };
  int64_t nb = batch.size();
  auto va = prep(imp.input(0), a, batch + freeA + contracted, freeA.empty(), nb);
  auto vb = prep(imp.input(1), b, batch + contracted + freeB, freeB.empty(), nb + 1);
  if (failed(va) || failed(vb)) return failure();
  auto mm = binary<MatMulOp>(imp, *va, *vb);
  if (failed(mm)) return failure();
  Value r = *mm;
  std::string produced = batch + freeA + freeB;
  // The matmul result is [batch, m, n]; drop m or n where it was a unit dim.
  SmallVector<int64_t> drop;
  if (freeA.empty()) drop.push_back(nb);
  if (freeB.empty()) drop.push_back(nb + 1);
  if (!drop.empty()) {
    auto sq = imp.make<SqueezeOp>(Importer::elemOf(r), r, imp.b.getDenseI64ArrayAttr(drop));
    if (failed(sq)) return failure();
    r = *sq;
  }
  return one(imp, transpose(r, produced, out));
}

LogicalResult importClip(Importer &imp) {
  Value x = imp.input(0);
  Type elem = Importer::elemOf(x);
  Value lo, hi;
  if (imp.opset < 11) {
    if (imp.attr("min")) lo = imp.constScalar(elem, imp.attrFloat("min", 0));
    if (imp.attr("max")) hi = imp.constScalar(elem, imp.attrFloat("max", 0));
  } else {
    lo = imp.input(1);
    hi = imp.input(2);
  }
  VResult y = x;
  if (lo) y = binary<MaxOp>(imp, *y, lo);
  if (succeeded(y) && hi) y = binary<MinOp>(imp, *y, hi);
  return one(imp, y);
}

LogicalResult importConstant(Importer &imp) {
  const auto &n = *imp.node;
  if (n.attribute_size() != 1)
    return imp.fail("expects exactly one value attribute");
  const auto &a = n.attribute(0);
  Type f32 = imp.b.getF32Type();
  if (a.name() == "value") {
    auto c = imp.constantFromProto(a.t());
    return failed(c) ? failure() : imp.setOutputs(*c);
  }
  if (a.name() == "value_float")
    return imp.setOutputs(imp.constScalar(f32, a.f()));
  if (a.name() == "value_int")
    return imp.setOutputs(imp.constI64({a.i()}, /*scalar=*/true));
  if (a.name() == "value_ints")
    return imp.setOutputs(imp.constI64(SmallVector<int64_t>(a.ints().begin(), a.ints().end())));
  if (a.name() == "value_floats") {
    SmallVector<float> v(a.floats().begin(), a.floats().end());
    auto type = RankedTensorType::get({(int64_t)v.size()}, f32);
    return imp.setOutputs((Value)ConstantOp::create(
        imp.b, imp.loc, type, DenseFPElementsAttr::get(type, ArrayRef<float>(v))));
  }
  return imp.fail("Constant '" + a.name() + "' attribute is not supported");
}

LogicalResult importConstantOfShape(Importer &imp) {
  Attribute value = imp.b.getF32FloatAttr(0.0f);
  if (const auto *a = imp.attr("value")) {
    auto c = imp.constantFromProto(a->t());
    if (failed(c)) return failure();
    auto attr = cast<ConstantOp>(c->getDefiningOp()).getValue();
    auto dense = dyn_cast<DenseElementsAttr>(attr);
    if (!dense || dense.getNumElements() != 1)
      return imp.fail("value must be a one-element tensor");
    value = dense.getSplatValue<Attribute>();
    c->getDefiningOp()->erase();
  }
  Value shape = imp.input(0);
  auto typed = cast<TypedAttr>(value);
  return one(imp, imp.make<ConstantOfShapeOp>(typed.getType(), shape, typed));
}

LogicalResult importSqueezeLike(Importer &imp, bool unsqueeze) {
  Value x = imp.input(0);
  SmallVector<int64_t> axes;
  if (imp.opset >= 13) {
    if (Value a = imp.input(1)) {
      auto v = imp.constInts(a, "the axes input");
      if (failed(v)) return failure();
      axes = *v;
    }
  } else if (auto a = imp.attrInts("axes")) {
    axes = *a;
  }
  if (unsqueeze) {
    if (axes.empty())
      return imp.fail("Unsqueeze needs axes");
    return one(imp, imp.make<UnsqueezeOp>(Importer::elemOf(x), x,
                                          imp.b.getDenseI64ArrayAttr(axes)));
  }
  if (axes.empty()) {
    auto t = cast<RankedTensorType>(x.getType());
    for (int64_t i = 0; i < t.getRank(); ++i) {
      if (t.isDynamicDim(i))
        return imp.fail("Squeeze without axes on a tensor with dynamic dims "
                        "is ambiguous; give axes");
      if (t.getDimSize(i) == 1)
        axes.push_back(i);
    }
  }
  return one(imp, imp.make<SqueezeOp>(Importer::elemOf(x), x,
                                      imp.b.getDenseI64ArrayAttr(axes)));
}

/// Flatten to 2-D as a reshape; one side of `axis` must be static so that
/// the target shape is [static, -1] or [-1, static].
LogicalResult importFlatten(Importer &imp) {
  Value x = imp.input(0);
  auto t = cast<RankedTensorType>(x.getType());
  int64_t axis = imp.attrInt("axis", 1);
  if (axis < 0)
    axis += t.getRank();
  if (axis < 0 || axis > t.getRank())
    return imp.fail("axis is out of range");
  auto product = [&](int64_t from, int64_t to) -> std::optional<int64_t> {
    int64_t p = 1;
    for (int64_t i = from; i < to; ++i) {
      if (t.isDynamicDim(i))
        return std::nullopt;
      p *= t.getDimSize(i);
    }
    return p;
  };
  auto head = product(0, axis), tail = product(axis, t.getRank());
  SmallVector<int64_t> shape;
  if (head && tail)
    shape = {*head, *tail};
  else if (tail && *tail > 0)
    shape = {-1, *tail};
  else if (head && *head > 0)
    shape = {*head, -1};
  else
    return imp.fail("Flatten needs the dims on one side of the axis to be static");
  return one(imp, imp.make<ReshapeOp>(Importer::elemOf(x), x, imp.constI64(shape),
                                      imp.b.getBoolAttr(false)));
}

/// Tile as the graph ops it is: x viewed as [1, d0, 1, d1, ...] (unsqueeze),
/// broadcast to [r0, d0, r1, d1, ...] (expand) and merged to [r0 d0, r1 d1,
/// ...] (reshape), so that out[i] = x[i mod d] per dim, each repeat outside
/// the input's dim. The broadcast shape interleaves the repeats with ones
/// as 1-D shape values, which fold to a constant when the repeats are one
/// (GPT-J's rotary tables).
LogicalResult importTile(Importer &imp) {
  Value x = imp.input(0), repeats = imp.input(1);
  Type elem = Importer::elemOf(x), i64 = imp.b.getI64Type();
  int64_t n = Importer::rankOf(x);
  auto rt = cast<RankedTensorType>(repeats.getType());
  if (rt.getRank() != 1 || (!rt.isDynamicDim(0) && rt.getDimSize(0) != n))
    return imp.fail("repeats must be 1-D with one value per input dim (" +
                    std::to_string(n) + ")");
  if (!rt.getElementType().isInteger(64))
    return imp.fail("repeats must be int64");
  if (auto constant = getConstantIntValues(repeats))
    for (int64_t v : *constant)
      if (v < 0)
        return imp.fail("repeats must not be negative, got " +
                        std::to_string(v));
  if (n == 0)
    return imp.setOutputs(x);
  SmallVector<int64_t> unitAxes;
  SmallVector<Value> wideDims;
  auto axis0 = imp.b.getDenseI64ArrayAttr({0}),
       step1 = imp.b.getDenseI64ArrayAttr({1});
  for (int64_t i = 0; i < n; ++i) {
    unitAxes.push_back(2 * i);
    auto r = imp.make<SliceOp>(i64, repeats, imp.constI64({i}),
                               imp.constI64({i + 1}), axis0, step1);
    if (failed(r))
      return failure();
    wideDims.append({*r, imp.constI64({1})});
  }
  auto spread =
      imp.make<UnsqueezeOp>(elem, x, imp.b.getDenseI64ArrayAttr(unitAxes));
  if (failed(spread))
    return failure();
  auto wideShape =
      imp.make<ConcatOp>(i64, wideDims, imp.b.getI64IntegerAttr(0));
  if (failed(wideShape))
    return failure();
  auto wide = imp.make<ExpandOp>(elem, *spread, *wideShape);
  if (failed(wide))
    return failure();
  auto dims = imp.make<ShapeOp>(i64, x, imp.b.getI64IntegerAttr(0),
                                imp.b.getI64IntegerAttr(INT64_MAX));
  if (failed(dims))
    return failure();
  auto outShape = binary<MulOp>(imp, *dims, repeats);
  if (failed(outShape))
    return failure();
  return one(imp, imp.make<ReshapeOp>(elem, *wide, *outShape,
                                      imp.b.getBoolAttr(false)));
}

/// LayerNormalization whose Mean and InvStdDev outputs are used: spelled out
/// in graph ops so that the statistics are values of their own.
LogicalResult importLayerNormWithStats(Importer &imp) {
  Value x = imp.input(0), scale = imp.input(1), bias = imp.input(2);
  Type elem = Importer::elemOf(x);
  int64_t r = Importer::rankOf(x);
  int64_t axis = normalizeAxis(imp.attrInt("axis", -1), r);
  if (axis < 0)
    return imp.fail("axis is out of range");
  if (imp.attrInt("stash_type", 1) != 1 || !elem.isF32())
    return imp.fail("statistics outputs are supported for float32 only");
  SmallVector<int64_t> axes;
  for (int64_t i = axis; i < r; ++i)
    axes.push_back(i);
  auto axesAttr = imp.b.getDenseI64ArrayAttr(axes);
  auto keep = imp.b.getBoolAttr(true);
  auto mean = imp.make<ReduceMeanOp>(elem, x, axesAttr, keep);
  if (failed(mean)) return failure();
  auto d = binary<SubOp>(imp, x, *mean);
  if (failed(d)) return failure();
  auto sq = binary<MulOp>(imp, *d, *d);
  if (failed(sq)) return failure();
  auto var = imp.make<ReduceMeanOp>(elem, *sq, axesAttr, keep);
  if (failed(var)) return failure();
  auto ve = binary<AddOp>(imp, *var, imp.constScalar(elem, imp.attrFloat("epsilon", 1e-5f)));
  if (failed(ve)) return failure();
  auto sd = imp.make<SqrtOp>(elem, *ve);
  if (failed(sd)) return failure();
  auto inv = imp.make<ReciprocalOp>(elem, *sd);
  if (failed(inv)) return failure();
  auto y = binary<MulOp>(imp, *d, *inv);
  if (succeeded(y)) y = binary<MulOp>(imp, *y, scale);
  if (succeeded(y) && bias) y = binary<AddOp>(imp, *y, bias);
  if (failed(y)) return failure();
  return imp.setOutputs({*y, *mean, *inv});
}

template <typename OpTy>
LogicalResult importUnary(Importer &imp) {
  Value x = imp.input(0);
  return one(imp, imp.make<OpTy>(Importer::elemOf(x), x));
}

template <typename OpTy>
LogicalResult importBinary(Importer &imp) {
  return one(imp, binary<OpTy>(imp, imp.input(0), imp.input(1)));
}

/// Min/Max take any number of inputs.
template <typename OpTy>
LogicalResult importVariadic(Importer &imp) {
  VResult acc = imp.input(0);
  for (size_t i = 1; i < imp.numInputs() && succeeded(acc); ++i)
    acc = binary<OpTy>(imp, *acc, imp.input(i));
  return one(imp, acc);
}

/// a <= b as (a < b) or (a == b), and likewise for >=.
template <typename StrictOp>
LogicalResult importOrEqual(Importer &imp) {
  Value a = imp.input(0), b = imp.input(1);
  auto strict = binary<StrictOp>(imp, a, b);
  auto eq = binary<EqualOp>(imp, a, b);
  if (failed(strict) || failed(eq)) return failure();
  return one(imp, binary<OrOp>(imp, *strict, *eq));
}

/// The inputs an op takes, as the ONNX (or com.microsoft) schema says: the
/// first `required` must be given (a name, not ""), except those whose bit
/// is set in `optional` (a schema's optional input between required ones),
/// and there are at most `max` (-1: any number). The op importers read
/// inputs by position, so importNode checks this first.
struct Arity {
  int required, max;
  uint32_t optional = 0;
};

/// The com.microsoft ops that import (OnnxFusedOps.cpp): their inputs and
/// their importer.
struct MicrosoftOp {
  StringRef name;
  Arity arity;
  LogicalResult (*import)(Importer &);
};
const MicrosoftOp kMicrosoftOps[] = {
    {"Attention", {2, 7}, importMsAttention},
    {"MultiHeadAttention", {1, 10}, importMsMultiHeadAttention},
    // query, key?, value?, past_key?, past_value?, seqlens_k,
    // total_sequence_length, then cos_cache? and sin_cache? (and inputs
    // the importer rejects by name).
    {"GroupQueryAttention", {7, 12, 0b11110}, importMsGroupQueryAttention},
    {"SkipLayerNormalization",
     {3, 5},
     [](Importer &imp) { return importMsSkipNorm(imp, false); }},
    {"SkipSimplifiedLayerNormalization",
     {3, 4},
     [](Importer &imp) { return importMsSkipNorm(imp, true); }},
    // input_ids, segment_ids?, word, position, segment_embedding?, gamma,
    // beta, then mask? and position_ids?.
    {"EmbedLayerNormalization",
     {7, 9, 1u << 1 | 1u << 4},
     importMsEmbedLayerNorm},
    // A, B, scales, then zero_points?, g_idx? and bias?.
    {"MatMulNBits", {3, 6}, importMsMatMulNBits},
    {"Gelu", {1, 1}, importMsGelu},
    {"BiasGelu", {2, 2}, importMsGelu},
    {"FastGelu", {1, 2}, importMsGelu},
    {"QuickGelu", {1, 1}, importMsGelu},
};

const MicrosoftOp *microsoftOp(StringRef op) {
  for (const MicrosoftOp &m : kMicrosoftOps)
    if (m.name == op)
      return &m;
  return nullptr;
}

std::optional<Arity> arity(StringRef op, bool microsoft) {
  if (microsoft) {
    const MicrosoftOp *m = microsoftOp(op);
    return m ? std::optional<Arity>(m->arity) : std::nullopt;
  }
  return llvm::StringSwitch<std::optional<Arity>>(op)
      .Case("Constant", Arity{0, 0})
      .Cases({"Add", "Sub", "Mul", "Div", "Pow", "Mod", "Equal", "Less",
              "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "MatMul",
              "Gather", "GatherElements", "GatherND", "Expand", "CumSum"},
             Arity{2, 2})
      .Case("Tile", Arity{2, 2})
      .Cases({"Identity", "Sqrt",      "Reciprocal", "Erf",
              "Tanh",     "Exp",       "Log",        "Neg",
              "Abs",      "Relu",      "Sigmoid",    "Sin",
              "Cos",      "Floor",     "Ceil",       "Not",
              "IsNaN",    "Flatten",   "Cast",       "Softmax",
              "Gelu",     "Transpose", "Shape",      "ConstantOfShape"},
             Arity{1, 1})
      .Cases({"Min", "Max", "Concat", "Einsum"}, Arity{1, -1})
      .Case("Dropout", Arity{1, 3})
      .Cases({"Where", "Range"}, Arity{3, 3})
      .Case("LayerNormalization", Arity{2, 3})
      .Case("Attention", Arity{3, 7})
      .Cases({"RMSNormalization", "SimplifiedLayerNormalization"}, Arity{2, 2})
      .Case("RotaryEmbedding", Arity{3, 4})
      .Cases({"ReduceMean", "ReduceSum", "ReduceMax", "Reshape", "Unsqueeze",
              "Squeeze", "Split", "Trilu"},
             Arity{1, 2})
      .Case("Gemm", Arity{2, 3})
      .Case("Slice", Arity{1, 5})
      .Case("Clip", Arity{1, 3})
      .Default(std::nullopt);
}
} // namespace

LogicalResult GraphImporter::importNode(const onnx::NodeProto &n) {
  bool microsoft = n.domain() == "com.microsoft";
  if (!n.domain().empty() && n.domain() != "ai.onnx" && !microsoft)
    return fail("ops of domain '" + n.domain() + "' are not supported");
  for (int i = 0; i < n.input_size(); ++i)
    if (!n.input(i).empty() && !isa<RankedTensorType>(values.lookup(n.input(i)).getType()))
      return fail("input '" + n.input(i) + "' is not a ranked tensor");
  const std::string &op = n.op_type();
  if (n.output_size() == 0 || n.output(0).empty())
    return fail("the node has no first output");
  // uint8 tensors import only as MatMulNBits' quantized weights.
  if (!(microsoft && op == "MatMulNBits"))
    for (int i = 0; i < n.input_size(); ++i)
      if (!n.input(i).empty() &&
          elemOf(values.lookup(n.input(i))).isUnsignedInteger(8))
        return fail("input '" + n.input(i) +
                    "' is uint8, which is supported only as MatMulNBits' "
                    "quantized weights");
  if (std::optional<Arity> a = arity(op, microsoft)) {
    int given = n.input_size();
    if (given < a->required || (a->max >= 0 && given > a->max)) {
      std::string expected =
          a->max < 0 ? "at least " + std::to_string(a->required)
          : a->max == a->required
              ? std::to_string(a->required)
              : std::to_string(a->required) + " to " + std::to_string(a->max);
      return fail("takes " + expected + " input" +
                  (a->max == 1 && a->required == 1 ? "" : "s") + ", not " +
                  std::to_string(given));
    }
    for (int i = 0; i < a->required; ++i)
      if (n.input(i).empty() && !(a->optional >> i & 1))
        return fail("input " + std::to_string(i) +
                    " is required, but its name is empty");
  }
  if (microsoft) {
    if (const MicrosoftOp *m = microsoftOp(op))
      return m->import(*this);
    std::string supported;
    for (const MicrosoftOp &m : kMicrosoftOps)
      supported += (supported.empty() ? "" : ", ") + m.name.str();
    return fail("com.microsoft op " + op +
                " is not supported (supported: " + supported + ")");
  }
  if (attr("broadcast"))
    return fail("the legacy 'broadcast' attribute (opset < 7) is not supported");
  Importer &imp = *this;
  Type i1 = b.getI1Type();

  if (op == "Identity")
    return values[n.output(0)] = input(0), success();
  if (op == "Dropout") {
    // Inference: the identity, and a mask of all true.
    if (Value training = input(2)) {
      DenseElementsAttr flag;
      bool off = matchPattern(training, m_Constant(&flag)) &&
                 !flag.getSplatValue<bool>();
      if (!off)
        return fail("training-mode Dropout is not supported (Transfuse "
                    "compiles for inference)");
    }
    Value x = input(0);
    SmallVector<Value> results{x};
    if (n.output_size() > 1 && !n.output(1).empty()) {
      auto shape = make<ShapeOp>(b.getI64Type(), x, b.getI64IntegerAttr(0),
                                 b.getI64IntegerAttr(INT64_MAX));
      if (failed(shape)) return failure();
      auto mask = make<ConstantOfShapeOp>(i1, *shape, b.getBoolAttr(true));
      if (failed(mask)) return failure();
      results.push_back(*mask);
    }
    return setOutputs(results);
  }
  if (op == "Constant") return importConstant(imp);
  if (op == "Add") return importBinary<AddOp>(imp);
  if (op == "Sub") return importBinary<SubOp>(imp);
  if (op == "Mul") return importBinary<MulOp>(imp);
  if (op == "Div") return importBinary<DivOp>(imp);
  if (op == "Pow") return importBinary<PowOp>(imp);
  if (op == "Mod") {
    Value a = input(0);
    return one(imp, make<ModOp>(elemOf(a), a, input(1),
                                b.getBoolAttr(attrInt("fmod", 0) != 0)));
  }
  if (op == "Equal") return importBinary<EqualOp>(imp);
  if (op == "Less") return importBinary<LessOp>(imp);
  if (op == "Greater") return importBinary<GreaterOp>(imp);
  if (op == "LessOrEqual") return importOrEqual<LessOp>(imp);
  if (op == "GreaterOrEqual") return importOrEqual<GreaterOp>(imp);
  if (op == "And") return importBinary<AndOp>(imp);
  if (op == "Or") return importBinary<OrOp>(imp);
  if (op == "Min") return importVariadic<MinOp>(imp);
  if (op == "Max") return importVariadic<MaxOp>(imp);
  if (op == "Sqrt") return importUnary<SqrtOp>(imp);
  if (op == "Reciprocal") return importUnary<ReciprocalOp>(imp);
  if (op == "Erf") return importUnary<ErfOp>(imp);
  if (op == "Tanh") return importUnary<TanhOp>(imp);
  if (op == "Exp") return importUnary<ExpOp>(imp);
  if (op == "Log") return importUnary<LogOp>(imp);
  if (op == "Neg") return importUnary<NegOp>(imp);
  if (op == "Abs") return importUnary<AbsOp>(imp);
  if (op == "Relu") return importUnary<ReluOp>(imp);
  if (op == "Sigmoid") return importUnary<SigmoidOp>(imp);
  if (op == "Sin") return importUnary<SinOp>(imp);
  if (op == "Cos") return importUnary<CosOp>(imp);
  if (op == "Floor") return importUnary<FloorOp>(imp);
  if (op == "Ceil") return importUnary<CeilOp>(imp);
  if (op == "Not") return importUnary<NotOp>(imp);
  if (op == "IsNaN") return one(imp, make<IsNaNOp>(i1, input(0)));
  if (op == "Flatten") return importFlatten(imp);
  if (op == "Cast") {
    Type to = elementType(attrInt("to", 0));
    if (!to)
      return fail("cast to data type " + std::to_string(attrInt("to", 0)) +
                  " is not supported");
    return one(imp, make<CastOp>(to, input(0)));
  }
  if (op == "Where") {
    Value c = input(0), x = input(1), y = input(2);
    return one(imp, make<WhereOp>(elemOf(x), c, x, y));
  }
  if (op == "Softmax") {
    if (opset < 13)
      return fail("Softmax before opset 13 (2-D coercion semantics) is not "
                  "supported");
    Value x = input(0);
    return one(imp, make<SoftmaxOp>(elemOf(x), x, b.getI64IntegerAttr(attrInt("axis", -1))));
  }
  if (op == "Gelu") {
    const onnx::AttributeProto *a = attr("approximate");
    std::string approx = a ? a->s() : "none";
    if (approx != "none" && approx != "tanh")
      return fail("Gelu approximate='" + approx + "' is not 'none' or 'tanh'");
    Value x = input(0);
    return one(imp, make<GeluOp>(elemOf(x), x, b.getStringAttr(approx)));
  }
  if (op == "LayerNormalization") {
    bool statsUsed = false;
    for (int i = 1; i < n.output_size(); ++i)
      statsUsed |= !n.output(i).empty();
    if (statsUsed)
      return importLayerNormWithStats(imp);
    Value x = input(0);
    return one(imp, make<LayerNormalizationOp>(
                        elemOf(x), x, input(1), input(2),
                        b.getI64IntegerAttr(attrInt("axis", -1)),
                        b.getF32FloatAttr(attrFloat("epsilon", 1e-5f))));
  }
  if (op == "Attention") return importOnnxAttention(imp);
  // ONNX Runtime's SimplifiedLayerNormalization (its own op in the ONNX
  // domain, which its optimizer writes for RMSNorm): RMSNormalization's
  // inputs and attributes; its inv_std_var output is not supported.
  if (op == "RMSNormalization" || op == "SimplifiedLayerNormalization")
    return importOnnxRmsNorm(imp);
  if (op == "RotaryEmbedding") return importOnnxRotaryEmbedding(imp);
  if (op == "ReduceMean") return importReduce<ReduceMeanOp>(imp, 18);
  if (op == "ReduceSum") return importReduce<ReduceSumOp>(imp, 13);
  if (op == "ReduceMax") return importReduce<ReduceMaxOp>(imp, 18);
  if (op == "MatMul") return importBinary<MatMulOp>(imp);
  if (op == "Gemm") return importGemm(imp);
  if (op == "Gather") {
    Value d = input(0);
    return one(imp, make<GatherOp>(elemOf(d), d, input(1),
                                   b.getI64IntegerAttr(attrInt("axis", 0))));
  }
  if (op == "GatherElements") {
    Value d = input(0);
    return one(imp, make<GatherElementsOp>(elemOf(d), d, input(1),
                                           b.getI64IntegerAttr(attrInt("axis", 0))));
  }
  if (op == "GatherND") {
    if (attrInt("batch_dims", 0) != 0)
      return fail("GatherND with batch_dims != 0 is not supported");
    Value d = input(0);
    return one(imp, make<GatherNDOp>(elemOf(d), d, input(1)));
  }
  if (op == "Reshape") {
    Value x = input(0);
    if (!input(1))
      return fail("Reshape-1 (shape attribute) is not supported");
    return one(imp, make<ReshapeOp>(elemOf(x), x, input(1),
                                    b.getBoolAttr(attrInt("allowzero", 0) != 0)));
  }
  if (op == "Transpose") {
    Value x = input(0);
    SmallVector<int64_t> perm;
    if (auto p = attrInts("perm"))
      perm = *p;
    else
      for (int64_t i = rankOf(x) - 1; i >= 0; --i)
        perm.push_back(i);
    return one(imp, make<TransposeOp>(elemOf(x), x, b.getDenseI64ArrayAttr(perm)));
  }
  if (op == "Unsqueeze") return importSqueezeLike(imp, true);
  if (op == "Squeeze") return importSqueezeLike(imp, false);
  if (op == "Concat") {
    SmallVector<Value> ins;
    for (size_t i = 0; i < numInputs(); ++i)
      ins.push_back(input(i));
    if (ins.empty())
      return fail("Concat needs at least one input");
    return one(imp, make<ConcatOp>(elemOf(ins[0]), ins, b.getI64IntegerAttr(attrInt("axis", 0))));
  }
  if (op == "Slice") return importSlice(imp);
  if (op == "Split") return importSplit(imp);
  if (op == "Tile")
    return importTile(imp);
  if (op == "Expand") {
    Value x = input(0);
    return one(imp, make<ExpandOp>(elemOf(x), x, input(1)));
  }
  if (op == "Shape") {
    Value x = input(0);
    return one(imp, make<ShapeOp>(b.getI64Type(), x, b.getI64IntegerAttr(attrInt("start", 0)),
                                  b.getI64IntegerAttr(attrInt("end", INT64_MAX))));
  }
  if (op == "ConstantOfShape") return importConstantOfShape(imp);
  if (op == "Range") {
    Value s = input(0);
    return one(imp, make<RangeOp>(elemOf(s), s, input(1), input(2)));
  }
  if (op == "Trilu") {
    Value x = input(0);
    Value k = input(1) ? input(1) : constI64({0}, /*scalar=*/true);
    return one(imp, make<TriluOp>(elemOf(x), x, k, b.getBoolAttr(attrInt("upper", 1) != 0)));
  }
  if (op == "CumSum") {
    Value x = input(0);
    auto axis = constInts(input(1), "the axis input");
    if (failed(axis)) return failure();
    return one(imp, make<CumSumOp>(elemOf(x), x, b.getI64IntegerAttr((*axis)[0]),
                                   b.getBoolAttr(attrInt("exclusive", 0) != 0),
                                   b.getBoolAttr(attrInt("reverse", 0) != 0)));
  }
  if (op == "Einsum") return importEinsum(imp);
  if (op == "Clip") return importClip(imp);
  return fail("unsupported op (default domain, opset " + std::to_string(opset) + ")");
}

} // namespace transfuse::onnx_frontend
