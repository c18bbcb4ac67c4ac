//===- MatmulToMicrokernel.cpp - f32 linalg.matmul to the runtime GEMM ----===//
#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace transfuse::cpu {
#define GEN_PASS_DEF_MATMULTOMICROKERNEL
#include "codegen/cpu/Passes.h.inc"
} // namespace transfuse::cpu

using namespace mlir;

namespace {

constexpr llvm::StringLiteral kMicrokernel = "transfuse_matmul_f32";

bool isF32Memref(Value v) {
  auto t = dyn_cast<MemRefType>(v.getType());
  return t && t.getRank() == 2 && t.getElementType().isF32();
}

struct MatmulToMicrokernelPass
    : transfuse::cpu::impl::MatmulToMicrokernelBase<MatmulToMicrokernelPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<linalg::MatmulOp> matmuls;
    module.walk([&](linalg::MatmulOp mm) {
      if (mm.hasPureBufferSemantics() && !mm.hasUserDefinedMaps() &&
          llvm::all_of(mm->getOperands(), isF32Memref))
        matmuls.push_back(mm);
    });
    if (matmuls.empty())
      return;
    MLIRContext *ctx = &getContext();
    int64_t dyn = ShapedType::kDynamic;
    auto strided = MemRefType::get(
        {dyn, dyn}, Float32Type::get(ctx),
        StridedLayoutAttr::get(ctx, dyn, ArrayRef<int64_t>{dyn, dyn}));
    auto callee = module.lookupSymbol<func::FuncOp>(kMicrokernel);
    if (!callee) {
      OpBuilder b = OpBuilder::atBlockBegin(module.getBody());
      callee = func::FuncOp::create(
          b, module.getLoc(), kMicrokernel,
          FunctionType::get(ctx, {strided, strided, strided}, {}));
      callee.setPrivate();
      callee->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));
    }
    for (linalg::MatmulOp mm : matmuls) {
      OpBuilder b(mm);
      SmallVector<Value> args;
      for (Value v : mm->getOperands())
        args.push_back(v.getType() == strided
                           ? v
                           : memref::CastOp::create(b, mm.getLoc(), strided, v)
                                 .getResult());
      func::CallOp::create(b, mm.getLoc(), callee, args);
      mm.erase();
    }
  }
};

} // namespace
