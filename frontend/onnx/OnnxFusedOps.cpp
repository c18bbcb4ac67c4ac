//===- OnnxFusedOps.cpp - ONNX ops that import straight into fused ops ----===//
//
// ONNX opset 23 added Attention, RMSNormalization and RotaryEmbedding. An
// export that already uses them needs no pattern matching: each becomes the
// dialect's `attention`, `rms_norm` or `rotary_embedding`, with the layout
// and mask adaptations spelled out in graph ops around it (which the fusion
// report then counts like any fused op).
//
// ONNX Runtime's com.microsoft Attention (BERT's fused QKV projection plus
// attention), MultiHeadAttention and GroupQueryAttention (onnxruntime-genai's
// decoders, with their KV cache: `kv_cache_update`) contrib ops import the
// same way, and so do the other ops its transformer optimizer writes
// (SkipLayerNormalization, SkipSimplifiedLayerNormalization,
// SimplifiedLayerNormalization, EmbedLayerNormalization and the GELUs), into
// graph ops the fusion passes take up as they would an export's; their
// expected outputs in the tests come from ONNX Runtime itself.
//
//===----------------------------------------------------------------------===//
#include "frontend/onnx/GraphImporter.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

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

/// The additive mask of query rows whose last key is `last` ([..., Sq]):
/// key j of the `keys` (a 0-D count) is -inf after it, and with `window`
/// W > 0 also at or before last - W (a sliding window of W keys); 0
/// elsewhere. [..., Sq, Sk].
VResult lastKeyMask(Importer &imp, Value last, Value keys, int64_t window,
                    Type elem) {
  Type i64 = imp.b.getI64Type(), i1 = imp.b.getI1Type();
  auto cols = imp.make<RangeOp>(i64, imp.constI64({0}, /*scalar=*/true), keys,
                                imp.constI64({1}, /*scalar=*/true));
  auto at = imp.make<UnsqueezeOp>(
      i64, last, imp.b.getDenseI64ArrayAttr({Importer::rankOf(last)}));
  if (failed(cols) || failed(at))
    return failure();
  auto dead = imp.make<LessOp>(i1, *at, *cols);
  if (window > 0) {
    auto first = imp.make<SubOp>(i64, *at, imp.constI64({window - 1}, true));
    auto before =
        succeeded(first) ? imp.make<LessOp>(i1, *cols, *first) : first;
    if (succeeded(dead) && succeeded(before))
      dead = imp.make<OrOp>(i1, *dead, *before);
  }
  if (failed(dead))
    return failure();
  return imp.make<WhereOp>(
      elem, *dead,
      imp.constScalar(elem, -std::numeric_limits<double>::infinity()),
      imp.constScalar(elem, 0.0));
}

/// The key bounds of ONNX Attention beyond its attn_mask, as one additive
/// mask, -inf where a key is dead: the query at position p = i + offset
/// reads key j iff j <= p (`causal`), p - left <= j (left >= 0), j <= p +
/// right (right >= 0: Attention-25's sliding window) and j < lengths[b]
/// (`lengths`, Attention-24's nonpad_kv_seqlen: the valid keys of an
/// external cache). `offset` is a scalar (the past's length) or [B] (an
/// external cache's lengths[b] - Sq, per sequence). [Sq, Sk], or [B, 1, Sq,
/// Sk] with a per-sequence offset or lengths.
VResult keyBoundsMask(Importer &imp, Value q, Value k, Value offset,
                      bool causal, int64_t left, int64_t right, Value lengths,
                      Type elem) {
  Type i64 = imp.b.getI64Type(), i1 = imp.b.getI1Type();
  auto sq = dimOf(imp, q, 2), sk = dimOf(imp, k, 2);
  if (failed(sq) || failed(sk))
    return failure();
  Value zero = imp.constI64({0}, /*scalar=*/true),
        one = imp.constI64({1}, /*scalar=*/true);
  bool batched = lengths || (offset && Importer::rankOf(offset) == 1);
  // p: [Sq], or [B, Sq] with a per-sequence offset; then a trailing 1.
  VResult p = imp.make<RangeOp>(i64, zero, *sq, one);
  if (succeeded(p) && offset) {
    VResult at = Importer::rankOf(offset) == 1
                     ? imp.make<UnsqueezeOp>(i64, offset,
                                             imp.b.getDenseI64ArrayAttr({1}))
                     : VResult(offset);
    p = succeeded(at) ? imp.make<AddOp>(i64, *at, *p) : at;
  }
  if (succeeded(p))
    p = imp.make<UnsqueezeOp>(
        i64, *p, imp.b.getDenseI64ArrayAttr({Importer::rankOf(*p)}));
  auto cols = imp.make<RangeOp>(i64, zero, *sk, one);
  if (failed(p) || failed(cols))
    return failure();
  VResult dead = failure();
  auto orDead = [&](VResult d) {
    if (failed(d))
      return false;
    dead = succeeded(dead) ? imp.make<OrOp>(i1, *dead, *d) : d;
    return succeeded(dead);
  };
  // Past the last key: p (causal), else p + right.
  if (causal || right >= 0) {
    VResult last =
        causal ? p : imp.make<AddOp>(i64, *p, imp.constI64({right}, true));
    if (failed(last) || !orDead(imp.make<LessOp>(i1, *last, *cols)))
      return failure();
  }
  // Before the first: p - left.
  if (left >= 0) {
    auto first = imp.make<SubOp>(i64, *p, imp.constI64({left}, true));
    if (failed(first) || !orDead(imp.make<LessOp>(i1, *cols, *first)))
      return failure();
  }
  // At or past a sequence's length: lengths[b] - 1 < j, as [B, 1, 1].
  if (lengths) {
    auto n = imp.make<ReshapeOp>(i64, lengths, imp.constI64({-1, 1, 1}),
                                 imp.b.getBoolAttr(false));
    VResult lastValid =
        succeeded(n) ? imp.make<SubOp>(i64, *n, one) : VResult(failure());
    if (failed(lastValid) || !orDead(imp.make<LessOp>(i1, *lastValid, *cols)))
      return failure();
  }
  if (failed(dead))
    return failure();
  auto mask = imp.make<WhereOp>(
      elem, *dead,
      imp.constScalar(elem, -std::numeric_limits<double>::infinity()),
      imp.constScalar(elem, 0.0));
  if (failed(mask) || !batched)
    return mask;
  // [B, Sq, Sk] -> [B, 1, Sq, Sk]: one for all heads.
  return imp.make<UnsqueezeOp>(elem, *mask, imp.b.getDenseI64ArrayAttr({1}));
}

/// The [Sq, Sk] causal mask: query i attends key j iff j <= i + offset.
VResult causalMask(Importer &imp, Value q, Value k, Value offset, Type elem) {
  return keyBoundsMask(imp, q, k, offset, /*causal=*/true, /*left=*/-1,
                       /*right=*/-1, /*lengths=*/Value(), elem);
}

/// [B, heads, S, Dv] -> [B, S, heads * Dv].
VResult mergeHeads(Importer &imp, Value v) {
  auto t = transpose(imp, v, {0, 2, 1, 3});
  if (failed(t))
    return failure();
  auto vt = cast<RankedTensorType>(v.getType());
  int64_t h = vt.getDimSize(1), d = vt.getDimSize(3);
  return reshape(
      imp, *t,
      {0, 0,
       h == ShapedType::kDynamic || d == ShapedType::kDynamic ? -1 : h * d});
}

/// The attention scale: the `scale` attribute when given and non-zero, else
/// 1 / sqrt(head size).
FailureOr<double> attentionScale(Importer &imp, Value q4) {
  if (const onnx::AttributeProto *s = imp.attr("scale"); s && s->f() != 0.0f)
    return (double)s->f();
  int64_t d = cast<RankedTensorType>(q4.getType()).getDimSize(3);
  if (d == ShapedType::kDynamic)
    return imp.fail("attention without a scale needs a static head size");
  return 1.0 / std::sqrt((double)d);
}

/// Columns [start, start + n) of the last axis of `v`.
VResult lastAxisSlice(Importer &imp, Value v, int64_t start, int64_t n) {
  return imp.make<SliceOp>(
      Importer::elemOf(v), v, imp.constI64({start}), imp.constI64({start + n}),
      imp.b.getDenseI64ArrayAttr({-1}), imp.b.getDenseI64ArrayAttr({1}));
}

/// ORT's key masks as an additive [B, 1, 1, T] (or [B, 1, S, T]) term:
/// `mask_filter_value` where a key is masked, 0 elsewhere. Accepts raw
/// [B, T] or [B, S, T] masks (0 = masked) and 1-D [B] valid lengths.
VResult ortKeyMask(Importer &imp, Value mask, Value keys, Type elem) {
  auto mt = cast<RankedTensorType>(mask.getType());
  if (!isa<IntegerType>(mt.getElementType()))
    return imp.fail("the key mask must be an integer tensor");
  double filter = imp.attrFloat("mask_filter_value", -10000.0f);
  Type i1 = imp.b.getI1Type();
  VResult masked = failure();
  if (mt.getRank() == 1) {
    // Right padding: key j is masked when j >= length[b].
    auto t = dimOf(imp, keys, 2);
    if (failed(t))
      return failure();
    Type i64 = imp.b.getI64Type();
    auto cols = imp.make<RangeOp>(i64, imp.constI64({0}, true), *t,
                                  imp.constI64({1}, true));
    auto len = imp.make<CastOp>(i64, mask);
    if (failed(cols) || failed(len))
      return failure();
    auto lenCol =
        imp.make<UnsqueezeOp>(i64, *len, imp.b.getDenseI64ArrayAttr({1}));
    if (failed(lenCol))
      return failure();
    auto keep = imp.make<LessOp>(i1, *cols, *lenCol);
    if (failed(keep))
      return failure();
    masked = imp.make<NotOp>(i1, *keep);
  } else if (mt.getRank() == 2 || mt.getRank() == 3) {
    masked =
        imp.make<EqualOp>(i1, mask, imp.constScalar(mt.getElementType(), 0));
  } else {
    return imp.fail("only [B], [B, T] and [B, S, T] key masks are supported");
  }
  if (failed(masked))
    return failure();
  auto add = imp.make<WhereOp>(elem, *masked, imp.constScalar(elem, filter),
                               imp.constScalar(elem, 0.0));
  if (failed(add))
    return failure();
  SmallVector<int64_t> axes =
      mt.getRank() == 3 ? SmallVector<int64_t>{1} : SmallVector<int64_t>{1, 2};
  return imp.make<UnsqueezeOp>(elem, *add, imp.b.getDenseI64ArrayAttr(axes));
}

/// Concatenates the past keys and values before `k` and `v` (all
/// [B, H, S, D]); returns the past length (the causal offset), or null
/// without a past.
FailureOr<Value> appendPast(Importer &imp, Value pastK, Value pastV, Value &k,
                            Value &v) {
  if (!pastK)
    return Value();
  Type elem = Importer::elemOf(k);
  auto kc = imp.make<ConcatOp>(elem, ValueRange{pastK, k},
                               imp.b.getI64IntegerAttr(2));
  auto vc = imp.make<ConcatOp>(elem, ValueRange{pastV, v},
                               imp.b.getI64IntegerAttr(2));
  auto past = dimOf(imp, pastK, 2);
  if (failed(kc) || failed(vc) || failed(past))
    return failure();
  k = *kc, v = *vc;
  return *past;
}

/// The fused op over 4-D q/k/v with `masks`, plus a causal mask offset by
/// `pastLen` when `causal`, scaled by the `scale` attribute or
/// 1 / sqrt(head size), the scaled scores capped at `softcap` (0: none);
/// with `mergeOut`, the result as [B, S, H * Dv].
VResult attend(Importer &imp, Value q, Value k, Value v,
               SmallVector<Value> masks, bool causal, Value pastLen,
               bool mergeOut, float softcap = 0.0f) {
  if (causal) {
    auto c = causalMask(imp, q, k, pastLen, Importer::elemOf(q));
    if (failed(c))
      return failure();
    masks.push_back(*c);
  }
  auto scale = attentionScale(imp, q);
  if (failed(scale))
    return failure();
  auto y = imp.make<AttentionOp>(
      Importer::elemOf(q), q, k, v, masks, imp.b.getF32FloatAttr(*scale),
      imp.b.getStringAttr("unselected"), imp.b.getI64IntegerAttr(64),
      imp.b.getI64IntegerAttr(0), imp.b.getStringAttr(""),
      imp.b.getF32FloatAttr(softcap));
  if (failed(y) || !mergeOut)
    return y;
  return mergeHeads(imp, *y);
}

/// x4 [B, S, heads, D] with its first `rot` dims rotated by the [B, S,
/// rot/2] caches: each entry widened to rot (the [c, c] halves, or c0 c0 c1
/// c1 ... interleaved) and broadcast over the heads.
VResult rotate(Importer &imp, Value x4, Value cosBS, Value sinBS, int64_t rot,
               bool interleaved) {
  Type elem = Importer::elemOf(x4);
  SmallVector<Value> caches;
  for (Value c : {cosBS, sinBS}) {
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
  return imp.make<RotaryEmbeddingOp>(elem, x4, caches[0], caches[1],
                                     imp.b.getI64IntegerAttr(rot),
                                     imp.b.getBoolAttr(interleaved));
}

} // namespace

/// ONNX Attention's qk_matmul_output, [B, H, Sq, Sk], by graph ops: the
/// scaled Q K^T (K's heads repeated for grouped queries), then per `mode`
/// 1: capped by `softcap` (when > 0), 2: plus the masks, 3: softmaxed, a
/// row whose keys are all masked giving zeros (as the fused op's output
/// does).
VResult attentionScores(Importer &imp, Value q, Value k, ArrayRef<Value> masks,
                        float softcap, int64_t mode) {
  Type elem = Importer::elemOf(q);
  auto qt = cast<RankedTensorType>(q.getType());
  auto kt = cast<RankedTensorType>(k.getType());
  int64_t h = qt.getDimSize(1), hkv = kt.getDimSize(1), d = kt.getDimSize(3);
  if (h == ShapedType::kDynamic || hkv == ShapedType::kDynamic ||
      d == ShapedType::kDynamic || h % hkv != 0)
    return imp.fail("Attention's qk_matmul_output needs static head counts "
                    "(query heads a multiple of key heads) and head size");
  Value keys = k;
  if (h != hkv) {
    // [B, Hkv, Sk, D] -> [B, Hkv, h / hkv, Sk, D] -> [B, H, Sk, D]: each
    // key head repeated for its group of query heads.
    auto u = imp.make<UnsqueezeOp>(elem, k, imp.b.getDenseI64ArrayAttr({2}));
    auto e =
        succeeded(u)
            ? imp.make<ExpandOp>(elem, *u, imp.constI64({1, 1, h / hkv, 1, 1}))
            : u;
    auto r = succeeded(e) ? reshape(imp, *e, {0, h, -1, d}) : e;
    if (failed(r))
      return failure();
    keys = *r;
  }
  auto scale = attentionScale(imp, q);
  if (failed(scale))
    return failure();
  auto kT = transpose(imp, keys, {0, 1, 3, 2});
  auto qs = imp.make<MulOp>(elem, q, imp.constScalar(elem, *scale));
  VResult s = succeeded(kT) && succeeded(qs)
                  ? imp.make<MatMulOp>(elem, *qs, *kT)
                  : VResult(failure());
  if (mode >= 1 && softcap > 0.0f && succeeded(s)) {
    Value c = imp.constScalar(elem, softcap);
    auto t = imp.make<DivOp>(elem, *s, c);
    t = succeeded(t) ? imp.make<TanhOp>(elem, *t) : t;
    s = succeeded(t) ? imp.make<MulOp>(elem, *t, c) : t;
  }
  for (Value m : masks)
    if (mode >= 2 && succeeded(s))
      s = imp.make<AddOp>(elem, *s, m);
  if (mode == 3 && succeeded(s)) {
    // softmax of a row of -inf is NaN: those rows are zeros.
    auto p = imp.make<SoftmaxOp>(elem, *s, imp.b.getI64IntegerAttr(-1));
    auto nan = succeeded(p) ? imp.make<IsNaNOp>(imp.b.getI1Type(), *p) : p;
    s = succeeded(nan)
            ? imp.make<WhereOp>(elem, *nan, imp.constScalar(elem, 0.0), *p)
            : nan;
  }
  return s;
}

LogicalResult importOnnxAttention(Importer &imp) {
  const onnx::NodeProto &n = *imp.node;
  Value q = imp.input(0), k = imp.input(1), v = imp.input(2);
  Value mask = imp.input(3), pastK = imp.input(4), pastV = imp.input(5);
  Value nonpad = imp.input(6);
  if (nonpad && !Importer::elemOf(nonpad).isInteger(64))
    return imp.fail("Attention's nonpad_kv_seqlen must be int64");
  if (nonpad && Importer::rankOf(nonpad) != 1)
    return imp.fail("Attention's nonpad_kv_seqlen must be 1-D, [batch]");
  int64_t left = imp.attrInt("left_window_size", -1),
          right = imp.attrInt("right_window_size", -1);
  if (left < -1 || right < -1)
    return imp.fail("Attention's left_window_size and right_window_size must "
                    "be -1 or nonnegative");
  bool wantScores = n.output_size() > 3 && !n.output(3).empty();
  int64_t scoresMode = imp.attrInt("qk_matmul_output_mode", 0);
  if (wantScores && (scoresMode < 0 || scoresMode > 3))
    return imp.fail("Attention's qk_matmul_output_mode must be 0 to 3");
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
  auto offset = appendPast(imp, pastK, pastV, k, v);
  if (failed(offset))
    return failure();
  SmallVector<Value> masks;
  if (mask) {
    auto m = additiveMask(imp, mask, elem);
    if (failed(m))
      return failure();
    auto mt = cast<RankedTensorType>(m->getType());
    int64_t sk = cast<RankedTensorType>(k.getType()).getDimSize(2),
            len = mt.getShape().back();
    if (len != ShapedType::kDynamic && sk != ShapedType::kDynamic && len < sk) {
      // The spec pads a mask shorter than the keys with -inf (false): its
      // columns min(j, len - 1), plus -inf at keys j >= len. (Where either
      // length is dynamic, the mask must have all the keys' columns.)
      if (len == 0)
        return imp.fail("an attn_mask of no keys cannot be padded");
      SmallVector<int64_t> cols(sk);
      for (int64_t j = 0; j < sk; ++j)
        cols[j] = std::min(j, len - 1);
      Type i64 = imp.b.getI64Type();
      auto wide = imp.make<GatherOp>(elem, *m, imp.constI64(cols),
                                     imp.b.getI64IntegerAttr(mt.getRank() - 1));
      auto keys =
          imp.make<RangeOp>(i64, imp.constI64({0}, true),
                            imp.constI64({sk}, true), imp.constI64({1}, true));
      auto past = succeeded(keys)
                      ? imp.make<LessOp>(imp.b.getI1Type(),
                                         imp.constI64({len - 1}, true), *keys)
                      : keys;
      auto pad = succeeded(past)
                     ? imp.make<WhereOp>(
                           elem, *past,
                           imp.constScalar(
                               elem, -std::numeric_limits<double>::infinity()),
                           imp.constScalar(elem, 0.0))
                     : past;
      if (failed(wide) || failed(pad))
        return failure();
      m = imp.make<AddOp>(elem, *wide, *pad);
      if (failed(m))
        return failure();
    }
    masks.push_back(*m);
  }
  bool causal = imp.attrInt("is_causal", 0) != 0;
  if (left >= 0 || right >= 0 || nonpad) {
    // One mask for the causal bound, the window and the cache's valid
    // keys together. With an external cache (nonpad_kv_seqlen and no past)
    // the queries are its last Sq valid positions: offset lengths[b] - Sq.
    Value start = *offset;
    if (nonpad && !pastK) {
      auto sq = dimOf(imp, q, 2);
      auto o = succeeded(sq) ? imp.make<SubOp>(imp.b.getI64Type(), nonpad, *sq)
                             : VResult(failure());
      if (failed(o))
        return failure();
      start = *o;
    }
    auto bounds =
        keyBoundsMask(imp, q, k, start, causal, left, right, nonpad, elem);
    if (failed(bounds))
      return failure();
    masks.push_back(*bounds);
    causal = false;
  }
  // softcap caps the scaled scores before the masks are added, as ONNX's
  // reference and ONNX Runtime do (a masked key stays at -inf), which is
  // the fused op's `softcap`; none when it is not positive.
  float softcap = std::max(imp.attrFloat("softcap", 0.0f), 0.0f);
  if (!wantScores) {
    auto out = attend(imp, q, k, v, masks, causal, *offset, rank == 3, softcap);
    if (failed(out))
      return failure();
    return imp.setOutputs({*out, k, v});
  }
  // The scores as a 4th output: the attention's masks in full (the causal
  // one too), then the scores computed again beside the fused op.
  if (causal) {
    auto c = causalMask(imp, q, k, *offset, elem);
    if (failed(c))
      return failure();
    masks.push_back(*c);
  }
  auto out = attend(imp, q, k, v, masks, /*causal=*/false, *offset, rank == 3,
                    softcap);
  auto scores = attentionScores(imp, q, k, masks, softcap, scoresMode);
  if (failed(out) || failed(scores))
    return failure();
  return imp.setOutputs({*out, k, v, *scores});
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
  Value caches[2] = {cosCache, sinCache};
  for (Value &c : caches) {
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
  }
  auto y = rotate(imp, x4, caches[0], caches[1], rot, interleaved);
  if (failed(y))
    return failure();
  VResult out = rank == 4 ? transpose(imp, *y, {0, 2, 1, 3})
                          : reshape(imp, *y, {0, 0, -1});
  if (failed(out))
    return failure();
  return imp.setOutputs(*out);
}

/// com.microsoft MultiHeadAttention: separate Q, K, V ([B, S, N*H]; K and V
/// may be [B, N, L, H] already), optional packed bias, key padding mask,
/// attention bias, past K/V and `unidirectional`.
LogicalResult importMsMultiHeadAttention(Importer &imp) {
  const onnx::NodeProto &n = *imp.node;
  Value q = imp.input(0), k = imp.input(1), v = imp.input(2),
        bias = imp.input(3), keyMask = imp.input(4), attnBias = imp.input(5),
        pastK = imp.input(6), pastV = imp.input(7);
  if (imp.input(8) || imp.input(9))
    return imp.fail("MultiHeadAttention with past_sequence_length or "
                    "cache_indirection (beam search) is not supported");
  if (n.output_size() > 3 && !n.output(3).empty())
    return imp.fail("MultiHeadAttention's qk output is not supported");
  int64_t heads = imp.attrInt("num_heads", 0);
  if (heads <= 0)
    return imp.fail("MultiHeadAttention needs num_heads");
  if (Importer::rankOf(q) != 3 || !k || !v || Importer::rankOf(k) == 5)
    return imp.fail("packed QKV or KV inputs are not supported; give "
                    "separate query, key and value");
  if ((bool)pastK != (bool)pastV)
    return imp.fail("MultiHeadAttention needs both past_key and past_value, "
                    "or neither");
  Type elem = Importer::elemOf(q);
  if (bias) {
    // [Dq | Dk | Dv], added before the heads are split.
    int64_t offset = 0;
    for (Value *x : {&q, &k, &v}) {
      int64_t w = cast<RankedTensorType>(x->getType()).getShape().back();
      if (w == ShapedType::kDynamic)
        return imp.fail("a bias needs static query/key/value widths");
      if (Importer::rankOf(*x) == 3) {
        auto part = lastAxisSlice(imp, bias, offset, w);
        if (failed(part))
          return failure();
        auto sum = imp.make<AddOp>(elem, *x, *part);
        if (failed(sum))
          return failure();
        *x = *sum;
      }
      offset += Importer::rankOf(*x) == 3 ? w : 0;
    }
  }
  auto q4 = splitHeads(imp, q, heads);
  if (failed(q4))
    return failure();
  for (Value *x : {&k, &v}) {
    if (Importer::rankOf(*x) == 4)
      continue;
    auto x4 = splitHeads(imp, *x, heads);
    if (failed(x4))
      return failure();
    *x = *x4;
  }
  auto offset = appendPast(imp, pastK, pastV, k, v);
  if (failed(offset))
    return failure();
  SmallVector<Value> masks;
  if (keyMask) {
    auto m = ortKeyMask(imp, keyMask, k, elem);
    if (failed(m))
      return failure();
    masks.push_back(*m);
  }
  if (attnBias)
    masks.push_back(attnBias);
  auto out = attend(imp, *q4, k, v, masks,
                    imp.attrInt("unidirectional", 0) != 0, *offset,
                    /*mergeOut=*/true);
  if (failed(out))
    return failure();
  return imp.setOutputs({*out, k, v});
}

/// com.microsoft GroupQueryAttention, which onnxruntime-genai's model
/// builder writes for every decoder layer: Q, K, V as [B, S, N * H] (or
/// packed in the query input, K and V empty), the KV cache as BNSH
/// past_key / past_value, seqlens_k ([B] int32, each sequence's total
/// length minus one) and total_sequence_length (int32 scalar), and the
/// rotary caches when do_rotary. The semantics are ONNX Runtime's CPU
/// kernel's (checked against it for first prompts, decode steps with
/// batch entries of different lengths, a later prompt with a past, packed
/// QKV, rotary and local windows):
///  - sequence b's past length is p_b = max(seqlens_k[b] + 1 - S, 0): 0 on
///    a first prompt (S = total_sequence_length), else its tokens before
///    this call's;
///  - do_rotary rotates Q and K at positions p_b + s;
///  - present (T = max(total_sequence_length, past length P) rows) holds
///    the past's first p_b rows, then this call's S, then zeros (the past
///    is right-padded): `kv_cache_update`;
///  - query s attends the present's keys j <= p_b + s, and with
///    local_window_size W > 0 only those with j > p_b + s - W;
///  - a softcap c > 0 caps the scaled scores at c tanh(s / c) before the
///    mask (the attention's `softcap`).
/// Without a past the call is a first prompt and present is this call's K
/// and V. The query rows of a first prompt that lie past a sequence's
/// length are padding (ONNX Runtime leaves them undefined).
LogicalResult importMsGroupQueryAttention(Importer &imp) {
  const onnx::NodeProto &n = *imp.node;
  Value q = imp.input(0), k = imp.input(1), v = imp.input(2),
        pastK = imp.input(3), pastV = imp.input(4), seqlens = imp.input(5),
        total = imp.input(6), cosCache = imp.input(7), sinCache = imp.input(8);
  static const char *const kExtra[] = {"position_ids", "attention_bias",
                                       "head_sink"};
  for (int i = 9; i < 12; ++i)
    if (imp.input(i))
      return imp.fail(Twine("GroupQueryAttention's ") + kExtra[i - 9] +
                      " input is not supported");
  if (n.output_size() > 3 && !n.output(3).empty())
    return imp.fail("GroupQueryAttention's output_qk is not supported");
  if (imp.attrInt("smooth_softmax", 0) != 0)
    return imp.fail("GroupQueryAttention with smooth_softmax is not "
                    "supported");
  int64_t heads = imp.attrInt("num_heads", 0),
          kvHeads = imp.attrInt("kv_num_heads", 0);
  if (heads <= 0 || kvHeads <= 0 || heads % kvHeads)
    return imp.fail("GroupQueryAttention needs num_heads and kv_num_heads, "
                    "num_heads a multiple of kv_num_heads");
  if ((bool)k != (bool)v)
    return imp.fail("GroupQueryAttention needs both key and value, or "
                    "neither (QKV packed in the query)");
  if ((bool)pastK != (bool)pastV)
    return imp.fail("GroupQueryAttention needs both past_key and "
                    "past_value, or neither");
  bool rotary = imp.attrInt("do_rotary", 0) != 0;
  if (rotary && (!cosCache || !sinCache))
    return imp.fail("GroupQueryAttention with do_rotary needs cos_cache and "
                    "sin_cache");
  Type elem = Importer::elemOf(q);
  if (!isa<FloatType>(elem) || Importer::rankOf(q) != 3 ||
      (k && (Importer::rankOf(k) != 3 || Importer::rankOf(v) != 3)))
    return imp.fail("GroupQueryAttention needs floating-point [B, S, hidden] "
                    "query, key and value");
  if (!isa<IntegerType>(Importer::elemOf(seqlens)) ||
      !isa<IntegerType>(Importer::elemOf(total)))
    return imp.fail("GroupQueryAttention needs integer seqlens_k and "
                    "total_sequence_length");
  if (!k) {
    // [Q | K | V] on the last axis, the head size from the total width.
    int64_t width = cast<RankedTensorType>(q.getType()).getDimSize(2);
    int64_t parts = heads + 2 * kvHeads;
    if (width == ShapedType::kDynamic || width % parts)
      return imp.fail("packed QKV needs a static width that is a multiple "
                      "of num_heads + 2 * kv_num_heads");
    int64_t d = width / parts;
    auto qs = lastAxisSlice(imp, q, 0, heads * d),
         ks = lastAxisSlice(imp, q, heads * d, kvHeads * d),
         vs = lastAxisSlice(imp, q, (heads + kvHeads) * d, kvHeads * d);
    if (failed(qs) || failed(ks) || failed(vs))
      return failure();
    q = *qs, k = *ks, v = *vs;
  }
  Type i64 = imp.b.getI64Type();
  auto i64Of = [&](Value x) -> VResult {
    return Importer::elemOf(x).isInteger(64) ? VResult(x)
                                             : imp.make<CastOp>(i64, x);
  };
  Value zero = imp.constI64({0}, true), one = imp.constI64({1}, true);
  // p_b as [B, 1], and the positions p_b + s of this call's tokens, [B, S].
  auto s = dimOf(imp, q, 1);
  auto lens = i64Of(seqlens);
  if (failed(s) || failed(lens))
    return failure();
  auto pastLens = imp.make<AddOp>(i64, *lens, one);
  if (succeeded(pastLens))
    pastLens = imp.make<SubOp>(i64, *pastLens, *s);
  if (succeeded(pastLens))
    pastLens = imp.make<MaxOp>(i64, *pastLens, zero);
  auto past = succeeded(pastLens)
                  ? imp.make<UnsqueezeOp>(i64, *pastLens,
                                          imp.b.getDenseI64ArrayAttr({1}))
                  : pastLens;
  auto steps = imp.make<RangeOp>(i64, zero, *s, one);
  if (failed(past) || failed(steps))
    return failure();
  auto positions = imp.make<AddOp>(i64, *past, *steps);
  if (failed(positions))
    return failure();
  // Q, K, V as [B, S, heads, D]; rotated; then [B, heads, S, D].
  SmallVector<Value> qkv;
  for (auto [x, nh] : {std::pair{q, heads}, {k, kvHeads}, {v, kvHeads}}) {
    auto x4 = headsLast(imp, x, nh);
    if (failed(x4))
      return failure();
    qkv.push_back(*x4);
  }
  if (rotary) {
    for (Value c : {cosCache, sinCache})
      if (Importer::rankOf(c) != 2 ||
          cast<RankedTensorType>(c.getType()).isDynamicDim(1))
        return imp.fail("GroupQueryAttention needs [max_pos, rot/2] caches "
                        "with a static rot/2");
    int64_t rot = 2 * cast<RankedTensorType>(cosCache.getType()).getDimSize(1);
    auto c = imp.make<GatherOp>(elem, cosCache, *positions,
                                imp.b.getI64IntegerAttr(0));
    auto sn = imp.make<GatherOp>(elem, sinCache, *positions,
                                 imp.b.getI64IntegerAttr(0));
    if (failed(c) || failed(sn))
      return failure();
    bool interleaved = imp.attrInt("rotary_interleaved", 0) != 0;
    for (int i : {0, 1}) {
      auto r = rotate(imp, qkv[i], *c, *sn, rot, interleaved);
      if (failed(r))
        return failure();
      qkv[i] = *r;
    }
  }
  for (Value &x : qkv) {
    auto t = transpose(imp, x, {0, 2, 1, 3});
    if (failed(t))
      return failure();
    x = *t;
  }
  Value q4 = qkv[0], presentK = qkv[1], presentV = qkv[2];
  // The present's key positions j: [0, T).
  VResult keys = s;
  if (pastK) {
    // T = max(total_sequence_length, P) rows: per sequence the past's
    // first p_b, this call's S, zeros after.
    auto p = dimOf(imp, pastK, 2);
    auto t = i64Of(total);
    if (succeeded(t) && Importer::rankOf(*t) != 0) // a 1-element vector
      t = imp.make<ReshapeOp>(i64, *t, imp.constI64({}, /*scalar=*/false),
                              imp.b.getBoolAttr(false));
    if (succeeded(t) && succeeded(p))
      keys = imp.make<MaxOp>(i64, *t, *p);
    if (failed(keys))
      return failure();
    for (auto [present, pastOf] :
         {std::pair{&presentK, pastK}, std::pair{&presentV, pastV}}) {
      auto updated =
          imp.make<KvCacheUpdateOp>(elem, pastOf, *present, *pastLens, *keys);
      if (failed(updated))
        return failure();
      *present = *updated;
    }
  }
  // Query s of sequence b attends keys j <= p_b + s (and > p_b + s - W).
  auto mask = lastKeyMask(imp, *positions, *keys,
                          imp.attrInt("local_window_size", -1), elem);
  if (succeeded(mask))
    mask = imp.make<UnsqueezeOp>(elem, *mask, imp.b.getDenseI64ArrayAttr({1}));
  if (failed(mask))
    return failure();
  auto out =
      attend(imp, q4, presentK, presentV, {*mask}, /*causal=*/false, Value(),
             /*mergeOut=*/true, std::max(imp.attrFloat("softcap", 0.0f), 0.0f));
  if (failed(out))
    return failure();
  return imp.setOutputs({*out, presentK, presentV});
}

/// com.microsoft Attention: the QKV projection (input x weights + bias,
/// split by qkv_hidden_sizes) then attention with a mask index, an attention
/// bias and a stacked past [2, B, N, P, H].
LogicalResult importMsAttention(Importer &imp) {
  Value x = imp.input(0), w = imp.input(1), bias = imp.input(2),
        maskIndex = imp.input(3), past = imp.input(4), attnBias = imp.input(5);
  if (imp.input(6))
    return imp.fail("Attention with past_sequence_length is not supported");
  if (imp.attrInt("do_rotary", 0))
    return imp.fail("Attention with do_rotary is not supported");
  int64_t heads = imp.attrInt("num_heads", 0);
  if (heads <= 0)
    return imp.fail("Attention needs num_heads");
  if (Importer::rankOf(x) != 3 || Importer::rankOf(w) != 2)
    return imp.fail("Attention needs a [B, S, hidden] input and 2-D weights");
  Type elem = Importer::elemOf(x);
  SmallVector<int64_t> sizes;
  if (auto a = imp.attrInts("qkv_hidden_sizes")) {
    sizes = *a;
  } else {
    int64_t total = cast<RankedTensorType>(w.getType()).getDimSize(1);
    if (total == ShapedType::kDynamic || total % 3)
      return imp.fail("Attention weights need 3 * hidden static columns");
    sizes.assign(3, total / 3);
  }
  if (sizes.size() != 3)
    return imp.fail("qkv_hidden_sizes must have 3 entries");
  auto y = imp.make<MatMulOp>(elem, x, w);
  if (succeeded(y) && bias)
    y = imp.make<AddOp>(elem, *y, bias);
  if (failed(y))
    return failure();
  SmallVector<Value> qkv;
  int64_t offset = 0;
  for (int64_t size : sizes) {
    auto part = lastAxisSlice(imp, *y, offset, size);
    if (failed(part))
      return failure();
    auto p4 = splitHeads(imp, *part, heads);
    if (failed(p4))
      return failure();
    qkv.push_back(*p4);
    offset += size;
  }
  Value q = qkv[0], k = qkv[1], v = qkv[2], pastK, pastV;
  if (past) {
    // The stacked past [2, B, N, P, H]: keys, then values.
    SmallVector<Value> kv;
    for (int64_t i : {0, 1}) {
      auto g = imp.make<GatherOp>(elem, past, imp.constI64({i}, true),
                                  imp.b.getI64IntegerAttr(0));
      if (failed(g))
        return failure();
      kv.push_back(*g);
    }
    pastK = kv[0], pastV = kv[1];
  }
  auto pastLen = appendPast(imp, pastK, pastV, k, v);
  if (failed(pastLen))
    return failure();
  SmallVector<Value> masks;
  if (maskIndex) {
    auto mt = cast<RankedTensorType>(maskIndex.getType());
    if (mt.getRank() == 1 && !mt.isDynamicDim(0) &&
        mt.getDimSize(0) != cast<RankedTensorType>(x.getType()).getDimSize(0))
      return imp.fail("a mask_index of start and end positions ([2 * B]) is "
                      "not supported");
    auto m = ortKeyMask(imp, maskIndex, k, elem);
    if (failed(m))
      return failure();
    masks.push_back(*m);
  }
  if (attnBias)
    masks.push_back(attnBias);
  auto merged = attend(imp, q, k, v, masks,
                       imp.attrInt("unidirectional", 0) != 0, *pastLen,
                       /*mergeOut=*/true);
  if (failed(merged))
    return failure();
  SmallVector<Value> results{*merged};
  if (imp.node->output_size() > 1 && !imp.node->output(1).empty()) {
    auto k5 = imp.make<UnsqueezeOp>(elem, k, imp.b.getDenseI64ArrayAttr({0}));
    auto v5 = imp.make<UnsqueezeOp>(elem, v, imp.b.getDenseI64ArrayAttr({0}));
    if (failed(k5) || failed(v5))
      return failure();
    auto present = imp.make<ConcatOp>(elem, ValueRange{*k5, *v5},
                                      imp.b.getI64IntegerAttr(0));
    if (failed(present))
      return failure();
    results.push_back(*present);
  }
  return imp.setOutputs(results);
}

/// com.microsoft SkipLayerNormalization (input, skip, gamma, beta?, bias?)
/// and SkipSimplifiedLayerNormalization (input, skip, gamma, bias?), which
/// ONNX Runtime's transformer optimizer writes for a residual add and the
/// norm after it: sum = input + skip (+ bias), then LayerNorm(sum) * gamma
/// (+ beta), or RMSNorm(sum) * gamma, over the last axis. Outputs: the
/// norm; mean and inv_std_var (not given: an error when used); the sum
/// (input_skip_bias_sum). epsilon defaults to 1e-12, as in ONNX Runtime.
LogicalResult importMsSkipNorm(Importer &imp, bool simplified) {
  Value x = imp.input(0), skip = imp.input(1), gamma = imp.input(2);
  Value beta = simplified ? Value() : imp.input(3);
  Value bias = imp.input(simplified ? 3 : 4);
  for (Value v : {gamma, beta, bias})
    if (v && Importer::rankOf(v) != 1)
      return imp.fail("gamma, beta and bias must be 1-D");
  Type elem = Importer::elemOf(x);
  VResult sum = imp.make<AddOp>(elem, x, skip);
  if (succeeded(sum) && bias)
    sum = imp.make<AddOp>(elem, *sum, bias);
  if (failed(sum))
    return failure();
  FloatAttr eps = imp.b.getF32FloatAttr(imp.attrFloat("epsilon", 1e-12f));
  VResult y =
      simplified
          ? imp.make<RmsNormOp>(elem, *sum, gamma, eps)
          : imp.make<LayerNormalizationOp>(elem, *sum, gamma, beta,
                                           imp.b.getI64IntegerAttr(-1), eps);
  if (failed(y))
    return failure();
  return imp.setOutputs({*y, Value(), Value(), *sum});
}

/// com.microsoft EmbedLayerNormalization, which ONNX Runtime's optimizer
/// writes for BERT's embeddings (exports of older transformers): inputs
/// input_ids, segment_ids?, word_embedding, position_embedding,
/// segment_embedding?, gamma, beta, mask?, position_ids?. The word
/// embeddings of the ids, plus the position embeddings (of position_ids,
/// else of 0..S-1), plus the segment embeddings when both segment inputs
/// are given, layer-normalized over the last axis (epsilon 1e-12 unless
/// given). Outputs: that, mask_index (each row's mask sum as int32, zeros
/// without a mask, as ONNX Runtime's CPU kernel gives), and the sum before
/// the norm (embedding_sum).
LogicalResult importMsEmbedLayerNorm(Importer &imp) {
  Value ids = imp.input(0), segIds = imp.input(1), word = imp.input(2),
        pos = imp.input(3), segEmb = imp.input(4), gamma = imp.input(5),
        beta = imp.input(6), mask = imp.input(7), posIds = imp.input(8);
  Type elem = Importer::elemOf(word);
  IntegerAttr axis0 = imp.b.getI64IntegerAttr(0);
  VResult sum = imp.make<GatherOp>(elem, word, ids, axis0);
  VResult positions;
  if (posIds) {
    positions = imp.make<GatherOp>(elem, pos, posIds, axis0);
  } else {
    // Rows [0, S) of the table, S the ids' second dim.
    auto len =
        imp.make<ShapeOp>(imp.b.getI64Type(), ids, imp.b.getI64IntegerAttr(1),
                          imp.b.getI64IntegerAttr(2));
    if (failed(len))
      return failure();
    positions = imp.make<SliceOp>(elem, pos, imp.constI64({0}), *len,
                                  imp.b.getDenseI64ArrayAttr({0}),
                                  imp.b.getDenseI64ArrayAttr({1}));
  }
  if (succeeded(sum) && succeeded(positions))
    sum = imp.make<AddOp>(elem, *sum, *positions);
  if (succeeded(sum) && segIds && segEmb) {
    auto segments = imp.make<GatherOp>(elem, segEmb, segIds, axis0);
    sum =
        succeeded(segments) ? imp.make<AddOp>(elem, *sum, *segments) : segments;
  }
  if (failed(sum))
    return failure();
  auto y = imp.make<LayerNormalizationOp>(
      elem, *sum, gamma, beta, imp.b.getI64IntegerAttr(-1),
      imp.b.getF32FloatAttr(imp.attrFloat("epsilon", 1e-12f)));
  if (failed(y))
    return failure();
  Type i32 = imp.b.getI32Type();
  VResult maskIndex = failure();
  if (mask) {
    // Summed in f32: exact for any row shorter than 2^24.
    Type f32 = imp.b.getF32Type();
    auto m = imp.make<CastOp>(f32, mask);
    auto rows =
        succeeded(m)
            ? imp.make<ReduceSumOp>(f32, *m, imp.b.getDenseI64ArrayAttr({1}),
                                    imp.b.getBoolAttr(false))
            : m;
    maskIndex = succeeded(rows) ? imp.make<CastOp>(i32, *rows) : rows;
  } else {
    auto batch =
        imp.make<ShapeOp>(imp.b.getI64Type(), ids, imp.b.getI64IntegerAttr(0),
                          imp.b.getI64IntegerAttr(1));
    maskIndex = succeeded(batch) ? imp.make<ConstantOfShapeOp>(
                                       i32, *batch, imp.b.getI32IntegerAttr(0))
                                 : batch;
  }
  if (failed(maskIndex))
    return failure();
  return imp.setOutputs({*y, *maskIndex, *sum});
}

/// com.microsoft's GELUs, which ONNX Runtime's transformer optimizer fuses
/// a model's GELU (and the bias add before it) into: Gelu (x), BiasGelu
/// (x, bias), both exact (erf); FastGelu (x, bias?), the tanh
/// approximation; QuickGelu (x), x * sigmoid(alpha x), alpha 1.702 unless
/// given.
LogicalResult importMsGelu(Importer &imp) {
  StringRef op = imp.node->op_type();
  Value x = imp.input(0);
  Type elem = Importer::elemOf(x);
  VResult in = x;
  if ((op == "BiasGelu" || op == "FastGelu") && imp.input(1))
    in = imp.make<AddOp>(elem, x, imp.input(1));
  if (failed(in))
    return failure();
  if (op == "QuickGelu") {
    auto ax = imp.make<MulOp>(
        elem, *in, imp.constScalar(elem, imp.attrFloat("alpha", 1.702f)));
    auto sig = succeeded(ax) ? imp.make<SigmoidOp>(elem, *ax) : ax;
    auto y = succeeded(sig) ? imp.make<MulOp>(elem, *in, *sig) : sig;
    return failed(y) ? failure() : imp.setOutputs(*y);
  }
  auto y = imp.make<GeluOp>(
      elem, *in, imp.b.getStringAttr(op == "FastGelu" ? "tanh" : "none"));
  return failed(y) ? failure() : imp.setOutputs(*y);
}

/// com.microsoft MatMulNBits (onnxruntime-genai's int4 and int8 exports):
/// Y = A W + bias, W [K, N] stored as `bits`-bit integers in blocks of
/// `block_size` along K, each block of a column with its own scale and
/// zero point: W[k][n] = (q - zero point) * scale, the zero point
/// 2^(bits - 1) unless given (packed as B is, or as floats). The weights
/// must be initializers: they are dequantized here, once, into an f32
/// weight, so the model runs in f32 (or bf16 with --precision bf16),
/// reading 8 (4) times the bytes of 4-bit weights at run time. g_idx
/// (act-order quantization) and bit widths other than 4 and 8 are
/// rejected; accuracy_level, which lets ONNX Runtime round A to int8, is
/// ignored (A stays f32).
LogicalResult importMsMatMulNBits(Importer &imp) {
  Value a = imp.input(0), qb = imp.input(1), scales = imp.input(2),
        zeros = imp.input(3), bias = imp.input(5);
  if (imp.input(4))
    return imp.fail("g_idx (act-order quantization) is not "
                    "supported");
  if (!Importer::elemOf(a).isF32())
    return imp.fail("only a float32 A is supported");
  int64_t k = imp.attrInt("K", -1), n = imp.attrInt("N", -1),
          bits = imp.attrInt("bits", 4), block = imp.attrInt("block_size", -1);
  if (bits != 4 && bits != 8)
    return imp.fail("bits = " + Twine(bits) + " is not supported (4 or 8)");
  constexpr int64_t kMax = int64_t(1) << 30; // no product below overflows
  if (k <= 0 || n <= 0 || k > kMax || n > kMax || block < 16 || block > kMax ||
      (block & (block - 1)))
    return imp.fail("K and N must be in [1, 2^30] and block_size a power "
                    "of two of at least 16 (K " +
                    Twine(k) + ", N " + Twine(n) + ", block_size " +
                    Twine(block) + ")");
  int64_t kDim = cast<RankedTensorType>(a.getType()).getShape().back();
  if (!ShapedType::isDynamic(kDim) && kDim != k)
    return imp.fail("A's last dim is " + Twine(kDim) + ", not K = " + Twine(k));
  int64_t blocks = (k + block - 1) / block, blob = block * bits / 8;
  int64_t packedZeros = (blocks * bits + 7) / 8;
  // Each operand's element type and element count (ONNX Runtime takes the
  // 1-D and 2-D forms of scales and zero points alike).
  auto typed = [](Value v, Type elem, int64_t count) {
    auto t = dyn_cast<RankedTensorType>(v.getType());
    return t && t.getElementType() == elem && t.hasStaticShape() &&
           t.getNumElements() == count;
  };
  Type u8 = IntegerType::get(imp.ctx, 8, IntegerType::Unsigned);
  Type f32 = imp.b.getF32Type();
  bool zerosPacked = zeros && typed(zeros, u8, n * packedZeros);
  if (!typed(qb, u8, n * blocks * blob) || !typed(scales, f32, n * blocks) ||
      (zeros && !zerosPacked && !typed(zeros, f32, n * blocks)) ||
      (bias && !typed(bias, f32, n)))
    return imp.fail(
        "B must be uint8 [N, K blocks, block bytes], scales "
        "float32 [N * K blocks], zero_points uint8 [N * packed K blocks] "
        "or float32 [N * K blocks], bias float32 [N]");
  auto qBytes = constantBytes(qb), sBytes = constantBytes(scales);
  std::optional<std::vector<char>> zBytes;
  if (zeros)
    zBytes = constantBytes(zeros);
  if (!qBytes || !sBytes || (zeros && !zBytes))
    return imp.fail("B, scales and zero_points must be "
                    "initializers (constants)");
  auto floatAt = [](const std::vector<char> &bytes, int64_t i) {
    float f;
    std::memcpy(&f, bytes.data() + 4 * i, 4);
    return f;
  };
  // The unsigned `bits`-bit value at index i of a packed row (the low
  // nibble first within each byte).
  auto unpack = [&](const char *row, int64_t i) -> int {
    auto byte = static_cast<uint8_t>(row[i * bits / 8]);
    return bits == 8 ? byte : (i % 2 ? byte >> 4 : byte & 15);
  };
  auto zero = [&](int64_t col, int64_t blk) -> float {
    if (!zeros)
      return float(1 << (bits - 1));
    if (zerosPacked)
      return float(unpack(zBytes->data() + col * packedZeros, blk));
    return floatAt(*zBytes, col * blocks + blk);
  };
  std::vector<char> wBytes(k * n * sizeof(float));
  auto *w = reinterpret_cast<float *>(wBytes.data());
  for (int64_t col = 0; col < n; ++col)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      float s = floatAt(*sBytes, col * blocks + blk), z = zero(col, blk);
      const char *row = qBytes->data() + (col * blocks + blk) * blob;
      for (int64_t i = 0; i < block && blk * block + i < k; ++i)
        w[(blk * block + i) * n + col] = (float(unpack(row, i)) - z) * s;
    }
  Value weight =
      imp.weightConstant(imp.node->input(1) + "_dequantized",
                         RankedTensorType::get({k, n}, f32), std::move(wBytes));
  VResult y = imp.make<MatMulOp>(f32, a, weight);
  if (succeeded(y) && bias)
    y = imp.make<AddOp>(f32, *y, bias);
  return failed(y) ? failure() : imp.setOutputs(*y);
}

} // namespace transfuse::onnx_frontend
