//===- LoweringUtils.cpp - helpers shared by the linalg lowerings ---------===//
#include "codegen/cpu/LoweringUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinOps.h"

using namespace mlir;

namespace transfuse::cpu {

SmallVector<Value> getDimValues(OpBuilder &b, Location loc, Value t) {
  auto type = cast<RankedTensorType>(t.getType());
  SmallVector<Value> dims;
  for (int64_t i = 0; i < type.getRank(); ++i) {
    if (type.isDynamicDim(i))
      dims.push_back(tensor::DimOp::create(b, loc, t, i));
    else
      dims.push_back(arith::ConstantIndexOp::create(b, loc, type.getDimSize(i)));
  }
  return dims;
}

Value createEmpty(OpBuilder &b, Location loc, RankedTensorType type,
                  ArrayRef<Value> dims) {
  SmallVector<Value> dynamic;
  for (int64_t i = 0; i < type.getRank(); ++i)
    if (type.isDynamicDim(i))
      dynamic.push_back(dims[i]);
  return tensor::EmptyOp::create(b, loc, type, dynamic);
}

Value reshapeTo(OpBuilder &b, Location loc, Value input, RankedTensorType type,
                ArrayRef<Value> dims) {
  if (input.getType() == type && type.hasStaticShape())
    return input;
  SmallVector<Value> dims64;
  for (Value d : dims)
    dims64.push_back(arith::IndexCastOp::create(b, loc, b.getI64Type(), d));
  auto shapeType = RankedTensorType::get({(int64_t)dims.size()}, b.getI64Type());
  Value shape = tensor::FromElementsOp::create(b, loc, shapeType, dims64);
  return tensor::ReshapeOp::create(b, loc, type, input, shape);
}

SmallVector<Value> broadcastDims(OpBuilder &b, Location loc, ValueRange inputs,
                                 RankedTensorType outType) {
  int64_t r = outType.getRank();
  SmallVector<Value> out;
  SmallVector<SmallVector<Value>> inDims;
  for (Value in : inputs)
    inDims.push_back(getDimValues(b, loc, in));
  for (int64_t i = 0; i < r; ++i) {
    if (!outType.isDynamicDim(i)) {
      out.push_back(arith::ConstantIndexOp::create(b, loc, outType.getDimSize(i)));
      continue;
    }
    Value m;
    for (auto [in, dims] : llvm::zip(inputs, inDims)) {
      int64_t ri = cast<RankedTensorType>(in.getType()).getRank();
      int64_t j = i - (r - ri);
      if (j < 0)
        continue;
      m = m ? arith::MaxUIOp::create(b, loc, m, dims[j]) : dims[j];
    }
    out.push_back(m ? m : arith::ConstantIndexOp::create(b, loc, 1));
  }
  return out;
}

Value broadcastTo(OpBuilder &b, Location loc, Value input,
                  RankedTensorType outType, ArrayRef<Value> outDims) {
  auto inType = cast<RankedTensorType>(input.getType());
  RankedTensorType resultType =
      RankedTensorType::get(outType.getShape(), inType.getElementType());
  int64_t r = outType.getRank(), ri = inType.getRank();
  SmallVector<Value> inDims = getDimValues(b, loc, input);
  Value init = createEmpty(b, loc, resultType, outDims);
  AffineMap map = b.getMultiDimIdentityMap(r);
  SmallVector<utils::IteratorType> iters(r, utils::IteratorType::parallel);
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{resultType}, ValueRange{}, ValueRange{init},
      ArrayRef<AffineMap>{map}, iters,
      [&](OpBuilder &nb, Location nl, ValueRange) {
        SmallVector<Value> idx;
        Value zero = arith::ConstantIndexOp::create(nb, nl, 0);
        for (int64_t j = 0; j < ri; ++j) {
          int64_t i = j + (r - ri);
          if (inType.getDimSize(j) == 1) {
            idx.push_back(zero);
            continue;
          }
          Value iv = linalg::IndexOp::create(nb, nl, i);
          if (!inType.isDynamicDim(j)) {
            idx.push_back(iv);
            continue;
          }
          Value one = arith::ConstantIndexOp::create(nb, nl, 1);
          Value isOne = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::eq,
                                              inDims[j], one);
          idx.push_back(arith::SelectOp::create(nb, nl, isOne, zero, iv));
        }
        Value v = tensor::ExtractOp::create(nb, nl, input, idx);
        linalg::YieldOp::create(nb, nl, v);
      });
  return generic.getResult(0);
}

namespace {
enum class DimAccess { Identity, Broadcast, Ambiguous };
}

/// How operand `k` reads output dim `i`: by identity, at index 0, or
/// ambiguously (only the run-time sizes can tell).
static DimAccess classify(ValueRange inputs, size_t k, int64_t i,
                          RankedTensorType outType) {
  int64_t r = outType.getRank();
  auto t = cast<RankedTensorType>(inputs[k].getType());
  int64_t j = i - (r - t.getRank());
  int64_t d = t.getDimSize(j);
  if (d == 1)
    return outType.getDimSize(i) == 1 ? DimAccess::Identity
                                      : DimAccess::Broadcast;
  if (d != ShapedType::kDynamic)
    return DimAccess::Identity; // static d != 1: the output dim is d.
  // Dynamic: safe when no other operand can set the output dim.
  for (size_t o = 0; o < inputs.size(); ++o) {
    if (o == k)
      continue;
    auto to = cast<RankedTensorType>(inputs[o].getType());
    int64_t jo = i - (r - to.getRank());
    if (jo >= 0 && to.getDimSize(jo) != 1)
      return DimAccess::Ambiguous;
  }
  return DimAccess::Identity;
}

static Value emitElementwise(OpBuilder &b, Location loc, ValueRange inputs,
                             RankedTensorType outType, ArrayRef<Value> outDims,
                             bool resolveAmbiguous, ScalarBodyFn body) {
  int64_t r = outType.getRank();
  SmallVector<AffineMap> maps;
  SmallVector<Value> operands;
  for (size_t k = 0; k < inputs.size(); ++k) {
    auto t = cast<RankedTensorType>(inputs[k].getType());
    bool needsMaterialize = false;
    SmallVector<AffineExpr> exprs;
    for (int64_t j = 0; j < t.getRank(); ++j) {
      int64_t i = j + (r - t.getRank());
      switch (classify(inputs, k, i, outType)) {
      case DimAccess::Identity:
        exprs.push_back(b.getAffineDimExpr(i));
        break;
      case DimAccess::Broadcast:
        exprs.push_back(b.getAffineConstantExpr(0));
        break;
      case DimAccess::Ambiguous:
        needsMaterialize |= resolveAmbiguous;
        exprs.push_back(b.getAffineDimExpr(i));
        break;
      }
    }
    if (needsMaterialize) {
      operands.push_back(broadcastTo(b, loc, inputs[k], outType, outDims));
      maps.push_back(b.getMultiDimIdentityMap(r));
    } else {
      operands.push_back(inputs[k]);
      maps.push_back(AffineMap::get(r, 0, exprs, b.getContext()));
    }
  }
  maps.push_back(b.getMultiDimIdentityMap(r));
  Value init = createEmpty(b, loc, outType, outDims);
  SmallVector<utils::IteratorType> iters(r, utils::IteratorType::parallel);
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{outType}, operands, ValueRange{init}, maps, iters,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value v = body(nb, nl, args.drop_back());
        linalg::YieldOp::create(nb, nl, v);
      });
  return generic.getResult(0);
}

Value buildElementwise(OpBuilder &b, Location loc, ValueRange inputs,
                       RankedTensorType outType, ScalarBodyFn body,
                       ElementwiseShapes shapes) {
  SmallVector<Value> outDims = broadcastDims(b, loc, inputs, outType);
  if (shapes == ElementwiseShapes::Same)
    return emitElementwise(b, loc, inputs, outType, outDims, false, body);
  // One pass over the ambiguous dims: all equal to the output takes the fast
  // path; otherwise each differing size must be 1 (checked at run time).
  Value allEqual, compatible;
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  int64_t r = outType.getRank();
  for (size_t k = 0; k < inputs.size(); ++k) {
    auto t = cast<RankedTensorType>(inputs[k].getType());
    for (int64_t j = 0; j < t.getRank(); ++j) {
      int64_t i = j + (r - t.getRank());
      if (classify(inputs, k, i, outType) != DimAccess::Ambiguous)
        continue;
      Value d = tensor::DimOp::create(b, loc, inputs[k], j);
      Value eq = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, d,
                                       outDims[i]);
      Value ok = arith::OrIOp::create(
          b, loc, eq,
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, d, one));
      allEqual = allEqual ? arith::AndIOp::create(b, loc, allEqual, eq) : eq;
      compatible =
          compatible ? arith::AndIOp::create(b, loc, compatible, ok) : ok;
    }
  }
  if (!allEqual)
    return emitElementwise(b, loc, inputs, outType, outDims, false, body);
  emitRuntimeCheck(b, loc, compatible,
                   "operand shapes cannot be broadcast together");
  if (shapes == ElementwiseShapes::Differ)
    return emitElementwise(b, loc, inputs, outType, outDims, true, body);
  auto ifOp = scf::IfOp::create(
      b, loc, allEqual,
      [&](OpBuilder &tb, Location tl) {
        scf::YieldOp::create(
            tb, tl,
            emitElementwise(tb, tl, inputs, outType, outDims, false, body));
      },
      [&](OpBuilder &eb, Location el) {
        scf::YieldOp::create(
            eb, el,
            emitElementwise(eb, el, inputs, outType, outDims, true, body));
      });
  return ifOp.getResult(0);
}

Value scalarConstant(OpBuilder &b, Location loc, Type type, double value) {
  if (auto ft = dyn_cast<FloatType>(type))
    return arith::ConstantOp::create(b, loc, b.getFloatAttr(ft, value));
  return arith::ConstantOp::create(b, loc, b.getIntegerAttr(type, (int64_t)value));
}

Value indexToScalar(OpBuilder &b, Location loc, Value index, Type type) {
  Value i64 = arith::IndexCastOp::create(b, loc, b.getI64Type(), index);
  if (isa<FloatType>(type))
    return arith::SIToFPOp::create(b, loc, type, i64);
  if (type.getIntOrFloatBitWidth() < 64)
    return arith::TruncIOp::create(b, loc, type, i64);
  return i64;
}

func::FuncOp declareRuntimeFunction(OpBuilder &b, ModuleOp module,
                                    StringRef name, TypeRange args) {
  if (auto f = module.lookupSymbol<func::FuncOp>(name))
    return f;
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(module.getBody());
  auto f = func::FuncOp::create(b, module.getLoc(), name,
                                b.getFunctionType(args, {}));
  f.setPrivate();
  f->setAttr("llvm.emit_c_interface", b.getUnitAttr());
  return f;
}

void emitRuntimeCheck(OpBuilder &b, Location loc, Value ok, StringRef what) {
  auto module = b.getInsertionBlock()->getParentOp()->getParentOfType<ModuleOp>();
  std::string label = "an op";
  if (auto fused = dyn_cast<FusedLoc>(loc)) {
    // A fused op: name the first ONNX node it replaced.
    for (Location l : fused.getLocations())
      if (auto name = dyn_cast<NameLoc>(l)) {
        loc = name;
        break;
      }
  }
  if (auto name = dyn_cast<NameLoc>(loc))
    label = "node '" + name.getName().str() + "'";
  SmallVector<Attribute> sites;
  if (auto existing = module->getAttrOfType<ArrayAttr>(kFailSitesAttr))
    sites.assign(existing.begin(), existing.end());
  int64_t site = sites.size();
  sites.push_back(b.getStringAttr(label + ": " + what));
  module->setAttr(kFailSitesAttr, b.getArrayAttr(sites));
  Value bad = arith::XOrIOp::create(
      b, loc, ok, arith::ConstantIntOp::create(b, loc, 1, 1));
  scf::IfOp::create(b, loc, bad, [&](OpBuilder &tb, Location tl) {
    Value id = arith::ConstantIntOp::create(tb, tl, tb.getI64Type(), site);
    func::CallOp::create(tb, tl, kFailFunc, TypeRange{}, ValueRange{id});
    scf::YieldOp::create(tb, tl);
  });
}

Value extractIndex(OpBuilder &b, Location loc, Value tensor, int64_t i) {
  auto type = cast<RankedTensorType>(tensor.getType());
  SmallVector<Value> idx;
  if (type.getRank() == 1)
    idx.push_back(arith::ConstantIndexOp::create(b, loc, i));
  return toIndex(b, loc, tensor::ExtractOp::create(b, loc, tensor, idx));
}

Value toIndex(OpBuilder &b, Location loc, Value v) {
  if (v.getType().getIntOrFloatBitWidth() < 64)
    v = arith::ExtSIOp::create(b, loc, b.getI64Type(), v);
  return arith::IndexCastOp::create(b, loc, b.getIndexType(), v);
}

} // namespace transfuse::cpu
