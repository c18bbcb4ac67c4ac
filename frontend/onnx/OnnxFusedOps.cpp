//===- OnnxFusedOps.cpp - ONNX ops that import straight into fused ops ----===//
//
// ONNX opset 23 added Attention, RMSNormalization and RotaryEmbedding. An
// export that already uses them needs no pattern matching: each becomes the
// dialect's `attention`, `rms_norm` or `rotary_embedding`, with the layout
// and mask adaptations spelled out in graph ops around it (which the fusion
// report then counts like any fused op).
//
//===----------------------------------------------------------------------===//
#include "frontend/onnx/GraphImporter.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace transfuse::transformer;

namespace transfuse::onnx_frontend {

namespace {
using Importer = GraphImporter;
using VResult = FailureOr<Value>;

VResult transpose(Importer &imp, Value v, ArrayRef<int64_t> perm) {
  return imp.make<TransposeOp>(Importer::elemOf(v), v,
                               imp.b.getDenseI64ArrayAttr(perm));
}

VResult reshape(Importer &imp, Value v, ArrayRef<int64_t> shape) {
  return imp.make<ReshapeOp>(Importer::elemOf(v), v, imp.constI64(shape),
                             imp.b.getBoolAttr(false));
}

/// [B, S, heads * D] -> [B, S, heads, D] (D static when the width is).
VResult headsLast(Importer &imp, Value v, int64_t heads) {
  int64_t hidden = cast<RankedTensorType>(v.getType()).getDimSize(2);
  int64_t d = hidden != ShapedType::kDynamic && hidden % heads == 0
                  ? hidden / heads
                  : -1;
  return reshape(imp, v, {0, 0, heads, d});
}

/// [B, S, heads * D] -> [B, heads, S, D].
VResult splitHeads(Importer &imp, Value v, int64_t heads) {
  auto r = headsLast(imp, v, heads);
  if (failed(r))
    return failure();
  return transpose(imp, *r, {0, 2, 1, 3});
}

/// Dim `i` of `v` as a 0-D i64 tensor.
VResult dimOf(Importer &imp, Value v, int64_t i) {
  auto shape =
      imp.make<ShapeOp>(imp.b.getI64Type(), v, imp.b.getI64IntegerAttr(i),
                        imp.b.getI64IntegerAttr(i + 1));
  if (failed(shape))
    return failure();
  return imp.make<ReshapeOp>(imp.b.getI64Type(), *shape,
                             imp.constI64({}, /*scalar=*/false),
                             imp.b.getBoolAttr(false));
}

/// A bool mask (true = attend) as an additive one: 0 or -inf.
VResult additiveMask(Importer &imp, Value mask, Type elem) {
  if (!Importer::elemOf(mask).isInteger(1))
    return mask;
  return imp.make<WhereOp>(
      elem, mask, imp.constScalar(elem, 0.0),
      imp.constScalar(elem, -std::numeric_limits<double>::infinity()));
}

/// The [Sq, Sk] causal mask: query i attends key j iff j <= i + offset.
VResult causalMask(Importer &imp, Value q, Value k, Value offset, Type elem) {
  Type i64 = imp.b.getI64Type();
  auto sq = dimOf(imp, q, 2), sk = dimOf(imp, k, 2);
  if (failed(sq) || failed(sk))
    return failure();
  Value zero = imp.constI64({0}, /*scalar=*/true),
        one = imp.constI64({1}, /*scalar=*/true);
  auto rows = imp.make<RangeOp>(i64, zero, *sq, one);
  auto cols = imp.make<RangeOp>(i64, zero, *sk, one);
  if (failed(rows) || failed(cols))
    return failure();
  VResult last = *rows;
  if (offset)
    last = imp.make<AddOp>(i64, *rows, offset);
  if (failed(last))
    return failure();
  auto column =
      imp.make<UnsqueezeOp>(i64, *last, imp.b.getDenseI64ArrayAttr({1}));
  if (failed(column))
    return failure();
  auto masked = imp.make<LessOp>(imp.b.getI1Type(), *column, *cols);
  if (failed(masked))
    return failure();
  return imp.make<WhereOp>(
      elem, *masked,
      imp.constScalar(elem, -std::numeric_limits<double>::infinity()),
      imp.constScalar(elem, 0.0));
}
} // namespace

LogicalResult importOnnxAttention(Importer &imp) {
  const onnx::NodeProto &n = *imp.node;
  Value q = imp.input(0), k = imp.input(1), v = imp.input(2);
  Value mask = imp.input(3), pastK = imp.input(4), pastV = imp.input(5);
  if (imp.input(6))
    return imp.fail("Attention with nonpad_kv_seqlen (an external KV cache) "
                    "is not supported");
  if (imp.attrFloat("softcap", 0.0f) != 0.0f)
    return imp.fail("Attention with softcap is not supported");
  if (imp.attrInt("left_window_size", -1) != -1 ||
      imp.attrInt("right_window_size", -1) != -1)
    return imp.fail("Attention with a sliding window is not supported");
  if (n.output_size() > 3 && !n.output(3).empty())
    return imp.fail("Attention's qk_matmul_output is not supported");
  if ((bool)pastK != (bool)pastV)
    return imp.fail("Attention needs both past_key and past_value, or "
                    "neither");
  Type elem = Importer::elemOf(q);
  if (!isa<FloatType>(elem))
    return imp.fail("Attention needs floating-point Q, K and V");
  int64_t rank = Importer::rankOf(q);
  if (rank != Importer::rankOf(k) || rank != Importer::rankOf(v) ||
      (rank != 3 && rank != 4))
    return imp.fail("Attention needs Q, K and V of the same rank, 3 or 4");
  if (rank == 3) {
    int64_t qh = imp.attrInt("q_num_heads", 0),
            kvh = imp.attrInt("kv_num_heads", 0);
    if (qh <= 0 || kvh <= 0)
      return imp.fail("3-D Attention needs q_num_heads and kv_num_heads");
    auto q4 = splitHeads(imp, q, qh), k4 = splitHeads(imp, k, kvh),
         v4 = splitHeads(imp, v, kvh);
    if (failed(q4) || failed(k4) || failed(v4))
      return failure();
    q = *q4, k = *k4, v = *v4;
  }
  Value offset;
  if (pastK) {
    auto kc = imp.make<ConcatOp>(elem, ValueRange{pastK, k},
                                 imp.b.getI64IntegerAttr(2));
    auto vc = imp.make<ConcatOp>(elem, ValueRange{pastV, v},
                                 imp.b.getI64IntegerAttr(2));
    auto past = dimOf(imp, pastK, 2);
    if (failed(kc) || failed(vc) || failed(past))
      return failure();
    k = *kc, v = *vc, offset = *past;
  }
  SmallVector<Value> masks;
  if (mask) {
    auto m = additiveMask(imp, mask, elem);
    if (failed(m))
      return failure();
    auto mt = cast<RankedTensorType>(m->getType());
    int64_t sk = cast<RankedTensorType>(k.getType()).getDimSize(2);
    if (!mt.isDynamicDim(mt.getRank() - 1) && sk != ShapedType::kDynamic &&
        mt.getShape().back() < sk)
      return imp.fail("an attn_mask shorter than the key sequence (padded "
                      "with -inf by the spec) is not supported");
    masks.push_back(*m);
  }
  if (imp.attrInt("is_causal", 0)) {
    auto c = causalMask(imp, q, k, offset, elem);
    if (failed(c))
      return failure();
    masks.push_back(*c);
  }
  double scale;
  if (const onnx::AttributeProto *s = imp.attr("scale")) {
    scale = s->f();
  } else {
    int64_t d = cast<RankedTensorType>(q.getType()).getDimSize(3);
    if (d == ShapedType::kDynamic)
      return imp.fail("Attention without a scale needs a static head size");
    scale = 1.0 / std::sqrt((double)d);
  }
  auto y = imp.make<AttentionOp>(
      elem, q, k, v, masks, imp.b.getF32FloatAttr(scale),
      imp.b.getStringAttr("unselected"), imp.b.getI64IntegerAttr(64),
      imp.b.getI64IntegerAttr(0), imp.b.getStringAttr(""));
  if (failed(y))
    return failure();
  Value out = *y;
  if (rank == 3) {
    auto t = transpose(imp, out, {0, 2, 1, 3});
    if (failed(t))
      return failure();
    auto r = reshape(imp, *t, {0, 0, -1});
    if (failed(r))
      return failure();
    out = *r;
  }
  return imp.setOutputs({out, k, v});
}

LogicalResult importOnnxRmsNorm(Importer &imp) {
  Value x = imp.input(0), scale = imp.input(1);
  Type elem = Importer::elemOf(x);
  int64_t rank = Importer::rankOf(x);
  int64_t axis = normalizeAxis(imp.attrInt("axis", -1), rank);
  if (axis < 0)
    return imp.fail("axis is out of range");
  if (imp.attrInt("stash_type", 1) != 1)
    return imp.fail("RMSNormalization with stash_type other than float is "
                    "not supported");
  float eps = imp.attrFloat("epsilon", 1e-5f);
  auto st = cast<RankedTensorType>(scale.getType());
  if (axis == rank - 1 && st.getRank() == 1) {
    auto y = imp.make<RmsNormOp>(elem, x, scale, imp.b.getF32FloatAttr(eps));
    return failed(y) ? failure() : imp.setOutputs(*y);
  }
  // Over several axes, or a scale that is not 1-D: the graph-op form.
  SmallVector<int64_t> axes;
  for (int64_t i = axis; i < rank; ++i)
    axes.push_back(i);
  auto sq = imp.make<MulOp>(elem, x, x);
  if (failed(sq))
    return failure();
  auto ms = imp.make<ReduceMeanOp>(elem, *sq, imp.b.getDenseI64ArrayAttr(axes),
                                   imp.b.getBoolAttr(true));
  if (failed(ms))
    return failure();
  auto ve = imp.make<AddOp>(elem, *ms, imp.constScalar(elem, eps));
  if (failed(ve))
    return failure();
  auto rms = imp.make<SqrtOp>(elem, *ve);
  if (failed(rms))
    return failure();
  auto y = imp.make<DivOp>(elem, x, *rms);
  if (failed(y))
    return failure();
  auto out = imp.make<MulOp>(elem, *y, scale);
  return failed(out) ? failure() : imp.setOutputs(*out);
}

LogicalResult importOnnxRotaryEmbedding(Importer &imp) {
  Value x = imp.input(0), cosCache = imp.input(1), sinCache = imp.input(2),
        positions = imp.input(3);
  Type elem = Importer::elemOf(x);
  int64_t rank = Importer::rankOf(x);
  bool interleaved = imp.attrInt("interleaved", 0) != 0;
  // To [B, S, H, D]: the layout the caches broadcast against.
  Value x4 = x;
  if (rank == 4) {
    auto t = transpose(imp, x, {0, 2, 1, 3});
    if (failed(t))
      return failure();
    x4 = *t;
  } else if (rank == 3) {
    int64_t heads = imp.attrInt("num_heads", 0);
    if (heads <= 0)
      return imp.fail("3-D RotaryEmbedding needs num_heads");
    auto r = headsLast(imp, x, heads);
    if (failed(r))
      return failure();
    x4 = *r;
  } else {
    return imp.fail("RotaryEmbedding needs a 3-D or 4-D input");
  }
  int64_t d = cast<RankedTensorType>(x4.getType()).getDimSize(3);
  int64_t rot = imp.attrInt("rotary_embedding_dim", 0);
  if (rot == 0)
    rot = d;
  if (rot == ShapedType::kDynamic)
    return imp.fail("RotaryEmbedding needs a static head size or "
                    "rotary_embedding_dim");
  // The caches as [B, S, 1, rot]: gathered by position, widened from rot/2
  // (each entry twice: [c, c] halves, or c0 c0 c1 c1 ... interleaved).
  SmallVector<Value> caches;
  for (Value c : {cosCache, sinCache}) {
    if (positions) {
      auto g =
          imp.make<GatherOp>(elem, c, positions, imp.b.getI64IntegerAttr(0));
      if (failed(g))
        return failure();
      c = *g;
    }
    if (Importer::rankOf(c) != 3)
      return imp.fail("RotaryEmbedding needs [B, S, rot/2] caches (or "
                      "[max_pos, rot/2] with position_ids)");
    VResult wide;
    if (interleaved) {
      auto u = imp.make<UnsqueezeOp>(elem, c, imp.b.getDenseI64ArrayAttr({3}));
      if (failed(u))
        return failure();
      auto pair = imp.make<ConcatOp>(elem, ValueRange{*u, *u},
                                     imp.b.getI64IntegerAttr(3));
      if (failed(pair))
        return failure();
      int64_t half = cast<RankedTensorType>(c.getType()).getDimSize(2);
      wide = reshape(imp, *pair,
                     {0, 0, half == ShapedType::kDynamic ? -1 : 2 * half});
    } else {
      wide = imp.make<ConcatOp>(elem, ValueRange{c, c},
                                imp.b.getI64IntegerAttr(2));
    }
    if (failed(wide))
      return failure();
    auto u =
        imp.make<UnsqueezeOp>(elem, *wide, imp.b.getDenseI64ArrayAttr({2}));
    if (failed(u))
      return failure();
    caches.push_back(*u);
  }
  auto y = imp.make<RotaryEmbeddingOp>(elem, x4, caches[0], caches[1],
                                       imp.b.getI64IntegerAttr(rot),
                                       imp.b.getBoolAttr(interleaved));
  if (failed(y))
    return failure();
  VResult out = rank == 4 ? transpose(imp, *y, {0, 2, 1, 3})
                          : reshape(imp, *y, {0, 0, -1});
  if (failed(out))
    return failure();
  return imp.setOutputs(*out);
}

} // namespace transfuse::onnx_frontend
