//===- CompactRelativeBias.cpp - a relative position bias per diagonal ----===//
//
// T5 (and every model with its bucketed relative attention) builds the
// position bias as
//   D = range(k0, k1)[None, :] - range(q0, q1)[:, None]      [Sq, Sk]
//   bucket = f(D)       (abs, log, min, where, ... with scalar constants)
//   bias = transpose(gather(table, bucket)) [1, H, Sq, Sk]
// and adds it to the scores of every layer. Every element of D, so of the
// bias, depends on j - i only. This pass computes f at the Sq + Sk - 1
// distinct differences instead, gathers [Sq + Sk - 1, H] rows, and hands
// the attention `toeplitz` of that ([1, H, L] spread over [Sq, Sk]): the
// CPU lowering reads it as a view, so no [1, H, Sq, Sk] tensor is built or
// read.
//
//===----------------------------------------------------------------------===//
#include "passes/FusionUtils.h"
#include "passes/Passes.h"

#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseMap.h"

namespace transfuse {
#define GEN_PASS_DEF_COMPACTRELATIVEBIAS
#include "passes/Passes.h.inc"
} // namespace transfuse

using namespace mlir;
using namespace transfuse;
using namespace transfuse::fusion;
using namespace transfuse::transformer;

namespace {

/// A 1-D integer `range` with a constant step of +1 (its start and limit
/// are any scalars).
RangeOp unitRange(Value v) {
  auto r = v.getDefiningOp<RangeOp>();
  if (!r || !isa<IntegerType>(tensorType(v).getElementType()))
    return nullptr;
  std::optional<double> step = scalarValue(r.getDelta());
  return step && *step == 1.0 ? r : nullptr;
}

/// The range `v` unsqueezes at `axis` into a rank-2 tensor, or null.
RangeOp unsqueezedRange(Value v, int64_t axis) {
  auto u = v.getDefiningOp<UnsqueezeOp>();
  if (!u || tensorType(v).getRank() != 2 || u.getAxes().size() != 1 ||
      normalizeAxis(u.getAxes()[0], 2) != axis)
    return nullptr;
  return unitRange(u.getInput());
}

/// D = range(k0, k1)[None, :] - range(q0, q1)[:, None] (or the other way
/// round): D[i, j] = (k0 + j) - (q0 + i) (sign +1) or its negation.
struct RelativePositions {
  RangeOp rows, cols;
  int sign;
};

std::optional<RelativePositions> relativePositions(Value v) {
  auto sub = v.getDefiningOp<SubOp>();
  if (!sub)
    return std::nullopt;
  if (RangeOp c = unsqueezedRange(sub.getLhs(), 0))
    if (RangeOp r = unsqueezedRange(sub.getRhs(), 1))
      return RelativePositions{r, c, +1};
  if (RangeOp r = unsqueezedRange(sub.getLhs(), 1))
    if (RangeOp c = unsqueezedRange(sub.getRhs(), 0))
      return RelativePositions{r, c, -1};
  return std::nullopt;
}

bool isScalarShaped(RankedTensorType t) {
  return t.getRank() == 0 || (t.getRank() == 1 && t.getDimSize(0) == 1);
}

/// The scalar that a rank-2 value repeats: a constant_of_shape's value (an
/// attribute), or the scalar that an `expand` broadcasts (a value), when
/// the shape it takes is that of a value `sameShape` accepts (torch's
/// full_like and zeros_like of a term of the index) or static and no
/// larger than the index's static shape `index`; or a one-element
/// constant's value.
std::optional<PointerUnion<Attribute, Value>>
splatOf(Value v, RankedTensorType index,
        llvm::function_ref<bool(Value)> sameShape) {
  auto shapeOfTerm = [&](Value shape) {
    if (auto s = shape.getDefiningOp<ShapeOp>())
      return shapeOpRange(s) == std::pair<int64_t, int64_t>{0, 2} &&
             sameShape(s.getInput());
    auto t = tensorType(v);
    if (!t.hasStaticShape() || !index.hasStaticShape())
      return false;
    for (int64_t d = 0; d < 2; ++d)
      if (t.getDimSize(d) != 1 && t.getDimSize(d) != index.getDimSize(d))
        return false;
    return true;
  };
  if (auto c = v.getDefiningOp<ConstantOfShapeOp>()) {
    if (shapeOfTerm(c.getShape()))
      return PointerUnion<Attribute, Value>(c.getValue());
    return std::nullopt;
  }
  if (auto e = v.getDefiningOp<ExpandOp>()) {
    if (isScalarShaped(tensorType(e.getInput())) && shapeOfTerm(e.getShape()))
      return PointerUnion<Attribute, Value>(e.getInput());
    return std::nullopt;
  }
  if (auto c = v.getDefiningOp<ConstantOp>())
    if (auto dense = dyn_cast<DenseElementsAttr>(c.getValue());
        dense && dense.getNumElements() == 1)
      return PointerUnion<Attribute, Value>(dense.getSplatValue<Attribute>());
  return std::nullopt;
}

/// Rebuilds a [Sq, Sk] value that depends on j - i only as the 1-D value
/// over the L = Sq + Sk - 1 differences, v'[t] = v[i, j] at t = j - i +
/// Sq - 1, or as itself or a rank-0 constant where v is the same
/// everywhere. check() decides whether it can, building nothing; build()
/// then builds it. Both are memoized, so a value read twice is rebuilt once.
class Lifter {
public:
  /// `index`: the type of the gather index being rebuilt, [Sq, Sk].
  Lifter(PatternRewriter &rw, Location loc, RankedTensorType index)
      : rw(rw), loc(loc), index(index) {}

  enum class Kind { Diagonals, Scalar };

  /// What `v` becomes, or nullopt with `why` set.
  std::optional<Kind> check(Value v, std::string &why) {
    if (auto it = kinds.find(v); it != kinds.end())
      return it->second;
    std::optional<Kind> k = classify(v, why);
    if (k)
      kinds[v] = *k;
    return k;
  }

  /// The 1-D (Diagonals) or scalar (Scalar) form of a value check()
  /// accepted.
  Value build(Value v) {
    if (auto it = built.find(v); it != built.end())
      return it->second;
    Value out = make(v);
    built[v] = out;
    return out;
  }

  /// The position ranges, once check() found them.
  std::optional<RelativePositions> positions;
  /// [Sq, Sk] as a 2-entry i64 tensor, once build() made the differences.
  Value sizes;

private:
  PatternRewriter &rw;
  Location loc;
  RankedTensorType index;
  llvm::DenseMap<Value, Kind> kinds;
  llvm::DenseMap<Value, Value> built;

  /// The scalar `v` repeats (splatOf), when it has the shape of a term
  /// that is rebuilt: the same everywhere.
  std::optional<PointerUnion<Attribute, Value>> splat(Value v) {
    return splatOf(v, index, [&](Value x) {
      std::string ignored;
      return tensorType(x).getRank() == 2 &&
             check(x, ignored) == Kind::Diagonals;
    });
  }

  std::optional<Kind> classify(Value v, std::string &why) {
    auto t = tensorType(v);
    if (isScalarShaped(t))
      return Kind::Scalar; // broadcasts against [L] as against [Sq, Sk]
    if (t.getRank() != 2) {
      why = "a term of the position index has rank " +
            std::to_string(t.getRank());
      return std::nullopt;
    }
    if (splat(v))
      return Kind::Scalar;
    if (auto rel = relativePositions(v)) {
      if (positions &&
          (positions->rows != rel->rows || positions->cols != rel->cols)) {
        why = "the position index mixes two pairs of position ranges";
        return std::nullopt;
      }
      positions = rel;
      return Kind::Diagonals;
    }
    Operation *def = v.getDefiningOp();
    if (!def || !isElementwiseOp(def)) {
      why = "a term of the position index is " +
            (def ? nodeName(def) : std::string("a function argument")) +
            ", not an elementwise op of the positions and scalars";
      return std::nullopt;
    }
    Kind k = Kind::Scalar;
    for (Value operand : def->getOperands()) {
      std::optional<Kind> ok = check(operand, why);
      if (!ok)
        return std::nullopt;
      if (*ok == Kind::Diagonals)
        k = Kind::Diagonals;
    }
    return k;
  }

  Value make(Value v) {
    auto t = tensorType(v);
    if (isScalarShaped(t))
      return v;
    if (auto repeated = splat(v)) {
      if (auto scalar = dyn_cast<Value>(*repeated))
        return scalar;
      return ConstantOp::create(
          rw, loc,
          DenseElementsAttr::get(RankedTensorType::get({}, t.getElementType()),
                                 cast<Attribute>(*repeated)));
    }
    if (relativePositions(v))
      return differences(*positions);
    Operation *def = v.getDefiningOp();
    IRMapping map;
    for (Value operand : def->getOperands())
      map.map(operand, build(operand));
    Operation *copy = rw.clone(*def, map);
    copy->getResult(0).setType(UnrankedTensorType::get(t.getElementType()));
    std::string err;
    auto types = inferResultTypes(copy, err);
    if (failed(types)) // elementwise ops of [L] and scalars: never
      llvm::report_fatal_error("compact-relative-bias built an invalid " +
                               def->getName().getStringRef() + ": " + err);
    copy->getResult(0).setType((*types)[0]);
    return copy->getResult(0);
  }

  /// The L differences in the order of t = j - i + Sq - 1: with D = cols -
  /// rows, range(k0 - q1 + 1, k1 - q0); with D = rows - cols, range(q1 - 1
  /// - k0, q0 - k1, -1). Also sets `sizes`.
  Value differences(RelativePositions p) {
    Type elem = tensorType(p.rows.getResult()).getElementType();
    auto scalar = [&](int64_t x) {
      return ConstantOp::create(
          rw, loc,
          DenseElementsAttr::get(RankedTensorType::get({}, elem),
                                 APInt(elem.getIntOrFloatBitWidth(), x,
                                       /*isSigned=*/true)));
    };
    auto sub = [&](Value a, Value b) {
      return createInferred<SubOp>(rw, loc, elem, a, b);
    };
    Value q0 = p.rows.getStart(), q1 = p.rows.getLimit(),
          k0 = p.cols.getStart(), k1 = p.cols.getLimit();
    Value start, limit, step;
    if (p.sign > 0) {
      start = createInferred<AddOp>(rw, loc, elem, sub(k0, q1), scalar(1));
      limit = sub(k1, q0);
      step = scalar(1);
    } else {
      start = sub(sub(q1, scalar(1)), k0);
      limit = sub(q0, k1);
      step = scalar(-1);
    }
    Type i64 = rw.getI64Type();
    auto length = [&](RangeOp r) {
      return createInferred<ShapeOp>(rw, loc, i64, r.getResult(),
                                     rw.getI64IntegerAttr(0),
                                     rw.getI64IntegerAttr(1));
    };
    sizes = createInferred<ConcatOp>(rw, loc, i64,
                                     ValueRange{length(p.rows), length(p.cols)},
                                     rw.getI64IntegerAttr(0));
    return createInferred<RangeOp>(rw, loc, elem, start, limit, step);
  }
};

/// How the dims of a value derive from a gather's result [Sq, Sk, rest...]:
/// kRow, kCol, a dim of the table (1, 2, ...), or a unit dim that an
/// unsqueeze added.
constexpr int64_t kRow = -1, kCol = -2, kUnit = -3;

/// The gather (axis 0, a [Sq, Sk] index) that `mask` is through transposes
/// and unsqueezes, and which gather dim each of the mask's dims is; nullopt
/// when the mask is not such a value. The table may be any tensor: a
/// gather by an index that depends on j - i only does too.
struct BiasSource {
  GatherOp gather;
  SmallVector<int64_t> dims;
};

std::optional<BiasSource> biasSource(Value mask) {
  SmallVector<Operation *> chain;
  Value v = mask;
  while (Operation *def = v.getDefiningOp()) {
    if (!isa<UnsqueezeOp, TransposeOp>(def))
      break;
    chain.push_back(def);
    v = def->getOperand(0);
  }
  auto gather = v.getDefiningOp<GatherOp>();
  if (!gather || tensorType(gather.getIndices()).getRank() != 2 ||
      normalizeAxis(gather.getAxis(), tensorType(gather.getData()).getRank()) !=
          0)
    return std::nullopt;
  SmallVector<int64_t> dims{kRow, kCol};
  for (int64_t d = 1; d < tensorType(gather.getData()).getRank(); ++d)
    dims.push_back(d);
  for (Operation *op : llvm::reverse(chain)) {
    if (auto tr = dyn_cast<TransposeOp>(op)) {
      SmallVector<int64_t> out;
      for (int64_t p : tr.getPerm())
        out.push_back(dims[p]);
      dims = out;
      continue;
    }
    auto un = cast<UnsqueezeOp>(op);
    int64_t rank = dims.size() + un.getAxes().size();
    SmallVector<int64_t> axes;
    for (int64_t a : un.getAxes())
      axes.push_back(normalizeAxis(a, rank));
    SmallVector<int64_t> out;
    for (int64_t i = 0, next = 0; i < rank; ++i)
      out.push_back(llvm::is_contained(axes, i) ? kUnit : dims[next++]);
    dims = out;
  }
  return BiasSource{gather, dims};
}

struct CompactBias : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AttentionOp attn,
                                PatternRewriter &rw) const override {
    std::string why = "no mask is a gather from a table";
    for (OpOperand &operand : attn.getMasksMutable()) {
      std::optional<BiasSource> src = biasSource(operand.get());
      if (!src)
        continue;
      if (Value compact = rewrite(rw, *src, operand.get(), why)) {
        rw.modifyOpInPlace(attn, [&] { operand.set(compact); });
        return success();
      }
    }
    return rw.notifyMatchFailure(attn, [&](Diagnostic &d) { d << why; });
  }

  /// toeplitz(c) for the mask, where c holds the bias at each difference
  /// j - i; null (with `why`) when the mask is not that.
  static Value rewrite(PatternRewriter &rw, BiasSource src, Value mask,
                       std::string &why) {
    ArrayRef<int64_t> dims = src.dims;
    int64_t rank = dims.size();
    if (rank < 2 || dims[rank - 2] != kRow || dims[rank - 1] != kCol) {
      why = "the bias's last two dims are not the gather's two index dims "
            "in order";
      return nullptr;
    }
    auto dataType = tensorType(src.gather.getData());
    Location loc = src.gather.getLoc();
    Lifter lifter(rw, loc, tensorType(src.gather.getIndices()));
    std::optional<Lifter::Kind> kind =
        lifter.check(src.gather.getIndices(), why);
    if (!kind)
      return nullptr;
    if (*kind != Lifter::Kind::Diagonals) {
      why = "the position index is not a function of j - i of two ranges";
      return nullptr;
    }
    OpBuilder::InsertionGuard guard(rw);
    rw.setInsertionPoint(src.gather);
    Value index = lifter.build(src.gather.getIndices());
    // c = gather(table, d) is [L, table dims...]: its L to the end and the
    // table dims in the mask's order, then the mask's unit dims.
    Type elem = dataType.getElementType();
    Value c = createInferred<GatherOp>(rw, loc, elem, src.gather.getData(),
                                       index, rw.getI64IntegerAttr(0));
    SmallVector<int64_t> perm, units;
    for (int64_t i = 0; i < rank - 2; ++i) {
      if (dims[i] == kUnit)
        units.push_back(i);
      else
        perm.push_back(dims[i]);
    }
    perm.push_back(0);
    if (!llvm::equal(perm, llvm::seq<int64_t>(0, perm.size())))
      c = createInferred<TransposeOp>(rw, loc, elem, c,
                                      rw.getDenseI64ArrayAttr(perm));
    if (!units.empty())
      c = createInferred<UnsqueezeOp>(rw, loc, elem, c,
                                      rw.getDenseI64ArrayAttr(units));
    Value out = createInferred<ToeplitzOp>(rw, loc, elem, c, lifter.sizes);
    // The mask's type where that is more static (a refined dim).
    if (!areCompatible(out.getType(), mask.getType()))
      llvm::report_fatal_error(
          "compact-relative-bias: the compact bias's type does not match the "
          "mask's");
    out.setType(mask.getType());
    return out;
  }
};

struct CompactRelativeBiasPass
    : transfuse::impl::CompactRelativeBiasBase<CompactRelativeBiasPass> {
  using CompactRelativeBiasBase::CompactRelativeBiasBase;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<CompactBias>(&getContext());
    if (failed(applyFusionPatterns(
            getOperation(), std::move(patterns), explain,
            "a relative position bias", [](Operation *op) {
              auto attn = dyn_cast<AttentionOp>(op);
              return attn && llvm::any_of(attn.getMasks(), [](Value m) {
                       return biasSource(m).has_value() &&
                              !m.getDefiningOp<ToeplitzOp>();
                     });
            })))
      signalPassFailure();
  }
};

} // namespace
