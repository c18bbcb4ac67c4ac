// The GEMM microkernel (gemm.cpp) on shapes that exercise every path: full
// and edge register tiles, several K and N blocks, a few-row product, strided
// operands, B as a transposed view, and the portable loop nest. The reference is a plain triple loop
// in double precision.
#include "gemm.h"
#include "transfuse/bf16_panels.h"
#include "transfuse/f32_panels.h"
#include "transfuse/q4_panels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

// The descriptors and the f32 entry points as gemm.h declares them (the
// bf16 ones and the linear's below).
using transfuse::runtime::gemm::Desc1D;
using transfuse::runtime::gemm::Desc1DU8;
using transfuse::runtime::gemm::Desc2D;
using transfuse::runtime::gemm::Desc3D;

extern "C" void _mlir_ciface_transfuse_linear_f32_packed(Desc2D *, Desc3D *,
                                                         Desc2D *, Desc1D *,
                                                         Desc2D *, int64_t);
extern "C" void _mlir_ciface_transfuse_linear_f32_panels(Desc2D *, Desc1D *,
                                                         Desc3D *, Desc2D *,
                                                         Desc1D *, Desc2D *,
                                                         int64_t, Desc1D *);

struct Desc3DBf16 {
  uint16_t *base, *data;
  int64_t offset, sizes[3], strides[3];
};
extern "C" void _mlir_ciface_transfuse_matmul_bf16_packed(Desc2D *,
                                                          Desc3DBf16 *,
                                                          Desc2D *, int64_t);
extern "C" void _mlir_ciface_transfuse_linear_bf16_packed(Desc2D *,
                                                          Desc3DBf16 *,
                                                          Desc2D *, Desc1D *,
                                                          Desc2D *, int64_t);
using transfuse::runtime::gemm::Desc1DBf16;
extern "C" void _mlir_ciface_transfuse_linear_bf16_panels(
    Desc2D *, Desc1DBf16 *, Desc3DBf16 *, Desc2D *, Desc1D *, Desc2D *,
    int64_t, Desc1DBf16 *);

namespace {

struct Matrix {
  std::vector<float> v;
  Desc2D d;
  // rows x cols, row stride `ld` >= cols (a view into a wider buffer).
  Matrix(int64_t rows, int64_t cols, int64_t ld, float seed) : v(rows * ld) {
    for (size_t i = 0; i < v.size(); ++i)
      v[i] = std::sin(seed + 0.37f * i);
    d = {v.data(), v.data(), 0, {rows, cols}, {ld, 1}};
  }
  float at(int64_t i, int64_t j) const { return v[i * d.strides[0] + j]; }
};

/// C against `expect`, and the columns of C's rows past its width (the
/// padding of a wider buffer) against `before`: never written.
void checkResult(const Matrix &c, const std::vector<double> &expect,
                 const std::vector<float> &before, int64_t k) {
  int64_t m = c.d.sizes[0], n = c.d.sizes[1], ld = c.d.strides[0];
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j)
      ASSERT_NEAR(c.at(i, j), expect[i * n + j], 1e-4 * (1 + std::sqrt(k)))
          << "at (" << i << ", " << j << ") of " << m << "x" << k << "x" << n;
    for (int64_t j = n; j < ld; ++j)
      ASSERT_EQ(c.v[i * ld + j], before[i * ld + j]) << "padding written";
  }
}

/// The reference: C's old values when `accumulate` (else 0) plus
/// sum_p aAt(i, p) * bAt(p, j), in double precision, for C's m x n.
template <typename AAt, typename BAt>
std::vector<double> reference(const Matrix &c, int64_t k, bool accumulate,
                              AAt aAt, BAt bAt) {
  int64_t m = c.d.sizes[0], n = c.d.sizes[1];
  std::vector<double> expect(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = accumulate ? c.at(i, j) : 0.0;
      for (int64_t p = 0; p < k; ++p)
        s += (double)aAt(i, p) * bAt(p, j);
      expect[i * n + j] = s;
    }
  return expect;
}

/// C = A * B, plus C's old values when `accumulate`.
void check(int64_t m, int64_t k, int64_t n, int64_t pad, bool packed,
           bool accumulate) {
  Matrix a(m, k, k + pad, 1.0f), b(k, n, n + pad, 2.0f), c(m, n, n + pad, 3.0f);
  std::vector<float> before = c.v;
  std::vector<double> expect = reference(
      c, k, accumulate, [&](int64_t i, int64_t p) { return a.at(i, p); },
      [&](int64_t p, int64_t j) { return b.at(p, j); });
  if (packed) {
    // The layout transfuse-cpu-matmul-to-microkernel writes at compile time:
    // [ceil(N / 32)][K][32], zero padded.
    int64_t panels = (n + 31) / 32;
    std::vector<float> p(panels * k * 32, 0.0f);
    for (int64_t r = 0; r < k; ++r)
      for (int64_t j = 0; j < n; ++j)
        p[(j / 32) * k * 32 + r * 32 + j % 32] = b.at(r, j);
    Desc3D pd{p.data(), p.data(), 0, {panels, k, 32}, {k * 32, 32, 1}};
    _mlir_ciface_transfuse_matmul_f32_packed(&a.d, &pd, &c.d, accumulate);
  } else {
    _mlir_ciface_transfuse_matmul_f32(&a.d, &b.d, &c.d, accumulate);
  }
  checkResult(c, expect, before, k);
}

void checkAll(bool packed) {
  for (bool acc : {true, false}) {
    check(1, 768, 300, 0, packed, acc); // few rows
    check(3, 17, 40, 5, packed, acc);   // few rows, strided
    check(1, 1024, 64, 0, packed, acc); // one query row x a cache's V
    check(2, 33, 130, 1, packed, acc);  // few rows, 64-column edge
    check(5, 40, 70, 0, packed, acc);   // just past the few-row path
    // Decode's streams (packed): 4 rows three panels at a time (a group of
    // one at the edge), 6 rows two at a time, 7 rows past them.
    check(4, 768, 300, 0, packed, acc);
    check(6, 96, 200, 3, packed, acc);
    check(7, 64, 130, 0, packed, acc);
    check(12, 64, 32, 0, packed, acc);  // one full register tile
    check(66, 64, 96, 0, packed, acc);  // edge rows
    check(37, 300, 77, 3, packed, acc); // edge rows and columns, strided,
                                        // 2 K blocks
    check(250, 200, 2400, 0, packed, acc); // several M and N blocks
    // The 64-column kernel (pairs of whole panels): edge panels of 7 rows
    // (4 + 3) and 8 (4 + 4), a last panel of 8 columns on the 32-column
    // kernel, 2 K passes.
    check(19, 64, 128, 0, packed, acc);
    check(44, 1000, 200, 1, packed, acc);
  }
}

TEST(Gemm, MatchesReference) { checkAll(false); }
TEST(Gemm, PrepackedMatchesReference) { checkAll(true); }

/// C = A * K^T with B a transposed view of K ([N, K] rows, B's strides
/// {1, ld}): attention's scores, Q K^T, without a copy of K. Few rows take
/// the dot-product path; more rows pack B from the view.
void checkTransposedB(int64_t m, int64_t k, int64_t n, int64_t pad,
                      bool accumulate) {
  Matrix a(m, k, k + pad, 1.0f), keys(n, k, k + pad, 2.0f),
      c(m, n, n + pad, 3.0f);
  std::vector<float> before = c.v;
  std::vector<double> expect = reference(
      c, k, accumulate, [&](int64_t i, int64_t p) { return a.at(i, p); },
      [&](int64_t p, int64_t j) { return keys.at(j, p); });
  Desc2D bt{keys.v.data(), keys.v.data(), 0, {k, n}, {1, k + pad}};
  _mlir_ciface_transfuse_matmul_f32(&a.d, &bt, &c.d, accumulate);
  checkResult(c, expect, before, k);
}

TEST(Gemm, TransposedBMatchesReference) {
  for (bool acc : {true, false}) {
    checkTransposedB(1, 64, 1024, 0, acc); // one query row x a key cache
    checkTransposedB(4, 64, 130, 3, acc);  // few rows, 64-key edge, strided
    checkTransposedB(2, 45, 7, 0, acc);    // K not a multiple of 16 or 32
    checkTransposedB(128, 64, 128, 0, acc); // prefill: packed from the view
    checkTransposedB(37, 20, 77, 5, acc);  // edge panel, strided
  }
}

TEST(Gemm, EmptyIsANoOp) {
  Matrix a(0, 4, 4, 1), b(4, 3, 3, 2), c(0, 3, 3, 3);
  _mlir_ciface_transfuse_matmul_f32(&a.d, &b.d, &c.d, 1);
  _mlir_ciface_transfuse_matmul_f32(&a.d, &b.d, &c.d, 0);
}

/// With K = 0 the product is empty: C is kept when accumulating, else 0.
TEST(Gemm, EmptyKGivesZeroOrC) {
  Matrix a(2, 0, 1, 1), b(0, 3, 3, 2), c(2, 3, 3, 3);
  std::vector<float> before = c.v;
  _mlir_ciface_transfuse_matmul_f32(&a.d, &b.d, &c.d, 1);
  EXPECT_EQ(c.v, before);
  _mlir_ciface_transfuse_matmul_f32(&a.d, &b.d, &c.d, 0);
  EXPECT_EQ(c.v, std::vector<float>(6, 0.0f));
}

/// The activations of a `linear`'s epilogue, numbered as the flags of
/// transfuse_linear_f32_packed take them, in double precision from libm.
enum Act { None = 0, Relu, Gelu, GeluTanh, Silu };
double activate(double v, int act) {
  switch (act) {
  case Relu:
    return v > 0 ? v : 0;
  case Gelu:
    return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
  case GeluTanh:
    return 0.5 * v *
           (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
  case Silu:
    return v / (1 + std::exp(-v));
  }
  return v;
}

/// A weight [K][N] in the prepacked layout, [ceil(N / 32)][K][32].
struct Packed {
  std::vector<float> p;
  Desc3D d;
  explicit Packed(const Matrix &b) {
    int64_t k = b.d.sizes[0], n = b.d.sizes[1], panels = (n + 31) / 32;
    p.assign(panels * k * 32, 0.0f);
    for (int64_t r = 0; r < k; ++r)
      for (int64_t j = 0; j < n; ++j)
        p[(j / 32) * k * 32 + r * 32 + j % 32] = b.at(r, j);
    d = {p.data(), p.data(), 0, {panels, k, 32}, {k * 32, 32, 1}};
  }
};

/// The weights of a linear: f32 (transfuse_linear_f32_packed) or bf16
/// (transfuse_linear_bf16_packed, which also rounds A to bf16).
enum class Weights { F32, Bf16 };

/// C = act(A * B + bias) + residual through the linear entry point for
/// `weights`, against the same in double precision (on the bf16-rounded
/// operands for bf16). C with column stride `cstride` (1, or 2: the
/// product's tile-buffer path), the residual with padded rows and column
/// stride `rstride` (2: the epilogue's strided loops).
void checkLinear(Weights weights, int64_t m, int64_t k, int64_t n, int act,
                 bool bias, bool residual, int64_t cstride = 1,
                 int64_t rstride = 1) {
  namespace bf16 = transfuse::bf16;
  Matrix a(m, k, k, 1.0f), b(k, n, n, 2.0f),
      r(m, n * rstride + 3, n * rstride + 3, 4.0f), bv(1, n, n, 5.0f);
  r.d.sizes[1] = n;
  r.d.strides[1] = rstride;
  std::vector<float> cv(m * n * cstride, 7.0f);
  Desc2D c{cv.data(), cv.data(), 0, {m, n}, {n * cstride, cstride}};
  Desc1D bd{bv.v.data(), bv.v.data(), 0, {n}, {1}};
  int64_t flags = act | (bias ? 1 << 8 : 0) | (residual ? 1 << 9 : 0);
  if (weights == Weights::F32) {
    Packed pb(b);
    _mlir_ciface_transfuse_linear_f32_packed(&a.d, &pb.d, &c, &bd, &r.d,
                                             flags);
  } else {
    int64_t kp = bf16::paddedK(k), panels = (n + 31) / 32;
    std::vector<uint16_t> p(panels * kp * 32);
    bf16::pack(b.v.data(), k, n, b.d.strides[0], p.data());
    Desc3DBf16 pd{p.data(), p.data(), 0, {panels, kp, 32}, {kp * 32, 32, 1}};
    _mlir_ciface_transfuse_linear_bf16_packed(&a.d, &pd, &c, &bd, &r.d,
                                              flags);
  }
  auto round = [&](float x) {
    return weights == Weights::Bf16 ? bf16::rounded(x) : x;
  };
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double y = bias ? bv.at(0, j) : 0.0;
      for (int64_t p = 0; p < k; ++p)
        y += (double)round(a.at(i, p)) * round(b.at(p, j));
      double expect =
          activate(y, act) + (residual ? r.at(i, j * rstride) : 0.0);
      ASSERT_NEAR(cv[i * n * cstride + j * cstride], expect,
                  1e-4 * (1 + std::sqrt(k)))
          << "act " << act << " bias " << bias << " residual " << residual
          << " at " << i << "," << j << " of " << m << "x" << k << "x" << n;
    }
}

TEST(Gemm, LinearEpilogueMatchesReference) {
  for (int act : {None, Relu, Gelu, GeluTanh, Silu})
    for (bool bias : {false, true})
      for (bool residual : {false, true}) {
        // Decode (one panel); edges and 2 K blocks; strided C; strided
        // residual.
        checkLinear(Weights::F32, 1, 768, 300, act, bias, residual);
        checkLinear(Weights::F32, 4, 768, 300, act, bias, residual);
        checkLinear(Weights::F32, 6, 100, 200, act, bias, residual);
        checkLinear(Weights::F32, 37, 300, 77, act, bias, residual);
        checkLinear(Weights::F32, 13, 40, 45, act, bias, residual, 2);
        checkLinear(Weights::F32, 13, 40, 45, act, bias, residual, 1, 2);
      }
  // Several blocks and tasks.
  checkLinear(Weights::F32, 250, 520, 2400, Gelu, true, true);
}

/// A weight as MatMulNBits holds one and the importer dequantizes it:
/// B[p][j] = (float(q) - z) * s, a 4-bit code q, and per block of `block`
/// rows of a column a scale s and a zero point z (whole, in [0, 15]).
Matrix nbitsWeight(int64_t k, int64_t n, int64_t block) {
  Matrix b(k, n, n, 0.0f);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t p = 0; p < k; ++p) {
      int64_t blk = p / block;
      float s = 0.01f + 0.003f * float((7 * j + 3 * blk) % 11);
      float z = float((j + 5 * blk) % 16);
      float q = float((13 * p + 7 * j + p * j / 3) % 16);
      b.v[p * n + j] = (q - z) * s;
    }
  return b;
}

/// transfuse_linear_q4 (B from q4::quantize of a MatMulNBits-like weight)
/// against the double-precision reference, and to the bit against the f32
/// entry points on the same weight (the same floats, summed in the same
/// order), with an epilogue (flags) or accumulating.
void checkQ4(int64_t m, int64_t k, int64_t n, int64_t flags, bool accumulate,
             int64_t block = 32) {
  namespace q4 = transfuse::q4;
  Matrix a(m, k, k, 1.0f), b = nbitsWeight(k, n, block), bv(1, n, n, 5.0f),
                           r(m, n, n, 4.0f);
  std::vector<uint8_t> codes(q4::codeBytes(k, n));
  std::vector<float> params(q4::paramCount(k, n));
  ASSERT_TRUE(q4::quantize(b.v.data(), k, n, n, codes.data(), params.data()));
  for (int64_t p = 0; p < k; ++p)
    for (int64_t j = 0; j < n; ++j)
      ASSERT_EQ(q4::value(codes.data(), params.data(), k, p, j), b.at(p, j))
          << "at (" << p << ", " << j << ")";
  Matrix c(m, n, n, 3.0f), f32(m, n, n, 3.0f);
  std::vector<float> before = c.v;
  std::vector<double> expect = reference(
      c, k, accumulate, [&](int64_t i, int64_t p) { return a.at(i, p); },
      [&](int64_t p, int64_t j) { return b.at(p, j); });
  Desc1DU8 cd{codes.data(), codes.data(), 0, {(int64_t)codes.size()}, {1}};
  Desc1D pd{params.data(), params.data(), 0, {(int64_t)params.size()}, {1}};
  Desc1D bd{bv.v.data(), bv.v.data(), 0, {n}, {1}};
  _mlir_ciface_transfuse_linear_q4(&a.d, &cd, &pd, &c.d, &bd, &r.d, flags,
                                   accumulate);
  Packed pb(b);
  if (flags)
    _mlir_ciface_transfuse_linear_f32_packed(&a.d, &pb.d, &f32.d, &bd, &r.d,
                                             flags);
  else
    _mlir_ciface_transfuse_matmul_f32_packed(&a.d, &pb.d, &f32.d, accumulate);
  ASSERT_EQ(c.v, f32.v) << m << "x" << k << "x" << n << " flags " << flags;
  // The epilogues' reference is checkLinear's.
  if (!flags)
    checkResult(c, expect, before, k);
}

TEST(Gemm, Q4MatchesF32) {
  for (bool acc : {false, true}) {
    checkQ4(1, 64, 40, 0, acc);     // decode, an edge panel
    checkQ4(3, 100, 96, 0, acc);    // K in 4 blocks, the last of 4 steps
    checkQ4(6, 768, 300, 0, acc);   // the most rows of kernelQ4
    checkQ4(7, 64, 130, 0, acc);    // one row panel past it: slices
    checkQ4(37, 300, 77, 0, acc);   // edge rows and columns
    checkQ4(44, 1000, 200, 0, acc); // 2 K passes, the 64-column kernel
  }
  checkQ4(250, 520, 2400, 0, false); // several tasks and row blocks
  // Blocks of 64 and 128 (MatMulNBits' block_size): one scale for two or
  // four blocks of 32.
  checkQ4(5, 256, 64, 0, false, 64);
  checkQ4(20, 256, 64, 0, false, 128);
  // The epilogues, decode and not.
  for (int act : {None, Gelu, Silu})
    for (int64_t extra : {0, 1 << 8, 1 << 8 | 1 << 9}) {
      checkQ4(2, 96, 70, act | extra, false);
      checkQ4(30, 96, 70, act | extra, false);
    }
}

/// Weights with no 4-bit form stay f32: quantize says so.
TEST(Gemm, Q4RejectsOtherWeights) {
  namespace q4 = transfuse::q4;
  Matrix b(64, 40, 40, 2.0f); // sines
  std::vector<uint8_t> codes(q4::codeBytes(64, 40));
  std::vector<float> params(q4::paramCount(64, 40));
  EXPECT_FALSE(
      q4::quantize(b.v.data(), 64, 40, 40, codes.data(), params.data()));
  // Blocks of 16 with their own scales do not fit blocks of 32.
  Matrix b16 = nbitsWeight(64, 40, 16);
  EXPECT_FALSE(
      q4::quantize(b16.v.data(), 64, 40, 40, codes.data(), params.data()));
  // A code 16 steps apart from another in the same block needs 5 bits.
  Matrix wide = nbitsWeight(64, 40, 32);
  wide.v[0] = 16 * 0.01f;
  wide.v[40] = 0.0f;
  EXPECT_FALSE(
      q4::quantize(wide.v.data(), 64, 40, 40, codes.data(), params.data()));
}

/// The epilogue's own erf, tanh and exp against libm on a dense range: the
/// product is A = [1] times B = the values, so C holds them exactly.
TEST(Gemm, LinearActivationsMatchLibm) {
  int64_t n = 4001;
  Matrix one(1, 1, 1, 0.0f), x(1, n, n, 0.0f);
  one.v[0] = 1.0f;
  for (int64_t j = 0; j < n; ++j)
    x.v[j] = -20.0f + 40.0f * j / (n - 1);
  Packed pb(x);
  for (int act : {Relu, Gelu, GeluTanh, Silu}) {
    std::vector<float> cv(n);
    Desc2D c{cv.data(), cv.data(), 0, {1, n}, {n, 1}};
    _mlir_ciface_transfuse_linear_f32_packed(&one.d, &pb.d, &c, nullptr,
                                             nullptr, act);
    for (int64_t j = 0; j < n; ++j) {
      double expect = activate(x.v[j], act);
      ASSERT_NEAR(cv[j], expect, 1e-6 * std::max(1.0, std::fabs(expect)))
          << "act " << act << " at " << x.v[j];
    }
  }
}

/// The bf16 GEMM (gemm_bf16.cpp) against a double-precision product of the
/// bf16-rounded operands: A is rounded by the kernel (the hardware's
/// conversion on AMX), B by the compile-time packer.
void checkBf16(int64_t m, int64_t k, int64_t n, int64_t pad, bool accumulate) {
  namespace bf16 = transfuse::bf16;
  Matrix a(m, k, k + pad, 1.0f), b(k, n, n + pad, 2.0f), c(m, n, n + pad, 3.0f);
  std::vector<float> before = c.v;
  auto round = [](float x) { return bf16::rounded(x); };
  std::vector<double> expect = reference(
      c, k, accumulate,
      [&](int64_t i, int64_t p) { return round(a.at(i, p)); },
      [&](int64_t p, int64_t j) { return round(b.at(p, j)); });
  int64_t kp = bf16::paddedK(k), panels = (n + 31) / 32;
  std::vector<uint16_t> p(panels * kp * 32);
  bf16::pack(b.v.data(), k, n, b.d.strides[0], p.data());
  Desc3DBf16 pd{p.data(), p.data(), 0, {panels, kp, 32}, {kp * 32, 32, 1}};
  _mlir_ciface_transfuse_matmul_bf16_packed(&a.d, &pd, &c.d, accumulate);
  checkResult(c, expect, before, k);
}

TEST(Gemm, Bf16MatchesReference) {
  for (bool acc : {true, false}) {
    checkBf16(1, 768, 300, 0, acc);    // one row: an edge block
    checkBf16(2, 64, 96, 0, acc);      // two rows (AVX512-BF16: 2-row kernel)
    checkBf16(4, 768, 300, 0, acc);    // decode's streams, three panels at
    checkBf16(6, 96, 200, 2, acc);     // a time (an edge group), then two
    checkBf16(19, 96, 64, 0, acc);     // 16 + 3 rows (the 4-row kernel)
    checkBf16(22, 96, 64, 0, acc);     // 16 + 6 rows (8 rows, 2 discarded)
    checkBf16(3, 17, 40, 5, acc);      // K below one tile block, strided
    checkBf16(16, 32, 32, 0, acc);     // one full 16 x 32 block
    checkBf16(32, 64, 64, 0, acc);     // full 32 x 32 blocks, straight into C
    checkBf16(47, 1700, 77, 3, acc);   // edge rows and columns, 3 K passes
    checkBf16(250, 520, 2400, 0, acc); // several row blocks, odd row panel
  }
}

/// Whether the bf16 products run on bf16 instructions here (AMX or
/// AVX512-BF16), rather than on the f32 GEMM (gemm_bf16.cpp's
/// chooseProduct; TRANSFUSE_GEMM=f32 or =portable force the latter).
bool bf16Instructions() {
  const char *mode = std::getenv("TRANSFUSE_GEMM");
  std::string m = mode ? mode : "";
  return m != "f32" && m != "portable" &&
         __builtin_cpu_supports("avx512bf16");
}

/// A run-time f32 B rounded and packed by packBf16Panels (attention's K^T
/// and V under --bf16-attention), row-major or a transposed view of K's
/// rows, then multiplied by matmulBf16Packed, against a double-precision
/// product of the bf16-rounded operands. Without bf16 instructions the
/// packing must decline (the attention then stays f32).
void checkBf16Runtime(int64_t m, int64_t k, int64_t n, int64_t pad,
                      bool transposed, bool accumulate) {
  namespace bf16 = transfuse::bf16;
  namespace rt = transfuse::runtime::gemm;
  Matrix a(m, k, k + pad, 1.0f), c(m, n, n + pad, 3.0f);
  Matrix b = transposed ? Matrix(n, k, k + pad, 2.0f) : Matrix(k, n, n + pad, 2.0f);
  Desc2D bd = b.d;
  if (transposed)
    bd = {b.v.data(), b.v.data(), 0, {k, n}, {1, k + pad}};
  auto bAt = [&](int64_t p, int64_t j) {
    return transposed ? b.at(j, p) : b.at(p, j);
  };
  std::vector<uint16_t> packed((n + bf16::kPanelCols - 1) / bf16::kPanelCols *
                               bf16::paddedK(k) * bf16::kPanelCols);
  bool rounded = rt::packBf16Panels(bd, packed.data());
  ASSERT_EQ(rounded, bf16Instructions());
  if (!rounded)
    return;
  auto round = [](float x) { return bf16::rounded(x); };
  std::vector<float> before = c.v;
  std::vector<double> expect = reference(
      c, k, accumulate,
      [&](int64_t i, int64_t p) { return round(a.at(i, p)); },
      [&](int64_t p, int64_t j) { return round(bAt(p, j)); });
  rt::matmulBf16Packed(a.d, packed.data(), c.d, accumulate);
  checkResult(c, expect, before, k);
}

TEST(Gemm, Bf16RuntimeOperandsMatchReference) {
  for (bool transposed : {false, true})
    for (bool acc : {true, false}) {
      checkBf16Runtime(1, 64, 300, 0, transposed, acc);  // one row
      checkBf16Runtime(128, 64, 128, 0, transposed, acc); // a head's scores
      checkBf16Runtime(128, 128, 64, 0, transposed, acc); // a head's P V
      checkBf16Runtime(37, 45, 77, 3, transposed, acc); // odd K, edges, strided
      checkBf16Runtime(250, 520, 2400, 0, transposed, acc); // several tasks
    }
}

TEST(Gemm, Bf16LinearEpilogueMatchesReference) {
  for (int act : {None, Relu, Gelu, GeluTanh, Silu})
    for (bool bias : {false, true})
      for (bool residual : {false, true}) {
        // An edge block; 3 K passes.
        checkLinear(Weights::Bf16, 1, 768, 300, act, bias, residual);
        checkLinear(Weights::Bf16, 5, 768, 300, act, bias, residual);
        checkLinear(Weights::Bf16, 47, 1700, 77, act, bias, residual);
      }
  // Several tasks.
  checkLinear(Weights::Bf16, 250, 520, 2400, Gelu, true, true);
}

/// B (k x n) packed into bf16_panels.h's layout by the header's own packer.
struct Bf16Weight {
  std::vector<uint16_t> p;
  Desc3DBf16 d;
  Bf16Weight(const Matrix &b, int64_t k, int64_t n) {
    namespace bf16 = transfuse::bf16;
    int64_t kp = bf16::paddedK(k), panels = (n + 31) / 32;
    p.resize(panels * kp * 32);
    bf16::pack(b.v.data(), k, n, b.d.strides[0], p.data());
    d = {p.data(), p.data(), 0, {panels, kp, 32}, {kp * 32, 32, 1}};
  }
};

/// Two linears chained through panels, as transfuse-cpu-a-panels
/// compiles a linear feeding another: the first (GELU, bias) writes its C
/// and C's panels (with `panelsOnly`, flags | 4096, perhaps only the
/// panels), the second reads its A from those panels. C1 must be the plain
/// linear's (unless panelsOnly), C1's panels bf16_panels.h's layout of the
/// plain C1 rounded by the header's scalar rounding (padding zero), and
/// the second product, whose f32 A is NaN where the panels are read, must
/// equal the same linear on the plain C1 bit for bit. Where the bf16
/// kernels are not used (TRANSFUSE_GEMM=f32 or =portable), and for a decode
/// step's few rows, no panels are written or read, and C1 is written
/// whatever the flags.
void checkPanelsChain(int64_t m, int64_t k, int64_t n1, int64_t n2,
                      bool panelsOnly) {
  namespace bf16 = transfuse::bf16;
  bool usable = transfuse::runtime::gemm::bf16PanelsUsed(m);
  Matrix a(m, k, k, 1.0f), b1(k, n1, n1, 2.0f), b2(n1, n2, n2, 3.0f),
      bias(1, n1, n1, 4.0f);
  Bf16Weight w1(b1, k, n1), w2(b2, n1, n2);
  Desc1D bd{bias.v.data(), bias.v.data(), 0, {n1}, {1}};
  std::vector<float> c1v(m * n1, 7.0f);
  Desc2D c1{c1v.data(), c1v.data(), 0, {m, n1}, {n1, 1}};
  int64_t kp1 = bf16::paddedK(n1), size = bf16::aPanelsSize(m, n1);
  std::vector<uint16_t> panels(size, 0x7FC0); // NaN until written
  Desc1DBf16 pd{panels.data(), panels.data(), 0, {size}, {1}};
  Desc1DBf16 none{nullptr, nullptr, 0, {0}, {1}};
  int64_t flags1 = Gelu | 1 << 8;
  _mlir_ciface_transfuse_linear_bf16_panels(
      &a.d, &none, &w1.d, &c1, &bd, nullptr,
      flags1 | 1 << 11 | (panelsOnly ? 1 << 12 : 0), &pd);
  // C1 itself, against the linear without panels.
  std::vector<float> plain1(m * n1);
  Desc2D p1{plain1.data(), plain1.data(), 0, {m, n1}, {n1, 1}};
  _mlir_ciface_transfuse_linear_bf16_packed(&a.d, &w1.d, &p1, &bd, nullptr,
                                            flags1);
  if (!panelsOnly || !usable)
    ASSERT_EQ(c1v, plain1) << m << "x" << k << "x" << n1;
  int64_t rows = (m + 15) / 16 * 16;
  for (int64_t i = 0; i < rows && usable; ++i)
    for (int64_t p = 0; p < kp1; ++p) {
      uint16_t expect =
          i < m && p < n1 ? bf16::fromFloat(plain1[i * n1 + p]) : 0;
      ASSERT_EQ(panels[bf16::aIndex(kp1, i, p)], expect)
          << "panel element (" << i << ", " << p << ") of " << m << "x" << n1;
    }
  if (!usable)
    ASSERT_TRUE(std::all_of(panels.begin(), panels.end(),
                            [](uint16_t h) { return h == 0x7FC0; }))
        << "panels written where they are not used (" << m << " rows)";
  // The second product: from the panels, against the f32 A.
  std::vector<float> expect2(m * n2), got2(m * n2);
  Desc2D e2{expect2.data(), expect2.data(), 0, {m, n2}, {n2, 1}},
      g2{got2.data(), got2.data(), 0, {m, n2}, {n2, 1}};
  _mlir_ciface_transfuse_linear_bf16_packed(&p1, &w2.d, &e2, nullptr, nullptr,
                                            None);
  if (usable)
    std::fill(c1v.begin(), c1v.end(), NAN);
  _mlir_ciface_transfuse_linear_bf16_panels(&c1, &pd, &w2.d, &g2, nullptr,
                                            nullptr, None | 1 << 10, &none);
  ASSERT_EQ(got2, expect2) << m << "x" << n1 << "x" << n2;
}

TEST(Gemm, Bf16PanelsChain) {
  for (bool only : {false, true}) {
    checkPanelsChain(1, 96, 77, 40, only);  // decode: no panels
    checkPanelsChain(3, 600, 64, 33, only); // decode, 3 K passes: none
    checkPanelsChain(6, 96, 77, 40, only);  // decode's streams: none
    checkPanelsChain(7, 96, 77, 40, only);  // the fewest rows with panels
    checkPanelsChain(37, 600, 77, 45, only); // edge rows and columns
    checkPanelsChain(250, 520, 2400, 300, only); // several tasks, row blocks
  }
}

/// The f32 linears chained through panels, as transfuse-cpu-a-panels
/// compiles a linear feeding another: the first (ReLU, bias, residual)
/// writes its C and C's panels (with `panelsOnly`, perhaps only the
/// panels), the second (bias) reads its A from those panels. C1 must be
/// the plain linear's (unless panelsOnly), the panels f32_panels.h's
/// layout of the plain C1 exactly, and the second product, whose A is NaN
/// where the panels are read, must equal the same linear on the plain C1
/// bit for bit. C1 may have strided columns (`cstride` 2: the product's
/// tile-buffer path). Where the panels are not used (TRANSFUSE_GEMM=
/// portable, a decode step's few rows), none are written or read and C1
/// is written whatever the flags.
void checkF32PanelsChain(int64_t m, int64_t k, int64_t n1, int64_t n2,
                         bool panelsOnly, int64_t cstride = 1) {
  namespace f32 = transfuse::f32;
  bool usable = transfuse::runtime::gemm::f32PanelsUsed(m);
  Matrix a(m, k, k, 1.0f), b1(k, n1, n1, 2.0f), b2(n1, n2, n2, 3.0f),
      bias(1, n1, n1, 4.0f), res(m, n1, n1, 5.0f);
  Packed w1(b1), w2(b2);
  Desc1D bd{bias.v.data(), bias.v.data(), 0, {n1}, {1}};
  std::vector<float> c1v(m * n1 * cstride, 7.0f);
  Desc2D c1{c1v.data(), c1v.data(), 0, {m, n1}, {n1 * cstride, cstride}};
  int64_t size = f32::aPanelsSize(m, n1);
  std::vector<float> panels(size, NAN);
  Desc1D pd{panels.data(), panels.data(), 0, {size}, {1}};
  Desc1D none{nullptr, nullptr, 0, {0}, {1}};
  int64_t flags1 = Relu | 1 << 8 | 1 << 9;
  _mlir_ciface_transfuse_linear_f32_panels(
      &a.d, &none, &w1.d, &c1, &bd, &res.d,
      flags1 | 1 << 11 | (panelsOnly ? 1 << 12 : 0), &pd);
  std::vector<float> plain1(m * n1);
  Desc2D p1{plain1.data(), plain1.data(), 0, {m, n1}, {n1, 1}};
  _mlir_ciface_transfuse_linear_f32_packed(&a.d, &w1.d, &p1, &bd, &res.d,
                                           flags1);
  for (int64_t i = 0; i < m && (!panelsOnly || !usable); ++i)
    for (int64_t p = 0; p < n1; ++p)
      ASSERT_EQ(c1v[i * n1 * cstride + p * cstride], plain1[i * n1 + p])
          << "C1 (" << i << ", " << p << ") of " << m << "x" << k << "x" << n1;
  for (int64_t i = 0; i < m && usable; ++i)
    for (int64_t p = 0; p < n1; ++p) {
      int64_t at = i / f32::kPanelRows * f32::kPanelRows * n1 +
                   p * f32::kPanelRows + i % f32::kPanelRows;
      ASSERT_EQ(panels[at], plain1[i * n1 + p])
          << "panel element (" << i << ", " << p << ") of " << m << "x" << n1;
    }
  if (!usable)
    ASSERT_TRUE(std::all_of(panels.begin(), panels.end(),
                            [](float x) { return std::isnan(x); }))
        << "panels written where they are not used (" << m << " rows)";
  std::vector<float> expect2(m * n2), got2(m * n2);
  Desc2D e2{expect2.data(), expect2.data(), 0, {m, n2}, {n2, 1}},
      g2{got2.data(), got2.data(), 0, {m, n2}, {n2, 1}};
  _mlir_ciface_transfuse_linear_f32_packed(&p1, &w2.d, &e2, &bd, nullptr,
                                           1 << 8);
  if (usable)
    std::fill(c1v.begin(), c1v.end(), NAN);
  _mlir_ciface_transfuse_linear_f32_panels(&c1, &pd, &w2.d, &g2, &bd, nullptr,
                                           1 << 8 | 1 << 10, &none);
  ASSERT_EQ(got2, expect2) << m << "x" << n1 << "x" << n2;
}

TEST(Gemm, F32PanelsChain) {
  for (bool only : {false, true}) {
    checkF32PanelsChain(1, 96, 77, 40, only);     // decode: no panels
    checkF32PanelsChain(3, 900, 64, 33, only);    // decode, 4 K passes: none
    checkF32PanelsChain(6, 96, 77, 40, only);     // decode's streams: none
    checkF32PanelsChain(7, 96, 77, 40, only);     // the fewest rows with panels
    checkF32PanelsChain(37, 900, 77, 45, only);   // edge rows and columns,
                                                  // 4 K passes of the first
    checkF32PanelsChain(30, 64, 96, 40, only, 2); // C1 with strided columns
    checkF32PanelsChain(250, 520, 2400, 800, only); // several tasks, row
                                                    // blocks; 4 K passes of
                                                    // the second
  }
}

/// Rounding to bf16 as IEEE 754 defines it (nearest, ties to even), on
/// values whose answers are known.
TEST(Gemm, Bf16Rounding) {
  namespace bf16 = transfuse::bf16;
  EXPECT_EQ(bf16::fromFloat(1.0f), 0x3F80);
  EXPECT_EQ(bf16::fromFloat(-2.0f), 0xC000);
  EXPECT_EQ(bf16::fromFloat(1.00390625f), 0x3F80);  // halfway: to even
  EXPECT_EQ(bf16::fromFloat(1.01171875f), 0x3F82);  // halfway: to even
  EXPECT_EQ(bf16::fromFloat(1.0040f), 0x3F81);      // above halfway
  EXPECT_EQ(bf16::fromFloat(3.4e38f), 0x7F80);      // overflows to inf
  EXPECT_EQ(bf16::fromFloat(INFINITY), 0x7F80);
  EXPECT_TRUE(std::isnan(bf16::toFloat(bf16::fromFloat(NAN))));
  EXPECT_EQ(bf16::toFloat(0x4049), 3.140625f);
}

} // namespace
