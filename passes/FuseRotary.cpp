//===- FuseRotary.cpp - rotary position embedding to `rotary_embedding` ---===//
//
// x * cos + rotate(x) * sin, where rotate(x) pairs channel d with a partner:
// - half-split (LLaMA's rotate_half): Concat(-x[r/2:r], x[0:r/2]);
// - interleaved (GPT-J, GLM): Reshape(Concat(Unsqueeze(-x[1::2]),
//   Unsqueeze(x[0::2]))), i.e. stack((-x_odd, x_even), -1).flatten(-2).
// Partial rotary (only the first r of D channels) is the same on
// x[..., :r], followed by Concat(result, x[..., r:]).
//
//===----------------------------------------------------------------------===//
#include "passes/FusionUtils.h"
#include "passes/Passes.h"

namespace transfuse {
#define GEN_PASS_DEF_FUSEROTARY
#include "passes/Passes.h.inc"
} // namespace transfuse

using namespace mlir;
using namespace transfuse;
using namespace transfuse::fusion;
using namespace transfuse::transformer;

namespace {

/// `v` = Unsqueeze(x) adding one trailing unit dim; returns x.
Value stripTrailingUnsqueeze(Value v) {
  auto u = v.getDefiningOp<UnsqueezeOp>();
  if (!u || u.getAxes().size() != 1 ||
      !isLastAxis(u.getAxes()[0], tensorType(u.getResult()).getRank()))
    return {};
  return u.getInput();
}

/// The other operand of the Mul `m` when one of them is `x`.
Value mulPartner(Operation *m, Value x) {
  if (!isa_and_nonnull<MulOp>(m))
    return {};
  if (m->getOperand(0) == x)
    return m->getOperand(1);
  if (m->getOperand(1) == x)
    return m->getOperand(0);
  return {};
}

/// The dims [start, end) of the interleaved stack of x's pairs, [..., d/2,
/// 2] (`sh` reads them), from x's shape [..., d] and constants.
Value stackShape(PatternRewriter &rw, ShapeOp sh, Value x, int64_t d) {
  OpBuilder::InsertionGuard guard(rw);
  rw.setInsertionPoint(sh);
  Location loc = sh.getLoc();
  auto i64 = [&](int64_t n) {
    return RankedTensorType::get({n}, rw.getI64Type());
  };
  int64_t lead = tensorType(x).getRank() - 1; // dims shared with x
  auto [start, end] = shapeOpRange(sh);
  SmallVector<Value> parts;
  if (start < lead)
    parts.push_back(ShapeOp::create(rw, loc, i64(std::min(end, lead) - start),
                                    x, rw.getI64IntegerAttr(start),
                                    rw.getI64IntegerAttr(std::min(end, lead))));
  SmallVector<int64_t> tail;
  for (int64_t i = std::max(start, lead); i < end; ++i)
    tail.push_back(i == lead ? d / 2 : 2);
  if (!tail.empty() || parts.empty()) {
    auto t = i64(tail.size());
    parts.push_back(ConstantOp::create(
        rw, loc, DenseIntElementsAttr::get(t, ArrayRef(tail))));
  }
  if (parts.size() == 1)
    return parts.front();
  return ConcatOp::create(rw, loc, i64(end - start), parts,
                          rw.getI64IntegerAttr(0));
}

struct FuseRope : OpRewritePattern<NegOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(NegOp neg, PatternRewriter &rw) const override {
    auto fail = [&](const Twine &why) {
      return rw.notifyMatchFailure(neg, [&](Diagnostic &d) { d << why; });
    };
    auto hi = asLastAxisSlice(neg.getInput());
    if (!hi)
      return fail("its input is not a constant slice of the last axis");
    Value x = hi->input;
    int64_t d = tensorType(x).getShape().back();
    SmallVector<Operation *> ops{neg.getInput().getDefiningOp(), neg};
    SmallVector<ShapeOp> stackShapes;
    bool interleaved = hi->step == 2;
    Value rot;
    if (!interleaved) {
      // Concat(-x[d/2:], x[:d/2]).
      if (hi->step != 1 || d % 2 || hi->start != d / 2 || hi->end != d)
        return fail("it does not negate the upper half x[d/2:] of the last "
                    "axis (half-split) or the odd channels x[1::2] "
                    "(interleaved)");
      auto cat = dyn_cast_or_null<ConcatOp>(singleUser(neg.getResult()));
      if (!cat || cat.getInputs().size() != 2 ||
          cat.getInputs()[0] != neg.getResult() ||
          !isLastAxis(cat.getAxis(), tensorType(x).getRank()))
        return fail("its result is not the first half of a last-axis concat");
      auto lo = asLastAxisSlice(cat.getInputs()[1]);
      if (!lo || lo->input != x || lo->step != 1 || lo->start != 0 ||
          lo->end != d / 2)
        return fail("the concat's second half is not x[:d/2]");
      ops.append({cat.getInputs()[1].getDefiningOp(), cat});
      rot = cat.getResult();
    } else {
      // Reshape(Concat(Unsqueeze(-x[1::2]), Unsqueeze(x[0::2]))) to [..., d].
      if (d % 2 || hi->start != 1 || hi->end != d)
        return fail("it does not negate the odd channels x[1::2]");
      auto un = dyn_cast_or_null<UnsqueezeOp>(singleUser(neg.getResult()));
      if (!un || stripTrailingUnsqueeze(un.getResult()) != neg.getResult())
        return fail("the negated odd channels are not unsqueezed last");
      auto cat = dyn_cast_or_null<ConcatOp>(singleUser(un.getResult()));
      if (!cat || cat.getInputs().size() != 2 ||
          cat.getInputs()[0] != un.getResult() ||
          !isLastAxis(cat.getAxis(), tensorType(cat.getResult()).getRank()))
        return fail("the negated odd channels are not stacked first");
      Value evenU = cat.getInputs()[1];
      auto lo = asLastAxisSlice(stripTrailingUnsqueeze(evenU));
      if (!lo || lo->input != x || lo->step != 2 || lo->start != 0 ||
          lo->end < d - 1)
        return fail("the stack's second entry is not the even channels");
      // Besides the flattening, the stack may be read for its shape (the
      // TorchScript exporter's flatten(-2) takes its target from it): those
      // reads are rebuilt from x's shape below, so that the stack dies.
      ReshapeOp rs;
      for (Operation *user : cat.getResult().getUsers()) {
        if (auto sh = dyn_cast<ShapeOp>(user)) {
          stackShapes.push_back(sh);
          continue;
        }
        if (rs || !isa<ReshapeOp>(user))
          return fail("the stacked pairs are not flattened back to [..., d]");
        rs = cast<ReshapeOp>(user);
      }
      auto xt = tensorType(x);
      if (!rs || tensorType(rs.getResult()).getRank() != xt.getRank() ||
          tensorType(rs.getResult()).getShape().back() != d)
        return fail("the stacked pairs are not flattened back to [..., d]");
      ops.append({evenU.getDefiningOp(),
                  stripTrailingUnsqueeze(evenU).getDefiningOp(), un, cat, rs});
      rot = rs.getResult();
    }
    // rot * sin + x * cos.
    Operation *mSin = singleUser(rot);
    Value sin = mulPartner(mSin, rot);
    if (!sin)
      return fail("the rotated tensor is not multiplied by sin");
    auto add = dyn_cast_or_null<AddOp>(singleUser(mSin->getResult(0)));
    if (!add)
      return fail("rotate(x) * sin is not added to x * cos");
    Operation *mCos = otherOperand(add, mSin->getResult(0)).getDefiningOp();
    Value cos = mulPartner(mCos, x);
    if (!cos || !mCos->getResult(0).hasOneUse())
      return fail("rotate(x) * sin is not added to x * cos");
    ops.append({mSin, mCos, add});
    // Partial rotary: x = full[..., :r] and the result is concatenated with
    // full[..., r:].
    Value input = x;
    Operation *root = add;
    if (auto head = asLastAxisSlice(x);
        head && head->step == 1 && head->start == 0) {
      auto cat = dyn_cast_or_null<ConcatOp>(singleUser(add.getResult()));
      auto tail = cat && cat.getInputs().size() == 2 &&
                          cat.getInputs()[0] == add.getResult()
                      ? asLastAxisSlice(cat.getInputs()[1])
                      : std::nullopt;
      if (tail && tail->input == head->input && tail->step == 1 &&
          tail->start == d &&
          tail->end == tensorType(head->input).getShape().back() &&
          isLastAxis(cat.getAxis(), tensorType(x).getRank())) {
        input = head->input;
        root = cat;
        ops.append(
            {x.getDefiningOp(), cat.getInputs()[1].getDefiningOp(), cat});
      }
    }
    for (Value cs : {cos, sin}) {
      auto ct = tensorType(cs);
      if (ct.getElementType() != tensorType(x).getElementType() ||
          ct.getRank() > tensorType(x).getRank() ||
          (ct.getShape().back() != d &&
           ct.getShape().back() != ShapedType::kDynamic))
        return fail("cos or sin is not a [..., " + Twine(d) +
                    "] tensor of the input's type");
    }
    rw.setInsertionPoint(root);
    std::string err;
    auto rope = createWithInferredType<RotaryEmbeddingOp>(
        rw, fusedLocOf(ops), tensorType(x).getElementType(), err, input, cos,
        sin, rw.getI64IntegerAttr(d), rw.getBoolAttr(interleaved));
    if (failed(rope))
      return fail("cos or sin does not fit the input: " + err);
    // The root's type may be more static than the inferred one.
    rope->setType(root->getResult(0).getType());
    rw.replaceOp(root, *rope);
    for (ShapeOp sh : stackShapes)
      rw.replaceOp(sh, stackShape(rw, sh, x, d));
    return success();
  }
};

struct FuseRotaryPass : transfuse::impl::FuseRotaryBase<FuseRotaryPass> {
  using FuseRotaryBase::FuseRotaryBase;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseRope>(&getContext());
    if (failed(applyFusionPatterns(
            getOperation(), std::move(patterns), explain, "rotary_embedding",
            [](Operation *op) { return isa<NegOp>(op); })))
      signalPassFailure();
  }
};

} // namespace
