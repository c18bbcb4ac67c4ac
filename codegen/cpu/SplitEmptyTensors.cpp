//===- SplitEmptyTensors.cpp - one empty (or zeroed) tensor per use ------===//
#include "codegen/cpu/Passes.h"

#include "mlir/IR/IRMapping.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace transfuse::cpu {
#define GEN_PASS_DEF_SPLITEMPTYTENSORS
#include "codegen/cpu/Passes.h.inc"
} // namespace transfuse::cpu

using namespace mlir;

namespace {

/// A fresh value per use: each use of `op`'s single result gets a copy of
/// `op` (and of `fill`'s destination when `op` is a fill of an empty tensor),
/// made just before the user; `op` then goes.
LogicalResult splitPerUse(Operation *op, PatternRewriter &rw) {
  if (op->getNumResults() != 1 || op->hasOneUse() || op->use_empty())
    return failure();
  SmallVector<OpOperand *> uses;
  for (OpOperand &use : op->getResult(0).getUses())
    uses.push_back(&use);
  for (OpOperand *use : uses) {
    rw.setInsertionPoint(use->getOwner());
    IRMapping map;
    if (auto fill = dyn_cast<linalg::FillOp>(op))
      rw.clone(*fill.getOutputs()[0].getDefiningOp(), map);
    Operation *copy = rw.clone(*op, map);
    rw.modifyOpInPlace(use->getOwner(), [&] { use->set(copy->getResult(0)); });
  }
  rw.eraseOp(op);
  return success();
}

struct SplitEmpty : OpRewritePattern<tensor::EmptyOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(tensor::EmptyOp op,
                                PatternRewriter &rw) const override {
    return splitPerUse(op, rw);
  }
};

/// A fill of an empty tensor (a product's zeroed accumulator), which CSE
/// shares as readily as the empty tensor.
struct SplitFilledEmpty : OpRewritePattern<linalg::FillOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(linalg::FillOp op,
                                PatternRewriter &rw) const override {
    if (!op.hasPureTensorSemantics() ||
        !op.getOutputs()[0].getDefiningOp<tensor::EmptyOp>())
      return rw.notifyMatchFailure(op, "not a fill of an empty tensor");
    return splitPerUse(op, rw);
  }
};

struct SplitEmptyTensorsPass
    : transfuse::cpu::impl::SplitEmptyTensorsBase<SplitEmptyTensorsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<SplitEmpty, SplitFilledEmpty>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
