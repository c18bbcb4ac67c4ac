//===- SelectAttention.cpp - materialized vs memory-efficient attention ---===//
#include "passes/Passes.h"

#include "llvm/Support/FormatVariadic.h"

namespace transfuse {
#define GEN_PASS_DEF_SELECTATTENTION
#include "passes/Passes.h.inc"
} // namespace transfuse

using namespace mlir;
using namespace transfuse;
using namespace transfuse::transformer;

namespace {

struct SelectAttentionPass
    : transfuse::impl::SelectAttentionBase<SelectAttentionPass> {
  using SelectAttentionBase::SelectAttentionBase;
  void runOnOperation() override {
    if (!llvm::is_contained({"auto", "materialized", "memory_efficient"},
                            algorithm)) {
      getOperation().emitError("transfuse-select-attention: algorithm must be "
                               "auto, materialized or memory_efficient, not '")
          << algorithm << "'";
      return signalPassFailure();
    }
    Builder b(&getContext());
    getOperation().walk([&](AttentionOp op) {
      auto q = cast<RankedTensorType>(op.getQuery().getType());
      auto k = cast<RankedTensorType>(op.getKey().getType());
      auto v = cast<RankedTensorType>(op.getValue().getType());
      std::string alg, reason;
      // Score bytes B*H*Sq*Sk*4, when every factor is known.
      int64_t dims[] = {q.getDimSize(0), q.getDimSize(1), q.getDimSize(2),
                        k.getDimSize(2)};
      bool known = llvm::none_of(dims, ShapedType::isDynamic);
      double bytes = known ? 4.0 * dims[0] * dims[1] * dims[2] * dims[3] : 0;
      int64_t dv = v.getDimSize(3);
      std::string streamed =
          ShapedType::isDynamic(dv)
              ? std::string("B*H*Sq*(kv_block + Dv + 2) floats")
              : llvm::formatv("B*H*Sq*{0} floats", kvBlock + dv + 2).str();
      if (algorithm != "auto") {
        alg = algorithm;
        reason = "forced by --attention=" + algorithm;
      } else if (!known) {
        alg = "by_length";
        reason =
            llvm::formatv("a length is only known at run time: "
                          "materialized while B*H*Sq*Sk*4 <= {0} bytes, "
                          "else blocks of {1} keys ({2})",
                          (int64_t)budgetBytes, (int64_t)kvBlock, streamed);
      } else if (bytes <= budgetBytes) {
        alg = "materialized";
        reason = llvm::formatv("the scores take {0} bytes <= {1}",
                               (int64_t)bytes, (int64_t)budgetBytes);
      } else {
        alg = "memory_efficient";
        reason = llvm::formatv("the scores would take {0} bytes > {1}; blocks "
                               "of {2} keys need {3}",
                               (int64_t)bytes, (int64_t)budgetBytes,
                               (int64_t)kvBlock, streamed);
      }
      op.setAlgorithm(alg);
      op.setReason(reason);
      op.setKvBlock(kvBlock);
      op.setMaxMaterializedBytes(budgetBytes);
    });
  }
};

} // namespace
