//===- CopyToLinalg.cpp - memref.copy as linalg.copy ----------------------===//
#include "codegen/cpu/Passes.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace transfuse::cpu {
#define GEN_PASS_DEF_COPYTOLINALG
#include "codegen/cpu/Passes.h.inc"
} // namespace transfuse::cpu

using namespace mlir;

namespace {

struct CopyAsLinalg : OpRewritePattern<memref::CopyOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(memref::CopyOp op,
                                PatternRewriter &rw) const override {
    if (!isa<MemRefType>(op.getSource().getType()) ||
        !isa<MemRefType>(op.getTarget().getType()))
      return rw.notifyMatchFailure(op, "unranked");
    rw.replaceOpWithNewOp<linalg::CopyOp>(op, op.getSource(), op.getTarget());
    return success();
  }
};

struct CopyToLinalgPass
    : transfuse::cpu::impl::CopyToLinalgBase<CopyToLinalgPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<CopyAsLinalg>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
