//===- MergeProjections.cpp - share one GEMM between linears of one input -===//
//
// Two rewrites on `linear` ops that read the same input, each turning several
// GEMMs into one wider GEMM whose weight is concatenated at compile time:
// - a gated unit act(x @ Wg + bg) * (x @ Wu + bu) (SwiGLU, GeGLU) becomes
//   one `linear {gated}` over [Wg | Wu];
// - sibling projections with no epilogue beyond a bias (Q, K and V; the K and
//   V of every cross-attention layer reading the encoder output) become one
//   `linear` over [W1 | W2 | ...], each original result a slice of it.
//
//===----------------------------------------------------------------------===//
#include "passes/FusionUtils.h"
#include "passes/Passes.h"

namespace transfuse {
#define GEN_PASS_DEF_MERGEPROJECTIONS
#include "passes/Passes.h.inc"
} // namespace transfuse

using namespace mlir;
using namespace transfuse;
using namespace transfuse::fusion;
using namespace transfuse::transformer;

namespace {

/// Why `l` cannot take part in a merge, or "" when it can: an epilogue
/// beyond a bias (other than an activation when `allowActivation`), or a
/// weight or bias that is not a compile-time constant.
std::string unmergeable(LinearOp l, bool allowActivation) {
  if (l.getResidual() || l.getGated())
    return "it has a residual or is already gated";
  if (!allowActivation && l.getActivation() != "none")
    return "it has an activation";
  if (!l.getWeight().getDefiningOp<ConstantOp>() ||
      !tensorType(l.getWeight()).hasStaticShape())
    return "its weight is not a compile-time constant";
  if (l.getBias() && !l.getBias().getDefiningOp<ConstantOp>())
    return "its bias is not a compile-time constant";
  return "";
}

/// The merged weight and bias of `group` (null bias when none has one).
LogicalResult concatParams(PatternRewriter &rw, Location loc,
                           ArrayRef<LinearOp> group, Value &weight,
                           Value &bias) {
  SmallVector<Value> ws, bs;
  for (LinearOp l : group) {
    ws.push_back(l.getWeight());
    if (l.getBias())
      bs.push_back(l.getBias());
  }
  if (!bs.empty() && bs.size() != group.size())
    return failure();
  weight = concatConstants(rw, loc, ws);
  bias = bs.empty() ? Value() : concatConstants(rw, loc, bs);
  return success(weight && (bs.empty() || bias));
}

/// The `linear` whose result `v` slices to half `half` (0 or 1) of its last
/// axis, with N = its width / 2; null otherwise.
LinearOp linearHalf(Value v, int64_t half, int64_t &n) {
  auto s = asLastAxisSlice(v);
  auto l = s ? s->input.getDefiningOp<LinearOp>() : LinearOp();
  if (!l || s->step != 1)
    return {};
  int64_t width = tensorType(l.getResult()).getShape().back();
  n = width / 2;
  if (width % 2 || s->start != half * n || s->end != (half + 1) * n)
    return {};
  return l;
}

/// act(y[..., :N]) * y[..., N:] with y = x @ [Wg | Wu] + b, one GEMM already
/// (GLM's gate_up_proj then chunk): the slices and the activation join the
/// linear's epilogue.
LogicalResult matchSplit(MulOp mul, PatternRewriter &rw) {
  auto fail = [&](const Twine &why) {
    return rw.notifyMatchFailure(mul, [&](Diagnostic &d) { d << why; });
  };
  for (int swap = 0; swap < 2; ++swap) {
    Value gated = swap ? mul.getRhs() : mul.getLhs();
    Value upHalf = swap ? mul.getLhs() : mul.getRhs();
    Operation *act = gated.getDefiningOp();
    StringRef kind;
    if (isa_and_nonnull<SiluOp>(act))
      kind = "silu";
    else if (isa_and_nonnull<ReluOp>(act))
      kind = "relu";
    else if (auto g = dyn_cast_or_null<GeluOp>(act))
      kind = g.getApproximate() == "tanh" ? "gelu_tanh" : "gelu";
    else
      continue;
    int64_t n = 0, n2 = 0;
    LinearOp l = linearHalf(act->getOperand(0), 0, n);
    if (!l || linearHalf(upHalf, 1, n2) != l)
      continue;
    if (l.getActivation() != "none" || l.getResidual() || l.getGated())
      return fail("the split projection already has an activation or "
                  "residual");
    if (!gated.hasOneUse() || !act->getOperand(0).hasOneUse() ||
        !upHalf.hasOneUse() ||
        llvm::any_of(l.getResult().getUsers(), [&](Operation *u) {
          return u != act->getOperand(0).getDefiningOp() &&
                 u != upHalf.getDefiningOp();
        }))
      return fail("the halves of the split projection are used elsewhere");
    if (mul.getType() != gated.getType() || mul.getType() != upHalf.getType())
      return fail("the gate and the up half differ in shape");
    rw.setInsertionPoint(mul);
    auto merged = LinearOp::create(
        rw,
        fusedLocOf({l, act->getOperand(0).getDefiningOp(),
                    upHalf.getDefiningOp(), act, mul}),
        mul.getType(), l.getInput(), l.getWeight(), l.getBias(), Value(),
        rw.getStringAttr(kind), rw.getBoolAttr(true));
    rw.replaceOp(mul, merged.getResult());
    return success();
  }
  return fail("it does not multiply two linear projections, or an activated "
              "and a plain half of one");
}

struct FuseGatedUnit : OpRewritePattern<MulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MulOp mul, PatternRewriter &rw) const override {
    auto fail = [&](const Twine &why) {
      return rw.notifyMatchFailure(mul, [&](Diagnostic &d) { d << why; });
    };
    auto a = mul.getLhs().getDefiningOp<LinearOp>(),
         b = mul.getRhs().getDefiningOp<LinearOp>();
    if (!a || !b)
      return matchSplit(mul, rw);
    LinearOp gate = a.getActivation() != "none" ? a : b;
    LinearOp up = gate == a ? b : a;
    if (up.getActivation() != "none" || gate.getActivation() == "none")
      return fail("exactly one of the two projections must have an "
                  "activation");
    if (gate.getInput() != up.getInput())
      return fail("the two projections read different inputs");
    for (LinearOp l : {gate, up}) {
      std::string why = unmergeable(l, /*allowActivation=*/true);
      if (!why.empty())
        return fail("a projection cannot join the gated unit: " + why);
      if (!l.getResult().hasOneUse())
        return fail("a projection is also used outside the gated unit");
    }
    if (gate.getType() != up.getType() || mul.getType() != gate.getType())
      return fail("the gate and the up projection differ in shape");
    rw.setInsertionPoint(mul);
    Location loc = fusedLocOf({gate, up, mul});
    Value weight, bias;
    if (failed(concatParams(rw, loc, {gate, up}, weight, bias)))
      return fail("one projection has a bias and the other has none");
    auto merged = LinearOp::create(
        rw, loc, mul.getType(), gate.getInput(), weight, bias, Value(),
        gate.getActivationAttr(), rw.getBoolAttr(true));
    rw.replaceOp(mul, merged.getResult());
    return success();
  }
};

struct MergeSiblings : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rw) const override {
    auto fail = [&](const Twine &why) {
      return rw.notifyMatchFailure(op, [&](Diagnostic &d) { d << why; });
    };
    std::string why = unmergeable(op, /*allowActivation=*/false);
    if (!why.empty())
      return fail(why);
    auto wt = tensorType(op.getWeight());
    SmallVector<LinearOp> group;
    for (Operation *user : op.getInput().getUsers()) {
      auto l = dyn_cast<LinearOp>(user);
      if (!l || l->getBlock() != op->getBlock() ||
          l.getInput() != op.getInput() ||
          !unmergeable(l, /*allowActivation=*/false).empty() ||
          (bool)l.getBias() != (bool)op.getBias() ||
          tensorType(l.getWeight()).getDimSize(0) != wt.getDimSize(0) ||
          tensorType(l.getWeight()).getElementType() != wt.getElementType() ||
          llvm::is_contained(group, l))
        continue;
      group.push_back(l);
    }
    if (group.size() < 2)
      return fail("no other projection of its input can share its GEMM");
    llvm::sort(group,
               [](LinearOp x, LinearOp y) { return x->isBeforeInBlock(y); });
    SmallVector<Operation *> ops(group.begin(), group.end());
    Location loc = fusedLocOf(ops);
    rw.setInsertionPoint(group.front());
    Value weight, bias;
    if (failed(concatParams(rw, loc, group, weight, bias)))
      return fail("its weights could not be concatenated");
    Type elem = wt.getElementType();
    Value merged = createInferred<LinearOp>(
        rw, loc, elem, op.getInput(), weight, bias, Value(),
        rw.getStringAttr("none"), rw.getBoolAttr(false));
    int64_t rank = tensorType(merged).getRank(), offset = 0;
    for (LinearOp l : group) {
      int64_t n = tensorType(l.getWeight()).getDimSize(1);
      Value part = createInferred<SliceOp>(
          rw, l.getLoc(), elem, merged, i64Element(rw, loc, offset),
          i64Element(rw, loc, offset + n), rw.getDenseI64ArrayAttr({rank - 1}),
          rw.getDenseI64ArrayAttr({1}));
      offset += n;
      part.setType(l.getType());
      rw.replaceOp(l, part);
    }
    return success();
  }
};

struct MergeProjectionsPass
    : transfuse::impl::MergeProjectionsBase<MergeProjectionsPass> {
  using MergeProjectionsBase::MergeProjectionsBase;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseGatedUnit>(&getContext(), /*benefit=*/2);
    patterns.add<MergeSiblings>(&getContext());
    // Candidates: a Mul of two projections, and a projection whose input
    // feeds another projection.
    auto isCandidate = [](Operation *op) {
      if (auto mul = dyn_cast<MulOp>(op)) {
        auto fromLinear = [](Value v) {
          Operation *d = v.getDefiningOp();
          if (isa_and_nonnull<SiluOp, GeluOp, ReluOp>(d))
            d = d->getOperand(0).getDefiningOp();
          if (isa_and_nonnull<SliceOp>(d))
            d = d->getOperand(0).getDefiningOp();
          return isa_and_nonnull<LinearOp>(d);
        };
        return fromLinear(mul.getLhs()) && fromLinear(mul.getRhs());
      }
      auto l = dyn_cast<LinearOp>(op);
      return l && llvm::count_if(l.getInput().getUsers(), [](Operation *u) {
                    return isa<LinearOp>(u);
                  }) > 1;
    };
    if (failed(applyFusionPatterns(getOperation(), std::move(patterns), explain,
                                   "a merged projection", isCandidate)))
      signalPassFailure();
  }
};

} // namespace
