//===- EarlyDealloc.cpp - free owned buffers after their last use ---------===//
#include "codegen/cpu/BufferAliasing.h"
#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Matchers.h"

namespace transfuse::cpu {
#define GEN_PASS_DEF_EARLYDEALLOC
#include "codegen/cpu/Passes.h.inc"
} // namespace transfuse::cpu

using namespace mlir;
using transfuse::cpu::CallResults;

namespace {

/// The buffer `alloc` and its views, or nothing when one of them escapes
/// (is returned, yielded, stored or used by an op not known here). `freed`
/// is the value `dealloc` lists for it: `alloc` itself, or its base buffer.
std::optional<SmallVector<Value>> aliasesOf(Value alloc, Value freed,
                                            bufferization::DeallocOp dealloc,
                                            CallResults &calls) {
  SmallVector<Value> aliases{alloc};
  for (size_t i = 0; i < aliases.size(); ++i) {
    for (OpOperand &use : aliases[i].getUses()) {
      Operation *user = use.getOwner();
      if (user == dealloc) {
        // Only the buffer itself, and only as a buffer to free: a retained
        // view keeps it alive, and a view also listed to free (a base
        // buffer from extract_strided_metadata) would be freed twice.
        if (aliases[i] != freed ||
            llvm::is_contained(dealloc.getRetained(), freed))
          return std::nullopt;
        continue;
      }
      if (user->hasTrait<OpTrait::IsTerminator>())
        return std::nullopt; // returned or yielded out of a region
      bool memrefResults = llvm::any_of(user->getResultTypes(), [](Type t) {
        return isa<BaseMemRefType>(t);
      });
      if (!memrefResults)
        continue; // reads or writes it: a use
      if (Value viewed = transfuse::cpu::viewedBuffer(user)) {
        if (viewed != aliases[i])
          return std::nullopt;
      } else if (!isa<memref::ExtractStridedMetadataOp>(user)) {
        auto call = dyn_cast<func::CallOp>(user);
        if (!call || calls.mayReturnOperand(call))
          return std::nullopt;
        continue; // fresh results: a use
      }
      for (Value r : user->getResults())
        if (isa<BaseMemRefType>(r.getType()))
          aliases.push_back(r);
    }
  }
  return aliases;
}

/// The buffer a dealloc's `memref` frees, when this pass may move its free:
/// a `memref.alloc` of `block`, or the single result of a call in `block`
/// whose callee hands back none of its operands (so the result is a fresh
/// buffer the caller owns), named by `memref` directly or as the base buffer
/// of `extract_strided_metadata`.
Value ownedBuffer(Value memref, Block *block, CallResults &calls) {
  if (auto alloc = memref.getDefiningOp<memref::AllocOp>())
    return alloc->getBlock() == block ? memref : Value();
  Value source = memref;
  if (auto meta = memref.getDefiningOp<memref::ExtractStridedMetadataOp>()) {
    if (memref != meta.getBaseBuffer())
      return {};
    source = meta.getSource();
  }
  auto call = source.getDefiningOp<func::CallOp>();
  if (!call || call->getBlock() != block || call.getNumResults() != 1 ||
      calls.mayReturnOperand(call))
    return {};
  return source;
}

struct EarlyDeallocPass
    : transfuse::cpu::impl::EarlyDeallocBase<EarlyDeallocPass> {
  void runOnOperation() override {
    CallResults calls(getOperation());
    SmallVector<bufferization::DeallocOp> deallocs;
    getOperation()->walk(
        [&](bufferization::DeallocOp d) { deallocs.push_back(d); });
    for (bufferization::DeallocOp dealloc : deallocs) {
      Block *block = dealloc->getBlock();
      SmallVector<Value> keepMemrefs, keepConditions;
      OpBuilder b(dealloc);
      for (auto [memref, cond] :
           llvm::zip(dealloc.getMemrefs(), dealloc.getConditions())) {
        Value owned = ownedBuffer(memref, block, calls);
        std::optional<SmallVector<Value>> aliases;
        if (owned && matchPattern(cond, m_One()))
          aliases = aliasesOf(owned, memref, dealloc, calls);
        if (!aliases) {
          keepMemrefs.push_back(memref);
          keepConditions.push_back(cond);
          continue;
        }
        // The last op of this block that uses the buffer or a view of it
        // (not counting the metadata op that only names its base buffer for
        // `dealloc`).
        Operation *last = owned.getDefiningOp();
        for (Value v : *aliases)
          for (Operation *user : v.getUsers()) {
            if (user == dealloc ||
                (memref != owned && user == memref.getDefiningOp()))
              continue;
            Operation *at = block->findAncestorOpInBlock(*user);
            if (at && last->isBeforeInBlock(at))
              last = at;
          }
        b.setInsertionPointAfter(last);
        memref::DeallocOp::create(b, dealloc.getLoc(), owned);
      }
      if (keepMemrefs.size() == dealloc.getMemrefs().size())
        continue;
      b.setInsertionPoint(dealloc);
      auto replacement = bufferization::DeallocOp::create(
          b, dealloc.getLoc(), keepMemrefs, keepConditions,
          dealloc.getRetained());
      dealloc->replaceAllUsesWith(replacement->getResults());
      dealloc->erase();
    }
  }
};

} // namespace
