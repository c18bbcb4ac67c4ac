// The GEMM microkernel (gemm.cpp) on shapes that exercise every path: full
// and edge register tiles, several K and N blocks, a few-row product, strided
// operands, and the portable loop nest. The reference is a plain triple loop
// in double precision.
#include "transfuse/bf16_panels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace {
struct Desc2D {
  float *base, *data;
  int64_t offset, sizes[2], strides[2];
};
} // namespace

struct Desc3D {
  float *base, *data;
  int64_t offset, sizes[3], strides[3];
};

extern "C" void _mlir_ciface_transfuse_matmul_f32(Desc2D *, Desc2D *, Desc2D *);
extern "C" void _mlir_ciface_transfuse_matmul_f32_packed(Desc2D *, Desc3D *,
                                                         Desc2D *);

struct Desc3DBf16 {
  uint16_t *base, *data;
  int64_t offset, sizes[3], strides[3];
};
extern "C" void _mlir_ciface_transfuse_matmul_bf16_packed(Desc2D *,
                                                          Desc3DBf16 *,
                                                          Desc2D *);

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

void check(int64_t m, int64_t k, int64_t n, int64_t pad, bool packed) {
  Matrix a(m, k, k + pad, 1.0f), b(k, n, n + pad, 2.0f), c(m, n, n + pad, 3.0f);
  std::vector<double> expect(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = c.at(i, j); // C += A * B
      for (int64_t p = 0; p < k; ++p)
        s += (double)a.at(i, p) * b.at(p, j);
      expect[i * n + j] = s;
    }
  if (packed) {
    // The layout transfuse-cpu-matmul-to-microkernel writes at compile time:
    // [ceil(N / 32)][K][32], zero padded.
    int64_t panels = (n + 31) / 32;
    std::vector<float> p(panels * k * 32, 0.0f);
    for (int64_t r = 0; r < k; ++r)
      for (int64_t j = 0; j < n; ++j)
        p[(j / 32) * k * 32 + r * 32 + j % 32] = b.at(r, j);
    Desc3D pd{p.data(), p.data(), 0, {panels, k, 32}, {k * 32, 32, 1}};
    _mlir_ciface_transfuse_matmul_f32_packed(&a.d, &pd, &c.d);
  } else {
    _mlir_ciface_transfuse_matmul_f32(&a.d, &b.d, &c.d);
  }
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      ASSERT_NEAR(c.at(i, j), expect[i * n + j], 1e-4 * (1 + std::sqrt(k)))
          << "at (" << i << ", " << j << ") of " << m << "x" << k << "x" << n;
}

void checkAll(bool packed) {
  check(1, 768, 300, 0, packed); // few rows
  check(3, 17, 40, 5, packed);   // few rows, strided
  check(12, 64, 32, 0, packed);  // one full register tile
  check(66, 64, 96, 0, packed);  // edge rows
  check(37, 300, 77, 3, packed); // edge rows and columns, strided, 2 K blocks
  check(250, 200, 2400, 0, packed); // several M and N blocks
}

TEST(Gemm, MatchesReference) { checkAll(false); }
TEST(Gemm, PrepackedMatchesReference) { checkAll(true); }

TEST(Gemm, EmptyIsANoOp) {
  Matrix a(0, 4, 4, 1), b(4, 3, 3, 2), c(0, 3, 3, 3);
  _mlir_ciface_transfuse_matmul_f32(&a.d, &b.d, &c.d);
}

/// The bf16 GEMM (gemm_bf16.cpp) against a double-precision product of the
/// bf16-rounded operands: A is rounded by the kernel (the hardware's
/// conversion on AMX), B by the compile-time packer.
void checkBf16(int64_t m, int64_t k, int64_t n, int64_t pad) {
  namespace bf16 = transfuse::bf16;
  Matrix a(m, k, k + pad, 1.0f), b(k, n, n + pad, 2.0f), c(m, n, n + pad, 3.0f);
  auto round = [](float x) { return bf16::toFloat(bf16::fromFloat(x)); };
  std::vector<double> expect(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = c.at(i, j);
      for (int64_t p = 0; p < k; ++p)
        s += (double)round(a.at(i, p)) * round(b.at(p, j));
      expect[i * n + j] = s;
    }
  int64_t kp = bf16::paddedK(k), panels = (n + 31) / 32;
  std::vector<uint16_t> p(panels * kp * 32);
  bf16::pack(b.v.data(), k, n, b.d.strides[0], p.data());
  Desc3DBf16 pd{p.data(), p.data(), 0, {panels, kp, 32}, {kp * 32, 32, 1}};
  _mlir_ciface_transfuse_matmul_bf16_packed(&a.d, &pd, &c.d);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      ASSERT_NEAR(c.at(i, j), expect[i * n + j], 1e-4 * (1 + std::sqrt(k)))
          << "at (" << i << ", " << j << ") of " << m << "x" << k << "x" << n;
}

TEST(Gemm, Bf16MatchesReference) {
  checkBf16(1, 768, 300, 0);      // one row: an edge block
  checkBf16(3, 17, 40, 5);        // K below one tile block, strided
  checkBf16(16, 32, 32, 0);       // one full 16 x 32 block
  checkBf16(32, 64, 64, 0);       // full 32 x 32 blocks, straight into C
  checkBf16(47, 300, 77, 3);      // edge rows and columns, 2 K passes
  checkBf16(250, 520, 2400, 0);   // several row blocks, odd row panel
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
