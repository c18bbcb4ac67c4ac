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
      if (isa<ReluOp>(u))
        act = "relu";
      else if (isa<SiluOp>(u))
        act = "silu";
      else if (auto g = dyn_cast<GeluOp>(u))
        act = g.getApproximate() == "tanh" ? "gelu_tanh" : "gelu";
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

struct FuseLinearPass : transfuse::impl::FuseLinearBase<FuseLinearPass> {
  using FuseLinearBase::FuseLinearBase;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseMatMulEpilogue>(&getContext());
    if (failed(applyFusionPatterns(
            getOperation(), std::move(patterns), explain, "linear",
            [](Operation *op) { return isa<MatMulOp>(op); })))
      signalPassFailure();
  }
};

} // namespace
