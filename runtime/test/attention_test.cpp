// The fused attention kernel (attention.cpp) against a plain softmax(Q K^T
// * scale + masks) V in double precision, on shapes that take each of its
// paths: the packed path (row blocks, edge panels, several tasks per head),
// the few-row path (decode), grouped K/V heads, masks of each kind (per
// key, contiguous or strided, and one value for all keys), a fully masked
// row, strided (transposed) operands, no keys, and the products on bf16
// operands (flags bit 0: the bf16 GEMM, or under TRANSFUSE_GEMM=f32 the
// f32 GEMM on rounded operands), against the same reference on operands
// rounded as the kernel rounds them.
// Whole models go through it against ONNX Runtime in test/models.
#include "approx_math.h"
#include "transfuse/bf16_panels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace {
struct Desc4D {
  float *base, *data;
  int64_t offset, sizes[4], strides[4];
};
} // namespace

extern "C" void _mlir_ciface_transfuse_attention_f32(Desc4D *, Desc4D *,
                                                     Desc4D *, Desc4D *,
                                                     Desc4D *, Desc4D *,
                                                     int64_t, float, float,
                                                     int64_t);
extern "C" void _mlir_ciface_transfuse_attention_f32_past(
    Desc4D *, Desc4D *, Desc4D *, Desc4D *, Desc4D *, Desc4D *, Desc4D *,
    Desc4D *, int64_t, float, float, int64_t);

namespace {

/// A rank-4 tensor in a buffer whose dims are laid out in `order` (order[0]
/// outermost), so that a view can be strided like a transposed export.
struct Tensor4 {
  std::vector<float> v;
  Desc4D d;
  Tensor4(std::array<int64_t, 4> sizes, std::array<int, 4> order,
          float seed, float lo = -1.0f, float hi = 1.0f) {
    int64_t n = 1;
    for (int64_t s : sizes)
      n *= s;
    v.resize(std::max<int64_t>(n, 1));
    uint32_t x = static_cast<uint32_t>(seed * 1000) + 12345u;
    for (float &f : v) {
      x = x * 1664525u + 1013904223u;
      f = lo + (hi - lo) * static_cast<float>(x >> 8) / float(1u << 24);
    }
    int64_t stride = 1;
    int64_t strides[4];
    for (int i = 3; i >= 0; --i) {
      strides[order[i]] = stride;
      stride *= sizes[order[i]];
    }
    d = {v.data(), v.data(), 0, {sizes[0], sizes[1], sizes[2], sizes[3]},
         {strides[0], strides[1], strides[2], strides[3]}};
  }
  float &at(int64_t a, int64_t b, int64_t c, int64_t e) {
    return v[d.offset + a * d.strides[0] + b * d.strides[1] + c * d.strides[2] +
             e * d.strides[3]];
  }
  /// Element [a, b, c, e] of the scores' shape with size-1 dims broadcast.
  float bcast(int64_t a, int64_t b, int64_t c, int64_t e) {
    return at(d.sizes[0] == 1 ? 0 : a, d.sizes[1] == 1 ? 0 : b,
              d.sizes[2] == 1 ? 0 : c, d.sizes[3] == 1 ? 0 : e);
  }
};

/// How a mask reaches a row's keys (the kernel adds each kind in its own
/// way: addMasksRow).
enum class Keys {
  Strided, // one per key, stored key-major (a non-unit key step)
  Unit,    // one per key, contiguous
  One,     // key dim 1: one value for every key
  // The padding mask only: contiguous per key, expanded to [B, 1, Sq, Sk]
  // with every row the same (read as one row: rowsRepeat), or the same
  // but for the last row of the last batch (read as it is).
  Expanded,
  ExpandedButLastRow,
  // The bias only: [1, H, Sq, Sk] as a view of [1, H, Sq + Sk - 1]
  // diagonals, row i starting at element Sq - 1 - i (row stride -1), as
  // the lowering passes a relative position bias (`toeplitz`).
  Diagonals,
};

struct Case {
  int64_t batch, heads, kvHeads, sq, sk, d, dv;
  int masks;
  bool transposed; // Q, K, V, O laid out [B, S, H, D] (a view)
  bool bf16 = false; // flags bit 0: the products on the bf16 GEMM
  Keys padKeys = Keys::Unit, biasKeys = Keys::Strided;
  // Through transfuse_attention_f32_past: K's and V's first `past` rows
  // come from a separate past tensor (laid out as K), which the kernel
  // copies in; the rows it must overwrite start out as NaN. With
  // pastKOnly, V's past is empty (V is whole already).
  int64_t past = 0;
  bool pastKOnly = false;
  // > 0: the scaled scores capped at softcap * tanh(s / softcap) before
  // the masks (Gemma 2).
  float softcap = 0.0f;
};

void check(const Case &c) {
  constexpr std::array<int, 4> plain{0, 1, 2, 3}, bshd{0, 2, 1, 3};
  auto order = c.transposed ? bshd : plain;
  Tensor4 q({c.batch, c.heads, c.sq, c.d}, order, 1.0f);
  Tensor4 k({c.batch, c.kvHeads, c.sk, c.d}, order, 2.0f);
  Tensor4 v({c.batch, c.kvHeads, c.sk, c.dv}, order, 3.0f);
  Tensor4 o({c.batch, c.heads, c.sq, c.dv}, order, 4.0f);
  // A padding mask [B, 1, 1, Sk] with its last key masked (-inf) in batch
  // 0 (or [B, 1, 1, 1]), and a position bias [1, H, Sq, Sk] stored
  // key-major (key stride Sq), so that it is read with a non-unit step, or
  // row-major, or [1, H, Sq, 1].
  const float inf = std::numeric_limits<float>::infinity();
  bool expanded =
      c.padKeys == Keys::Expanded || c.padKeys == Keys::ExpandedButLastRow;
  Tensor4 pad(
      {c.batch, 1, expanded ? c.sq : 1, c.padKeys == Keys::One ? 1 : c.sk},
      plain, 5.0f, -0.5f, 0.5f);
  if (c.sk > 0 && c.padKeys != Keys::One)
    pad.at(0, 0, 0, c.sk - 1) = -inf;
  if (expanded) {
    for (int64_t b = 0; b < c.batch; ++b)
      for (int64_t i = 1; i < c.sq; ++i)
        for (int64_t j = 0; j < c.sk; ++j)
          pad.at(b, 0, i, j) = pad.at(b, 0, 0, j);
    if (c.padKeys == Keys::ExpandedButLastRow)
      pad.at(c.batch - 1, 0, c.sq - 1, 0) += 1.0f;
  }
  bool diagonals = c.biasKeys == Keys::Diagonals;
  int64_t diags = c.sq + c.sk - 1;
  Tensor4 bias({1, c.heads, diagonals ? 1 : c.sq,
                diagonals                 ? diags
                : c.biasKeys == Keys::One ? 1
                                          : c.sk},
               c.biasKeys == Keys::Strided ? std::array<int, 4>{0, 1, 3, 2}
                                           : plain,
               6.0f, -2.0f, 2.0f);
  if (diagonals)
    bias.d = {bias.v.data(),
              bias.v.data(),
              c.sq - 1,
              {1, c.heads, c.sq, c.sk},
              {c.heads * diags, diags, -1, 1}};
  // Row 0 of head 0 fully masked: zeros out.
  if (c.masks == 2)
    for (int64_t j = 0; j < bias.d.sizes[3]; ++j)
      bias.at(0, 0, 0, j) = -inf;
  float scale = 1.0f / std::sqrt(static_cast<float>(c.d));
  Tensor4 kPast({c.batch, c.kvHeads, c.past, c.d}, order, 7.0f);
  int64_t vRows = c.pastKOnly ? 0 : c.past;
  Tensor4 vPast({c.batch, c.kvHeads, vRows, c.dv}, order, 8.0f);
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.kvHeads; ++h)
      for (int64_t j = 0; j < c.past; ++j) {
        for (int64_t t = 0; t < c.d; ++t)
          std::swap(k.at(b, h, j, t), kPast.at(b, h, j, t));
        for (int64_t t = 0; t < c.dv && j < vRows; ++t)
          std::swap(v.at(b, h, j, t), vPast.at(b, h, j, t));
      }
  std::vector<float> kWant = k.v, vWant = v.v;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.kvHeads; ++h)
      for (int64_t j = 0; j < c.past; ++j) {
        for (int64_t t = 0; t < c.d; ++t) {
          kWant[&k.at(b, h, j, t) - k.v.data()] = kPast.at(b, h, j, t);
          k.at(b, h, j, t) = std::nanf("");
        }
        for (int64_t t = 0; t < c.dv && j < vRows; ++t) {
          vWant[&v.at(b, h, j, t) - v.v.data()] = vPast.at(b, h, j, t);
          v.at(b, h, j, t) = std::nanf("");
        }
      }
  if (c.past > 0)
    _mlir_ciface_transfuse_attention_f32_past(&q.d, &k.d, &v.d, &pad.d, &bias.d,
                                              &o.d, &kPast.d, &vPast.d, c.masks,
                                              scale, c.softcap, c.bf16 ? 1 : 0);
  else
    _mlir_ciface_transfuse_attention_f32(&q.d, &k.d, &v.d, &pad.d, &bias.d,
                                         &o.d, c.masks, scale, c.softcap,
                                         c.bf16 ? 1 : 0);
  // The past rows were copied in; nothing else of K or V changed.
  for (size_t x = 0; x < kWant.size(); ++x)
    ASSERT_EQ(k.v[x], kWant[x]) << "K element " << x;
  for (size_t x = 0; x < vWant.size(); ++x)
    ASSERT_EQ(v.v[x], vWant[x]) << "V element " << x;
  // With bf16, heads of 12 rows or more (the packed path) round Q, K, V
  // and the unnormalized probabilities (exp(s - max)) to bf16 and divide
  // by the row's sum after the product; the reference does the same, so
  // what is left is f32 accumulation and a probability rounded the other
  // way at a tie of bf16 values (2^-9 of it).
  bool rounds = c.bf16 && c.sq >= 12;
  auto r = [&](double x) {
    return rounds ? double(transfuse::bf16::rounded(float(x))) : x;
  };
  double tol = rounds ? 2e-4 : 2e-5;
  int64_t group = c.heads / c.kvHeads;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.heads; ++h)
      for (int64_t i = 0; i < c.sq; ++i) {
        std::vector<double> s(c.sk);
        double mx = -INFINITY;
        for (int64_t j = 0; j < c.sk; ++j) {
          double acc = 0;
          for (int64_t t = 0; t < c.d; ++t)
            acc += r(q.at(b, h, i, t)) * r(k.at(b, h / group, j, t));
          acc *= scale;
          if (c.softcap > 0)
            acc = c.softcap * std::tanh(acc / c.softcap);
          if (c.masks >= 1)
            acc += pad.bcast(b, h, i, j);
          if (c.masks >= 2)
            acc += bias.bcast(b, h, i, j);
          s[j] = acc;
          mx = std::max(mx, acc);
        }
        double sum = 0;
        for (double &x : s) {
          x = mx == -INFINITY ? 0 : std::exp(x - mx);
          sum += x;
        }
        for (int64_t t = 0; t < c.dv; ++t) {
          double ref = 0;
          for (int64_t j = 0; j < c.sk && sum > 0; ++j)
            ref += r(s[j]) * r(v.at(b, h / group, j, t)) / sum;
          ASSERT_NEAR(o.at(b, h, i, t), ref, tol)
              << "b " << b << " h " << h << " row " << i << " col " << t;
        }
      }
}

// The runtime's exp (the softmax's, the epilogues' GELU and SiLU): within
// 1e-6 of libm over the range it computes, and 0 below -87 (a masked
// score), never a denormal that later multiplies would crawl through.
TEST(Attention, ExpApprox) {
  for (float x = -87.0f; x <= 88.0f; x += 0.37f)
    EXPECT_NEAR(transfuse::runtime::expApprox(x) / std::exp(x), 1.0f, 1e-6f)
        << x;
  for (float x : {-87.5f, -100.0f, -1e30f,
                  -std::numeric_limits<float>::infinity()})
    EXPECT_EQ(transfuse::runtime::expApprox(x), 0.0f) << x;
}

TEST(Attention, PackedRowBlocksAndEdges) {
  // 100 rows: two full blocks of 48 and an edge; 77 keys: edge panels.
  check({1, 2, 2, 100, 77, 64, 64, 1, false});
}

TEST(Attention, PackedTwoMasksTransposedViews) {
  check({2, 3, 3, 50, 130, 32, 40, 2, true});
}

TEST(Attention, PackedGroupedHeads) {
  check({1, 4, 2, 64, 64, 16, 16, 2, false});
}

// Gemma 2's softcap, 0.5 tanh(s / 0.5), under the scores of unit inputs
// (so it bites), on the packed path (f32 and bf16 products) and the
// decode path's few rows.
TEST(Attention, Softcap) {
  Case packed{1, 4, 2, 64, 80, 16, 16, 2, false};
  packed.softcap = 0.5f;
  check(packed);
  packed.bf16 = true;
  check(packed);
  Case decode{2, 4, 2, 1, 40, 16, 16, 2, false};
  decode.softcap = 0.5f;
  check(decode);
}

TEST(Attention, FewRowsDecode) {
  // One query row against a long cache, grouped heads, a 37-wide head dim
  // (masked tails in the vector loops).
  check({2, 4, 1, 1, 300, 37, 37, 2, false});
  check({1, 2, 2, 5, 33, 64, 64, 1, true});
  // A value dim past 64 (the weighted sum's chunks of 64 and a tail).
  check({1, 2, 2, 3, 50, 16, 80, 1, false});
}

TEST(Attention, Bf16Products) {
  // Row blocks and edges, two masks on transposed views, grouped heads,
  // and a decode step (f32 there).
  check({1, 2, 2, 100, 77, 64, 64, 1, false, true});
  check({2, 3, 3, 50, 130, 32, 40, 2, true, true});
  check({1, 4, 2, 64, 64, 16, 16, 2, false, true});
  check({2, 4, 1, 1, 300, 37, 37, 2, false, true});
  // Fewer keys than a vector (one partial 32-key block of P's panels).
  check({1, 2, 2, 20, 5, 16, 16, 1, false, true});
}

TEST(Attention, MaskKinds) {
  // Each pair of mask kinds the kernel adds in one pass, and a strided one
  // after a broadcast one (a pass each).
  using K = Keys;
  for (bool bf16 : {false, true}) {
    check({1, 2, 2, 50, 70, 16, 16, 2, false, bf16, K::Unit, K::Unit});
    check({1, 2, 2, 50, 70, 16, 16, 2, false, bf16, K::Unit, K::One});
    check({1, 2, 2, 50, 70, 16, 16, 1, false, bf16, K::One});
    check({1, 2, 2, 50, 70, 16, 16, 2, false, bf16, K::One, K::Unit});
    check({1, 2, 2, 50, 70, 16, 16, 2, false, bf16, K::One, K::One});
    check({1, 2, 2, 50, 70, 16, 16, 2, false, bf16, K::One, K::Strided});
  }
  // A padding mask expanded over the query rows, its rows all equal or
  // all but the last.
  for (bool bf16 : {false, true})
    for (K pad : {K::Expanded, K::ExpandedButLastRow})
      check({2, 2, 2, 50, 70, 16, 16, 2, false, bf16, pad, K::Unit});
  // A relative position bias read through a view of its diagonals, with
  // more keys than queries and fewer.
  for (bool bf16 : {false, true}) {
    check({1, 2, 2, 50, 70, 16, 16, 2, false, bf16, K::Unit, K::Diagonals});
    check({1, 3, 3, 97, 20, 16, 16, 2, true, bf16, K::One, K::Diagonals});
  }
  // The few-row path takes the same row passes.
  check({1, 2, 2, 1, 70, 16, 16, 2, false, false, K::One, K::Unit});
  check({1, 2, 2, 3, 70, 16, 16, 2, false, false, K::Unit, K::Diagonals});
}

TEST(Attention, PastRowsCopiedIn) {
  using K = Keys;
  for (bool bf16 : {false, true}) {
    // Decode: a task per head copies its rows (one query row, as many
    // K/V heads as query heads, one row split).
    check({1, 4, 4, 1, 130, 64, 64, 1, false, bf16, K::Unit, K::Strided, 129});
    check({2, 6, 6, 1, 33, 16, 24, 2, false, bf16, K::Unit, K::Strided, 32});
    // Grouped K/V heads, and a head's rows split over tasks: the copies
    // first, one task per K/V head.
    check({2, 4, 2, 1, 70, 16, 16, 1, false, bf16, K::Unit, K::Strided, 60});
    check(
        {1, 2, 2, 100, 120, 16, 16, 1, false, bf16, K::Unit, K::Strided, 100});
    // Transposed views (rows not contiguous per head), the whole of K
    // from the past, and no query rows (the copies still happen).
    check({1, 2, 2, 50, 70, 16, 16, 2, true, bf16, K::Unit, K::Strided, 20});
    check({1, 3, 3, 5, 40, 8, 8, 1, false, bf16, K::Unit, K::Strided, 40});
    check({1, 2, 2, 0, 10, 8, 8, 1, false, bf16, K::Unit, K::Strided, 10});
    // Decode steps over the bounds that keep a call on its thread
    // (attention.cpp): 2^20 flops (a task per head copies its rows), 512
    // KiB of copies (grouped heads: the copies first, on the pool).
    check(
        {1, 4, 4, 1, 1100, 64, 64, 1, false, bf16, K::Unit, K::Strided, 1099});
    check({1, 4, 2, 1, 600, 64, 64, 1, false, bf16, K::Unit, K::Strided, 599});
    // Only K has a past (V's is empty): decode, and several rows a head.
    check({1, 4, 4, 1, 50, 16, 16, 1, false, bf16, K::Unit, K::Strided, 30,
           true});
    check({1, 2, 2, 30, 50, 16, 16, 1, false, bf16, K::Unit, K::Strided, 30,
           true});
  }
}

/// How checkLiveKeys masks the keys.
struct LiveCase {
  int64_t s, heads, dv;
  bool bf16 = false, transposed = false;
  bool causal = true;         // the first term kills keys past the row
  int64_t window = 0;         // and, if > 0, keys `window` or more before it
  bool causalPerHead = false; // the first term [1, H, S, S] (t5: bias + mask)
  bool padPerHead = false;    // the padding term [B, H, S, S]
};

/// Two mask terms whose dead keys are -inf or finfo.min (LiveKeys: each
/// block of query rows reads keys only from the first live key of any of
/// its rows, rounded down to a panel of 32, to the last) give the same
/// bits as the same masks with -1e29 there, which LiveKeys reads (exp of
/// such a score is 0 all the same); the -inf ones match the
/// double-precision softmax. The first term is causal (a sliding window
/// too, with `window`), the second padding: batch 0's first 63 keys (63 +
/// 32 h with the term per head: per-head ranges), batch 1's last 40; a
/// block that started reading one key late, at key 64 (96, 128), would
/// miss a live key (as would windows of 66 keys in blocks of rows 96, 128
/// or 192). Batch
/// 1's first 50 query rows see only -inf keys: zeros, and a whole block of
/// rows with no live key. Its query rows 60-62 see only dead keys, their
/// padding term at odd keys a greater dead value (-1e30; -5e28 in the
/// -1e29 run): zeros with -inf, and with the finite values a uniform
/// softmax over the odd keys not dead twice over (with a causal mask,
/// finfo.min - 1e30 rounds to finfo.min). Batch 0's rows before its first
/// live key are likewise uniform with a causal mask.
void checkLiveKeys(const LiveCase &c) {
  SCOPED_TRACE(::testing::Message()
               << "S " << c.s << " bf16 " << c.bf16 << " causal " << c.causal
               << " window " << c.window << " causal per head "
               << c.causalPerHead << " padding per head " << c.padPerHead);
  const int64_t s = c.s, heads = c.heads, dv = c.dv;
  const int64_t padHeads = c.padPerHead ? heads : 1,
                causalHeads = c.causalPerHead ? heads : 1;
  constexpr std::array<int, 4> plain{0, 1, 2, 3}, bshd{0, 2, 1, 3};
  auto order = c.transposed ? bshd : plain;
  const int64_t batch = 2, d = 64, padded = 40, infRows = 50;
  const int64_t deadRow0 = 60, deadRow1 = 63;
  auto leftPad = [&](int64_t h) { return 63 + (c.padPerHead ? 32 * h : 0); };
  Tensor4 q({batch, heads, s, d}, order, 1.0f);
  Tensor4 k({batch, heads, s, d}, order, 2.0f);
  Tensor4 v({batch, heads, s, dv}, order, 3.0f);
  const float inf = std::numeric_limits<float>::infinity();
  const float deads[] = {-inf, std::numeric_limits<float>::lowest(), -1e29f};
  // A second dead value, greater than the first (-inf in the -inf run).
  const float deads2[] = {-inf, -1e30f, -5e28f};
  std::vector<float> out[3];
  // Rows (b, h, i) each of whose keys has a -inf term in the -inf run.
  std::vector<char> zeroRow(batch * heads * s);
  for (int variant = 0; variant < 3; ++variant) {
    float dead = deads[variant], dead2 = deads2[variant];
    // The causal term [1, 1 or H, S, S], and the padding term [B, 1 or H,
    // S, S]: random where live, `dead` where dead, -inf in batch 1's first
    // infRows rows.
    Tensor4 causal({1, causalHeads, s, s}, plain, 5.0f, -0.5f, 0.5f);
    Tensor4 pad({batch, padHeads, s, s}, plain, 6.0f, -0.5f, 0.5f);
    for (int64_t h = 0; h < causalHeads; ++h)
      for (int64_t i = 0; i < s; ++i)
        for (int64_t j = 0; j < s; ++j)
          if (c.causal && (j > i || (c.window > 0 && j <= i - c.window)))
            causal.at(0, h, i, j) = dead;
    for (int64_t h = 0; h < padHeads; ++h)
      for (int64_t i = 0; i < s; ++i)
        for (int64_t j = 0; j < s; ++j) {
          if (j < leftPad(h))
            pad.at(0, h, i, j) = dead;
          if (i < infRows)
            pad.at(1, h, i, j) = -inf;
          else if (j >= s - padded)
            pad.at(1, h, i, j) = dead;
          if (i >= deadRow0 && i < deadRow1)
            pad.at(1, h, i, j) = j % 2 ? dead2 : dead;
        }
    Tensor4 o({batch, heads, s, dv}, order, 4.0f);
    _mlir_ciface_transfuse_attention_f32(&q.d, &k.d, &v.d, &causal.d, &pad.d,
                                         &o.d, 2, 1.0f / 8.0f, 0.0f,
                                         c.bf16 ? 1 : 0);
    out[variant] = o.v;
    if (variant != 0)
      continue;
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < s; ++i) {
          bool zeros = true;
          for (int64_t j = 0; j < s; ++j)
            zeros &= causal.bcast(b, h, i, j) == -inf ||
                     pad.bcast(b, h, i, j) == -inf;
          zeroRow[(b * heads + h) * s + i] = zeros;
        }
    // The reference (f32 only: bf16 rounds as Bf16Products checks).
    for (int64_t b = 0; b < batch && !c.bf16; ++b)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < s; ++i) {
          std::vector<double> p(s, 0.0);
          double mx = -INFINITY, sum = 0;
          for (int64_t j = 0; j < s; ++j) {
            double acc = 0;
            for (int64_t t = 0; t < d; ++t)
              acc += double(q.at(b, h, i, t)) * k.at(b, h, j, t);
            p[j] = acc / 8.0 + causal.bcast(b, h, i, j) + pad.bcast(b, h, i, j);
            mx = std::max(mx, p[j]);
          }
          for (double &x : p) {
            x = mx == -INFINITY ? 0 : std::exp(x - mx);
            sum += x;
          }
          for (int64_t t = 0; t < dv; ++t) {
            double ref = 0;
            for (int64_t j = 0; j < s && sum > 0; ++j)
              ref += p[j] * v.at(b, h, j, t) / sum;
            ASSERT_NEAR(o.at(b, h, i, t), ref, 2e-5)
                << "b " << b << " h " << h << " row " << i << " col " << t;
          }
        }
  }
  Tensor4 where({batch, heads, s, dv}, order, 0.0f);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < s; ++i)
        for (int64_t t = 0; t < dv; ++t) {
          size_t x = &where.at(b, h, i, t) - where.v.data();
          ASSERT_EQ(out[1][x], out[2][x])
              << "finfo.min: b " << b << " h " << h << " row " << i;
          if (zeroRow[(b * heads + h) * s + i]) {
            ASSERT_EQ(out[0][x], 0.0f);
            continue;
          }
          ASSERT_EQ(out[0][x], out[2][x])
              << "-inf: b " << b << " h " << h << " row " << i;
        }
}

TEST(Attention, BlocksReadOnlyLiveKeys) {
  for (bool bf16 : {false, true}) {
    // Row blocks of 48 (64 on bf16 kernels) and an edge, V's edge panel
    // (40 columns: two panels, a product each), transposed views.
    checkLiveKeys({150, 3, 40, bf16});
    checkLiveKeys({100, 2, 64, bf16, true});
    checkLiveKeys({150, 3, 40, bf16, false, false});
    // A sliding window: blocks start past the first keys too.
    checkLiveKeys({200, 2, 40, bf16, false, true, 66});
    // Terms per head (t5's bias with its causal mask added in; per-head
    // padding), scanned in the heads' tasks.
    checkLiveKeys({150, 3, 40, bf16, false, true, 0, false, true});
    checkLiveKeys({150, 3, 40, bf16, false, true, 0, true, false});
    checkLiveKeys({200, 3, 40, bf16, true, true, 66, true, true});
  }
}

/// A decode step's few query rows (the few-row path) read only their live
/// keys too (blockKeys, a row at a time): `sq` query rows at the end of
/// `sk` keys, a first term causal (and a sliding `window`), a second one
/// padding (batch 0's first 37 keys, 37 + 13 h with the term per head;
/// batch 1's last 20, as a cache longer than its sequence), through
/// transfuse_attention_f32_past when `past` > 0. Dead keys -inf or
/// finfo.min give the same bits as -1e29 there (which LiveKeys reads: its
/// exponential is 0 all the same), and the -inf run matches the
/// double-precision softmax.
struct DecodeLiveCase {
  int64_t sq, sk, kvHeads, window = 0, past = 0;
  bool padPerHead = false;
};

void checkDecodeLiveKeys(const DecodeLiveCase &c) {
  SCOPED_TRACE(::testing::Message()
               << "Sq " << c.sq << " Sk " << c.sk << " K/V heads " << c.kvHeads
               << " window " << c.window << " past " << c.past
               << " padding per head " << c.padPerHead);
  constexpr std::array<int, 4> plain{0, 1, 2, 3};
  const int64_t batch = 2, heads = 4, d = 64, dv = 40,
                group = heads / c.kvHeads;
  const int64_t padHeads = c.padPerHead ? heads : 1;
  Tensor4 q({batch, heads, c.sq, d}, plain, 1.0f);
  Tensor4 kAll({batch, c.kvHeads, c.sk, d}, plain, 2.0f);
  Tensor4 vAll({batch, c.kvHeads, c.sk, dv}, plain, 3.0f);
  const float inf = std::numeric_limits<float>::infinity();
  const float deads[] = {-inf, std::numeric_limits<float>::lowest(), -1e29f};
  std::vector<float> out[3];
  for (int variant = 0; variant < 3; ++variant) {
    float dead = deads[variant];
    Tensor4 causal({1, 1, c.sq, c.sk}, plain, 5.0f, -0.5f, 0.5f);
    Tensor4 pad({batch, padHeads, 1, c.sk}, plain, 6.0f, -0.5f, 0.5f);
    for (int64_t i = 0; i < c.sq; ++i) {
      int64_t pos = c.sk - c.sq + i;
      for (int64_t j = 0; j < c.sk; ++j)
        if (j > pos || (c.window > 0 && j <= pos - c.window))
          causal.at(0, 0, i, j) = dead;
    }
    for (int64_t h = 0; h < padHeads; ++h)
      for (int64_t j = 0; j < c.sk; ++j) {
        if (j < 37 + (c.padPerHead ? 13 * h : 0))
          pad.at(0, h, 0, j) = dead;
        if (j >= c.sk - 20)
          pad.at(1, h, 0, j) = dead;
      }
    // K and V with their first `past` rows NaN, which the kernel copies
    // in from the past tensors.
    Tensor4 k = kAll, v = vAll;
    Tensor4 kPast({batch, c.kvHeads, c.past, d}, plain, 0.0f);
    Tensor4 vPast({batch, c.kvHeads, c.past, dv}, plain, 0.0f);
    k.d.base = k.d.data = k.v.data();
    v.d.base = v.d.data = v.v.data();
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < c.kvHeads; ++h)
        for (int64_t j = 0; j < c.past; ++j) {
          for (int64_t t = 0; t < d; ++t) {
            kPast.at(b, h, j, t) = kAll.at(b, h, j, t);
            k.at(b, h, j, t) = std::nanf("");
          }
          for (int64_t t = 0; t < dv; ++t) {
            vPast.at(b, h, j, t) = vAll.at(b, h, j, t);
            v.at(b, h, j, t) = std::nanf("");
          }
        }
    Tensor4 o({batch, heads, c.sq, dv}, plain, 4.0f);
    if (c.past > 0)
      _mlir_ciface_transfuse_attention_f32_past(&q.d, &k.d, &v.d, &causal.d,
                                                &pad.d, &o.d, &kPast.d,
                                                &vPast.d, 2, 0.125f, 0.0f, 0);
    else
      _mlir_ciface_transfuse_attention_f32(&q.d, &k.d, &v.d, &causal.d, &pad.d,
                                           &o.d, 2, 0.125f, 0.0f, 0);
    out[variant] = o.v;
    if (variant != 0)
      continue;
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < c.sq; ++i) {
          std::vector<double> p(c.sk);
          double mx = -INFINITY, sum = 0;
          for (int64_t j = 0; j < c.sk; ++j) {
            double acc = 0;
            for (int64_t t = 0; t < d; ++t)
              acc += double(q.at(b, h, i, t)) * kAll.at(b, h / group, j, t);
            p[j] = acc / 8.0 + causal.bcast(b, h, i, j) + pad.bcast(b, h, i, j);
            mx = std::max(mx, p[j]);
          }
          for (double &x : p) {
            x = std::exp(x - mx);
            sum += x;
          }
          for (int64_t t = 0; t < dv; ++t) {
            double ref = 0;
            for (int64_t j = 0; j < c.sk; ++j)
              ref += p[j] * vAll.at(b, h / group, j, t) / sum;
            ASSERT_NEAR(o.at(b, h, i, t), ref, 2e-5)
                << "b " << b << " h " << h << " row " << i << " col " << t;
          }
        }
  }
  for (size_t x = 0; x < out[0].size(); ++x) {
    ASSERT_EQ(out[0][x], out[2][x]) << "-inf: element " << x;
    ASSERT_EQ(out[1][x], out[2][x]) << "finfo.min: element " << x;
  }
}

TEST(Attention, DecodeReadsOnlyLiveKeys) {
  // One and three query rows; a window of 50 (keys start past the left
  // padding) and of 100; K/V heads per query head (the past copied in
  // the head's task and read from there) and grouped (copied first).
  checkDecodeLiveKeys({1, 300, 4});
  checkDecodeLiveKeys({3, 300, 4, 50});
  checkDecodeLiveKeys({1, 300, 2, 100, 0, true});
  checkDecodeLiveKeys({1, 300, 4, 50, 290});
  checkDecodeLiveKeys({3, 300, 4, 100, 150, true});
  checkDecodeLiveKeys({2, 300, 2, 50, 280});
}

TEST(Attention, NoMasksNoKeys) {
  check({1, 2, 2, 20, 20, 8, 8, 0, false});
  check({1, 2, 2, 3, 0, 8, 8, 1, false});
  // An empty head dim: every score 0, the output V's mean (no buffer for
  // an empty K or Q block; Scratch gives none for a count of 0).
  for (bool bf16 : {false, true}) {
    check({1, 2, 2, 20, 10, 0, 8, 1, false, bf16});
    check({1, 2, 2, 1, 10, 0, 8, 1, false, bf16});
  }
}

} // namespace
