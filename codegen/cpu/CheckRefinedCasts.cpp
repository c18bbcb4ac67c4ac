//===- CheckRefinedCasts.cpp - run-time checks for casts to static sizes --===//
#include "codegen/cpu/LoweringUtils.h"
#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

namespace transfuse::cpu {
#define GEN_PASS_DEF_CHECKREFINEDCASTS
#include "codegen/cpu/Passes.h.inc"
} // namespace transfuse::cpu

using namespace mlir;

namespace {

struct CheckRefinedCastsPass
    : transfuse::cpu::impl::CheckRefinedCastsBase<CheckRefinedCastsPass> {
  void runOnOperation() override {
    SmallVector<tensor::CastOp> casts;
    for (auto func : getOperation().getOps<func::FuncOp>())
      for (Block &block : func.getBody())
        for (auto cast : block.getOps<tensor::CastOp>())
          casts.push_back(cast);
    for (tensor::CastOp cast : casts) {
      auto from = dyn_cast<RankedTensorType>(cast.getSource().getType());
      auto to = dyn_cast<RankedTensorType>(cast.getType());
      if (!from || !to || from.getRank() != to.getRank())
        continue;
      OpBuilder b(cast);
      Location loc = cast.getLoc();
      for (int64_t i = 0; i < to.getRank(); ++i) {
        if (!from.isDynamicDim(i) || to.isDynamicDim(i))
          continue;
        Value dim = tensor::DimOp::create(b, loc, cast.getSource(), i);
        Value ok = arith::CmpIOp::create(
            b, loc, arith::CmpIPredicate::eq, dim,
            arith::ConstantIndexOp::create(b, loc, to.getDimSize(i)));
        transfuse::cpu::emitRuntimeCheck(
            b, loc, ok,
            "dim " + std::to_string(i) + " of an operand is not " +
                std::to_string(to.getDimSize(i)) +
                ", the size another operand of the op gives it");
      }
    }
  }
};

} // namespace
