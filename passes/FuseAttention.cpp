//===- FuseAttention.cpp - scaled-dot-product attention to `attention` ----===//
#include "passes/FusionUtils.h"
#include "passes/Passes.h"

#include <cmath>
#include <cstring>
#include <optional>
#include <vector>

namespace transfuse {
#define GEN_PASS_DEF_FUSEATTENTION
#include "passes/Passes.h.inc"
} // namespace transfuse

using namespace mlir;
using namespace transfuse;
using namespace transfuse::fusion;
using namespace transfuse::transformer;

namespace {

/// Strips single-use Mul/Div by scalar constants from `v`, folding them into
/// `scale`.
Value stripScale(Value v, double &scale, SmallVectorImpl<Operation *> &ops) {
  while (Operation *def = v.getDefiningOp()) {
    if (!v.hasOneUse())
      break;
    if (auto mul = dyn_cast<MulOp>(def)) {
      auto c = scalarValue(mul.getRhs());
      Value other = mul.getLhs();
      if (!c) {
        c = scalarValue(mul.getLhs());
        other = mul.getRhs();
      }
      if (!c || other.getType() != v.getType())
        break;
      scale *= *c;
      ops.push_back(mul);
      v = other;
    } else if (auto div = dyn_cast<DivOp>(def)) {
      auto c = scalarValue(div.getRhs());
      if (!c || *c == 0 || div.getLhs().getType() != v.getType())
        break;
      scale /= *c;
      ops.push_back(div);
      v = div.getLhs();
    } else {
      break;
    }
  }
  return v;
}

/// Flattens a tree of single-use Adds into its terms.
void addTerms(Value v, SmallVectorImpl<Value> &terms,
              SmallVectorImpl<Operation *> &ops, bool root) {
  auto add = v.getDefiningOp<AddOp>();
  if (add && (root || v.hasOneUse())) {
    ops.push_back(add);
    addTerms(add.getLhs(), terms, ops, false);
    addTerms(add.getRhs(), terms, ops, false);
    return;
  }
  terms.push_back(v);
}

/// `t` transposed by `perm` (none when `perm` is the identity).
Value transposed(PatternRewriter &rw, Location loc, Value t,
                 ArrayRef<int64_t> perm) {
  if (llvm::equal(perm, llvm::seq<int64_t>(0, perm.size())))
    return t;
  return createInferred<TransposeOp>(rw, loc, tensorType(t).getElementType(), t,
                                     rw.getDenseI64ArrayAttr(perm));
}

/// The key [B, H, Sk, D] given K^T [B, H, D, Sk], folding a transpose.
Value keyFromTransposed(PatternRewriter &rw, Location loc, Value kt) {
  SmallVector<int64_t> swap{0, 1, 3, 2};
  if (auto tr = kt.getDefiningOp<TransposeOp>()) {
    SmallVector<int64_t> perm;
    for (int64_t i : swap)
      perm.push_back(tr.getPerm()[i]);
    return transposed(rw, loc, tr.getInput(), perm);
  }
  return transposed(rw, loc, kt, swap);
}

/// Undoes HF's repeat_kv (Unsqueeze at 2, Expand, Reshape to H heads):
/// returns the [B, Hkv, S, D] source, or `v` when `v` is not such a repeat.
Value unrepeatHeads(Value v) {
  auto reshape = v.getDefiningOp<ReshapeOp>();
  if (!reshape)
    return v;
  auto expand = reshape.getInput().getDefiningOp<ExpandOp>();
  if (!expand)
    return v;
  auto unsq = expand.getInput().getDefiningOp<UnsqueezeOp>();
  if (!unsq || unsq.getAxes().size() != 1 || unsq.getAxes()[0] != 2)
    return v;
  Value src = unsq.getInput();
  auto st = tensorType(src), et = tensorType(expand.getResult()),
       rt = tensorType(v);
  if (st.getRank() != 4 || et.getRank() != 5 || rt.getRank() != 4)
    return v;
  int64_t h = rt.getDimSize(1), hkv = st.getDimSize(1), g = et.getDimSize(2);
  if (h == ShapedType::kDynamic || hkv == ShapedType::kDynamic ||
      g == ShapedType::kDynamic || hkv * g != h)
    return v;
  // Expand may only repeat the new dim: the others keep the source's sizes.
  for (auto [i, j] : {std::pair{0, 0}, {1, 1}, {3, 2}, {4, 3}}) {
    int64_t e = et.getDimSize(i), s = st.getDimSize(j);
    if (s == 1 && e != 1)
      return v;
  }
  return src;
}

/// Whether `v` is an f32 constant holding only finite values of magnitude
/// at most `bound`.
bool boundedConstant(Value v, double bound) {
  if (!tensorType(v).getElementType().isF32())
    return false;
  std::optional<std::vector<char>> bytes = constantBytes(v);
  if (!bytes)
    return false;
  for (size_t i = 0; i + sizeof(float) <= bytes->size(); i += sizeof(float)) {
    float x;
    std::memcpy(&x, bytes->data() + i, sizeof x);
    if (!std::isfinite(x) || std::fabs(x) > bound)
      return false;
  }
  return true;
}

/// A mask where(m, x, c) whose c lies below any score (transformers' masking
/// value, finfo(f32).min, or -inf) and whose x is rows of a constant table
/// of moderate values (T5's relative position bias: a gather from its
/// [buckets, heads] embedding, transposed and unsqueezed): x and where(m, 0,
/// c) as two masks, so that the [B, H, Sq, Sk] `where` is never built (the
/// kernel adds both). The same scores: unmasked, s + x; masked, (s + x) + c,
/// which rounds to c (as s + c does) while |s + x| < 1e31.
std::optional<std::pair<Value, Value>> splitMaskedBias(PatternRewriter &rw,
                                                       Location loc, Value m) {
  auto where = m.getDefiningOp<WhereOp>();
  if (!where)
    return std::nullopt;
  std::optional<double> c = scalarValue(where.getY());
  if (!c || *c > -1e37)
    return std::nullopt;
  Value x = where.getX();
  Value table = x;
  while (Operation *def = table.getDefiningOp()) {
    if (isa<UnsqueezeOp, TransposeOp, ReshapeOp>(def)) {
      table = def->getOperand(0);
      continue;
    }
    if (auto g = dyn_cast<GatherOp>(def))
      table = g.getData();
    break;
  }
  if (table == x || !boundedConstant(table, 1e6))
    return std::nullopt;
  Value zero = ConstantOp::create(
      rw, loc,
      DenseElementsAttr::get(RankedTensorType::get({}, rw.getF32Type()), 0.0f));
  Value masked = createInferred<WhereOp>(
      rw, loc, rw.getF32Type(), where.getCondition(), zero, where.getY());
  return std::make_pair(x, masked);
}

/// The 4-D [B, H, S, D] tensor a 3-D [B*H, S, D] one was reshaped from
/// (BLOOM's merged-heads bmm form), or null.
Value from3D(Value v3) {
  auto r = v3.getDefiningOp<ReshapeOp>();
  if (!r || tensorType(v3).getRank() != 3 ||
      tensorType(r.getInput()).getRank() != 4)
    return nullptr;
  auto t3 = tensorType(v3), t4 = tensorType(r.getInput());
  // The last two dims must be kept: only B and H merge.
  for (int i = 1; i < 3; ++i) {
    int64_t a = t3.getDimSize(i), b = t4.getDimSize(i + 1);
    if (a != b && a != ShapedType::kDynamic && b != ShapedType::kDynamic)
      return nullptr;
  }
  return r.getInput();
}

struct FuseSdpa : OpRewritePattern<SoftmaxOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(SoftmaxOp sm,
                                PatternRewriter &rw) const override {
    auto fail = [&](const Twine &why) {
      return rw.notifyMatchFailure(sm, [&](Diagnostic &d) { d << why; });
    };
    auto st = tensorType(sm.getInput());
    if (st.getRank() != 4)
      return fail("its scores are not [B, H, Sq, Sk] (rank " +
                  Twine(st.getRank()) + ")");
    if (normalizeAxis(sm.getAxis(), 4) != 3)
      return fail("it is not over the last axis");
    SmallVector<Operation *> ops{sm};
    // Output side: [Where(IsNaN(p), 0, p)] then MatMul(p, V).
    Value p = sm.getResult();
    if (!p.hasOneUse()) {
      IsNaNOp isNan;
      WhereOp where;
      for (Operation *u : p.getUsers()) {
        if (auto n = dyn_cast<IsNaNOp>(u))
          isNan = n;
        else if (auto w = dyn_cast<WhereOp>(u))
          where = w;
      }
      if (!isNan || !where || !p.hasNUses(2) || !isNan->hasOneUse() ||
          where.getCondition() != isNan.getResult() || where.getY() != p ||
          !isScalar(where.getX(), 0.0) || where.getType() != p.getType())
        return fail("the probabilities have users other than one MatMul");
      ops.append({isNan, where});
      p = where.getResult();
    }
    // MatMul(p, V); or, merged heads, Reshape(p) to [B*H, Sq, Sk], a 3-D
    // MatMul with Reshape(V), and a Reshape of the result back to 4-D.
    Operation *root = nullptr;
    Value value, valueRepeated;
    SmallVector<ShapeOp> pv3Shapes;
    if (auto pv = dyn_cast_or_null<MatMulOp>(singleUser(p));
        pv && pv.getLhs() == p) {
      root = pv;
      value = pv.getRhs();
    } else if (auto r = dyn_cast_or_null<ReshapeOp>(singleUser(p));
               r && tensorType(r.getResult()).getRank() == 3) {
      auto pv3 = dyn_cast_or_null<MatMulOp>(singleUser(r.getResult()));
      // Besides the Reshape back to 4-D, the 3-D product may feed Shape ops
      // (the exporter computes that Reshape's target from it).
      ReshapeOp out;
      if (pv3)
        for (Operation *u : pv3->getUsers()) {
          if (auto sh = dyn_cast<ShapeOp>(u);
              sh && shapeOpRange(sh) == std::pair<int64_t, int64_t>{0, 3}) {
            pv3Shapes.push_back(sh);
            continue;
          }
          auto o = dyn_cast<ReshapeOp>(u);
          if (!o || out) {
            out = ReshapeOp();
            break;
          }
          out = o;
        }
      if (pv3 && pv3.getLhs() == r.getResult() && out &&
          tensorType(out.getResult()).getRank() == 4 &&
          (value = from3D(pv3.getRhs()))) {
        ops.append({r, pv3});
        root = out;
      }
    }
    if (!root)
      return fail("the probabilities do not feed one MatMul(p, V)");
    ops.push_back(root);
    valueRepeated = value;
    if (tensorType(value).getRank() != 4)
      return fail("V at node '" + nodeName(root) + "' is not rank 4");
    // Input side: sum of terms, one of which is the scaled Q K^T.
    // Merged heads: a term Reshape(x) of 3-D [B*H, Sq, Sk] scores, whose own
    // terms are the 3-D Q K^T and 3-D biases (BLOOM's ALiBi).
    SmallVector<Value> terms, terms3;
    addTerms(sm.getInput(), terms, ops, /*root=*/true);
    for (auto it = terms.begin(); it != terms.end(); ++it)
      if (auto r = it->getDefiningOp<ReshapeOp>();
          r && it->hasOneUse() && tensorType(r.getInput()).getRank() == 3) {
        ops.push_back(r);
        addTerms(r.getInput(), terms3, ops, /*root=*/true);
        terms.erase(it);
        break;
      }
    double scale = 1.0, softcap = 0.0;
    MatMulOp qk;
    SmallVector<Value> masks, masks3;
    for (auto [list, rank, out] :
         {std::tuple{&terms, 4, &masks}, std::tuple{&terms3, 3, &masks3}})
      for (Value t : *list) {
        SmallVector<Operation *> scaleOps;
        double s = 1.0, cap = 0.0;
        Value core = stripScale(t, s, scaleOps);
        // Gemma 2's softcap: c * tanh(Q K^T * s'), c > 0 (HF: scores *
        // scaling / c, tanh, * c), is the attention's cap c on scores
        // scaled by s' c.
        if (auto tanh = core.getDefiningOp<TanhOp>();
            tanh && core.hasOneUse() && s > 0.0 && rank == 4) {
          cap = s;
          scaleOps.push_back(tanh);
          core = stripScale(tanh.getInput(), s, scaleOps);
        }
        auto mm = core.getDefiningOp<MatMulOp>();
        if (!qk && mm && core.hasOneUse() &&
            tensorType(mm.getLhs()).getRank() == rank &&
            tensorType(mm.getRhs()).getRank() == rank) {
          qk = mm;
          scale = s;
          softcap = cap;
          ops.append(scaleOps.begin(), scaleOps.end());
          continue;
        }
        out->push_back(t);
      }
    if (!qk)
      return fail("its input is not MatMul(Q, K^T) (scaled, plus masks)");
    ops.push_back(qk);
    Value q = stripScale(qk.getLhs(), scale, ops);
    Value kt = stripScale(qk.getRhs(), scale, ops);
    Value key4; // the key itself, when the merged form gives it directly
    if (tensorType(q).getRank() == 3) {
      q = from3D(q);
      Value k3 = kt;
      if (auto tr = kt.getDefiningOp<TransposeOp>();
          tr && llvm::equal(tr.getPerm(), ArrayRef<int64_t>{0, 2, 1}))
        key4 = from3D(tr.getInput());
      else
        kt = from3D(k3);
      if (!q || (!key4 && !kt))
        return fail("the 3-D Q K^T at node '" + nodeName(qk) +
                    "' does not come from 4-D [B, H, S, D] tensors");
      if (key4)
        kt = key4;
    }
    for (Value m : masks3) {
      auto mt = tensorType(m);
      if (mt.getRank() != 3 || mt.getElementType() != st.getElementType())
        return fail(
            "a 3-D bias added to the scores is not a float [B*H, Sq, Sk]");
    }
    for (Value m : masks) {
      auto mt = tensorType(m);
      if (mt.getRank() > 4 || mt.getElementType() != st.getElementType())
        return fail(
            "a mask added to the scores is not a float tensor of rank <= 4");
      // It must broadcast to the scores without widening them.
      for (int64_t i = 0; i < mt.getRank(); ++i) {
        int64_t md = mt.getDimSize(mt.getRank() - 1 - i),
                sd = st.getDimSize(3 - i);
        if (md != 1 && sd != ShapedType::kDynamic &&
            md != ShapedType::kDynamic && md != sd)
          return fail("a mask does not broadcast to the scores");
      }
    }
    if (tensorType(q).getRank() != 4 || tensorType(kt).getRank() != 4)
      return fail("Q or K^T at node '" + nodeName(qk) + "' is not rank 4");
    Location loc = fusedLocOf(ops);
    rw.setInsertionPoint(root);
    Value keyRepeated = key4 ? key4 : keyFromTransposed(rw, loc, kt);
    Value key = unrepeatHeads(keyRepeated);
    value = unrepeatHeads(valueRepeated);
    if (tensorType(key).getDimSize(1) != tensorType(value).getDimSize(1)) {
      // Only one of K and V was a repeat: use both repeated.
      key = keyRepeated;
      value = valueRepeated;
    }
    Type elem = st.getElementType();
    // 3-D biases [B*H, a, b] become [B, H, a, b].
    for (Value m : masks3) {
      auto i64 = [&](ArrayRef<int64_t> shape) {
        return RankedTensorType::get(shape, rw.getI64Type());
      };
      Value bh = ShapeOp::create(rw, loc, i64({2}), q, rw.getI64IntegerAttr(0),
                                 rw.getI64IntegerAttr(2));
      Value ab = ShapeOp::create(rw, loc, i64({2}), m, rw.getI64IntegerAttr(1),
                                 rw.getI64IntegerAttr(3));
      Value shape = ConcatOp::create(rw, loc, i64({4}), ValueRange{bh, ab},
                                     rw.getI64IntegerAttr(0));
      // allowzero: the target's sizes are dims, so a 0 is an empty dim,
      // not "copy the input's" (a [B, 0] mask broke inference here).
      masks.push_back(createInferred<ReshapeOp>(rw, loc, elem, m, shape,
                                                rw.getBoolAttr(true)));
    }
    // Shape([B*H, Sq, Dv]) from the 4-D operands, so the 3-D product dies.
    if (!pv3Shapes.empty()) {
      OpBuilder::InsertionGuard guard(rw);
      rw.setInsertionPointAfter(pv3Shapes.front().getInput().getDefiningOp());
      auto i64 = [&](int64_t n) {
        return RankedTensorType::get({n}, rw.getI64Type());
      };
      auto dim = [&](Value t, int64_t i) {
        return ShapeOp::create(rw, loc, i64(1), t, rw.getI64IntegerAttr(i),
                               rw.getI64IntegerAttr(i + 1))
            .getResult();
      };
      Value bh = MulOp::create(rw, loc, i64(1), dim(q, 0), dim(q, 1));
      Value shape = ConcatOp::create(rw, loc, i64(3),
                                     ValueRange{bh, dim(q, 2), dim(value, 3)},
                                     rw.getI64IntegerAttr(0));
      for (ShapeOp sh : pv3Shapes)
        rw.replaceOp(sh, shape);
    }
    // A masked position bias as two masks, while the kernel's two suffice.
    if (masks.size() == 1 && st.getElementType().isF32())
      if (auto parts = splitMaskedBias(rw, loc, masks.front()))
        masks = {parts->first, parts->second};
    auto attn = AttentionOp::create(
        rw, loc, root->getResult(0).getType(), q, key, value, masks,
        rw.getF32FloatAttr(scale), rw.getStringAttr("unselected"),
        rw.getI64IntegerAttr(64), rw.getI64IntegerAttr(0), rw.getStringAttr(""),
        rw.getF32FloatAttr(softcap));
    rw.replaceOp(root, attn.getResult());
    return success();
  }
};

struct FuseAttentionPass
    : transfuse::impl::FuseAttentionBase<FuseAttentionPass> {
  using FuseAttentionBase::FuseAttentionBase;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseSdpa>(&getContext());
    if (failed(applyFusionPatterns(
            getOperation(), std::move(patterns), explain, "attention",
            [](Operation *op) { return isa<SoftmaxOp>(op); })))
      signalPassFailure();
  }
};

} // namespace
