//===- FuseActivations.cpp - GELU and SiLU subgraphs to gelu / silu -------===//
//
// Exporters spell GELU many ways (erf or tanh, x/sqrt2 or x*0.7071, the 0.5
// on either side, BLOOM's factored polynomial). Instead of one pattern per
// spelling, the pattern grows the expression around an erf/tanh/sigmoid that
// depends on one tensor x and scalar constants only, evaluates it at sample
// points, and compares with the known activations.
//
//===----------------------------------------------------------------------===//
#include "passes/FusionUtils.h"
#include "passes/Passes.h"

#include "llvm/ADT/DenseMap.h"

#include <cmath>

namespace transfuse {
#define GEN_PASS_DEF_FUSEACTIVATIONS
#include "passes/Passes.h.inc"
} // namespace transfuse

using namespace mlir;
using namespace transfuse;
using namespace transfuse::fusion;
using namespace transfuse::transformer;

namespace {

bool isScalarwise(Operation *op) {
  return isa<AddOp, SubOp, MulOp, DivOp, PowOp, NegOp, SqrtOp, ReciprocalOp,
             ErfOp, TanhOp, SigmoidOp, ExpOp>(op);
}

/// The expression of one tensor and scalar constants rooted at some value.
class Expression {
public:
  /// The unique non-scalar tensor `v` is computed from, through scalarwise
  /// ops; null when `v` is scalar-only, `v` itself when it mixes two tensors.
  Value leafOf(Value v) {
    auto it = leaf_.find(v);
    if (it != leaf_.end())
      return it->second;
    Value result = v;
    if (scalarValue(v)) {
      result = nullptr;
    } else if (Operation *op = v.getDefiningOp();
               op && isScalarwise(op) &&
               op->getResult(0).getType() == resultTypeOf(op)) {
      Value l;
      bool mixed = false;
      for (Value o : op->getOperands()) {
        Value ol = leafOf(o);
        if (ol && l && ol != l)
          mixed = true;
        if (ol)
          l = ol;
      }
      result = mixed ? v : l;
    }
    leaf_[v] = result;
    return result;
  }

  /// Evaluates `v` with its leaf set to `x`.
  double eval(Value v, Value leaf, double x) {
    if (v == leaf)
      return x;
    if (auto s = scalarValue(v))
      return *s;
    Operation *op = v.getDefiningOp();
    auto a = [&](unsigned i) { return eval(op->getOperand(i), leaf, x); };
    if (isa<AddOp>(op))
      return a(0) + a(1);
    if (isa<SubOp>(op))
      return a(0) - a(1);
    if (isa<MulOp>(op))
      return a(0) * a(1);
    if (isa<DivOp>(op))
      return a(0) / a(1);
    if (isa<PowOp>(op))
      return std::pow(a(0), a(1));
    if (isa<NegOp>(op))
      return -a(0);
    if (isa<SqrtOp>(op))
      return std::sqrt(a(0));
    if (isa<ReciprocalOp>(op))
      return 1 / a(0);
    if (isa<ErfOp>(op))
      return std::erf(a(0));
    if (isa<TanhOp>(op))
      return std::tanh(a(0));
    if (isa<SigmoidOp>(op))
      return 1 / (1 + std::exp(-a(0)));
    if (isa<ExpOp>(op))
      return std::exp(a(0));
    return NAN;
  }

  /// The ops between `leaf` and `root` (inclusive of root).
  void collect(Value v, Value leaf, SmallVectorImpl<Operation *> &ops) {
    if (v == leaf || scalarValue(v))
      return;
    Operation *op = v.getDefiningOp();
    if (llvm::is_contained(ops, op))
      return;
    for (Value o : op->getOperands())
      collect(o, leaf, ops);
    ops.push_back(op);
  }

private:
  // Scalar operands must not broadcast the tensor to a bigger shape.
  static Type resultTypeOf(Operation *op) {
    for (Value o : op->getOperands())
      if (!scalarValue(o))
        return o.getType();
    return op->getResult(0).getType();
  }
  llvm::DenseMap<Value, Value> leaf_;
};

double geluErf(double x) {
  return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
}
double geluTanh(double x) {
  return 0.5 * x *
         (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}
double silu(double x) { return x / (1 + std::exp(-x)); }

enum class Kind { None, GeluErf, GeluTanh, Silu };

Kind classify(Expression &e, Value root, Value leaf) {
  static const double samples[] = {-4.0, -2.5, -1.1, -0.3, 0.0,
                                   0.2,  0.7,  1.6,  3.3,  5.0};
  auto matches = [&](double (*f)(double)) {
    for (double x : samples) {
      double got = e.eval(root, leaf, x), want = f(x);
      if (!(std::abs(got - want) <= 1e-5 * (1 + std::abs(want))))
        return false;
    }
    return true;
  };
  if (matches(geluErf))
    return Kind::GeluErf;
  if (matches(geluTanh))
    return Kind::GeluTanh;
  if (matches(silu))
    return Kind::Silu;
  return Kind::None;
}

template <typename AnchorOp>
struct FuseActivation : OpRewritePattern<AnchorOp> {
  using OpRewritePattern<AnchorOp>::OpRewritePattern;
  LogicalResult matchAndRewrite(AnchorOp anchor,
                                PatternRewriter &rw) const override {
    Expression e;
    Value leaf = e.leafOf(anchor.getInput());
    if (!leaf)
      return rw.notifyMatchFailure(anchor, "its input is a constant");
    // Grow upwards while the single user only combines this expression with
    // the same tensor and scalars.
    SmallVector<Value> roots{anchor.getResult()};
    for (Value r = anchor.getResult();;) {
      Operation *u = singleUser(r);
      if (!u || !isScalarwise(u) || e.leafOf(u->getResult(0)) != leaf)
        break;
      r = u->getResult(0);
      roots.push_back(r);
    }
    for (Value root : llvm::reverse(roots)) {
      Kind kind = classify(e, root, leaf);
      if (kind == Kind::None)
        continue;
      SmallVector<Operation *> ops;
      e.collect(root, leaf, ops);
      Location loc = fusedLocOf(ops);
      Value fused;
      if (kind == Kind::Silu)
        fused = SiluOp::create(rw, loc, root.getType(), leaf);
      else
        fused = GeluOp::create(
            rw, loc, root.getType(), leaf,
            rw.getStringAttr(kind == Kind::GeluErf ? "none" : "tanh"));
      rw.replaceAllUsesWith(root, fused);
      return success();
    }
    return rw.notifyMatchFailure(anchor, [&](Diagnostic &d) {
      d << "the largest expression of one tensor and scalars around it (up "
           "to node '"
        << nodeName(roots.back().getDefiningOp())
        << "') computes neither GELU (erf or tanh) nor SiLU";
    });
  }
};

struct FuseActivationsPass
    : transfuse::impl::FuseActivationsBase<FuseActivationsPass> {
  using FuseActivationsBase::FuseActivationsBase;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseActivation<ErfOp>, FuseActivation<TanhOp>,
                 FuseActivation<SigmoidOp>>(&getContext());
    if (failed(applyFusionPatterns(
            getOperation(), std::move(patterns), explain, "gelu or silu",
            [](Operation *op) { return isa<ErfOp, TanhOp, SigmoidOp>(op); })))
      signalPassFailure();
  }
};

} // namespace
