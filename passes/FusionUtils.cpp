//===- FusionUtils.cpp - matching helpers shared by the fusion passes -----===//
#include "passes/FusionUtils.h"

#include "dialects/transformer/TransformerDialect.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SetVector.h"

#include <cmath>

using namespace mlir;
using namespace transfuse::transformer;

namespace transfuse::fusion {

std::optional<double> scalarValue(Value v) {
  while (auto c = v.getDefiningOp<CastOp>())
    v = c.getInput();
  auto cst = v.getDefiningOp<ConstantOp>();
  if (!cst)
    return std::nullopt;
  auto attr = dyn_cast<DenseElementsAttr>(cst.getValue());
  if (!attr || attr.getNumElements() != 1)
    return std::nullopt;
  Type elem = attr.getElementType();
  if (isa<FloatType>(elem))
    return (*attr.getValues<APFloat>().begin()).convertToDouble();
  if (elem.isInteger(1))
    return std::nullopt;
  if (isa<IntegerType>(elem))
    return (double)(*attr.getValues<APInt>().begin()).getSExtValue();
  return std::nullopt;
}

bool isScalar(Value v, double x) {
  auto s = scalarValue(v);
  return s && std::abs(*s - x) <= 1e-6 * std::max(1.0, std::abs(x));
}

std::string nodeName(Operation *op) {
  auto names = onnxNodeNames(op->getLoc());
  if (names.empty())
    return op->getName().getStringRef().str();
  return names.front();
}

static void collectNames(Location loc, llvm::SetVector<StringRef> &out) {
  if (auto n = dyn_cast<NameLoc>(loc)) {
    out.insert(n.getName().getValue());
  } else if (auto f = dyn_cast<FusedLoc>(loc)) {
    for (Location l : f.getLocations())
      collectNames(l, out);
  } else if (auto c = dyn_cast<CallSiteLoc>(loc)) {
    collectNames(c.getCallee(), out);
  }
}

SmallVector<std::string> onnxNodeNames(Location loc) {
  llvm::SetVector<StringRef> names;
  collectNames(loc, names);
  SmallVector<std::string> out;
  for (StringRef n : names)
    out.push_back(n.str());
  return out;
}

Location fusedLocOf(ArrayRef<Operation *> ops) {
  SmallVector<Location> locs;
  for (Operation *op : ops)
    locs.push_back(op->getLoc());
  return FusedLoc::get(ops.front()->getContext(), locs);
}

Operation *singleUser(Value v) {
  if (!v.hasOneUse())
    return nullptr;
  return *v.getUsers().begin();
}

Value otherOperand(Operation *op, Value one) {
  if (op->getNumOperands() != 2)
    return nullptr;
  return op->getOperand(0) == one ? op->getOperand(1) : op->getOperand(0);
}

std::optional<LastAxisSlice> asLastAxisSlice(Value v) {
  auto s = v.getDefiningOp<SliceOp>();
  if (!s || s.getAxes().size() != 1)
    return std::nullopt;
  auto t = tensorType(s.getInput());
  int64_t rank = t.getRank(), dim = t.getShape().back();
  if (!isLastAxis(s.getAxes()[0], rank) || dim == ShapedType::kDynamic)
    return std::nullopt;
  auto start = scalarValue(s.getStarts()), end = scalarValue(s.getEnds());
  if (!start || !end || s.getSteps()[0] <= 0)
    return std::nullopt;
  auto clamp = [&](double x) {
    if (x < 0)
      x += dim;
    return (int64_t)std::min<double>(std::max<double>(x, 0), dim);
  };
  return LastAxisSlice{s.getInput(), clamp(*start), clamp(*end),
                       s.getSteps()[0]};
}

Value i64Element(OpBuilder &b, Location loc, int64_t v) {
  auto t = RankedTensorType::get({1}, b.getI64Type());
  return ConstantOp::create(b, loc, t, DenseElementsAttr::get(t, ArrayRef(v)));
}

Value concatConstants(OpBuilder &b, Location loc, ArrayRef<Value> parts) {
  auto first = cast<RankedTensorType>(parts.front().getType());
  int64_t rows =
      first.getNumElements() / std::max<int64_t>(1, first.getShape().back());
  if (!isa<FloatType>(first.getElementType()))
    return {};
  size_t elemBytes = first.getElementTypeBitWidth() / 8;
  SmallVector<std::vector<char>> bytes;
  int64_t width = 0;
  for (Value p : parts) {
    auto t = cast<RankedTensorType>(p.getType());
    if (t.getElementType() != first.getElementType() ||
        t.getShape().drop_back() != first.getShape().drop_back())
      return {};
    auto data = constantBytes(p);
    if (!data)
      return {};
    bytes.push_back(std::move(*data));
    width += t.getShape().back();
  }
  std::vector<char> out;
  out.reserve(rows * width * elemBytes);
  for (int64_t r = 0; r < rows; ++r)
    for (auto [p, data] : llvm::zip(parts, bytes)) {
      size_t rowBytes =
          cast<RankedTensorType>(p.getType()).getShape().back() * elemBytes;
      auto begin = data.begin() + r * rowBytes;
      out.insert(out.end(), begin, begin + rowBytes);
    }
  SmallVector<int64_t> shape(first.getShape());
  shape.back() = width;
  auto type = RankedTensorType::get(shape, first.getElementType());
  auto value = DenseResourceElementsAttr::get(
      type, "merged",
      HeapAsmResourceBlob::allocateAndCopyInferAlign<char>(
          ArrayRef<char>(out), /*dataIsMutable=*/false));
  return ConstantOp::create(b, loc, type, value);
}

namespace {
/// Remembers the last reason a pattern gave for not matching at a location.
struct FailureRecorder : RewriterBase::Listener {
  llvm::DenseMap<Location, std::string> reasons;
  void
  notifyMatchFailure(Location loc,
                     function_ref<void(Diagnostic &)> reasonCallback) override {
    Diagnostic diag(loc, DiagnosticSeverity::Remark);
    reasonCallback(diag);
    reasons[loc] = diag.str();
  }
};
} // namespace

LogicalResult applyFusionPatterns(func::FuncOp func,
                                  const FrozenRewritePatternSet &patterns,
                                  bool explain, StringRef what,
                                  function_ref<bool(Operation *)> isCandidate) {
  FailureRecorder recorder;
  GreedyRewriteConfig config;
  config.setUseTopDownTraversal(true);
  if (explain)
    config.setListener(&recorder);
  if (failed(applyPatternsGreedily(func, patterns, config)))
    return func.emitError("fusion patterns did not converge");
  if (!explain)
    return success();
  func.walk([&](Operation *op) {
    if (!isCandidate(op))
      return;
    auto it = recorder.reasons.find(op->getLoc());
    op->emitRemark() << "not fused as " << what << ": "
                     << (it == recorder.reasons.end() ? "no pattern applies"
                                                      : it->second);
  });
  return success();
}

} // namespace transfuse::fusion
