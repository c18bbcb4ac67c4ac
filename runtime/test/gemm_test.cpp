// The GEMM microkernel (gemm.cpp) on shapes that exercise every path: full
// and edge register tiles, several K and N blocks, a few-row product, strided
// operands, and the portable loop nest. The reference is a plain triple loop
// in double precision.
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

} // namespace
