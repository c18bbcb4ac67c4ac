//===- FuseLinear.cpp - MatMul by a matrix plus epilogue to `linear` ------===//
#include "passes/FusionUtils.h"
#include "passes/Passes.h"

namespace transfuse {
#define GEN_PASS_DEF_FUSELINEAR
#include "passes/Passes.h.inc"
} // namespace transfuse

using namespace mlir;
using namespace transfuse;
using namespace transfuse::fusion;
using namespace transfuse::transformer;

namespace {

/// The activation op `u` as a linear's `activation`, or "none".
StringRef activationOf(Operation *u) {
  if (isa<ReluOp>(u))
    return "relu";
  if (isa<SiluOp>(u))
    return "silu";
  if (auto g = dyn_cast<GeluOp>(u))
    return g.getApproximate() == "tanh" ? "gelu_tanh" : "gelu";
  return "none";
}

struct FuseMatMulEpilogue : OpRewritePattern<MatMulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MatMulOp mm,
                                PatternRewriter &rw) const override {
    auto wt = tensorType(mm.getRhs());
    if (wt.getRank() != 2)
      return rw.notifyMatchFailure(mm, "its right operand is not a 2-D matrix");
    if (tensorType(mm.getLhs()).getRank() < 2)
      return rw.notifyMatchFailure(mm, "its left operand is 1-D");
    if (!isa<FloatType>(wt.getElementType()))
      return rw.notifyMatchFailure(mm, "it is not a floating-point matmul");
    SmallVector<Operation *> ops{mm};
    Value y = mm.getResult();
    int64_t n = wt.getDimSize(1);
    // Bias: a 1-D [N] add.
    Value bias;
    if (auto add = dyn_cast_or_null<AddOp>(singleUser(y))) {
      Value b = otherOperand(add, y);
      auto bt = tensorType(b);
      if (bt.getRank() == 1 && add.getType() == y.getType() &&
          (bt.getDimSize(0) == n || bt.getDimSize(0) == ShapedType::kDynamic)) {
        bias = b;
        ops.push_back(add);
        y = add.getResult();
      }
    }
    // Activation.
    StringRef act = "none";
    if (Operation *u = singleUser(y)) {
      act = activationOf(u);
      if (act != "none") {
        ops.push_back(u);
        y = u->getResult(0);
      }
    }
    // Residual: an add of a tensor of the result's shape.
    Value residual;
    if (auto add = dyn_cast_or_null<AddOp>(singleUser(y))) {
      Value r = otherOperand(add, y);
      if (r != y && r.getType() == y.getType() &&
          add.getType() == y.getType() && !r.getDefiningOp<ConstantOp>()) {
        residual = r;
        ops.push_back(add);
        y = add.getResult();
      }
    }
    rw.setInsertionPointAfterValue(y);
    auto linear =
        LinearOp::create(rw, fusedLocOf(ops), y.getType(), mm.getLhs(),
                         mm.getRhs(), bias, residual, rw.getStringAttr(act));
    rw.replaceAllUsesWith(y, linear.getResult());
    return success();
  }
};

/// An activation of a linear that has none yet, directly or through a
/// reshape (each the single user of the one before): the linear takes it.
/// An ONNX Gemm is imported as a linear already, and GPT-2's exporter puts
/// the MLP's Gemm on [B*S, E] between two reshapes, so its GELU follows a
/// reshape of the linear; an activation commutes with a reshape.
template <typename ActOp>
struct AbsorbActivation : OpRewritePattern<ActOp> {
  using OpRewritePattern<ActOp>::OpRewritePattern;
  LogicalResult matchAndRewrite(ActOp act,
                                PatternRewriter &rw) const override {
    Value x = act->getOperand(0);
    auto reshape = x.getDefiningOp<ReshapeOp>();
    Value produced = reshape ? reshape.getInput() : x;
    auto linear = produced.getDefiningOp<LinearOp>();
    // A gated unit's activation applies to its gate alone: not this one.
    if (!linear || linear.getActivation() != "none" || linear.getResidual() ||
        linear.getGated() || !linear.getResult().hasOneUse() ||
        (reshape && !x.hasOneUse()))
      return rw.notifyMatchFailure(act, "not the only reader of a linear "
                                        "without activation, residual or "
                                        "gate");
    rw.setInsertionPoint(linear);
    auto fused = LinearOp::create(
        rw, fusedLocOf({linear, act}), linear.getType(), linear.getInput(),
        linear.getWeight(), linear.getBias(), Value(),
        rw.getStringAttr(activationOf(act)));
    Value y = fused.getResult();
    if (reshape) {
      rw.setInsertionPoint(reshape);
      y = ReshapeOp::create(rw, reshape.getLoc(), reshape.getType(), y,
                            reshape.getShape(), reshape.getAllowzero());
    }
    rw.replaceOp(act, y);
    return success();
  }
};

struct FuseLinearPass : transfuse::impl::FuseLinearBase<FuseLinearPass> {
  using FuseLinearBase::FuseLinearBase;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseMatMulEpilogue, AbsorbActivation<GeluOp>,
                 AbsorbActivation<ReluOp>, AbsorbActivation<SiluOp>>(
        &getContext());
    if (failed(applyFusionPatterns(
            getOperation(), std::move(patterns), explain, "linear",
            [](Operation *op) { return isa<MatMulOp>(op); })))
      signalPassFailure();
  }
};

} // namespace
