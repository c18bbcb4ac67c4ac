//===- LastPosition.cpp - one output at the last position only ------------===//
//
// transfuse-last-position: slices the input of the product that computes a
// [batch, seq, N] output (a language model's logits) to its last position,
// so that a prompt's step computes one row of the LM head instead of seq.
// `transfuse generate` turns it on; `transfuse compile --last-position`
// exposes it.
//
//===----------------------------------------------------------------------===//
#include "dialects/transformer/ShapeInference.h"
#include "passes/Passes.h"

#include <limits>

namespace transfuse {
#define GEN_PASS_DEF_LASTPOSITION
#include "passes/Passes.h.inc"
} // namespace transfuse

using namespace mlir;
using namespace transfuse;
using namespace transfuse::transformer;

namespace {

int64_t rankOf(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  return t ? t.getRank() : -1;
}

/// An op the walk passes through: elementwise on its first operand, every
/// other operand the same for every position (a scalar, [N], or BART's
/// [1, N] logits bias: rank 3 at most, every dim but the last 1), so that
/// the op of the last position's row alone gives that row.
bool rowWise(Operation *op) {
  if (op->getNumResults() != 1 || op->getNumOperands() == 0 ||
      !isa<AddOp, SubOp, MulOp, DivOp, PowOp, MinOp, MaxOp, SqrtOp,
           ReciprocalOp, ErfOp, TanhOp, ExpOp, LogOp, NegOp, AbsOp, ReluOp,
           SigmoidOp, CastOp>(op))
    return false;
  return llvm::all_of(op->getOperands().drop_front(), [](Value v) {
    auto t = dyn_cast<RankedTensorType>(v.getType());
    return t && t.getRank() <= 3 &&
           llvm::all_of(t.getShape().drop_back(t.getRank() ? 1 : 0),
                        [](int64_t d) { return d == 1; });
  });
}

/// The product whose [batch, seq, K] input the walk slices: a linear
/// without a residual (its bias is [N]), or a matmul by a rank-2 matrix.
bool isHead(Operation *op) {
  if (auto linear = dyn_cast<LinearOp>(op))
    return !linear.getResidual() && rankOf(linear.getInput()) == 3;
  if (auto matmul = dyn_cast<MatMulOp>(op))
    return rankOf(matmul.getLhs()) == 3 && rankOf(matmul.getRhs()) == 2;
  return false;
}

struct LastPositionPass : transfuse::impl::LastPositionBase<LastPositionPass> {
  using LastPositionBase::LastPositionBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    auto ret = cast<func::ReturnOp>(func.getBody().back().getTerminator());
    std::optional<unsigned> index;
    for (unsigned i = 0; i < func.getNumResults(); ++i)
      if (auto name =
              func.getResultAttrOfType<StringAttr>(i, "transformer.name"))
        if (name.getValue() == output)
          index = i;
    if (!index) {
      func.emitWarning("transfuse-last-position: no result named '")
          << output << "'; every position is computed";
      return;
    }
    Value result = ret.getOperand(*index);
    if (rankOf(result) != 3) {
      func.emitWarning("transfuse-last-position: result '")
          << output << "' is not [batch, seq, N]; every position is computed";
      return;
    }
    // From the result back to the product: ops[0] is the product.
    SmallVector<Operation *> ops;
    Operation *op = result.getDefiningOp();
    while (op && !isHead(op)) {
      if (!rowWise(op) || !op->getResult(0).hasOneUse() ||
          rankOf(op->getOperand(0)) != 3) {
        op->emitWarning("transfuse-last-position: '")
            << output << "' is computed through " << op->getName()
            << ", which is not a product by a weight or an elementwise op "
               "of one [batch, seq, N] tensor used once; every position is "
               "computed";
        return;
      }
      ops.push_back(op);
      op = op->getOperand(0).getDefiningOp();
    }
    if (!op) {
      func.emitWarning("transfuse-last-position: '")
          << output
          << "' is not computed by a product; every position is "
             "computed";
      return;
    }
    if (!op->getResult(0).hasOneUse()) {
      op->emitWarning("transfuse-last-position: the product of '")
          << output << "' has other uses; every position is computed";
      return;
    }
    ops.push_back(op);
    std::reverse(ops.begin(), ops.end());

    // input[:, -1:, :] before the product.
    OpBuilder b(op);
    Location loc = op->getLoc();
    auto index1 = [&](int64_t v) {
      return ConstantOp::create(
          b, loc,
          DenseElementsAttr::get(RankedTensorType::get({1}, b.getI64Type()),
                                 ArrayRef<int64_t>{v}));
    };
    Value input = op->getOperand(0);
    std::string error;
    auto sliced = createWithInferredType<SliceOp>(
        b, loc, cast<RankedTensorType>(input.getType()).getElementType(), error,
        input, index1(-1), index1(std::numeric_limits<int64_t>::max()),
        b.getDenseI64ArrayAttr({1}), b.getDenseI64ArrayAttr({1}));
    if (failed(sliced)) { // a rank-3 input: never
      op->emitError("transfuse-last-position: ") << error;
      return signalPassFailure();
    }
    op->setOperand(0, *sliced);
    for (Operation *o : ops) {
      auto types = inferResultTypes(o, error);
      if (failed(types)) {
        o->emitError("transfuse-last-position: ") << error;
        return signalPassFailure();
      }
      o->getResult(0).setType((*types)[0]);
    }
    // The signature: the new type, and a seq of 1 in transformer.dims.
    SmallVector<Type> results(func.getResultTypes());
    results[*index] = result.getType();
    func.setType(
        FunctionType::get(&getContext(), func.getArgumentTypes(), results));
    if (auto dims =
            func.getResultAttrOfType<ArrayAttr>(*index, "transformer.dims")) {
      SmallVector<Attribute> d(dims.begin(), dims.end());
      if (d.size() == 3) {
        d[1] = b.getI64IntegerAttr(1);
        func.setResultAttr(*index, "transformer.dims", b.getArrayAttr(d));
      }
    }
  }
};

} // namespace
