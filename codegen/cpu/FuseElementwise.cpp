//===- FuseElementwise.cpp - elementwise fusion without costly recompute -===//
#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Tensor/Transforms/Transforms.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace transfuse::cpu {
#define GEN_PASS_DEF_FUSEELEMENTWISE
#include "codegen/cpu/Passes.h.inc"
} // namespace transfuse::cpu

using namespace mlir;

namespace {

/// Whether computing one element of `op` costs a transcendental function
/// (a math op other than the cheap ones below) or a division: what a
/// broadcast consumer would repeat per point.
bool costlyBody(Operation *op) {
  auto generic = dyn_cast<linalg::GenericOp>(op);
  if (!generic)
    return false;
  WalkResult found = generic.getRegion().walk([](Operation *inner) {
    bool cheapMath =
        isa<math::AbsFOp, math::AbsIOp, math::FmaOp, math::CopySignOp,
            math::CeilOp, math::FloorOp, math::RoundOp, math::RoundEvenOp,
            math::TruncOp, math::CountLeadingZerosOp,
            math::CountTrailingZerosOp, math::CtPopOp>(inner);
    if ((isa<math::MathDialect>(inner->getDialect()) && !cheapMath) ||
        isa<arith::DivFOp, arith::DivSIOp, arith::DivUIOp, arith::RemFOp,
            arith::RemSIOp, arith::RemUIOp, arith::CeilDivSIOp,
            arith::CeilDivUIOp, arith::FloorDivSIOp>(inner))
      return WalkResult::interrupt();
    return WalkResult::advance();
  });
  return found.wasInterrupted();
}

/// Upstream's rule (the producer has no other use), and no costly producer
/// into a consumer that reads its elements more than once.
bool fuse(OpOperand *fused) {
  Operation *producer = fused->get().getDefiningOp();
  if (!producer || !producer->hasOneUse())
    return false;
  auto consumer = dyn_cast<linalg::LinalgOp>(fused->getOwner());
  if (!consumer || !costlyBody(producer))
    return true;
  return consumer.getMatchingIndexingMap(fused).isPermutation();
}

struct FuseElementwisePass
    : transfuse::cpu::impl::FuseElementwiseBase<FuseElementwisePass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    linalg::ControlFusionFn control = fuse;
    linalg::populateElementwiseOpsFusionPatterns(patterns, control);
    linalg::populateFoldReshapeOpsByExpansionPatterns(patterns, control);
    tensor::populateBubbleUpExpandShapePatterns(patterns);
    affine::AffineApplyOp::getCanonicalizationPatterns(patterns, ctx);
    linalg::GenericOp::getCanonicalizationPatterns(patterns, ctx);
    tensor::ExpandShapeOp::getCanonicalizationPatterns(patterns, ctx);
    tensor::CollapseShapeOp::getCanonicalizationPatterns(patterns, ctx);
    ctx->getLoadedDialect<linalg::LinalgDialect>()->getCanonicalizationPatterns(
        patterns);
    linalg::populateConstantFoldLinalgOperations(patterns, control);
    GreedyRewriteConfig config;
    config.setUseTopDownTraversal(true);
    if (failed(
            applyPatternsGreedily(getOperation(), std::move(patterns), config)))
      signalPassFailure();
  }
};

} // namespace
