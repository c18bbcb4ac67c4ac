//===- StreamLargeCopies.cpp - large f32 copies to the runtime ------------===//
//
// A memref.copy that may move 256 KiB or more into a buffer that leaves
// the function (a KV cache's concatenation, every decode step) becomes a
// call of the runtime's transfuse_copy_f32 (runtime/src/memref_copy.cpp),
// which streams it past the caches on the thread pool; see the pass
// description in Passes.td.
//
//===----------------------------------------------------------------------===//
#include "codegen/cpu/BufferAliasing.h"
#include "codegen/cpu/LoweringUtils.h"
#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace transfuse::cpu {
#define GEN_PASS_DEF_STREAMLARGECOPIES
#include "codegen/cpu/Passes.h.inc"
} // namespace transfuse::cpu

using namespace mlir;

namespace {

constexpr llvm::StringLiteral kCopyFunc = "transfuse_copy_f32";
/// The size from which the runtime streams a copy (memref_copy.cpp's
/// kStreamBytes): a copy statically smaller stays in generated loops.
constexpr int64_t kStreamBytes = int64_t(256) << 10;

/// Whether `t` is an f32 memref whose last dim is statically contiguous.
bool contiguousRows(Type t) {
  auto m = dyn_cast<MemRefType>(t);
  if (!m || !m.getElementType().isF32() || m.getRank() == 0)
    return false;
  SmallVector<int64_t> strides;
  int64_t offset;
  if (failed(m.getStridesAndOffset(strides, offset)))
    return false;
  return strides.back() == 1;
}

/// Whether the copy goes to the runtime: f32 rows contiguous on both sides,
/// a size unknown until run time or at least kStreamBytes, and a target
/// that leaves the function (a KV cache's present). A copy into a buffer
/// the function reads again and frees stays in generated loops: streaming
/// it past the caches would make that read come from DRAM (in bert-base,
/// each layer's Q, K and V, copied out of the merged projection).
bool streams(memref::CopyOp copy, transfuse::cpu::CallResults &calls) {
  Type src = copy.getSource().getType(), dst = copy.getTarget().getType();
  if (!contiguousRows(src) || !contiguousRows(dst) ||
      !transfuse::cpu::mayOutlive(copy.getTarget(), calls))
    return false;
  auto m = cast<MemRefType>(src);
  return !m.hasStaticShape() ||
         m.getNumElements() * int64_t(sizeof(float)) >= kStreamBytes;
}

struct StreamLargeCopiesPass
    : transfuse::cpu::impl::StreamLargeCopiesBase<StreamLargeCopiesPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<memref::CopyOp> copies;
    transfuse::cpu::CallResults calls(module);
    module.walk([&](memref::CopyOp copy) {
      if (streams(copy, calls))
        copies.push_back(copy);
    });
    if (copies.empty())
      return;
    MLIRContext *ctx = &getContext();
    auto unranked = UnrankedMemRefType::get(Float32Type::get(ctx), 0);
    OpBuilder top(ctx);
    transfuse::cpu::declareRuntimeFunction(top, module, kCopyFunc,
                                           {unranked, unranked});
    for (memref::CopyOp copy : copies) {
      OpBuilder b(copy);
      Location loc = copy.getLoc();
      Value src = memref::CastOp::create(b, loc, unranked, copy.getSource());
      Value dst = memref::CastOp::create(b, loc, unranked, copy.getTarget());
      func::CallOp::create(b, loc, kCopyFunc, TypeRange{},
                           ValueRange{src, dst});
      copy.erase();
    }
  }
};

} // namespace
