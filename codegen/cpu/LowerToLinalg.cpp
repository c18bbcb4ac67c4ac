//===- LowerToLinalg.cpp - transformer graph ops to linalg on tensors -----===//
//
// Data movement, reductions, contractions and shape ops. Elementwise ops are
// in LowerElementwise.cpp. Every pattern reads shape operands at run time
// with ONNX's rules; the types only decide what can be done statically.
//
//===----------------------------------------------------------------------===//
#include "codegen/cpu/LoweringUtils.h"
#include "codegen/cpu/Passes.h"
#include "dialects/transformer/ShapeInference.h"
#include "dialects/transformer/TransformerDialect.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace transfuse::cpu {
#define GEN_PASS_DEF_LOWERTOLINALG
#include "codegen/cpu/Passes.h.inc"
} // namespace transfuse::cpu

using namespace mlir;
using namespace transfuse;
using namespace transfuse::cpu;
using namespace transfuse::transformer;

namespace transfuse::cpu {

/// `reduce`, where `splitRows` lets a float reduction over a static last
/// dim first go through partial results (see below).
static Value reduceImpl(OpBuilder &b, Location loc, Value input,
                        ArrayRef<int64_t> axes, ReduceKind kind,
                        bool splitRows) {
  auto t = tensorType(input);
  Type elem = t.getElementType();
  int64_t r = t.getRank();
  SmallVector<Value> dims = getDimValues(b, loc, input);
  // A float reduction over the last dim alone, of a static size n (the rows
  // of LayerNorm, RMSNorm and softmax): first into `lanes` partial results
  // per row, [..., n] viewed as [..., n / lanes, lanes] -> [..., lanes],
  // then over those; lanes is the largest of 128, 64, 32, 16 that divides n
  // at least twice. Reducing [..., n] directly is one serial chain of
  // scalar operations through memory per row (the accumulator is a buffer
  // element LLVM does not keep in a register): about 7 cycles per element.
  // The first loop nest here has `lanes` independent elements innermost,
  // which LLVM vectorizes when the loop is long enough not to be unrolled
  // whole first (64 lanes and more; with 16 it unrolls and, unable to tell
  // the accumulator from the input inside an outlined loop body, leaves
  // scalar but independent chains).
  int64_t lanes = 0;
  if (splitRows && isa<FloatType>(elem) && axes.size() == 1 &&
      axes[0] == r - 1 && !t.isDynamicDim(r - 1))
    for (int64_t l : {128, 64, 32, 16})
      if (t.getDimSize(r - 1) % l == 0 && t.getDimSize(r - 1) >= 2 * l) {
        lanes = l;
        break;
      }
  if (lanes) {
    SmallVector<int64_t> shape(t.getShape());
    shape.back() /= lanes;
    shape.push_back(lanes);
    SmallVector<OpFoldResult> sizes;
    SmallVector<ReassociationIndices> groups;
    for (int64_t i = 0; i + 1 < r; ++i) {
      sizes.push_back(getAsOpFoldResult(dims[i]));
      groups.push_back({i});
    }
    sizes.push_back(b.getIndexAttr(shape[r - 1]));
    sizes.push_back(b.getIndexAttr(lanes));
    groups.push_back({r - 1, r});
    Value split = tensor::ExpandShapeOp::create(
        b, loc, RankedTensorType::get(shape, elem), input, groups, sizes);
    Value partial = reduceImpl(b, loc, split, {r - 1}, kind, false);
    return reduceImpl(b, loc, partial, {r - 1}, kind, false);
  }
  SmallVector<int64_t> outShape;
  SmallVector<Value> outDims;
  SmallVector<AffineExpr> outExprs;
  SmallVector<utils::IteratorType> iters;
  for (int64_t i = 0; i < r; ++i) {
    bool red = llvm::is_contained(axes, i);
    iters.push_back(red ? utils::IteratorType::reduction
                        : utils::IteratorType::parallel);
    if (red)
      continue;
    outShape.push_back(t.getDimSize(i));
    outDims.push_back(dims[i]);
    outExprs.push_back(b.getAffineDimExpr(i));
  }
  auto outType = RankedTensorType::get(outShape, elem);
  Value initVal;
  if (kind == ReduceKind::Sum)
    initVal = scalarConstant(b, loc, elem, 0);
  else if (auto ft = dyn_cast<FloatType>(elem))
    initVal = arith::ConstantOp::create(
        b, loc, b.getFloatAttr(ft, APFloat::getInf(ft.getFloatSemantics(), true)));
  else
    initVal = arith::ConstantOp::create(
        b, loc, b.getIntegerAttr(elem, APInt::getSignedMinValue(
                                           elem.getIntOrFloatBitWidth())));
  Value init = createEmpty(b, loc, outType, outDims);
  init = linalg::FillOp::create(b, loc, initVal, init).getResult(0);
  SmallVector<AffineMap> maps{b.getMultiDimIdentityMap(r),
                              AffineMap::get(r, 0, outExprs, b.getContext())};
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{outType}, ValueRange{input}, ValueRange{init}, maps,
      iters, [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value v;
        bool isF = isa<FloatType>(elem);
        if (kind == ReduceKind::Sum)
          v = isF ? (Value)arith::AddFOp::create(nb, nl, args[0], args[1])
                  : (Value)arith::AddIOp::create(nb, nl, args[0], args[1]);
        else
          v = isF ? (Value)arith::MaximumFOp::create(nb, nl, args[0], args[1])
                  : (Value)arith::MaxSIOp::create(nb, nl, args[0], args[1]);
        linalg::YieldOp::create(nb, nl, v);
      });
  return generic.getResult(0);
}

/// Reduces `input` over `axes` (sorted, normalized), dropping them.
Value reduce(OpBuilder &b, Location loc, Value input, ArrayRef<int64_t> axes,
             ReduceKind kind) {
  return reduceImpl(b, loc, input, axes, kind, /*splitRows=*/true);
}

/// Reduces and keeps the reduced dims as 1s.
Value reduceKeepDims(OpBuilder &b, Location loc, Value input,
                     ArrayRef<int64_t> axes, ReduceKind kind) {
  auto t = tensorType(input);
  SmallVector<Value> dims = getDimValues(b, loc, input);
  Value red = reduce(b, loc, input, axes, kind);
  SmallVector<int64_t> shape(t.getShape());
  for (int64_t a : axes) {
    shape[a] = 1;
    dims[a] = cIdx(b, loc, 1);
  }
  return reshapeTo(b, loc, red, RankedTensorType::get(shape, t.getElementType()),
                   dims);
}

/// The number of elements in the `axes` dims of `input`, as a scalar of `type`.
Value countOf(OpBuilder &b, Location loc, Value input, ArrayRef<int64_t> axes,
              Type type) {
  SmallVector<Value> dims = getDimValues(b, loc, input);
  Value n = cIdx(b, loc, 1);
  for (int64_t a : axes)
    n = arith::MulIOp::create(b, loc, n, dims[a]);
  return indexToScalar(b, loc, n, type);
}

Value buildLayerNorm(OpBuilder &b, Location loc, Value x, Value scale,
                     Value bias, int64_t axisAttr, double epsilon) {
  auto t = tensorType(x);
  Type elem = t.getElementType();
  int64_t axis = normalizeAxis(axisAttr, t.getRank());
  SmallVector<int64_t> axes;
  for (int64_t i = axis; i < t.getRank(); ++i)
    axes.push_back(i);
  Value n = countOf(b, loc, x, axes, elem);
  Value eps = scalarConstant(b, loc, elem, epsilon);
  Value sum = reduceKeepDims(b, loc, x, axes, ReduceKind::Sum);
  Value centered = buildElementwise(
      b, loc, ValueRange{x, sum}, t,
      [&](OpBuilder &nb, Location l, ValueRange a) -> Value {
        return arith::SubFOp::create(nb, l, a[0],
                                     arith::DivFOp::create(nb, l, a[1], n));
      });
  Value sq = buildElementwise(b, loc, ValueRange{centered}, t,
                              [](OpBuilder &nb, Location l, ValueRange a) -> Value {
                                return arith::MulFOp::create(nb, l, a[0], a[0]);
                              });
  Value var = reduceKeepDims(b, loc, sq, axes, ReduceKind::Sum);
  SmallVector<Value> ins{centered, var, scale};
  if (bias)
    ins.push_back(bias);
  Value out = buildElementwise(
      b, loc, ins, t, [&](OpBuilder &nb, Location l, ValueRange a) -> Value {
        Value v = arith::AddFOp::create(nb, l, arith::DivFOp::create(nb, l, a[1], n), eps);
        Value y = arith::DivFOp::create(nb, l, a[0], math::SqrtOp::create(nb, l, v));
        y = arith::MulFOp::create(nb, l, y, a[2]);
        if (a.size() > 3)
          y = arith::AddFOp::create(nb, l, y, a[3]);
        return y;
      });
  return out;
}

/// numpy.matmul of `lhs` and `rhs` as a linalg.generic, with batch
/// broadcasting and run-time checks of K and the batch dims.
/// x [..., K] times w [K, N] as one 2-D linalg.matmul on x viewed as
/// [M, K] (M the product of the leading dims): the form the GEMM
/// microkernel takes (transfuse-cpu-matmul-to-microkernel).
static Value buildRowsTimesMatrix(OpBuilder &b, Location loc, Value x, Value w,
                           RankedTensorType productType) {
  auto xt = tensorType(x);
  Type elem = productType.getElementType();
  int64_t rank = xt.getRank();
  SmallVector<Value> xDims = getDimValues(b, loc, x);
  SmallVector<Value> wDims = getDimValues(b, loc, w);
  if (xt.isDynamicDim(rank - 1) || tensorType(w).isDynamicDim(0))
    emitRuntimeCheck(b, loc,
                     arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                           xDims.back(), wDims[0]),
                     "linear: the input's last dim differs from the weight's "
                     "rows");
  // [M, K]: the leading dims folded into M.
  Value m = cIdx(b, loc, 1);
  int64_t mStatic = 1;
  for (int64_t i = 0; i + 1 < rank; ++i) {
    m = arith::MulIOp::create(b, loc, m, xDims[i]);
    mStatic = xt.isDynamicDim(i) || mStatic == ShapedType::kDynamic
                  ? ShapedType::kDynamic
                  : mStatic * xt.getDimSize(i);
  }
  int64_t n = productType.getShape().back();
  auto x2Type = RankedTensorType::get({mStatic, xt.getShape().back()}, elem);
  Value x2 = rank == 2 ? x : reshapeTo(b, loc, x, x2Type, {m, xDims.back()});
  auto y2Type = RankedTensorType::get({mStatic, n}, elem);
  SmallVector<Value> y2Dims{m, wDims[1]};
  Value init = createEmpty(b, loc, y2Type, y2Dims);
  Value zero = scalarConstant(b, loc, elem, 0.0);
  init = linalg::FillOp::create(b, loc, zero, init).getResult(0);
  if (x2.getType() != x2Type)
    x2 = tensor::CastOp::create(b, loc, x2Type, x2);
  Value y2 = linalg::MatmulOp::create(b, loc, TypeRange{y2Type},
                                      ValueRange{x2, w}, ValueRange{init})
                 .getResult(0);
  SmallVector<Value> outDims(xDims.begin(), xDims.end() - 1);
  outDims.push_back(wDims[1]);
  if (rank == 2)
    return y2.getType() == productType
               ? y2
               : tensor::CastOp::create(b, loc, productType, y2).getResult();
  return reshapeTo(b, loc, y2, productType, outDims);
}

Value buildMatMul(OpBuilder &b, Location loc, Value lhs, Value rhs,
                  RankedTensorType resultType) {
  Value a = lhs, bv = rhs;
  auto ta = tensorType(a), tb = tensorType(bv);
  Type elem = ta.getElementType();
  if (!elem.isIntOrFloat())
    return nullptr;
  if (elem.isF32() && ta.getRank() >= 2 && tb.getRank() == 2)
    return buildRowsTimesMatrix(b, loc, a, bv, resultType);
  // Promote 1-D operands to matrices, as numpy does.
  auto promote = [&](Value v, bool front) {
    auto t = tensorType(v);
    SmallVector<int64_t> shape(t.getShape());
    SmallVector<Value> dims = getDimValues(b, loc, v);
    shape.insert(front ? shape.begin() : shape.end(), 1);
    dims.insert(front ? dims.begin() : dims.end(), cIdx(b, loc, 1));
    return reshapeTo(b, loc, v, RankedTensorType::get(shape, elem), dims);
  };
  if (ta.getRank() == 1)
    a = promote(a, true);
  if (tb.getRank() == 1)
    bv = promote(bv, false);
  ta = tensorType(a);
  tb = tensorType(bv);
  int64_t ra = ta.getRank(), rb = tb.getRank();
  int64_t nb = std::max(ra, rb) - 2;
  // Broadcast batch dims: shape rules from the elementwise helper, on the
  // batch prefix only. Ambiguous dynamic batch dims are materialized.
  SmallVector<int64_t> batchShape;
  {
    SmallVector<int64_t> sa(ta.getShape().drop_back(2)), sb(tb.getShape().drop_back(2));
    for (int64_t i = 0; i < nb; ++i) {
      int64_t x = i < nb - (int64_t)sa.size() ? 1 : sa[i - (nb - sa.size())];
      int64_t y = i < nb - (int64_t)sb.size() ? 1 : sb[i - (nb - sb.size())];
      batchShape.push_back(x == 1 ? y : (y == 1 ? x : (x == ShapedType::kDynamic ? y : x)));
    }
  }
  SmallVector<Value> batchDims;
  {
    SmallVector<Value> da = getDimValues(b, loc, a), db = getDimValues(b, loc, bv);
    for (int64_t i = 0; i < nb; ++i) {
      int64_t ia = i - (nb - (ra - 2)), ib = i - (nb - (rb - 2));
      Value x = ia >= 0 ? da[ia] : cIdx(b, loc, 1);
      Value y = ib >= 0 ? db[ib] : cIdx(b, loc, 1);
      batchDims.push_back(arith::MaxUIOp::create(b, loc, x, y));
    }
  }
  auto prepare = [&](Value v, int64_t rv, SmallVector<AffineExpr> &exprs,
                     AffineExpr row, AffineExpr col) -> Value {
    auto t = tensorType(v);
    bool ambiguous = false;
    for (int64_t j = 0; j < rv - 2; ++j) {
      int64_t i = j + (nb - (rv - 2));
      int64_t d = t.getDimSize(j);
      if (d == 1 && batchShape[i] != 1)
        exprs.push_back(b.getAffineConstantExpr(0));
      else {
        exprs.push_back(b.getAffineDimExpr(i));
        ambiguous |= d == ShapedType::kDynamic;
      }
    }
    exprs.push_back(row);
    exprs.push_back(col);
    if (!ambiguous)
      return v;
    // Materialize the full batch so a run-time 1 is read correctly.
    exprs.clear();
    for (int64_t i = 0; i < nb; ++i)
      exprs.push_back(b.getAffineDimExpr(i));
    exprs.push_back(row);
    exprs.push_back(col);
    SmallVector<int64_t> shape(batchShape);
    shape.append(t.getShape().end() - 2, t.getShape().end());
    SmallVector<Value> dims(batchDims);
    SmallVector<Value> own = getDimValues(b, loc, v);
    dims.append(own.end() - 2, own.end());
    return broadcastTo(b, loc, v, RankedTensorType::get(shape, elem), dims);
  };
  {
    Value ka = tensor::DimOp::create(b, loc, a, ra - 1);
    Value kb = tensor::DimOp::create(b, loc, bv, rb - 2);
    Value ok = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, ka, kb);
    SmallVector<Value> da = getDimValues(b, loc, a), db = getDimValues(b, loc, bv);
    Value one = cIdx(b, loc, 1);
    for (int64_t i = 0; i < nb; ++i) {
      int64_t ia = i - (nb - (ra - 2)), ib = i - (nb - (rb - 2));
      if (ia < 0 || ib < 0)
        continue;
      auto eq = [&](Value x, Value y) {
        return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, x, y);
      };
      Value bok = arith::OrIOp::create(
          b, loc, eq(da[ia], db[ib]),
          arith::OrIOp::create(b, loc, eq(da[ia], one), eq(db[ib], one)));
      ok = arith::AndIOp::create(b, loc, ok, bok);
    }
    emitRuntimeCheck(b, loc, ok,
                     "matmul operands have mismatched contraction or batch dims");
  }
  // Iteration space: batch..., m, k, n. With n innermost, the loops that
  // convert-linalg-to-loops emits walk B and the output contiguously, which
  // LLVM's loop vectorizer turns into vector FMAs (k innermost would be a
  // strided scalar reduction).
  AffineExpr m = b.getAffineDimExpr(nb), k = b.getAffineDimExpr(nb + 1),
             n = b.getAffineDimExpr(nb + 2);
  SmallVector<AffineExpr> ea, eb, eo;
  a = prepare(a, ra, ea, m, k);
  bv = prepare(bv, rb, eb, k, n);
  for (int64_t i = 0; i < nb; ++i)
    eo.push_back(b.getAffineDimExpr(i));
  eo.push_back(m);
  eo.push_back(n);
  SmallVector<int64_t> outShape(batchShape);
  outShape.push_back(ta.getDimSize(ra - 2));
  outShape.push_back(tb.getDimSize(rb - 1));
  SmallVector<Value> outDims(batchDims);
  outDims.push_back(tensor::DimOp::create(b, loc, a, tensorType(a).getRank() - 2));
  outDims.push_back(tensor::DimOp::create(b, loc, bv, tensorType(bv).getRank() - 1));
  auto outType = RankedTensorType::get(outShape, elem);
  Value init = createEmpty(b, loc, outType, outDims);
  init = linalg::FillOp::create(b, loc, scalarConstant(b, loc, elem, 0), init)
             .getResult(0);
  unsigned nd = nb + 3;
  SmallVector<AffineMap> maps{AffineMap::get(nd, 0, ea, b.getContext()),
                              AffineMap::get(nd, 0, eb, b.getContext()),
                              AffineMap::get(nd, 0, eo, b.getContext())};
  SmallVector<utils::IteratorType> iters(nb + 3, utils::IteratorType::parallel);
  iters[nb + 1] = utils::IteratorType::reduction;
  bool isF = isa<FloatType>(elem);
  Value out =
      linalg::GenericOp::create(
          b, loc, TypeRange{outType}, ValueRange{a, bv}, ValueRange{init},
          maps, iters,
          [&](OpBuilder &gb, Location l, ValueRange args) {
            Value p = isF ? (Value)arith::MulFOp::create(gb, l, args[0], args[1])
                          : (Value)arith::MulIOp::create(gb, l, args[0], args[1]);
            Value s = isF ? (Value)arith::AddFOp::create(gb, l, args[2], p)
                          : (Value)arith::AddIOp::create(gb, l, args[2], p);
            linalg::YieldOp::create(gb, l, s);
          })
          .getResult(0);
  // Drop the promoted unit dims.
  if (resultType.getRank() != outType.getRank()) {
    SmallVector<Value> dims = getDimValues(b, loc, out);
    if (tb.getRank() == 2 && tensorType(rhs).getRank() == 1)
      dims.pop_back();
    if (tensorType(lhs).getRank() == 1)
      dims.erase(dims.end() - (dims.size() == (size_t)outType.getRank() ? 2 : 1));
    out = reshapeTo(b, loc, out, resultType, dims);
  } else if (out.getType() != resultType) {
    out = tensor::CastOp::create(b, loc, resultType, out);
  }
  return out;
}

} // namespace transfuse::cpu

namespace {

SmallVector<int64_t> normalizedAxes(ArrayRef<int64_t> axes, int64_t rank) {
  SmallVector<int64_t> out;
  for (int64_t a : axes)
    out.push_back(normalizeAxis(a, rank));
  if (out.empty())
    for (int64_t i = 0; i < rank; ++i)
      out.push_back(i);
  llvm::sort(out);
  return out;
}

template <typename OpTy>
struct LowerReduce : OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  LogicalResult matchAndRewrite(OpTy op, PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    auto t = tensorType(op.getInput());
    SmallVector<int64_t> axes = normalizedAxes(op.getAxes(), t.getRank());
    bool isMax = std::is_same_v<OpTy, ReduceMaxOp>;
    Value v = op.getKeepdims()
                  ? reduceKeepDims(rw, loc, op.getInput(), axes,
                                   isMax ? ReduceKind::Max : ReduceKind::Sum)
                  : reduce(rw, loc, op.getInput(), axes,
                           isMax ? ReduceKind::Max : ReduceKind::Sum);
    if (std::is_same_v<OpTy, ReduceMeanOp>) {
      Value n = countOf(rw, loc, op.getInput(), axes, t.getElementType());
      bool isF = isa<FloatType>(t.getElementType());
      v = buildElementwise(rw, loc, ValueRange{v}, tensorType(v),
                           [&](OpBuilder &b, Location l, ValueRange a) -> Value {
                             if (isF)
                               return arith::DivFOp::create(b, l, a[0], n);
                             return arith::DivSIOp::create(b, l, a[0], n);
                           });
    }
    v = reshapeTo(rw, loc, v, cast<RankedTensorType>(op.getType()),
                  getDimValues(rw, loc, v));
    rw.replaceOp(op, v);
    return success();
  }
};

struct LowerSoftmax : OpRewritePattern<SoftmaxOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(SoftmaxOp op, PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    Value x = op.getInput();
    auto t = tensorType(x);
    if (!isa<FloatType>(t.getElementType()))
      return rw.notifyMatchFailure(op, "softmax needs a float input");
    int64_t axis = normalizeAxis(op.getAxis(), t.getRank());
    Value mx = reduceKeepDims(rw, loc, x, {axis}, ReduceKind::Max);
    Value e = buildElementwise(rw, loc, ValueRange{x, mx}, t,
                               [](OpBuilder &b, Location l, ValueRange a) -> Value {
                                 Value d = arith::SubFOp::create(b, l, a[0], a[1]);
                                 return math::ExpOp::create(b, l, d);
                               });
    Value s = reduceKeepDims(rw, loc, e, {axis}, ReduceKind::Sum);
    Value out = buildElementwise(rw, loc, ValueRange{e, s}, t,
                                 [](OpBuilder &b, Location l, ValueRange a) -> Value {
                                   return arith::DivFOp::create(b, l, a[0], a[1]);
                                 });
    rw.replaceOp(op, out);
    return success();
  }
};

struct LowerLayerNorm : OpRewritePattern<LayerNormalizationOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LayerNormalizationOp op,
                                PatternRewriter &rw) const override {
    rw.replaceOp(op, buildLayerNorm(rw, op.getLoc(), op.getInput(), op.getScale(),
                                    op.getBias(), op.getAxis(),
                                    op.getEpsilon().convertToDouble()));
    return success();
  }
};

struct LowerMatMul : OpRewritePattern<MatMulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MatMulOp op, PatternRewriter &rw) const override {
    Value out = buildMatMul(rw, op.getLoc(), op.getLhs(), op.getRhs(),
                            cast<RankedTensorType>(op.getType()));
    if (!out)
      return rw.notifyMatchFailure(op, "matmul of a non-numeric type");
    rw.replaceOp(op, out);
    return success();
  }
};

Value clampIndex(OpBuilder &b, Location loc, Value idx, Value dim) {
  Value zero = cIdx(b, loc, 0), one = cIdx(b, loc, 1);
  Value neg = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, idx, zero);
  idx = arith::SelectOp::create(b, loc, neg, arith::AddIOp::create(b, loc, idx, dim), idx);
  idx = arith::MaxSIOp::create(b, loc, idx, zero);
  return arith::MinSIOp::create(b, loc, idx, arith::SubIOp::create(b, loc, dim, one));
}

struct LowerGather : OpRewritePattern<GatherOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(GatherOp op, PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    Value data = op.getData(), indices = op.getIndices();
    auto td = tensorType(data), ti = tensorType(indices);
    auto outType = cast<RankedTensorType>(op.getType());
    int64_t axis = normalizeAxis(op.getAxis(), td.getRank());
    int64_t ri = ti.getRank(), r = outType.getRank();
    SmallVector<Value> dd = getDimValues(rw, loc, data), di = getDimValues(rw, loc, indices);
    SmallVector<Value> outDims(dd.begin(), dd.begin() + axis);
    outDims.append(di.begin(), di.end());
    outDims.append(dd.begin() + axis + 1, dd.end());
    Value init = createEmpty(rw, loc, outType, outDims);
    SmallVector<AffineExpr> ie;
    for (int64_t j = 0; j < ri; ++j)
      ie.push_back(rw.getAffineDimExpr(axis + j));
    SmallVector<AffineMap> maps{AffineMap::get(r, 0, ie, rw.getContext()),
                                rw.getMultiDimIdentityMap(r)};
    Value axisDim = dd[axis];
    SmallVector<utils::IteratorType> iters(r, utils::IteratorType::parallel);
    Value out =
        linalg::GenericOp::create(
            rw, loc, TypeRange{outType}, ValueRange{indices}, ValueRange{init},
            maps, iters,
            [&](OpBuilder &b, Location l, ValueRange args) {
              Value idx = clampIndex(b, l, toIndex(b, l, args[0]), axisDim);
              SmallVector<Value> at;
              for (int64_t i = 0; i < axis; ++i)
                at.push_back(linalg::IndexOp::create(b, l, i));
              at.push_back(idx);
              for (int64_t i = axis + ri; i < r; ++i)
                at.push_back(linalg::IndexOp::create(b, l, i));
              linalg::YieldOp::create(b, l, tensor::ExtractOp::create(b, l, data, at).getResult());
            })
            .getResult(0);
    rw.replaceOp(op, out);
    return success();
  }
};

struct LowerGatherElements : OpRewritePattern<GatherElementsOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(GatherElementsOp op, PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    Value data = op.getData(), indices = op.getIndices();
    auto outType = cast<RankedTensorType>(op.getType());
    int64_t r = outType.getRank();
    int64_t axis = normalizeAxis(op.getAxis(), r);
    SmallVector<Value> dd = getDimValues(rw, loc, data);
    // Non-axis dims of indices must not exceed data's.
    SmallVector<Value> di = getDimValues(rw, loc, indices);
    Value ok = arith::ConstantIntOp::create(rw, loc, 1, 1);
    for (int64_t i = 0; i < r; ++i)
      if (i != axis)
        ok = arith::AndIOp::create(
            rw, loc, ok,
            arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::sle, di[i], dd[i]));
    emitRuntimeCheck(rw, loc, ok, "indices are larger than data outside the axis");
    Value init = createEmpty(rw, loc, outType, di);
    SmallVector<AffineMap> maps(2, rw.getMultiDimIdentityMap(r));
    SmallVector<utils::IteratorType> iters(r, utils::IteratorType::parallel);
    Value axisDim = dd[axis];
    Value out = linalg::GenericOp::create(
        rw, loc, TypeRange{outType}, ValueRange{indices}, ValueRange{init}, maps, iters,
        [&](OpBuilder &b, Location l, ValueRange args) {
          Value idx = toIndex(b, l, args[0]);
          SmallVector<Value> at;
          for (int64_t i = 0; i < r; ++i)
            at.push_back(i == axis ? clampIndex(b, l, idx, axisDim)
                                   : (Value)linalg::IndexOp::create(b, l, i));
          linalg::YieldOp::create(b, l, tensor::ExtractOp::create(b, l, data, at).getResult());
        }).getResult(0);
    rw.replaceOp(op, out);
    return success();
  }
};

struct LowerGatherND : OpRewritePattern<GatherNDOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(GatherNDOp op, PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    Value data = op.getData(), indices = op.getIndices();
    auto ti = tensorType(indices);
    auto outType = cast<RankedTensorType>(op.getType());
    int64_t r = outType.getRank(), q = ti.getRank() - 1;
    int64_t k = ti.getDimSize(q);
    SmallVector<Value> dd = getDimValues(rw, loc, data), di = getDimValues(rw, loc, indices);
    SmallVector<Value> outDims(di.begin(), di.begin() + q);
    outDims.append(dd.begin() + k, dd.end());
    Value init = createEmpty(rw, loc, outType, outDims);
    SmallVector<utils::IteratorType> iters(r, utils::IteratorType::parallel);
    Value out = linalg::GenericOp::create(
        rw, loc, TypeRange{outType}, ValueRange{}, ValueRange{init},
        ArrayRef<AffineMap>{rw.getMultiDimIdentityMap(r)}, iters,
        [&](OpBuilder &b, Location l, ValueRange) {
          SmallVector<Value> prefix, at;
          for (int64_t i = 0; i < q; ++i)
            prefix.push_back(linalg::IndexOp::create(b, l, i));
          for (int64_t j = 0; j < k; ++j) {
            SmallVector<Value> pos(prefix);
            pos.push_back(arith::ConstantIndexOp::create(b, l, j));
            Value idx = toIndex(b, l, tensor::ExtractOp::create(b, l, indices, pos));
            at.push_back(clampIndex(b, l, idx, dd[j]));
          }
          for (int64_t i = q; i < r; ++i)
            at.push_back(linalg::IndexOp::create(b, l, i));
          linalg::YieldOp::create(b, l, tensor::ExtractOp::create(b, l, data, at).getResult());
        }).getResult(0);
    rw.replaceOp(op, out);
    return success();
  }
};

struct LowerTranspose : OpRewritePattern<TransposeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(TransposeOp op, PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    auto outType = cast<RankedTensorType>(op.getType());
    SmallVector<Value> in = getDimValues(rw, loc, op.getInput()), dims;
    for (int64_t p : op.getPerm())
      dims.push_back(in[p]);
    Value init = createEmpty(rw, loc, outType, dims);
    auto t = linalg::TransposeOp::create(rw, loc, op.getInput(), init, op.getPerm());
    rw.replaceOp(op, t.getResult());
    return success();
  }
};

/// Set by LowerToLinalgPass on a reshape that splits its input's last dim
/// E into [E / D, D] and keeps the leading dims (classifyReshape): D.
constexpr llvm::StringLiteral kSplitLastDim = "transfuse.split_last_dim";

/// Resolves an ONNX Reshape target at run time (0 copies, -1 infers). One
/// marked kSplitLastDim is a tensor.expand_shape instead: a view of any
/// input after bufferization, where tensor.reshape needs an identity layout
/// and copies a strided input (the heads of a slice of a merged QKV
/// projection) first.
struct LowerReshape : OpRewritePattern<ReshapeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ReshapeOp op, PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    auto outType = cast<RankedTensorType>(op.getType());
    auto inType = tensorType(op.getInput());
    SmallVector<Value> inDims = getDimValues(rw, loc, op.getInput());
    if (auto split = op->getAttrOfType<IntegerAttr>(kSplitLastDim)) {
      int64_t n = inType.getRank(), d = split.getInt(),
              e = inType.getDimSize(n - 1);
      SmallVector<int64_t> shape(inType.getShape().drop_back());
      shape.append({e / d, d});
      SmallVector<ReassociationIndices> groups;
      SmallVector<OpFoldResult> sizes;
      for (int64_t k = 0; k + 1 < n; ++k) {
        groups.push_back({k});
        sizes.push_back(inType.isDynamicDim(k)
                            ? OpFoldResult(inDims[k])
                            : OpFoldResult(rw.getIndexAttr(shape[k])));
      }
      groups.push_back({n - 1, n});
      sizes.append({rw.getIndexAttr(e / d), rw.getIndexAttr(d)});
      Value v = tensor::ExpandShapeOp::create(
          rw, loc, RankedTensorType::get(shape, inType.getElementType()),
          op.getInput(), groups, sizes);
      if (v.getType() != outType)
        v = tensor::CastOp::create(rw, loc, outType, v);
      rw.replaceOp(op, v);
      return success();
    }
    Value total = cIdx(rw, loc, 1);
    for (Value d : inDims)
      total = arith::MulIOp::create(rw, loc, total, d);
    int64_t r = outType.getRank();
    SmallVector<Value> dims;
    Value zero = cIdx(rw, loc, 0), minus1 = cIdx(rw, loc, -1), one = cIdx(rw, loc, 1);
    for (int64_t i = 0; i < r; ++i) {
      if (!outType.isDynamicDim(i)) {
        dims.push_back(cIdx(rw, loc, outType.getDimSize(i)));
        continue;
      }
      Value v = extractIndex(rw, loc, op.getShape(), i);
      if (!op.getAllowzero() && i < inType.getRank()) {
        Value isZero = arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::eq, v, zero);
        v = arith::SelectOp::create(rw, loc, isZero, inDims[i], v);
      }
      dims.push_back(v);
    }
    // Infer a -1 from the product of the others; where that is 0 (another
    // dim is 0), the -1 could be anything, and the check below fails, as
    // ONNX Runtime does (a zero-length sequence through BERT's heads
    // reshape [1, 0, 88] -> [1, 0, -1, 22] made -1 a 0, and the error came
    // from a product further on).
    Value known = one, anyMinus1 = arith::ConstantIntOp::create(rw, loc, 0, 1);
    for (Value d : dims) {
      Value isM = arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::eq, d, minus1);
      anyMinus1 = arith::OrIOp::create(rw, loc, anyMinus1, isM);
      known = arith::MulIOp::create(rw, loc, known,
                                    arith::SelectOp::create(rw, loc, isM, one, d));
    }
    Value inferable = arith::OrIOp::create(
        rw, loc,
        arith::XOrIOp::create(rw, loc, anyMinus1,
                              arith::ConstantIntOp::create(rw, loc, 1, 1)),
        arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::ne, known, zero));
    Value safeKnown = arith::MaxSIOp::create(rw, loc, known, one);
    Value inferred = arith::DivSIOp::create(rw, loc, total, safeKnown);
    Value product = one, nonNegative = arith::ConstantIntOp::create(rw, loc, 1, 1);
    for (Value &d : dims) {
      Value isM = arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::eq, d, minus1);
      d = arith::SelectOp::create(rw, loc, isM, inferred, d);
      product = arith::MulIOp::create(rw, loc, product, d);
      nonNegative = arith::AndIOp::create(
          rw, loc, nonNegative,
          arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::sge, d, zero));
    }
    emitRuntimeCheck(rw, loc, inferable,
                     "the reshape target's -1 cannot be inferred: another "
                     "of its dims is 0");
    Value ok = arith::AndIOp::create(
        rw, loc, nonNegative,
        arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::eq, product, total));
    emitRuntimeCheck(rw, loc, ok,
                     "the reshape target does not match the element count");
    rw.replaceOp(op, reshapeTo(rw, loc, op.getInput(), outType, dims));
    return success();
  }
};

template <typename OpTy>
struct LowerSqueezeLike : OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  LogicalResult matchAndRewrite(OpTy op, PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    auto outType = cast<RankedTensorType>(op.getType());
    SmallVector<Value> in = getDimValues(rw, loc, op.getInput()), dims;
    int64_t r = outType.getRank();
    if constexpr (std::is_same_v<OpTy, UnsqueezeOp>) {
      SmallVector<int64_t> axes = normalizedAxes(op.getAxes(), r);
      auto it = in.begin();
      for (int64_t i = 0; i < r; ++i)
        dims.push_back(llvm::is_contained(axes, i) ? cIdx(rw, loc, 1) : *it++);
    } else {
      SmallVector<int64_t> axes =
          normalizedAxes(op.getAxes(), tensorType(op.getInput()).getRank());
      for (int64_t i = 0; i < (int64_t)in.size(); ++i)
        if (!llvm::is_contained(axes, i))
          dims.push_back(in[i]);
    }
    rw.replaceOp(op, reshapeTo(rw, loc, op.getInput(), outType, dims));
    return success();
  }
};

struct LowerConcat : OpRewritePattern<ConcatOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ConcatOp op, PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    auto outType = cast<RankedTensorType>(op.getType());
    int64_t r = outType.getRank();
    int64_t axis = normalizeAxis(op.getAxis(), r);
    SmallVector<Value> dims = getDimValues(rw, loc, op.getInputs()[0]);
    Value total = cIdx(rw, loc, 0);
    for (Value in : op.getInputs())
      total = arith::AddIOp::create(rw, loc, total, tensor::DimOp::create(rw, loc, in, axis));
    dims[axis] = total;
    Value ok = arith::ConstantIntOp::create(rw, loc, 1, 1);
    for (Value in : op.getInputs().drop_front()) {
      SmallVector<Value> inDims = getDimValues(rw, loc, in);
      for (int64_t i = 0; i < r; ++i)
        if (i != axis)
          ok = arith::AndIOp::create(
              rw, loc, ok,
              arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::eq, inDims[i], dims[i]));
    }
    emitRuntimeCheck(rw, loc, ok, "concat inputs differ outside the concat axis");
    Value out = createEmpty(rw, loc, outType, dims);
    Value offset = cIdx(rw, loc, 0);
    for (Value in : op.getInputs()) {
      SmallVector<Value> inDims = getDimValues(rw, loc, in);
      SmallVector<OpFoldResult> offs(r, rw.getIndexAttr(0)), sizes, strides(r, rw.getIndexAttr(1));
      offs[axis] = offset;
      for (Value d : inDims)
        sizes.push_back(getAsOpFoldResult(d));
      offs[axis] = getAsOpFoldResult(offset);
      out = tensor::InsertSliceOp::create(rw, loc, in, out, offs, sizes, strides);
      offset = arith::AddIOp::create(rw, loc, offset, inDims[axis]);
    }
    if (out.getType() != outType)
      out = tensor::CastOp::create(rw, loc, outType, out);
    rw.replaceOp(op, out);
    return success();
  }
};

/// kv_cache_update: an empty [B, H, T, D] result, then per sequence b (an
/// scf.for that carries it) the past's rows [0, p), the update's first n =
/// min(S, T - p) rows at [p, p + n) and zeros after, each an insert_slice,
/// so that bufferization makes them strided copies of whole rows into the
/// result's buffer (memrefCopy, or transfuse_copy_f32 for a large one).
struct LowerKvCacheUpdate : OpRewritePattern<KvCacheUpdateOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(KvCacheUpdateOp op,
                                PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    auto outType = cast<RankedTensorType>(op.getType());
    Value past = op.getPast(), update = op.getUpdate(),
          lens = op.getPastLengths();
    SmallVector<Value> pd = getDimValues(rw, loc, past),
                       ud = getDimValues(rw, loc, update);
    auto eq = [&](Value a, Value c) {
      return arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::eq, a, c);
    };
    Value ok = eq(tensor::DimOp::create(rw, loc, lens, 0), pd[0]);
    for (int64_t i : {0, 1, 3})
      ok = arith::AndIOp::create(rw, loc, ok, eq(pd[i], ud[i]));
    emitRuntimeCheck(
        rw, loc, ok,
        "kv_cache_update: past, update and past_lengths disagree on batch, "
        "heads or head size");
    Value rows = extractIndex(rw, loc, op.getRows(), 0);
    Value zero = cIdx(rw, loc, 0), one = cIdx(rw, loc, 1);
    emitRuntimeCheck(
        rw, loc,
        arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::sge, rows, zero),
        "kv_cache_update: a negative number of rows");
    Value out = createEmpty(rw, loc, outType, {pd[0], pd[1], rows, pd[3]});
    // The body is built in place (not by a body builder): a run-time check
    // needs the module.
    auto loop = scf::ForOp::create(rw, loc, zero, pd[0], one, ValueRange{out});
    OpBuilder::InsertionGuard guard(rw);
    rw.setInsertionPointToStart(loop.getBody());
    Value b = loop.getInductionVar();
    Value p = toIndex(rw, loc,
                      tensor::ExtractOp::create(rw, loc, lens, ValueRange{b}));
    Value inRange = arith::AndIOp::create(
        rw, loc,
        arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::sge, p, zero),
        arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::sle, p, pd[2]));
    emitRuntimeCheck(
        rw, loc, inRange,
        "kv_cache_update: a past length is negative or beyond the past's rows");
    p = arith::MinSIOp::create(rw, loc, p, rows);
    Value left = arith::SubIOp::create(rw, loc, rows, p);
    Value n = arith::MinSIOp::create(rw, loc, ud[2], left);
    Value after = arith::AddIOp::create(rw, loc, p, n);
    Value rest = arith::SubIOp::create(rw, loc, left, n);
    OpFoldResult i0 = rw.getIndexAttr(0), i1 = rw.getIndexAttr(1);
    SmallVector<OpFoldResult> unit(4, i1);
    auto rowsOf = [&](Value count) -> SmallVector<OpFoldResult> {
      return {i1, getAsOpFoldResult(pd[1]), getAsOpFoldResult(count),
              getAsOpFoldResult(pd[3])};
    };
    // Rows [0, count) of sequence b of `from` into `acc` at row `at`; with
    // no `from`, zeros filled in place there.
    auto put = [&](Value acc, Value from, Value at, Value count) -> Value {
      SmallVector<OpFoldResult> first{b, i0, i0, i0},
          offs{b, i0, getAsOpFoldResult(at), i0};
      Value rowsFrom =
          from ? tensor::ExtractSliceOp::create(rw, loc, from, first,
                                                rowsOf(count), unit)
                     .getResult()
               : linalg::FillOp::create(
                     rw, loc,
                     scalarConstant(rw, loc, outType.getElementType(), 0),
                     tensor::ExtractSliceOp::create(rw, loc, acc, offs,
                                                    rowsOf(count), unit)
                         .getResult())
                     .getResult(0);
      return tensor::InsertSliceOp::create(rw, loc, rowsFrom, acc, offs,
                                           rowsOf(count), unit);
    };
    // A slice of a dim that is 0 by its type does not verify even when it
    // is empty, so such operands take no part.
    auto empty = [](Value t) { return tensorType(t).getDimSize(2) == 0; };
    Value acc = loop.getRegionIterArgs()[0];
    if (!empty(out)) {
      if (!empty(past))
        acc = put(acc, past, zero, p);
      if (!empty(update))
        acc = put(acc, update, p, n);
      acc = put(acc, Value(), after, rest);
    }
    scf::YieldOp::create(rw, loc, acc);
    rw.setInsertionPointAfter(loop);
    Value result = loop.getResult(0);
    if (result.getType() != outType)
      result = tensor::CastOp::create(rw, loc, outType, result);
    rw.replaceOp(op, result);
    return success();
  }
};

struct LowerSlice : OpRewritePattern<SliceOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(SliceOp op, PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    auto outType = cast<RankedTensorType>(op.getType());
    Value input = op.getInput();
    int64_t r = outType.getRank();
    SmallVector<Value> inDims = getDimValues(rw, loc, input);
    SmallVector<Value> starts(r, cIdx(rw, loc, 0)), sizes(inDims);
    SmallVector<int64_t> steps(r, 1);
    Value zero = cIdx(rw, loc, 0), one = cIdx(rw, loc, 1), m1 = cIdx(rw, loc, -1);
    auto clamp = [&](Value v, Value lo, Value hi) {
      return arith::MinSIOp::create(rw, loc, arith::MaxSIOp::create(rw, loc, v, lo), hi);
    };
    // Run-time ONNX Slice rules: negative positions count from the end, then
    // clamp; ends of INT64_MAX mean "to the end".
    for (auto [pos, a] : llvm::enumerate(op.getAxes())) {
      int64_t k = pos, axis = normalizeAxis(a, r);
      int64_t step = op.getSteps()[k];
      Value d = inDims[axis];
      auto read = [&](Value t) {
        Value v = tensor::ExtractOp::create(rw, loc, t, ValueRange{cIdx(rw, loc, k)});
        // Saturate to +-2^40 before index arithmetic so INT64_MAX cannot wrap.
        Value lim = arith::ConstantIntOp::create(rw, loc, rw.getI64Type(), int64_t(1) << 40);
        Value nlim = arith::ConstantIntOp::create(rw, loc, rw.getI64Type(), -(int64_t(1) << 40));
        v = arith::MinSIOp::create(rw, loc, arith::MaxSIOp::create(rw, loc, v, nlim), lim);
        return (Value)arith::IndexCastOp::create(rw, loc, rw.getIndexType(), v);
      };
      Value s = read(op.getStarts()), e = read(op.getEnds());
      auto wrap = [&](Value v) {
        Value neg = arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::slt, v, zero);
        return (Value)arith::SelectOp::create(rw, loc, neg, arith::AddIOp::create(rw, loc, v, d), v);
      };
      s = wrap(s);
      e = wrap(e);
      Value size;
      Value st = cIdx(rw, loc, std::abs(step));
      if (step > 0) {
        s = clamp(s, zero, d);
        e = clamp(e, zero, d);
        Value diff = arith::SubIOp::create(rw, loc, e, s);
        size = arith::CeilDivSIOp::create(rw, loc, diff, st);
      } else {
        s = clamp(s, zero, arith::SubIOp::create(rw, loc, d, one));
        e = clamp(e, m1, arith::SubIOp::create(rw, loc, d, one));
        Value diff = arith::SubIOp::create(rw, loc, s, e);
        size = arith::CeilDivSIOp::create(rw, loc, diff, st);
      }
      starts[axis] = s;
      sizes[axis] = arith::MaxSIOp::create(rw, loc, size, zero);
      steps[axis] = step;
    }
    Value out;
    if (llvm::all_of(steps, [](int64_t s) { return s == 1; })) {
      SmallVector<OpFoldResult> offs, szs, strides(r, rw.getIndexAttr(1));
      for (int64_t i = 0; i < r; ++i) {
        offs.push_back(starts[i]);
        szs.push_back(sizes[i]);
      }
      auto sliceType = tensor::ExtractSliceOp::inferResultType(
          tensorType(input), SmallVector<int64_t>(r, ShapedType::kDynamic));
      out = tensor::ExtractSliceOp::create(rw, loc, sliceType, input, offs, szs, strides);
      out = tensor::CastOp::create(rw, loc, outType, out);
    } else {
      Value init = createEmpty(rw, loc, outType, sizes);
      SmallVector<utils::IteratorType> iters(r, utils::IteratorType::parallel);
      out = linalg::GenericOp::create(
                rw, loc, TypeRange{outType}, ValueRange{}, ValueRange{init},
                ArrayRef<AffineMap>{rw.getMultiDimIdentityMap(r)}, iters,
                [&](OpBuilder &b, Location l, ValueRange) {
                  SmallVector<Value> at;
                  for (int64_t i = 0; i < r; ++i) {
                    Value iv = linalg::IndexOp::create(b, l, i);
                    Value step = arith::ConstantIndexOp::create(b, l, steps[i]);
                    at.push_back(arith::AddIOp::create(
                        b, l, starts[i], arith::MulIOp::create(b, l, iv, step)));
                  }
                  linalg::YieldOp::create(b, l, tensor::ExtractOp::create(b, l, input, at).getResult());
                })
                .getResult(0);
    }
    rw.replaceOp(op, out);
    return success();
  }
};

struct LowerExpand : OpRewritePattern<ExpandOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ExpandOp op, PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    auto outType = cast<RankedTensorType>(op.getType());
    auto inType = tensorType(op.getInput());
    int64_t r = outType.getRank(), ri = inType.getRank();
    int64_t rs = tensorType(op.getShape()).getDimSize(0);
    SmallVector<Value> inDims = getDimValues(rw, loc, op.getInput()), dims;
    Value one = cIdx(rw, loc, 1);
    for (int64_t i = 0; i < r; ++i) {
      if (!outType.isDynamicDim(i)) {
        dims.push_back(cIdx(rw, loc, outType.getDimSize(i)));
        continue;
      }
      int64_t j = i - (r - ri), k = i - (r - rs);
      Value in = j >= 0 ? inDims[j] : one;
      Value s = k >= 0 ? extractIndex(rw, loc, op.getShape(), k) : one;
      Value sIsOne = arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::eq, s, one);
      Value d = arith::SelectOp::create(rw, loc, sIsOne, in, s);
      Value ok = arith::OrIOp::create(
          rw, loc, arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::eq, in, one),
          arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::eq, in, d));
      emitRuntimeCheck(rw, loc, ok, "the input cannot be expanded to the target shape");
      dims.push_back(d);
    }
    rw.replaceOp(op, broadcastTo(rw, loc, op.getInput(), outType, dims));
    return success();
  }
};

struct LowerShape : OpRewritePattern<ShapeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ShapeOp op, PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    auto outType = cast<RankedTensorType>(op.getType());
    int64_t s = shapeOpRange(op).first;
    SmallVector<Value> dims = getDimValues(rw, loc, op.getInput()), elems;
    for (int64_t i = 0; i < outType.getDimSize(0); ++i)
      elems.push_back(arith::IndexCastOp::create(rw, loc, rw.getI64Type(), dims[s + i]));
    rw.replaceOpWithNewOp<tensor::FromElementsOp>(op, outType, elems);
    return success();
  }
};

struct LowerConstantOfShape : OpRewritePattern<ConstantOfShapeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ConstantOfShapeOp op, PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    auto outType = cast<RankedTensorType>(op.getType());
    SmallVector<Value> dims;
    for (int64_t i = 0; i < outType.getRank(); ++i) {
      if (!outType.isDynamicDim(i)) {
        dims.push_back(cIdx(rw, loc, outType.getDimSize(i)));
        continue;
      }
      Value d = extractIndex(rw, loc, op.getShape(), i);
      emitRuntimeCheck(rw, loc,
                       arith::CmpIOp::create(rw, loc, arith::CmpIPredicate::sge, d,
                                             cIdx(rw, loc, 0)),
                       "constant_of_shape got a negative dim");
      dims.push_back(d);
    }
    Value init = createEmpty(rw, loc, outType, dims);
    Value v = arith::ConstantOp::create(rw, loc, op.getValue());
    rw.replaceOp(op, linalg::FillOp::create(rw, loc, v, init).getResult(0));
    return success();
  }
};

struct LowerRange : OpRewritePattern<RangeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(RangeOp op, PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    auto outType = cast<RankedTensorType>(op.getType());
    Type elem = outType.getElementType();
    Value s = tensor::ExtractOp::create(rw, loc, op.getStart(), ValueRange{});
    Value l = tensor::ExtractOp::create(rw, loc, op.getLimit(), ValueRange{});
    Value d = tensor::ExtractOp::create(rw, loc, op.getDelta(), ValueRange{});
    // A delta of 0 (known only at run time here) has no element count: the
    // integer division trapped, the float one sized a buffer from inf.
    Value zero = scalarConstant(rw, loc, elem, 0);
    emitRuntimeCheck(rw, loc,
                     isa<FloatType>(elem)
                         ? (Value)arith::CmpFOp::create(
                               rw, loc, arith::CmpFPredicate::ONE, d, zero)
                         : (Value)arith::CmpIOp::create(
                               rw, loc, arith::CmpIPredicate::ne, d, zero),
                     "Range's delta is 0");
    Value n;
    if (isa<FloatType>(elem)) {
      Value q = arith::DivFOp::create(rw, loc, arith::SubFOp::create(rw, loc, l, s), d);
      q = math::CeilOp::create(rw, loc, q);
      n = arith::FPToSIOp::create(rw, loc, rw.getI64Type(), q);
    } else {
      Value diff = arith::SubIOp::create(rw, loc, l, s);
      n = arith::CeilDivSIOp::create(rw, loc, diff, d);
      if (elem.getIntOrFloatBitWidth() < 64)
        n = arith::ExtSIOp::create(rw, loc, rw.getI64Type(), n);
    }
    n = arith::IndexCastOp::create(rw, loc, rw.getIndexType(), n);
    n = arith::MaxSIOp::create(rw, loc, n, cIdx(rw, loc, 0));
    SmallVector<Value> dims{outType.isDynamicDim(0) ? n : cIdx(rw, loc, outType.getDimSize(0))};
    Value init = createEmpty(rw, loc, outType, dims);
    SmallVector<utils::IteratorType> iters(1, utils::IteratorType::parallel);
    Value out = linalg::GenericOp::create(
                    rw, loc, TypeRange{outType}, ValueRange{}, ValueRange{init},
                    ArrayRef<AffineMap>{rw.getMultiDimIdentityMap(1)}, iters,
                    [&](OpBuilder &b, Location lc, ValueRange) {
                      Value i = indexToScalar(b, lc, linalg::IndexOp::create(b, lc, 0), elem);
                      Value v = isa<FloatType>(elem)
                                    ? (Value)arith::AddFOp::create(b, lc, s, arith::MulFOp::create(b, lc, i, d))
                                    : (Value)arith::AddIOp::create(b, lc, s, arith::MulIOp::create(b, lc, i, d));
                      linalg::YieldOp::create(b, lc, v);
                    })
                    .getResult(0);
    rw.replaceOp(op, out);
    return success();
  }
};

struct LowerTrilu : OpRewritePattern<TriluOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(TriluOp op, PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    auto t = tensorType(op.getInput());
    int64_t r = t.getRank();
    Value k = extractIndex(rw, loc, op.getK(), 0);
    bool upper = op.getUpper();
    Type elem = t.getElementType();
    Value out = buildElementwise(
        rw, loc, ValueRange{op.getInput()}, t,
        [&](OpBuilder &b, Location l, ValueRange a) -> Value {
          Value i = linalg::IndexOp::create(b, l, r - 2);
          Value j = linalg::IndexOp::create(b, l, r - 1);
          Value diff = arith::SubIOp::create(b, l, j, i);
          Value keep = arith::CmpIOp::create(
              b, l, upper ? arith::CmpIPredicate::sge : arith::CmpIPredicate::sle,
              diff, k);
          return arith::SelectOp::create(b, l, keep, a[0], scalarConstant(b, l, elem, 0));
        });
    rw.replaceOp(op, out);
    return success();
  }
};

/// out[..., i, j] = input[..., j - i + rows - 1], materialized. Left for
/// later while an `attention` reads it: the runtime kernel's lowering reads
/// the input through a view instead (LowerFused.cpp), and the op then goes
/// unless something else reads it.
struct LowerToeplitz : OpRewritePattern<ToeplitzOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ToeplitzOp op,
                                PatternRewriter &rw) const override {
    if (llvm::any_of(op->getUsers(), llvm::IsaPred<AttentionOp>))
      return rw.notifyMatchFailure(op, "an attention reads it");
    Location loc = op.getLoc();
    Value in = op.getInput();
    auto t = cast<RankedTensorType>(op.getType());
    int64_t r = t.getRank();
    SmallVector<Value> dims = getDimValues(rw, loc, in);
    Value rows = extractIndex(rw, loc, op.getSizes(), 0);
    dims.back() = rows;
    dims.push_back(extractIndex(rw, loc, op.getSizes(), 1));
    Value init = createEmpty(rw, loc, t, dims);
    SmallVector<utils::IteratorType> iters(r, utils::IteratorType::parallel);
    Value out =
        linalg::GenericOp::create(
            rw, loc, TypeRange{t}, ValueRange{}, ValueRange{init},
            ArrayRef<AffineMap>{rw.getMultiDimIdentityMap(r)}, iters,
            [&](OpBuilder &b, Location l, ValueRange) {
              SmallVector<Value> at;
              for (int64_t d = 0; d < r - 2; ++d)
                at.push_back(linalg::IndexOp::create(b, l, d));
              Value i = linalg::IndexOp::create(b, l, r - 2);
              Value j = linalg::IndexOp::create(b, l, r - 1);
              Value last = arith::SubIOp::create(b, l, rows, cIdx(b, l, 1));
              at.push_back(arith::AddIOp::create(
                  b, l, arith::SubIOp::create(b, l, j, i), last));
              linalg::YieldOp::create(
                  b, l, tensor::ExtractOp::create(b, l, in, at).getResult());
            })
            .getResult(0);
    rw.replaceOp(op, out);
    return success();
  }
};

struct LowerCumSum : OpRewritePattern<CumSumOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(CumSumOp op, PatternRewriter &rw) const override {
    Location loc = op.getLoc();
    Value x = op.getInput();
    auto t = tensorType(x);
    int64_t r = t.getRank(), axis = normalizeAxis(op.getAxis(), r);
    Type elem = t.getElementType();
    SmallVector<Value> dims = getDimValues(rw, loc, x);
    Value n = dims[axis];
    Value init = createEmpty(rw, loc, t, dims);
    bool excl = op.getExclusive(), rev = op.getReverse();
    SmallVector<utils::IteratorType> iters(r, utils::IteratorType::parallel);
    Value out = linalg::GenericOp::create(
        rw, loc, TypeRange{t}, ValueRange{}, ValueRange{init},
        ArrayRef<AffineMap>{rw.getMultiDimIdentityMap(r)}, iters,
        [&](OpBuilder &b, Location l, ValueRange) {
          SmallVector<Value> at;
          for (int64_t i = 0; i < r; ++i)
            at.push_back(linalg::IndexOp::create(b, l, i));
          Value p = at[axis];
          Value one = arith::ConstantIndexOp::create(b, l, 1);
          Value lo, hi;  // sum over [lo, hi)
          if (!rev) {
            lo = arith::ConstantIndexOp::create(b, l, 0);
            hi = excl ? p : (Value)arith::AddIOp::create(b, l, p, one);
          } else {
            lo = excl ? (Value)arith::AddIOp::create(b, l, p, one) : p;
            hi = n;
          }
          Value zero = scalarConstant(b, l, elem, 0);
          auto loop = scf::ForOp::create(
              b, l, lo, hi, one, ValueRange{zero},
              [&](OpBuilder &fb, Location fl, Value iv, ValueRange acc) {
                SmallVector<Value> idx(at);
                idx[axis] = iv;
                Value v = tensor::ExtractOp::create(fb, fl, x, idx);
                Value s = isa<FloatType>(elem)
                              ? (Value)arith::AddFOp::create(fb, fl, acc[0], v)
                              : (Value)arith::AddIOp::create(fb, fl, acc[0], v);
                scf::YieldOp::create(fb, fl, s);
              });
          linalg::YieldOp::create(b, l, loop.getResult(0));
        }).getResult(0);
    rw.replaceOp(op, out);
    return success();
  }
};

struct LowerConstant : OpRewritePattern<ConstantOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ConstantOp op, PatternRewriter &rw) const override {
    rw.replaceOpWithNewOp<arith::ConstantOp>(op, cast<TypedAttr>(op.getValue()));
    return success();
  }
};

struct LowerToLinalgPass : cpu::impl::LowerToLinalgBase<LowerToLinalgPass> {
  using LowerToLinalgBase::LowerToLinalgBase;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (!module.lookupSymbol(kFailFunc)) {
      OpBuilder b(module.getBodyRegion());
      auto decl = func::FuncOp::create(
          b, module.getLoc(), kFailFunc,
          b.getFunctionType({b.getI64Type()}, {}));
      decl.setPrivate();
    }
    // Reshapes that keep their input's leading dims, as far as compile time
    // proves: one that is the identity goes, one that splits the last dim
    // is marked for LowerReshape (it becomes a view). Decided here, on the
    // graph ops, before their shape operands are lowered.
    SmallVector<ReshapeOp> reshapes;
    module.walk([&](ReshapeOp op) { reshapes.push_back(op); });
    for (ReshapeOp op : reshapes) {
      ReshapeKind kind = classifyReshape(op);
      if (kind == ReshapeKind::Identity &&
          op.getInput().getType() == op.getType()) {
        op.getResult().replaceAllUsesWith(op.getInput());
        op.erase();
      } else if (kind == ReshapeKind::SplitsLastDim) {
        auto out = cast<RankedTensorType>(op.getType());
        auto entries = getPartialIntValues(op.getShape());
        op->setAttr(kSplitLastDim,
                    IntegerAttr::get(IntegerType::get(&getContext(), 64),
                                     (*entries)[out.getRank() - 1]));
      }
    }
    // The shape computations of the reshapes gone, dead now, go too, last
    // reader first: the attention lowering takes an output read by its
    // transpose alone, and a dead `shape` of it is a reader until erased.
    SmallVector<Operation *> ops;
    module.walk([&](Operation *op) {
      if (isa<TransformerDialect>(op->getDialect()))
        ops.push_back(op);
    });
    for (Operation *op : llvm::reverse(ops))
      if (isOpTriviallyDead(op))
        op->erase();
    RewritePatternSet patterns(&getContext());
    populateLowerToLinalgPatterns(patterns);
    populateLowerElementwisePatterns(patterns);
    populateLowerFusedPatterns(patterns, attentionKernel, bf16Attention,
                               normKernel);
    GreedyRewriteConfig config;
    config.setUseTopDownTraversal(true);
    (void)applyPatternsGreedily(getOperation(), std::move(patterns), config);
    WalkResult res = getOperation().walk([](Operation *op) {
      if (!isa<TransformerDialect>(op->getDialect()))
        return WalkResult::advance();
      auto diag = op->emitError() << "no CPU lowering for '" << op->getName()
                                  << "'";
      for (Value v : op->getOperands())
        diag << " " << v.getType();
      return WalkResult::interrupt();
    });
    if (res.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace

void transfuse::cpu::populateLowerToLinalgPatterns(RewritePatternSet &patterns) {
  patterns
      .add<LowerReduce<ReduceMeanOp>, LowerReduce<ReduceSumOp>,
           LowerReduce<ReduceMaxOp>, LowerSoftmax, LowerLayerNorm, LowerMatMul,
           LowerGather, LowerGatherElements, LowerGatherND, LowerTranspose,
           LowerReshape, LowerSqueezeLike<SqueezeOp>,
           LowerSqueezeLike<UnsqueezeOp>, LowerConcat, LowerSlice, LowerExpand,
           LowerShape, LowerConstantOfShape, LowerRange, LowerTrilu,
           LowerToeplitz, LowerKvCacheUpdate, LowerCumSum, LowerConstant>(
          patterns.getContext());
}
