//===- LastPosition.cpp - one output at the last position only ------------===//
//
// transfuse-last-position: computes a [batch, seq, N] output (a language
// model's logits) at its last position only. The product by a weight that
// computes it (the LM head), and the row-wise ops before it and after it
// that nothing else reads (the last layer's output projection, norms and
// FFN), take the last rows of their [batch, seq, ...] operands, so that a
// prompt's step computes one row of each instead of seq.
// `transfuse generate` turns it on; `transfuse compile --last-position`
// exposes it.
//
//===----------------------------------------------------------------------===//
#include "dialects/transformer/ShapeInference.h"
#include "passes/FusionUtils.h"
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

/// The same at every position: rank 3 at most, every dim but the last 1 (a
/// scalar, [N], BART's [1, N] logits bias, a [1, 1, N]).
bool invariant(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  return t && t.getRank() <= 3 &&
         llvm::all_of(t.getShape().drop_back(t.getRank() ? 1 : 0),
                      [](int64_t d) { return d == 1; });
}

/// Whether `op` computes each position's row from that position's rows of
/// its operands alone, so that it can take their last rows only; then
/// `rows` gets its [batch, seq, ...] operands. Products by a weight (a
/// linear, a matmul by a matrix), norms over the last dim, and elementwise
/// ops whose other operands are the same at every position; every result
/// [batch, seq, N].
bool rowWise(Operation *op, SmallVectorImpl<Value> &rows) {
  rows.clear();
  if (!llvm::all_of(op->getResults(), [](Value r) { return rankOf(r) == 3; }))
    return false;
  if (auto linear = dyn_cast<LinearOp>(op)) {
    rows.push_back(linear.getInput());
    if (Value r = linear.getResidual())
      rows.push_back(r);
    return llvm::all_of(rows, [](Value v) { return rankOf(v) == 3; });
  }
  if (auto matmul = dyn_cast<MatMulOp>(op)) {
    rows.push_back(matmul.getLhs());
    return rankOf(matmul.getLhs()) == 3 && rankOf(matmul.getRhs()) == 2;
  }
  if (auto norm = dyn_cast<RmsNormOp>(op)) {
    rows.push_back(norm.getInput());
    return rankOf(norm.getInput()) == 3;
  }
  if (auto norm = dyn_cast<LayerNormOp>(op)) {
    rows.push_back(norm.getInput());
    if (Value r = norm.getResidual())
      rows.push_back(r);
    return llvm::all_of(rows, [](Value v) { return rankOf(v) == 3; });
  }
  if (!isa<AddOp, SubOp, MulOp, DivOp, PowOp, MinOp, MaxOp, SqrtOp,
           ReciprocalOp, ErfOp, TanhOp, ExpOp, LogOp, NegOp, AbsOp, ReluOp,
           SigmoidOp, CastOp, GeluOp, SiluOp>(op))
    return false;
  // A rank-3 operand of a seq of 1 broadcast along seq is its own last
  // row: sliced, it stays as it is.
  for (Value v : op->getOperands()) {
    if (invariant(v))
      continue;
    if (rankOf(v) != 3)
      return false;
    rows.push_back(v);
  }
  return !rows.empty();
}

bool isProduct(Operation *op) { return isa<LinearOp, MatMulOp>(op); }

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
    if (rankOf(result) != 3 || !result.hasOneUse()) {
      func.emitWarning("transfuse-last-position: result '")
          << output
          << "' is not a [batch, seq, N] tensor returned once; every "
             "position is computed";
      return;
    }

    // The region: the row-wise ops that compute the result and whose
    // results nothing else reads. Candidates first (every row-wise op
    // reached back through [batch, seq, ...] operands), then those with a
    // user outside the region dropped until none is left.
    // rowsOf: each candidate's [batch, seq, ...] operands (rowWise).
    llvm::SetVector<Operation *> candidates;
    llvm::DenseMap<Operation *, SmallVector<Value>> rowsOf;
    SmallVector<Value> work{result}, rows;
    while (!work.empty()) {
      Operation *op = work.pop_back_val().getDefiningOp();
      if (!op || candidates.contains(op) || !rowWise(op, rows))
        continue;
      candidates.insert(op);
      rowsOf[op] = rows;
      work.append(rows.begin(), rows.end());
    }
    llvm::SmallPtrSet<Operation *, 16> region(candidates.begin(),
                                              candidates.end());
    for (bool changed = true; changed;) {
      changed = false;
      for (Operation *op : candidates) {
        if (!region.contains(op))
          continue;
        bool inside = llvm::all_of(op->getResults(), [&](Value r) {
          return llvm::all_of(r.getUsers(), [&](Operation *u) {
            return region.contains(u) || (u == ret && r == result);
          });
        });
        if (!inside) {
          region.erase(op);
          changed = true;
        }
      }
    }
    if (!region.contains(result.getDefiningOp()) ||
        llvm::none_of(region, isProduct)) {
      Operation *at =
          result.getDefiningOp() ? result.getDefiningOp() : func.getOperation();
      at->emitWarning("transfuse-last-position: '")
          << output
          << "' is not computed by a product by a weight and row-wise ops "
             "(norms, elementwise ops of positions and constants) that "
             "nothing else reads; every position is computed";
      return;
    }

    // The region's [batch, seq, ...] operands from outside it, each sliced
    // once to [:, -1:, :] where it is defined.
    SmallVector<Operation *> ops(region.begin(), region.end());
    llvm::sort(
        ops, [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
    std::string error;
    llvm::DenseMap<Value, Value> sliced;
    for (Operation *op : ops) {
      for (Value v : rowsOf[op]) {
        Operation *def = v.getDefiningOp();
        if (def && region.contains(def))
          continue;
        Value &last = sliced[v];
        if (!last) {
          OpBuilder b(&getContext());
          if (def)
            b.setInsertionPointAfter(def);
          else
            b.setInsertionPointToStart(&func.getBody().front());
          Location loc = v.getLoc();
          last = fusion::createInferred<SliceOp>(
              b, loc, fusion::tensorType(v).getElementType(), v,
              fusion::i64Element(b, loc, -1),
              fusion::i64Element(b, loc, std::numeric_limits<int64_t>::max()),
              b.getDenseI64ArrayAttr({1}), b.getDenseI64ArrayAttr({1}));
        }
        op->replaceUsesOfWith(v, last);
      }
    }
    for (Operation *op : ops) {
      auto types = inferResultTypes(op, error);
      if (failed(types)) {
        op->emitError("transfuse-last-position: ") << error;
        return signalPassFailure();
      }
      for (auto [r, t] : llvm::zip(op->getResults(), *types))
        r.setType(t);
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
        d[1] = IntegerAttr::get(IntegerType::get(&getContext(), 64), 1);
        func.setResultAttr(*index, "transformer.dims",
                           ArrayAttr::get(&getContext(), d));
      }
    }
  }
};

} // namespace
