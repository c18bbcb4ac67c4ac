//===- FuseNorms.cpp - LayerNorm / RMSNorm / skip-LayerNorm fusion --------===//
#include "passes/FusionUtils.h"
#include "passes/Passes.h"

namespace transfuse {
#define GEN_PASS_DEF_FUSENORMS
#include "passes/Passes.h.inc"
} // namespace transfuse

using namespace mlir;
using namespace transfuse;
using namespace transfuse::fusion;
using namespace transfuse::transformer;

namespace {

/// True for a reduce_mean over the last axis only, keeping dims.
bool isLastAxisMean(ReduceMeanOp op) {
  int64_t rank = tensorType(op.getInput()).getRank();
  return op.getKeepdims() && op.getAxes().size() == 1 &&
         normalizeAxis(op.getAxes()[0], rank) == rank - 1;
}

/// A 1-D parameter matching the last dim of `like`.
bool isNormParam(Value p, Value like) {
  auto t = tensorType(p);
  int64_t n = tensorType(like).getShape().back();
  return t.getRank() == 1 &&
         t.getElementType() == tensorType(like).getElementType() &&
         (t.getDimSize(0) == n || t.getDimSize(0) == ShapedType::kDynamic ||
          n == ShapedType::kDynamic);
}

struct FuseNativeLayerNorm : OpRewritePattern<LayerNormalizationOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LayerNormalizationOp op,
                                PatternRewriter &rw) const override {
    int64_t rank = tensorType(op.getInput()).getRank();
    if (normalizeAxis(op.getAxis(), rank) != rank - 1)
      return rw.notifyMatchFailure(
          op, "it normalizes over more than the last axis");
    if (!isNormParam(op.getScale(), op.getInput()) ||
        (op.getBias() && !isNormParam(op.getBias(), op.getInput())))
      return rw.notifyMatchFailure(op, "its scale or bias is not 1-D");
    rw.replaceOpWithNewOp<LayerNormOp>(op, op.getType(), Type(), op.getInput(),
                                       Value(), op.getScale(), op.getBias(),
                                       op.getEpsilonAttr());
    return success();
  }
};

/// ReduceMean(square(d)) -> + eps -> sqrt -> d / . or d * reciprocal(.),
/// where d = x - ReduceMean(x) (LayerNorm) or d = x (RMSNorm), then an
/// optional 1-D scale and (LayerNorm) bias.
struct FuseDecomposedNorm : OpRewritePattern<ReduceMeanOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ReduceMeanOp var,
                                PatternRewriter &rw) const override {
    auto fail = [&](const Twine &why) {
      return rw.notifyMatchFailure(var, [&](Diagnostic &d) { d << why; });
    };
    if (!isLastAxisMean(var))
      return fail("it does not average the last axis with keepdims");
    SmallVector<Operation *> ops{var};
    // The square.
    Operation *sq = var.getInput().getDefiningOp();
    Value d;
    if (auto p = dyn_cast_or_null<PowOp>(sq); p && isScalar(p.getRhs(), 2.0))
      d = p.getLhs();
    else if (auto m = dyn_cast_or_null<MulOp>(sq);
             m && m.getLhs() == m.getRhs())
      d = m.getLhs();
    else
      return fail("its input is not a square (Pow 2 or x * x)");
    ops.push_back(sq);
    // Centered (LayerNorm) or not (RMSNorm).
    Value x = d;
    Operation *center = nullptr;
    if (auto sub = d.getDefiningOp<SubOp>())
      if (auto mean = sub.getRhs().getDefiningOp<ReduceMeanOp>();
          mean && mean.getInput() == sub.getLhs() && isLastAxisMean(mean)) {
        x = sub.getLhs();
        center = sub;
        ops.append({mean, sub});
      }
    if (tensorType(x) != tensorType(d))
      return fail("the normalized tensor is broadcast");
    // + eps, sqrt.
    auto addEps = dyn_cast_or_null<AddOp>(singleUser(var.getResult()));
    if (!addEps)
      return fail("the mean of squares is not followed by + epsilon alone");
    auto eps = scalarValue(otherOperand(addEps, var.getResult()));
    if (!eps)
      return fail("the epsilon added at node '" + nodeName(addEps) +
                  "' is not a scalar constant");
    auto sqrt = dyn_cast_or_null<SqrtOp>(singleUser(addEps.getResult()));
    if (!sqrt)
      return fail("variance + epsilon is not followed by Sqrt alone");
    ops.append({addEps, sqrt});
    // Divide, or multiply by the reciprocal.
    Operation *u = singleUser(sqrt.getResult());
    Value y;
    if (auto div = dyn_cast_or_null<DivOp>(u);
        div && div.getRhs() == sqrt.getResult()) {
      Value inv = div.getResult();
      if (div.getLhs() == d) {
        y = inv;
      } else if (isScalar(div.getLhs(), 1.0)) {
        if (auto mul = dyn_cast_or_null<MulOp>(singleUser(inv));
            mul && otherOperand(mul, inv) == d) {
          ops.push_back(mul);
          y = mul.getResult();
        }
      }
      ops.push_back(div);
    } else if (auto rec = dyn_cast_or_null<ReciprocalOp>(u)) {
      if (auto mul = dyn_cast_or_null<MulOp>(singleUser(rec.getResult()));
          mul && otherOperand(mul, rec.getResult()) == d) {
        ops.append({rec, mul});
        y = mul.getResult();
      }
    }
    if (!y)
      return fail("sqrt(variance + epsilon) at node '" + nodeName(sqrt) +
                  "' does not divide the normalized tensor");
    if (y.getType() != x.getType())
      return fail("the normalized result is broadcast");
    // Scale and bias.
    Value scale, bias;
    if (auto mul = dyn_cast_or_null<MulOp>(singleUser(y));
        mul && isNormParam(otherOperand(mul, y), x)) {
      scale = otherOperand(mul, y);
      ops.push_back(mul);
      y = mul.getResult();
      if (center)
        if (auto add = dyn_cast_or_null<AddOp>(singleUser(y));
            add && isNormParam(otherOperand(add, y), x)) {
          bias = otherOperand(add, y);
          ops.push_back(add);
          y = add.getResult();
        }
    }
    if (!scale) {
      auto t = tensorType(x);
      int64_t n = t.getShape().back();
      if (n == ShapedType::kDynamic)
        return fail("there is no scale and the normalized dim is dynamic");
      auto st = RankedTensorType::get({n}, t.getElementType());
      scale = ConstantOp::create(
          rw, var.getLoc(),
          DenseElementsAttr::get(st, rw.getFloatAttr(t.getElementType(), 1.0)));
    }
    rw.setInsertionPointAfterValue(y);
    Location loc = fusedLocOf(ops);
    auto epsAttr = rw.getF32FloatAttr(*eps);
    Value fused;
    if (center)
      fused = LayerNormOp::create(rw, loc, y.getType(), Type(), x, Value(),
                                  scale, bias, epsAttr)
                  .getResult();
    else
      fused = RmsNormOp::create(rw, loc, y.getType(), x, scale, epsAttr);
    rw.replaceAllUsesWith(y, fused);
    return success();
  }
};

/// layer_norm(a + b) -> layer_norm(a, residual b), keeping a + b as the
/// second result when something else uses it.
struct FuseSkipLayerNorm : OpRewritePattern<LayerNormOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LayerNormOp op,
                                PatternRewriter &rw) const override {
    if (op.getResidual())
      return failure();
    auto add = op.getInput().getDefiningOp<AddOp>();
    if (!add)
      return rw.notifyMatchFailure(op, "its input is not an Add");
    Value a = add.getLhs(), b = add.getRhs();
    if (a.getType() != add.getType() || b.getType() != add.getType() ||
        a.getDefiningOp<ConstantOp>() || b.getDefiningOp<ConstantOp>())
      return rw.notifyMatchFailure(
          op, "its input Add broadcasts or adds a constant (not a residual)");
    Block *block = add->getBlock();
    auto before = [&](Value v) {
      Operation *def = v.getDefiningOp();
      return !def || def->getBlock() != block || def->isBeforeInBlock(add);
    };
    if (!before(op.getScale()) || (op.getBias() && !before(op.getBias())))
      return rw.notifyMatchFailure(
          op, "its scale or bias is defined after the Add");
    bool sumUsed = !add->hasOneUse();
    rw.setInsertionPointAfter(add);
    auto fused =
        LayerNormOp::create(rw, fusedLocOf({add, op}), op.getResult().getType(),
                            sumUsed ? add.getType() : Type(), a, b,
                            op.getScale(), op.getBias(), op.getEpsilonAttr());
    rw.replaceOp(op, fused.getResult());
    if (sumUsed)
      rw.replaceAllUsesWith(add.getResult(), fused.getSum());
    return success();
  }
};

struct FuseNormsPass : transfuse::impl::FuseNormsBase<FuseNormsPass> {
  using FuseNormsBase::FuseNormsBase;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseNativeLayerNorm, FuseDecomposedNorm, FuseSkipLayerNorm>(
        &getContext());
    if (failed(applyFusionPatterns(
            getOperation(), std::move(patterns), explain,
            "layer_norm or rms_norm", [](Operation *op) {
              return isa<ReduceMeanOp, LayerNormalizationOp>(op);
            })))
      signalPassFailure();
  }
};

} // namespace
