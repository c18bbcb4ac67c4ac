//===- OutlineKernels.cpp - one function per distinct fused kernel --------===//
#include "codegen/cpu/Passes.h"
#include "codegen/cpu/RuntimeKernels.h"
#include "dialects/transformer/TransformerDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/SymbolTable.h"

#include <map>
#include <string>

namespace transfuse::cpu {
#define GEN_PASS_DEF_OUTLINEKERNELS
#include "codegen/cpu/Passes.h.inc"
} // namespace transfuse::cpu

using namespace mlir;
using namespace transfuse::cpu;
using namespace transfuse::transformer;

namespace {

/// What makes two kernel ops interchangeable: name, attributes, operand and
/// result types (not the operands themselves, not the location).
std::string kernelKey(Operation *op) {
  std::string key;
  llvm::raw_string_ostream os(key);
  os << op->getName() << op->getAttrDictionary();
  for (Type t : op->getOperandTypes())
    os << "," << t;
  os << "->";
  for (Type t : op->getResultTypes())
    os << "," << t;
  return key;
}

struct OutlineKernelsPass
    : transfuse::cpu::impl::OutlineKernelsBase<OutlineKernelsPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    std::map<std::string, func::FuncOp> kernels;
    SmallVector<Operation *> ops;
    module.walk([&](Operation *op) {
      if (normKernel && takesNormKernel(op))
        return;
      if (auto attention = dyn_cast<AttentionOp>(op))
        if (attentionKernel && takesAttentionKernel(attention))
          return;
      if (isa<AttentionOp, LayerNormOp, RmsNormOp, RotaryEmbeddingOp>(op))
        ops.push_back(op);
    });
    OpBuilder b(module.getContext());
    for (Operation *op : ops) {
      func::FuncOp &callee = kernels[kernelKey(op)];
      if (!callee) {
        b.setInsertionPointToEnd(module.getBody());
        auto type = b.getFunctionType(op->getOperandTypes(),
                                      op->getResultTypes());
        std::string name =
            ("tf_kernel_" + op->getName().stripDialect()).str();
        callee = func::FuncOp::create(b, op->getLoc(), name, type);
        callee.setPrivate();
        callee->setAttr("llvm.linkage",
                        LLVM::LinkageAttr::get(b.getContext(),
                                               LLVM::Linkage::Internal));
        callee->setAttr("passthrough",
                        b.getArrayAttr({b.getStringAttr("noinline")}));
        symbols.insert(callee); // uniques the name
        Block *body = callee.addEntryBlock();
        b.setInsertionPointToStart(body);
        // Operand i is argument i, also where one value fills two operands
        // here (the function is shared with ops where it may not).
        Operation *clone = b.clone(*op);
        clone->setOperands(body->getArguments());
        func::ReturnOp::create(b, op->getLoc(), clone->getResults());
      }
      b.setInsertionPoint(op);
      auto call = func::CallOp::create(b, op->getLoc(), callee,
                                       op->getOperands());
      op->replaceAllUsesWith(call.getResults());
      op->erase();
    }
  }
};

} // namespace
