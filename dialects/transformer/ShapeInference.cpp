//===- ShapeInference.cpp - result types of transformer graph ops ---------===//
#include "dialects/transformer/TransformerDialect.h"

#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/Matchers.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace transfuse::transformer;

namespace transfuse::transformer {

static constexpr int64_t kDyn = ShapedType::kDynamic;

int64_t normalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    return -1;
  return axis < 0 ? axis + rank : axis;
}

std::pair<int64_t, int64_t> shapeOpRange(ShapeOp op) {
  int64_t r = cast<RankedTensorType>(op.getInput().getType()).getRank();
  auto clampDim = [&](int64_t v) {
    return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r);
  };
  int64_t s = clampDim((int64_t)op.getStart()), e = clampDim((int64_t)op.getEnd());
  return {s, std::max(s, e)};
}

bool areCompatible(Type a, Type b) {
  auto ta = dyn_cast<RankedTensorType>(a), tb = dyn_cast<RankedTensorType>(b);
  if (!ta || !tb)
    return a == b;
  if (ta.getElementType() != tb.getElementType() ||
      ta.getRank() != tb.getRank())
    return false;
  for (auto [x, y] : llvm::zip(ta.getShape(), tb.getShape()))
    if (x != kDyn && y != kDyn && x != y)
      return false;
  return true;
}

std::optional<std::vector<char>> constantBytes(Value v) {
  auto cst = v.getDefiningOp<ConstantOp>();
  if (!cst)
    return std::nullopt;
  auto type = cast<RankedTensorType>(cst.getType());
  unsigned bits = type.getElementTypeBitWidth();
  if (!type.getElementType().isIntOrFloat() || bits % 8 != 0 ||
      !type.hasStaticShape())
    return std::nullopt;
  size_t elemBytes = bits / 8;
  size_t total = elemBytes * type.getNumElements();
  if (auto r = dyn_cast<DenseResourceElementsAttr>(cst.getValue())) {
    AsmResourceBlob *blob = r.getRawHandle().getBlob();
    if (!blob || blob->getData().size() != total)
      return std::nullopt;
    return std::vector<char>(blob->getData().begin(), blob->getData().end());
  }
  auto d = dyn_cast<DenseElementsAttr>(cst.getValue());
  if (!d)
    return std::nullopt;
  ArrayRef<char> raw = d.getRawData();
  if (!d.isSplat())
    return std::vector<char>(raw.begin(), raw.end());
  std::vector<char> out;
  out.reserve(total);
  for (int64_t i = 0; i < type.getNumElements(); ++i)
    out.insert(out.end(), raw.begin(), raw.begin() + elemBytes);
  return out;
}

std::optional<SmallVector<int64_t>> getConstantIntValues(Value v) {
  auto partial = getPartialIntValues(v);
  if (!partial || llvm::is_contained(*partial, kDyn))
    return std::nullopt;
  return partial;
}

static std::optional<SmallVector<int64_t>> constantInts(Value v) {
  DenseIntElementsAttr attr;
  if (!matchPattern(v, m_Constant(&attr)))
    return std::nullopt;
  // INT64_MIN is the "unknown" marker of partial values; exporters use it
  // as a Slice start meaning "from the very beginning", where INT64_MIN + 1
  // is equivalent.
  SmallVector<int64_t> out;
  for (const APInt &x : attr.getValues<APInt>())
    out.push_back(x.getBitWidth() == 1
                      ? (int64_t)x.getZExtValue() // a bool is 0 or 1
                      : std::max<int64_t>(x.getSExtValue(), kDyn + 1));
  return out;
}

/// Entry i of a value broadcast to the result's length (one entry, or n).
static int64_t broadcastAt(ArrayRef<int64_t> values, int64_t i) {
  return values[values.size() == 1 ? 0 : i];
}

/// The rank of a ranked tensor value, else -1.
static int64_t rankOf(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  return t ? t.getRank() : -1;
}

DimRef dimOrigin(Value v, int64_t index) {
  for (;;) {
    Operation *def = v.getDefiningOp();
    if (!def)
      return {v, index};
    std::optional<DimRef> next =
        llvm::TypeSwitch<Operation *, std::optional<DimRef>>(def)
            .Case([&](LayerNormOp op) -> std::optional<DimRef> {
              // With a residual the result may take a dim from either.
              if (op.getResidual())
                return std::nullopt;
              return DimRef{op.getInput(), index};
            })
            .Case<RmsNormOp, GeluOp, SiluOp, CastOp>(
                [&](Operation *op) -> std::optional<DimRef> {
                  return DimRef{op->getOperand(0), index};
                })
            .Case<AddOp, SubOp, MulOp, DivOp>(
                [&](Operation *op) -> std::optional<DimRef> {
                  // Broadcasting: the dim is the one operand's that has it
                  // at a size other than 1 (a bias lacks the leading dims).
                  int64_t r = rankOf(op->getResult(0));
                  std::optional<DimRef> from;
                  for (Value in : op->getOperands()) {
                    auto t = dyn_cast<RankedTensorType>(in.getType());
                    if (!t || r < 0)
                      return std::nullopt;
                    int64_t k = index - (r - t.getRank());
                    if (k < 0 || t.getDimSize(k) == 1)
                      continue;
                    if (from)
                      return std::nullopt;
                    from = DimRef{in, k};
                  }
                  return from;
                })
            .Case([&](MatMulOp op) -> std::optional<DimRef> {
              // By a 2-D B, every dim but the last is A's.
              int64_t r = rankOf(op.getLhs());
              if (rankOf(op.getRhs()) != 2 || r < 2 || index + 1 >= r)
                return std::nullopt;
              return DimRef{op.getLhs(), index};
            })
            .Case([&](LinearOp op) -> std::optional<DimRef> {
              if (index + 1 >= rankOf(op.getInput()))
                return std::nullopt;
              return DimRef{op.getInput(), index};
            })
            .Case([&](SliceOp op) -> std::optional<DimRef> {
              int64_t rank = rankOf(op.getInput());
              for (int64_t a : op.getAxes())
                if (normalizeAxis(a, rank) == index)
                  return std::nullopt;
              return DimRef{op.getInput(), index};
            })
            .Case([&](TransposeOp op) -> std::optional<DimRef> {
              return DimRef{op.getInput(), op.getPerm()[index]};
            })
            .Case([&](AttentionOp op) -> std::optional<DimRef> {
              if (index >= 3)
                return std::nullopt;
              return DimRef{op.getQuery(), index};
            })
            .Case([&](ReshapeOp op) -> std::optional<DimRef> {
              int64_t rank = rankOf(op.getInput());
              ReshapeKind kind = classifyReshape(op);
              if (kind == ReshapeKind::Identity ||
                  (kind == ReshapeKind::SplitsLastDim && index + 1 < rank))
                return DimRef{op.getInput(), index};
              return std::nullopt;
            })
            .Default([](Operation *) { return std::nullopt; });
    if (!next)
      return {v, index};
    v = next->value;
    index = next->index;
  }
}

bool provablyEqualDims(Value a, int64_t i, Value b, int64_t j) {
  auto ta = dyn_cast<RankedTensorType>(a.getType()),
       tb = dyn_cast<RankedTensorType>(b.getType());
  if (!ta || !tb)
    return false;
  int64_t sa = ta.getDimSize(i), sb = tb.getDimSize(j);
  if (sa != kDyn || sb != kDyn)
    return sa == sb;
  return dimOrigin(a, i) == dimOrigin(b, j);
}

std::optional<DimRef> shapeEntryDim(Value shape, int64_t i) {
  Operation *def = shape.getDefiningOp();
  if (!def)
    return std::nullopt;
  if (auto op = dyn_cast<ShapeOp>(def)) {
    auto [s, e] = shapeOpRange(op);
    if (i < 0 || s + i >= e)
      return std::nullopt;
    return DimRef{op.getInput(), s + i};
  }
  if (auto op = dyn_cast<ConcatOp>(def)) {
    for (Value in : op.getInputs()) {
      auto t = dyn_cast<RankedTensorType>(in.getType());
      if (!t || t.getRank() != 1 || t.isDynamicDim(0))
        return std::nullopt;
      if (i < t.getDimSize(0))
        return shapeEntryDim(in, i);
      i -= t.getDimSize(0);
    }
    return std::nullopt;
  }
  if (auto op = dyn_cast<SliceOp>(def)) {
    // A stretch of a shape (x.shape[:-2]), at unit step.
    auto data = dyn_cast<RankedTensorType>(op.getInput().getType());
    auto starts = constantInts(op.getStarts());
    if (!data || data.getRank() != 1 || data.isDynamicDim(0) || !starts ||
        starts->size() != 1 || op.getSteps().size() != 1 ||
        op.getSteps()[0] != 1 || i < 0)
      return std::nullopt;
    int64_t d = data.getDimSize(0);
    int64_t start = std::clamp<int64_t>(
        (*starts)[0] < 0 ? (*starts)[0] + d : (*starts)[0], 0, d);
    auto out = dyn_cast<RankedTensorType>(op.getType());
    if (!out || out.isDynamicDim(0) || i >= out.getDimSize(0) || start + i >= d)
      return std::nullopt;
    return shapeEntryDim(op.getInput(), start + i);
  }
  if (auto op = dyn_cast<UnsqueezeOp>(def)) {
    // A scalar made a 1-element list.
    if (i != 0 || rankOf(op.getInput()) != 0)
      return std::nullopt;
    return shapeEntryDim(op.getInput(), 0);
  }
  if (auto op = dyn_cast<GatherOp>(def)) {
    // One entry (or a list of entries) of a shape.
    auto idx = constantInts(op.getIndices());
    auto data = dyn_cast<RankedTensorType>(op.getData().getType());
    if (!idx || !data || data.getRank() != 1 || data.isDynamicDim(0) ||
        i >= (int64_t)idx->size())
      return std::nullopt;
    int64_t j = (*idx)[i] < 0 ? (*idx)[i] + data.getDimSize(0) : (*idx)[i];
    if (j < 0 || j >= data.getDimSize(0))
      return std::nullopt;
    return shapeEntryDim(op.getData(), j);
  }
  return std::nullopt;
}

ReshapeKind classifyReshape(ReshapeOp op) {
  auto in = dyn_cast<RankedTensorType>(op.getInput().getType());
  auto out = dyn_cast<RankedTensorType>(op.getType());
  auto entries = getPartialIntValues(op.getShape());
  if (!in || !out || !entries)
    return ReshapeKind::Other;
  int64_t n = in.getRank();
  if ((int64_t)entries->size() != out.getRank() || n < 1)
    return ReshapeKind::Other;
  // Entry k is input dim k: a static size equal to it, 0 copying it, or
  // read from a dim of the same origin.
  auto keeps = [&](int64_t k) {
    int64_t e = (*entries)[k];
    if (e == 0 && !op.getAllowzero())
      return true;
    if (e != kDyn)
      return e > 0 && e == in.getDimSize(k);
    std::optional<DimRef> src = shapeEntryDim(op.getShape(), k);
    return src && provablyEqualDims(src->value, src->index, op.getInput(), k);
  };
  // At most one -1, standing for the one dim the others do not account for.
  int64_t inferred = -1;
  for (int64_t k = 0; k < out.getRank(); ++k)
    if ((*entries)[k] == -1) {
      if (inferred >= 0)
        return ReshapeKind::Other;
      inferred = k;
    }
  auto leadingKept = [&](int64_t count) {
    for (int64_t k = 0; k < count; ++k)
      if (k != inferred && !keeps(k))
        return false;
    return true;
  };
  if (out.getRank() == n)
    return leadingKept(n) ? ReshapeKind::Identity : ReshapeKind::Other;
  if (out.getRank() != n + 1 || !leadingKept(n - 1))
    return ReshapeKind::Other;
  // [..., E] to [..., E / D, D]: E and D static, and D (and E / D, unless it
  // is the -1) given as such.
  int64_t e = in.getDimSize(n - 1), d = (*entries)[n];
  if (e == kDyn || d <= 0 || e % d != 0 || inferred == n)
    return ReshapeKind::Other;
  int64_t h = (*entries)[n - 1];
  if (h == -1 || h == e / d)
    return ReshapeKind::SplitsLastDim;
  return ReshapeKind::Other;
}

std::optional<SmallVector<int64_t>> getPartialIntValues(Value v) {
  auto type = dyn_cast<RankedTensorType>(v.getType());
  if (!type || type.getRank() > 1 || !type.hasStaticShape() ||
      !type.getElementType().isInteger() ||
      (type.getElementType().getIntOrFloatBitWidth() < 32 &&
       !type.getElementType().isInteger(1)))
    return std::nullopt; // i32/i64 shape values, and bools comparing them
  int64_t n = type.getNumElements();
  if (n > 64)
    return std::nullopt;
  if (auto c = constantInts(v))
    return c;
  SmallVector<int64_t> unknown(n, kDyn);
  Operation *def = v.getDefiningOp();
  if (!def)
    return unknown;
  std::optional<SmallVector<int64_t>> result =
      llvm::TypeSwitch<Operation *, std::optional<SmallVector<int64_t>>>(def)
          .Case([&](ShapeOp op) -> std::optional<SmallVector<int64_t>> {
            auto in = cast<RankedTensorType>(op.getInput().getType());
            auto [s, e] = shapeOpRange(op);
            return SmallVector<int64_t>(in.getShape().slice(s, e - s));
          })
          .Case([&](ConcatOp op) -> std::optional<SmallVector<int64_t>> {
            SmallVector<int64_t> out;
            for (Value in : op.getInputs()) {
              auto p = getPartialIntValues(in);
              if (!p)
                return std::nullopt;
              out.append(*p);
            }
            return out;
          })
          .Case([&](GatherOp op) -> std::optional<SmallVector<int64_t>> {
            auto data = getPartialIntValues(op.getData());
            auto idx = constantInts(op.getIndices());
            if (!data || !idx)
              return std::nullopt;
            SmallVector<int64_t> out;
            for (int64_t i : *idx) {
              int64_t j = i < 0 ? i + (int64_t)data->size() : i;
              if (j < 0 || j >= (int64_t)data->size())
                return std::nullopt;
              out.push_back((*data)[j]);
            }
            return out;
          })
          .Case<UnsqueezeOp, SqueezeOp, CastOp, ReshapeOp>(
              [&](Operation *op) -> std::optional<SmallVector<int64_t>> {
                auto in = op->getOperand(0);
                auto inType = cast<RankedTensorType>(in.getType());
                if (!inType.hasStaticShape() ||
                    inType.getNumElements() != n ||
                    !inType.getElementType().isInteger())
                  return std::nullopt;
                return getPartialIntValues(in);
              })
          .Case([&](SliceOp op) -> std::optional<SmallVector<int64_t>> {
            auto data = getPartialIntValues(op.getInput());
            auto starts = constantInts(op.getStarts());
            auto ends = constantInts(op.getEnds());
            if (!data || !starts || !ends || starts->size() != 1 ||
                ends->size() != 1 || op.getSteps()[0] != 1)
              return std::nullopt;
            int64_t d = data->size();
            int64_t s = (*starts)[0] < 0 ? (*starts)[0] + d : (*starts)[0];
            int64_t e = (*ends)[0] < 0 ? (*ends)[0] + d : (*ends)[0];
            s = std::clamp<int64_t>(s, 0, d);
            e = std::clamp<int64_t>(e, 0, d);
            if (e - s != n)
              return std::nullopt;
            return SmallVector<int64_t>(ArrayRef(*data).slice(s, n));
          })
          .Case<AddOp, SubOp, MulOp, DivOp, ModOp, EqualOp>(
              [&](Operation *op) -> std::optional<SmallVector<int64_t>> {
                auto a = getPartialIntValues(op->getOperand(0));
                auto b = getPartialIntValues(op->getOperand(1));
                if (!a || !b)
                  return std::nullopt;
                SmallVector<int64_t> out;
                for (int64_t i = 0; i < n; ++i) {
                  int64_t x = broadcastAt(*a, i), y = broadcastAt(*b, i);
                  if (x == kDyn || y == kDyn) {
                    out.push_back(kDyn);
                    continue;
                  }
                  if (isa<EqualOp>(op))
                    out.push_back(x == y);
                  else if (isa<AddOp>(op))
                    out.push_back(x + y);
                  else if (isa<SubOp>(op))
                    out.push_back(x - y);
                  else if (isa<MulOp>(op))
                    out.push_back(x * y);
                  else if (y == 0)
                    out.push_back(kDyn);
                  else if (isa<DivOp>(op))
                    out.push_back(x / y);
                  else if (cast<ModOp>(op).getFmod() || x % y == 0 ||
                           (x % y < 0) == (y < 0))
                    out.push_back(x % y);
                  else
                    out.push_back(x % y + y); // Python semantics
                }
                return out;
              })
          .Case([&](ConstantOfShapeOp op) -> std::optional<SmallVector<int64_t>> {
            auto value = dyn_cast<IntegerAttr>(op.getValue());
            if (!value)
              return std::nullopt;
            int64_t x = value.getType().isInteger(1)
                            ? (int64_t)value.getValue().getZExtValue()
                            : value.getValue().getSExtValue();
            return SmallVector<int64_t>(n, x);
          })
          .Case([&](WhereOp op) -> std::optional<SmallVector<int64_t>> {
            auto c = getPartialIntValues(op.getCondition());
            auto a = getPartialIntValues(op.getX());
            auto b = getPartialIntValues(op.getY());
            if (!c || !a || !b)
              return std::nullopt;
            SmallVector<int64_t> out;
            for (int64_t i = 0; i < n; ++i) {
              int64_t k = broadcastAt(*c, i);
              out.push_back(k == kDyn ? kDyn
                            : k       ? broadcastAt(*a, i)
                                      : broadcastAt(*b, i));
            }
            return out;
          })
          .Default([](Operation *) { return std::nullopt; });
  if (!result || (int64_t)result->size() != n)
    return unknown;
  return result;
}

namespace {
using Shape = SmallVector<int64_t>;

/// Collects the inference of one op; `fail` records the first error.
struct Inferer {
  std::string &error;
  SmallVector<Type> types;

  LogicalResult fail(const Twine &msg) {
    error = msg.str();
    return failure();
  }
  static RankedTensorType tensorType(Value v) {
    return cast<RankedTensorType>(v.getType());
  }
  void push(ArrayRef<int64_t> shape, Type elem) {
    types.push_back(RankedTensorType::get(shape, elem));
  }

  LogicalResult broadcast(ArrayRef<int64_t> a, ArrayRef<int64_t> b, Shape &out) {
    size_t r = std::max(a.size(), b.size());
    out.assign(r, 1);
    for (size_t i = 0; i < r; ++i) {
      int64_t x = i < r - a.size() ? 1 : a[i - (r - a.size())];
      int64_t y = i < r - b.size() ? 1 : b[i - (r - b.size())];
      if (x == 1)
        out[i] = y;
      else if (y == 1)
        out[i] = x;
      else if (x == kDyn)
        out[i] = y;
      else if (y == kDyn || x == y)
        out[i] = x;
      else
        return fail(llvm::formatv("shapes cannot be broadcast: dim {0} is {1} "
                                  "on one side and {2} on the other",
                                  i, x, y));
    }
    return success();
  }

  LogicalResult infer(Operation *op);
};
} // namespace

LogicalResult Inferer::infer(Operation *op) {
  auto sameElem = [&](Value a, Value b) -> LogicalResult {
    if (tensorType(a).getElementType() != tensorType(b).getElementType())
      return fail(llvm::formatv("operand element types differ ({0} vs {1})",
                                tensorType(a).getElementType(),
                                tensorType(b).getElementType()));
    return success();
  };
  // A 1-D scale or bias over a normalized (or output) dim of size `n`.
  auto normParam = [&](Value p, int64_t n) -> LogicalResult {
    auto t = tensorType(p);
    if (t.getRank() != 1)
      return fail("scale and bias must be 1-D");
    int64_t d = t.getDimSize(0);
    if (d != kDyn && n != kDyn && d != n)
      return fail(llvm::formatv("a 1-D parameter has {0} entries for a dim of "
                                "{1}", d, n));
    return success();
  };
  auto normAxes = [&](ArrayRef<int64_t> axes, int64_t rank,
                      SmallVector<int64_t> &out) -> LogicalResult {
    for (int64_t a : axes) {
      int64_t n = normalizeAxis(a, rank);
      if (n < 0)
        return fail(llvm::formatv("axis {0} is out of range for rank {1}", a,
                                  rank));
      if (llvm::is_contained(out, n))
        return fail(llvm::formatv("axis {0} is repeated", a));
      out.push_back(n);
    }
    return success();
  };

  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](ConstantOp c) {
        types.push_back(c.getValue().getType());
        return success();
      })
      .Case<AddOp, SubOp, MulOp, DivOp, MinOp, MaxOp, PowOp, EqualOp, LessOp,
            GreaterOp, AndOp, OrOp, ModOp>([&](Operation *op) -> LogicalResult {
        auto a = tensorType(op->getOperand(0)), b = tensorType(op->getOperand(1));
        if (!isa<PowOp>(op) && failed(sameElem(op->getOperand(0), op->getOperand(1))))
          return failure();
        Type elem = a.getElementType();
        if (isa<AndOp, OrOp>(op) && !elem.isInteger(1))
          return fail("logical ops take i1 operands");
        if (auto mod = dyn_cast<ModOp>(op))
          if (isa<FloatType>(elem) && !mod.getFmod())
            return fail("floating-point mod needs fmod = true");
        if (isa<EqualOp, LessOp, GreaterOp>(op))
          elem = IntegerType::get(op->getContext(), 1);
        Shape out;
        if (failed(broadcast(a.getShape(), b.getShape(), out)))
          return failure();
        push(out, elem);
        return success();
      })
      .Case<SqrtOp, ReciprocalOp, ErfOp, TanhOp, ExpOp, LogOp, SinOp, CosOp,
            FloorOp, CeilOp, SigmoidOp>([&](Operation *op) -> LogicalResult {
        auto t = tensorType(op->getOperand(0));
        if (!isa<FloatType>(t.getElementType()))
          return fail("expects a floating-point operand");
        types.push_back(t);
        return success();
      })
      .Case<NegOp, AbsOp, ReluOp>([&](Operation *op) {
        types.push_back(op->getOperand(0).getType());
        return success();
      })
      .Case([&](IsNaNOp op) -> LogicalResult {
        auto t = tensorType(op.getInput());
        if (!isa<FloatType>(t.getElementType()))
          return fail("expects a floating-point operand");
        push(t.getShape(), IntegerType::get(op.getContext(), 1));
        return success();
      })
      .Case([&](NotOp op) -> LogicalResult {
        if (!tensorType(op.getInput()).getElementType().isInteger(1))
          return fail("expects an i1 operand");
        types.push_back(op.getInput().getType());
        return success();
      })
      .Case([&](CastOp op) {
        push(tensorType(op.getInput()).getShape(),
             cast<ShapedType>(op.getType()).getElementType());
        return success();
      })
      .Case([&](WhereOp op) -> LogicalResult {
        if (!tensorType(op.getCondition()).getElementType().isInteger(1))
          return fail("condition must be i1");
        if (failed(sameElem(op.getX(), op.getY())))
          return failure();
        Shape s1, s2;
        if (failed(broadcast(tensorType(op.getCondition()).getShape(),
                             tensorType(op.getX()).getShape(), s1)) ||
            failed(broadcast(s1, tensorType(op.getY()).getShape(), s2)))
          return failure();
        push(s2, tensorType(op.getX()).getElementType());
        return success();
      })
      .Case([&](SoftmaxOp op) -> LogicalResult {
        auto t = tensorType(op.getInput());
        if (normalizeAxis(op.getAxis(), t.getRank()) < 0)
          return fail("axis is out of range");
        types.push_back(t);
        return success();
      })
      .Case([&](LayerNormalizationOp op) -> LogicalResult {
        auto t = tensorType(op.getInput());
        if (normalizeAxis(op.getAxis(), t.getRank()) < 0)
          return fail("axis is out of range");
        if (!isa<FloatType>(t.getElementType()))
          return fail("expects a floating-point input");
        types.push_back(t);
        return success();
      })
      .Case<ReduceMeanOp, ReduceSumOp, ReduceMaxOp>(
          [&](Operation *op) -> LogicalResult {
            auto t = tensorType(op->getOperand(0));
            auto axesAttr = op->getAttrOfType<DenseI64ArrayAttr>("axes");
            bool keep = op->getAttrOfType<BoolAttr>("keepdims").getValue();
            SmallVector<int64_t> axes;
            if (failed(normAxes(axesAttr.asArrayRef(), t.getRank(), axes)))
              return failure();
            if (axes.empty())
              for (int64_t i = 0; i < t.getRank(); ++i)
                axes.push_back(i);
            Shape out;
            for (int64_t i = 0; i < t.getRank(); ++i) {
              if (!llvm::is_contained(axes, i))
                out.push_back(t.getDimSize(i));
              else if (keep)
                out.push_back(1);
            }
            push(out, t.getElementType());
            return success();
          })
      .Case([&](CumSumOp op) -> LogicalResult {
        auto t = tensorType(op.getInput());
        if (normalizeAxis(op.getAxis(), t.getRank()) < 0)
          return fail("axis is out of range");
        types.push_back(t);
        return success();
      })
      .Case([&](MatMulOp op) -> LogicalResult {
        auto a = tensorType(op.getLhs()), b = tensorType(op.getRhs());
        if (failed(sameElem(op.getLhs(), op.getRhs())))
          return failure();
        if (a.getRank() == 0 || b.getRank() == 0)
          return fail("matmul operands must have rank >= 1");
        Shape sa(a.getShape()), sb(b.getShape());
        bool vecA = sa.size() == 1, vecB = sb.size() == 1;
        if (vecA)
          sa.insert(sa.begin(), 1);
        if (vecB)
          sb.push_back(1);
        int64_t ka = sa.back(), kb = sb[sb.size() - 2];
        if (ka != kDyn && kb != kDyn && ka != kb)
          return fail(llvm::formatv("contraction dims differ: {0} vs {1}", ka,
                                    kb));
        Shape batch;
        if (failed(broadcast(ArrayRef(sa).drop_back(2),
                             ArrayRef(sb).drop_back(2), batch)))
          return failure();
        if (!vecA)
          batch.push_back(sa[sa.size() - 2]);
        if (!vecB)
          batch.push_back(sb.back());
        push(batch, a.getElementType());
        return success();
      })
      .Case([&](GatherOp op) -> LogicalResult {
        auto d = tensorType(op.getData()), i = tensorType(op.getIndices());
        if (!i.getElementType().isInteger(64) &&
            !i.getElementType().isInteger(32))
          return fail("indices must be i32 or i64");
        int64_t axis = normalizeAxis(op.getAxis(), d.getRank());
        if (axis < 0)
          return fail("axis is out of range");
        Shape out(d.getShape().take_front(axis));
        out.append(i.getShape().begin(), i.getShape().end());
        out.append(d.getShape().begin() + axis + 1, d.getShape().end());
        push(out, d.getElementType());
        return success();
      })
      .Case([&](GatherElementsOp op) -> LogicalResult {
        auto d = tensorType(op.getData()), i = tensorType(op.getIndices());
        if (!i.getElementType().isInteger(64) && !i.getElementType().isInteger(32))
          return fail("indices must be i32 or i64");
        if (d.getRank() != i.getRank())
          return fail("data and indices must have the same rank");
        if (normalizeAxis(op.getAxis(), d.getRank()) < 0)
          return fail("axis is out of range");
        push(i.getShape(), d.getElementType());
        return success();
      })
      .Case([&](GatherNDOp op) -> LogicalResult {
        auto d = tensorType(op.getData()), i = tensorType(op.getIndices());
        if (!i.getElementType().isInteger(64))
          return fail("indices must be i64");
        if (i.getRank() < 1 || i.isDynamicDim(i.getRank() - 1))
          return fail("the last dim of indices must be static");
        int64_t k = i.getDimSize(i.getRank() - 1);
        if (k < 1 || k > d.getRank())
          return fail("index tuples are longer than the data rank");
        Shape out(i.getShape().drop_back());
        out.append(d.getShape().begin() + k, d.getShape().end());
        push(out, d.getElementType());
        return success();
      })
      .Case([&](ReshapeOp op) -> LogicalResult {
        auto t = tensorType(op.getInput());
        auto s = tensorType(op.getShape());
        if (s.getRank() != 1 || s.isDynamicDim(0))
          return fail(llvm::formatv("shape must be a 1-D tensor of static length, got {0}", s));
        Shape out = *getPartialIntValues(op.getShape());
        int64_t minus = -1, knownProduct = 1;
        bool allKnown = true;
        // Input dims that a run-time entry provably copies (a 0, or a dim
        // read from the shape of a tensor with the same dim): the two cancel
        // out of the -1's equation. Exports write a head split as
        // view(*x.shape[:-1], -1, d): [B, S, 96] to [B, S, -1, 16] gives
        // -1 = 6 though B and S are not known.
        SmallVector<bool> copied(t.getRank(), false);
        auto copiesInputDim = [&](int64_t i) {
          std::optional<DimRef> src = shapeEntryDim(op.getShape(), i);
          for (int64_t j = 0; src && j < t.getRank(); ++j)
            if (!copied[j] && t.isDynamicDim(j) &&
                provablyEqualDims(src->value, src->index, op.getInput(), j)) {
              copied[j] = true;
              return true;
            }
          return false;
        };
        for (int64_t i = 0; i < (int64_t)out.size(); ++i) {
          int64_t &d = out[i];
          if (d == 0 && !op.getAllowzero()) {
            if (i >= t.getRank())
              return fail("a 0 in the shape has no input dim to copy");
            d = t.getDimSize(i);
            if (d == kDyn && !copied[i]) {
              copied[i] = true;
              continue;
            }
          }
          if (d == -1) {
            if (minus >= 0)
              return fail("the shape has more than one -1");
            minus = i;
            continue;
          }
          if (d == kDyn) {
            if (!copiesInputDim(i))
              allKnown = false;
          } else if (d < -1) {
            return fail(llvm::formatv("invalid dim {0} in shape", d));
          } else {
            knownProduct *= d;
          }
        }
        // The input dims no entry copies: all static, or the -1 stays
        // unknown.
        int64_t rest = 1;
        for (int64_t j = 0; j < t.getRank() && rest >= 0; ++j)
          if (!copied[j])
            rest = t.isDynamicDim(j) ? -1 : rest * t.getDimSize(j);
        if (minus >= 0) {
          out[minus] = kDyn;
          if (allKnown && rest >= 0 && knownProduct > 0 &&
              rest % knownProduct == 0)
            out[minus] = rest / knownProduct;
        } else if (allKnown && t.hasStaticShape() &&
                   knownProduct != t.getNumElements()) {
          return fail(llvm::formatv("cannot reshape {0} elements into {1}",
                                    t.getNumElements(), knownProduct));
        }
        push(out, t.getElementType());
        return success();
      })
      .Case([&](TransposeOp op) -> LogicalResult {
        auto t = tensorType(op.getInput());
        auto perm = op.getPerm();
        if ((int64_t)perm.size() != t.getRank())
          return fail("perm length must equal the rank");
        Shape out;
        SmallVector<bool> seen(t.getRank(), false);
        for (int64_t p : perm) {
          if (p < 0 || p >= t.getRank() || seen[p])
            return fail("perm is not a permutation");
          seen[p] = true;
          out.push_back(t.getDimSize(p));
        }
        push(out, t.getElementType());
        return success();
      })
      .Case([&](UnsqueezeOp op) -> LogicalResult {
        auto t = tensorType(op.getInput());
        int64_t r = t.getRank() + op.getAxes().size();
        SmallVector<int64_t> axes;
        if (failed(normAxes(op.getAxes(), r, axes)))
          return failure();
        Shape out;
        auto it = t.getShape().begin();
        for (int64_t i = 0; i < r; ++i)
          out.push_back(llvm::is_contained(axes, i) ? 1 : *it++);
        push(out, t.getElementType());
        return success();
      })
      .Case([&](SqueezeOp op) -> LogicalResult {
        auto t = tensorType(op.getInput());
        SmallVector<int64_t> axes;
        if (failed(normAxes(op.getAxes(), t.getRank(), axes)))
          return failure();
        Shape out;
        for (int64_t i = 0; i < t.getRank(); ++i) {
          if (!llvm::is_contained(axes, i)) {
            out.push_back(t.getDimSize(i));
            continue;
          }
          if (t.getDimSize(i) != 1 && t.getDimSize(i) != kDyn)
            return fail(llvm::formatv("cannot squeeze dim {0} of size {1}", i,
                                      t.getDimSize(i)));
        }
        push(out, t.getElementType());
        return success();
      })
      .Case([&](ConcatOp op) -> LogicalResult {
        if (op.getInputs().empty())
          return fail("needs at least one input");
        auto first = tensorType(op.getInputs()[0]);
        int64_t axis = normalizeAxis(op.getAxis(), first.getRank());
        if (axis < 0)
          return fail("axis is out of range");
        Shape out(first.getShape());
        out[axis] = 0;
        for (Value in : op.getInputs()) {
          auto t = tensorType(in);
          if (t.getRank() != first.getRank() ||
              t.getElementType() != first.getElementType())
            return fail("inputs must share rank and element type");
          for (int64_t i = 0; i < t.getRank(); ++i) {
            int64_t d = t.getDimSize(i);
            if (i == axis) {
              out[i] = (out[i] == kDyn || d == kDyn) ? kDyn : out[i] + d;
            } else if (out[i] == kDyn) {
              out[i] = d;
            } else if (d != kDyn && d != out[i]) {
              return fail(llvm::formatv("dim {0} differs between inputs", i));
            }
          }
        }
        push(out, first.getElementType());
        return success();
      })
      .Case([&](SliceOp op) -> LogicalResult {
        auto t = tensorType(op.getInput());
        auto axesAttr = op.getAxes();
        auto steps = op.getSteps();
        auto starts = getPartialIntValues(op.getStarts());
        auto ends = getPartialIntValues(op.getEnds());
        if (!starts || !ends || starts->size() != axesAttr.size() ||
            ends->size() != axesAttr.size() || steps.size() != axesAttr.size())
          return fail("starts, ends, axes and steps must have one entry per "
                      "sliced axis");
        SmallVector<int64_t> axes;
        if (failed(normAxes(axesAttr, t.getRank(), axes)))
          return failure();
        Shape out(t.getShape());
        for (size_t k = 0; k < axes.size(); ++k) {
          int64_t dim = t.getDimSize(axes[k]), step = steps[k];
          if (step == 0)
            return fail("steps must be non-zero");
          int64_t s = (*starts)[k], e = (*ends)[k];
          if (dim == kDyn || s == kDyn || e == kDyn) {
            out[axes[k]] = kDyn;
            continue;
          }
          if (s < 0)
            s += dim;
          if (e < 0)
            e += dim;
          if (step > 0) {
            s = std::clamp<int64_t>(s, 0, dim);
            e = std::clamp<int64_t>(e, 0, dim);
            out[axes[k]] = std::max<int64_t>(0, (e - s + step - 1) / step);
          } else {
            s = std::clamp<int64_t>(s, 0, dim - 1);
            e = std::clamp<int64_t>(e, -1, dim - 1);
            out[axes[k]] = std::max<int64_t>(0, (s - e + (-step) - 1) / -step);
          }
        }
        push(out, t.getElementType());
        return success();
      })
      .Case([&](ExpandOp op) -> LogicalResult {
        auto t = tensorType(op.getInput());
        auto s = tensorType(op.getShape());
        if (s.getRank() != 1 || s.isDynamicDim(0))
          return fail(llvm::formatv("shape must be a 1-D tensor of static length, got {0}", s));
        Shape target = *getPartialIntValues(op.getShape());
        // An unknown target dim broadcasts against a static input dim d != 1
        // only if it is 1 or d, so the result is d.
        Shape out;
        size_t r = std::max<size_t>(target.size(), t.getRank());
        for (size_t i = 0; i < r; ++i) {
          int64_t x = i < r - t.getRank() ? 1 : t.getDimSize(i - (r - t.getRank()));
          int64_t y = i < r - target.size() ? 1 : target[i - (r - target.size())];
          if (y == kDyn)
            out.push_back(x != 1 && x != kDyn ? x : kDyn);
          else if (y == 1)
            out.push_back(x);
          else if (x == 1 || x == kDyn || x == y)
            out.push_back(y);
          else
            return fail(llvm::formatv("cannot expand dim of size {0} to {1}",
                                      x, y));
        }
        push(out, t.getElementType());
        return success();
      })
      .Case([&](ShapeOp op) {
        auto [s, e] = shapeOpRange(op);
        push({e - s},
             IntegerType::get(op.getContext(), 64));
        return success();
      })
      .Case([&](ConstantOfShapeOp op) -> LogicalResult {
        auto s = tensorType(op.getShape());
        if (s.getRank() != 1 || s.isDynamicDim(0))
          return fail(llvm::formatv("shape must be a 1-D tensor of static length, got {0}", s));
        Shape out = *getPartialIntValues(op.getShape());
        for (int64_t d : out)
          if (d < 0 && d != kDyn)
            return fail("shape has a negative dim");
        push(out, op.getValue().getType());
        return success();
      })
      .Case([&](RangeOp op) -> LogicalResult {
        for (Value v : op->getOperands())
          if (tensorType(v).getRank() != 0)
            return fail("start, limit and delta must be scalars");
        if (failed(sameElem(op.getStart(), op.getLimit())) ||
            failed(sameElem(op.getStart(), op.getDelta())))
          return failure();
        Type elem = tensorType(op.getStart()).getElementType();
        int64_t n = kDyn;
        auto constScalar = [&](Value v) -> std::optional<double> {
          DenseElementsAttr attr;
          if (!matchPattern(v, m_Constant(&attr)))
            return std::nullopt;
          if (isa<FloatType>(elem))
            return (*attr.getValues<APFloat>().begin()).convertToDouble();
          return (double)(*attr.getValues<APInt>().begin()).getSExtValue();
        };
        auto st = constScalar(op.getStart()), li = constScalar(op.getLimit()),
             de = constScalar(op.getDelta());
        if (de && *de == 0)
          return fail("delta is 0");
        if (st && li && de)
          n = std::max<int64_t>(0, (int64_t)std::ceil((*li - *st) / *de));
        push({n}, elem);
        return success();
      })
      .Case([&](KvCacheUpdateOp op) -> LogicalResult {
        auto past = tensorType(op.getPast()), upd = tensorType(op.getUpdate());
        auto lens = tensorType(op.getPastLengths()),
             rows = tensorType(op.getRows());
        if (past.getRank() != 4 || upd.getRank() != 4)
          return fail("past and update must be [B, heads, seq, dim]");
        if (failed(sameElem(op.getPast(), op.getUpdate())))
          return fail("past and update must share an element type");
        if (lens.getRank() != 1 || rows.getRank() != 0)
          return fail("past_lengths must be 1-D ([B]) and rows 0-D");
        Shape out;
        for (int64_t i : {0, 1, 3}) {
          int64_t a = past.getDimSize(i), b = upd.getDimSize(i);
          if (a != kDyn && b != kDyn && a != b)
            return fail(llvm::formatv(
                "past and update differ in dim {0} ({1} vs {2})", i, a, b));
          out.push_back(a != kDyn ? a : b);
        }
        int64_t batch = lens.getDimSize(0);
        if (batch != kDyn && out[0] != kDyn && batch != out[0])
          return fail(
              llvm::formatv("past_lengths has {0} entries for a batch of {1}",
                            batch, out[0]));
        int64_t t = kDyn;
        if (auto v = getPartialIntValues(op.getRows()); v && v->size() == 1)
          t = (*v)[0];
        if (t != kDyn && t < 0)
          return fail("rows must not be negative");
        out.insert(out.begin() + 2, t);
        push(out, past.getElementType());
        return success();
      })
      .Case([&](ToeplitzOp op) -> LogicalResult {
        auto t = tensorType(op.getInput());
        auto s = tensorType(op.getSizes());
        if (t.getRank() < 1)
          return fail("input must have rank >= 1");
        if (s.getRank() != 1 || s.getDimSize(0) != 2)
          return fail("sizes must be a 2-entry 1-D tensor (rows, cols)");
        Shape out(t.getShape().drop_back());
        int64_t rows = kDyn, cols = kDyn;
        if (auto v = getPartialIntValues(op.getSizes())) {
          rows = (*v)[0];
          cols = (*v)[1];
        }
        if ((rows != kDyn && rows < 0) || (cols != kDyn && cols < 0))
          return fail("sizes must not be negative");
        int64_t l = t.getShape().back();
        if (rows != kDyn && cols != kDyn && l != kDyn &&
            l != std::max<int64_t>(rows + cols - 1, 0))
          return fail(llvm::formatv(
              "the input's last dim is {0}, not rows + cols - 1 = {1}", l,
              rows + cols - 1));
        out.push_back(rows);
        out.push_back(cols);
        push(out, t.getElementType());
        return success();
      })
      .Case([&](TriluOp op) -> LogicalResult {
        auto t = tensorType(op.getInput());
        if (t.getRank() < 2)
          return fail("input must have rank >= 2");
        types.push_back(t);
        return success();
      })
      .Case([&](LayerNormOp op) -> LogicalResult {
        auto t = tensorType(op.getInput());
        if (!isa<FloatType>(t.getElementType()) || t.getRank() < 1)
          return fail("expects a floating-point input of rank >= 1");
        Shape sum(t.getShape());
        if (Value r = op.getResidual()) {
          if (failed(sameElem(op.getInput(), r)) ||
              failed(broadcast(t.getShape(), tensorType(r).getShape(), sum)))
            return failure();
        }
        if (failed(normParam(op.getScale(), sum.back())) ||
            (op.getBias() && failed(normParam(op.getBias(), sum.back()))))
          return failure();
        push(sum, t.getElementType());
        if (op.getSum())
          push(sum, t.getElementType());
        return success();
      })
      .Case([&](RmsNormOp op) -> LogicalResult {
        auto t = tensorType(op.getInput());
        if (!isa<FloatType>(t.getElementType()) || t.getRank() < 1)
          return fail("expects a floating-point input of rank >= 1");
        if (failed(normParam(op.getScale(), t.getShape().back())))
          return failure();
        types.push_back(t);
        return success();
      })
      .Case<GeluOp, SiluOp>([&](Operation *op) -> LogicalResult {
        auto t = tensorType(op->getOperand(0));
        if (!isa<FloatType>(t.getElementType()))
          return fail("expects a floating-point operand");
        if (auto g = dyn_cast<GeluOp>(op))
          if (g.getApproximate() != "none" && g.getApproximate() != "tanh")
            return fail("approximate must be 'none' or 'tanh'");
        types.push_back(t);
        return success();
      })
      .Case([&](RotaryEmbeddingOp op) -> LogicalResult {
        auto t = tensorType(op.getInput());
        if (!isa<FloatType>(t.getElementType()) || t.getRank() < 1)
          return fail("expects a floating-point input of rank >= 1");
        if (failed(sameElem(op.getInput(), op.getCos())) ||
            failed(sameElem(op.getInput(), op.getSin())))
          return failure();
        int64_t r = op.getRotaryDim(), d = t.getShape().back();
        if (r <= 0 || r % 2 != 0 || (d != kDyn && r > d))
          return fail(llvm::formatv(
              "rotary_dim {0} must be even, positive and at most the last "
              "dim ({1})",
              r, d));
        Shape rotated(t.getShape());
        rotated.back() = r;
        for (Value cs : {op.getCos(), op.getSin()}) {
          auto ct = tensorType(cs);
          if (ct.getRank() < 1 ||
              (ct.getShape().back() != kDyn && ct.getShape().back() != r))
            return fail(llvm::formatv(
                "cos and sin must have rotary_dim ({0}) entries in the last "
                "dim",
                r));
          Shape b;
          if (failed(broadcast(rotated, ct.getShape(), b)))
            return failure();
          bool widens = b.size() != rotated.size();
          for (size_t i = 0; !widens && i < b.size(); ++i)
            widens = rotated[i] != kDyn && b[i] != kDyn && b[i] != rotated[i];
          if (widens)
            return fail("cos and sin must broadcast to the input, not widen "
                        "it");
        }
        types.push_back(t);
        return success();
      })
      .Case([&](LinearOp op) -> LogicalResult {
        auto x = tensorType(op.getInput()), w = tensorType(op.getWeight());
        if (!isa<FloatType>(x.getElementType()) || x.getRank() < 1)
          return fail("expects a floating-point input of rank >= 1");
        if (failed(sameElem(op.getInput(), op.getWeight())))
          return failure();
        if (w.getRank() != 2)
          return fail("weight must be a [K, N] matrix");
        int64_t k = x.getShape().back(), wk = w.getDimSize(0);
        if (k != kDyn && wk != kDyn && k != wk)
          return fail(llvm::formatv("input has K = {0} but weight has {1} rows",
                                    k, wk));
        if (!llvm::is_contained({"none", "relu", "gelu", "gelu_tanh", "silu"},
                                op.getActivation()))
          return fail("unknown activation '" + op.getActivation() + "'");
        Shape out(x.getShape());
        out.back() = w.getDimSize(1);
        if (op.getBias() && failed(normParam(op.getBias(), out.back())))
          return failure();
        if (op.getGated() && out.back() != kDyn) {
          if (out.back() % 2)
            return fail(llvm::formatv("a gated linear needs an even number "
                                      "of weight columns, not {0}",
                                      out.back()));
          out.back() /= 2;
        }
        if (Value r = op.getResidual()) {
          Shape b;
          if (failed(sameElem(op.getInput(), r)) ||
              failed(broadcast(out, tensorType(r).getShape(), b)))
            return failure();
          if (b.size() != out.size())
            return fail("the residual must not add dims to the result");
          out = b;
        }
        push(out, x.getElementType());
        return success();
      })
      .Case([&](AttentionOp op) -> LogicalResult {
        auto q = tensorType(op.getQuery()), k = tensorType(op.getKey()),
             v = tensorType(op.getValue());
        if (q.getRank() != 4 || k.getRank() != 4 || v.getRank() != 4)
          return fail("query, key and value must be [B, heads, seq, dim]");
        if (!isa<FloatType>(q.getElementType()) ||
            failed(sameElem(op.getQuery(), op.getKey())) ||
            failed(sameElem(op.getQuery(), op.getValue())))
          return fail("query, key and value must share a float element type");
        auto same = [](int64_t a, int64_t b) {
          return a == kDyn || b == kDyn || a == b;
        };
        if (!same(q.getDimSize(3), k.getDimSize(3)))
          return fail("query and key head dims differ");
        if (!same(k.getDimSize(2), v.getDimSize(2)) ||
            !same(k.getDimSize(1), v.getDimSize(1)))
          return fail("key and value disagree on heads or length");
        int64_t h = q.getDimSize(1), hkv = k.getDimSize(1);
        if (h != kDyn && hkv != kDyn && (hkv == 0 || h % hkv != 0))
          return fail(llvm::formatv(
              "{0} query heads are not a multiple of {1} key/value heads", h,
              hkv));
        for (Value m : op.getMasks()) {
          Shape scores{q.getDimSize(0), h, q.getDimSize(2), k.getDimSize(2)};
          Shape b;
          if (tensorType(m).getRank() > 4 ||
              failed(broadcast(scores, tensorType(m).getShape(), b)))
            return fail("the mask does not broadcast to [B, H, Sq, Sk]");
          if (failed(sameElem(op.getQuery(), m)))
            return failure();
        }
        if (!llvm::is_contained({"unselected", "materialized",
                                 "memory_efficient", "by_length"},
                                op.getAlgorithm()))
          return fail("unknown algorithm '" + op.getAlgorithm() + "'");
        if (op.getKvBlock() <= 0)
          return fail("kv_block must be positive");
        push({q.getDimSize(0), h, q.getDimSize(2), v.getDimSize(3)},
             q.getElementType());
        return success();
      })
      .Default([&](Operation *op) {
        return fail("no shape rule for " + op->getName().getStringRef());
      });
}

FailureOr<SmallVector<Type>> inferResultTypes(Operation *op,
                                              std::string &error) {
  for (Value v : op->getOperands())
    if (!isa<RankedTensorType>(v.getType())) {
      error = "operands must be ranked tensors";
      return failure();
    }
  Inferer inf{error, {}};
  if (failed(inf.infer(op)))
    return failure();
  return inf.types;
}

LogicalResult verifyInferredTypes(Operation *op) {
  std::string error;
  auto inferred = inferResultTypes(op, error);
  if (failed(inferred))
    return op->emitOpError(error);
  for (auto [actual, expected] : llvm::zip(op->getResultTypes(), *inferred))
    if (!areCompatible(actual, expected))
      return op->emitOpError() << "result type " << actual
                               << " is incompatible with the inferred type "
                               << expected;
  return success();
}

} // namespace transfuse::transformer
