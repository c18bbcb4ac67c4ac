//===- FusionUtils.cpp - matching helpers shared by the fusion passes -----===//
#include "passes/FusionUtils.h"

#include "dialects/transformer/TransformerDialect.h"

#include "mlir/IR/BuiltinAttributes.h"
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
