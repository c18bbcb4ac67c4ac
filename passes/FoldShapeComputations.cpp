//===- FoldShapeComputations.cpp - fold shape subgraphs -------------------===//
#include "passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace transfuse {
#define GEN_PASS_DEF_FOLDSHAPECOMPUTATIONS
#include "passes/Passes.h.inc"
} // namespace transfuse

using namespace mlir;
using namespace transfuse;
using namespace transfuse::transformer;

namespace {
/// Replaces a shape computation whose values are all known with a constant.
struct FoldKnownShapeValue : RewritePattern {
  FoldKnownShapeValue(MLIRContext *ctx)
      : RewritePattern(MatchAnyOpTypeTag(), /*benefit=*/1, ctx) {}

  LogicalResult matchAndRewrite(Operation *op,
                                PatternRewriter &rewriter) const override {
    if (isa<ConstantOp>(op) || op->getNumResults() != 1 ||
        !isa<TransformerDialect>(op->getDialect()))
      return failure();
    auto type = dyn_cast<RankedTensorType>(op->getResult(0).getType());
    if (!type || !type.hasStaticShape())
      return failure();
    auto values = getConstantIntValues(op->getResult(0));
    if (!values)
      return failure();
    auto elemType = cast<IntegerType>(type.getElementType());
    SmallVector<APInt> bits;
    for (int64_t v : *values)
      bits.push_back(APInt(elemType.getWidth(), v,
                           /*isSigned=*/elemType.getWidth() > 1));
    rewriter.replaceOpWithNewOp<ConstantOp>(
        op, type, DenseIntElementsAttr::get(type, bits));
    return success();
  }
};

struct FoldShapeComputationsPass
    : transfuse::impl::FoldShapeComputationsBase<FoldShapeComputationsPass> {
  void runOnOperation() override {
    FrozenRewritePatternSet patterns = [&] {
      RewritePatternSet set(&getContext());
      set.add<FoldKnownShapeValue>(&getContext());
      return FrozenRewritePatternSet(std::move(set));
    }();
    // Folding makes types more static, which makes more values known: iterate
    // to a fixed point (bounded; each round only ever adds information).
    for (int round = 0; round < 8; ++round) {
      bool changed = false;
      if (failed(applyPatternsGreedily(getOperation(), patterns,
                                       GreedyRewriteConfig(), &changed)))
        return signalPassFailure();
      if (!refineShapes(getOperation()) && !changed)
        break;
    }
  }
};
} // namespace
