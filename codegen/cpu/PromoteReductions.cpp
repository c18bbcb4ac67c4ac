//===- PromoteReductions.cpp - reduction accumulators in registers --------===//
//
// convert-linalg-to-parallel-loops turns a linalg reduction into an scf.for
// that loads the accumulator from the output, combines and stores it back
// at every iteration. Inside an outlined parallel-loop body LLVM cannot
// tell the output from the inputs (all pointers come through the context
// struct), so the load and store stay and each element waits on a store to
// load forwarding. This pass carries such an accumulator in the loop
// instead (an iter_arg): loaded once before the loop, stored once after.
// See the pass description in Passes.td.
//
//===----------------------------------------------------------------------===//
#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace transfuse::cpu {
#define GEN_PASS_DEF_PROMOTEREDUCTIONS
#include "codegen/cpu/Passes.h.inc"
} // namespace transfuse::cpu

using namespace mlir;

namespace {

/// Whether the loop body is what a linalg reduction becomes: no regions,
/// and nothing that touches memory but memref.load and memref.store.
bool isFlatLoadStoreBody(scf::ForOp loop) {
  for (Operation &op : loop.getBody()->without_terminator()) {
    if (op.getNumRegions() != 0)
      return false;
    if (isa<memref::LoadOp, memref::StoreOp>(op) || isMemoryEffectFree(&op))
      continue;
    return false;
  }
  return true;
}

struct PromoteAccumulator : OpRewritePattern<scf::ForOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(scf::ForOp loop,
                                PatternRewriter &rw) const override {
    if (!isFlatLoadStoreBody(loop))
      return rw.notifyMatchFailure(loop, "not a flat load/store body");
    Block *body = loop.getBody();
    // A store whose buffer the body reads once, at the same loop-invariant
    // indices, before it, and touches nowhere else.
    for (auto store : body->getOps<memref::StoreOp>()) {
      Value buffer = store.getMemRef();
      if (!loop.isDefinedOutsideOfLoop(buffer) ||
          !llvm::all_of(store.getIndices(), [&](Value i) {
            return loop.isDefinedOutsideOfLoop(i);
          }))
        continue;
      memref::LoadOp load;
      bool other = false;
      for (Operation *user : buffer.getUsers()) {
        if (user == store.getOperation() || !loop->isAncestor(user))
          continue;
        auto l = dyn_cast<memref::LoadOp>(user);
        if (!l || load || !llvm::equal(l.getIndices(), store.getIndices()) ||
            !l->isBeforeInBlock(store)) {
          other = true;
          break;
        }
        load = l;
      }
      if (other || !load)
        continue;
      Value stored = store.getValueToStore();
      SmallVector<Value> indices(store.getIndices());
      rw.setInsertionPoint(loop);
      Value init =
          memref::LoadOp::create(rw, load.getLoc(), buffer, indices);
      FailureOr<LoopLikeOpInterface> grown = loop.replaceWithAdditionalYields(
          rw, ValueRange{init}, /*replaceInitOperandUsesInLoop=*/false,
          [&](OpBuilder &, Location, ArrayRef<BlockArgument>) {
            return SmallVector<Value>{stored};
          });
      if (failed(grown)) {
        rw.eraseOp(init.getDefiningOp());
        return failure();
      }
      auto newLoop = cast<scf::ForOp>(grown->getOperation());
      rw.replaceAllUsesWith(load.getResult(),
                            newLoop.getRegionIterArgs().back());
      rw.eraseOp(load);
      rw.eraseOp(store);
      rw.setInsertionPointAfter(newLoop);
      memref::StoreOp::create(rw, newLoop.getLoc(), newLoop.getResults().back(),
                              buffer, indices);
      return success();
    }
    return rw.notifyMatchFailure(loop, "no accumulator");
  }
};

struct PromoteReductionsPass
    : transfuse::cpu::impl::PromoteReductionsBase<PromoteReductionsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<PromoteAccumulator>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
