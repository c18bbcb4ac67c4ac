// The norm kernel (norms.cpp) against LayerNorm and RMSNorm in double
// precision: a residual (also broadcast), a bias, the sum output, rows of
// odd length (masked tails), strided rows (a transposed view), and enough
// rows for several tasks. Whole models go through it against ONNX Runtime
// in test/models.
#include "gemm.h"
#include "transfuse/bf16_panels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

using transfuse::runtime::gemm::Desc1D;
using transfuse::runtime::gemm::Desc1DBf16;
using transfuse::runtime::gemm::Desc4D;

extern "C" void _mlir_ciface_transfuse_norm_f32(Desc4D *, Desc4D *, Desc1D *,
                                                Desc1D *, Desc4D *, Desc4D *,
                                                float, int64_t);
extern "C" void _mlir_ciface_transfuse_norm_f32_panels(Desc4D *, Desc4D *,
                                                       Desc1D *, Desc1D *,
                                                       Desc4D *, Desc4D *,
                                                       float, int64_t,
                                                       Desc1DBf16 *);

namespace {

struct Buffer {
  std::vector<float> v;
  explicit Buffer(int64_t n, float seed) : v(std::max<int64_t>(n, 1)) {
    uint32_t x = static_cast<uint32_t>(seed * 1000) + 777u;
    for (float &f : v) {
      x = x * 1664525u + 1013904223u;
      f = -2.0f + 4.0f * static_cast<float>(x >> 8) / float(1u << 24);
    }
  }
};

/// A row-major [a, b, c, n] view of buf (dims laid out in `order`).
Desc4D view(Buffer &buf, std::array<int64_t, 4> sizes,
            std::array<int, 4> order = {0, 1, 2, 3}) {
  int64_t strides[4], stride = 1;
  for (int i = 3; i >= 0; --i) {
    strides[order[i]] = stride;
    stride *= sizes[order[i]];
  }
  return {buf.v.data(), buf.v.data(), 0,
          {sizes[0], sizes[1], sizes[2], sizes[3]},
          {strides[0], strides[1], strides[2], strides[3]}};
}

float at(const Desc4D &d, int64_t i0, int64_t i1, int64_t i2, int64_t j) {
  int64_t idx[4] = {i0, i1, i2, j}, off = d.offset;
  for (int k = 0; k < 4; ++k)
    off += (d.sizes[k] == 1 ? 0 : idx[k]) * d.strides[k];
  return d.data[off];
}

enum Flags : int64_t { kResidual = 1, kBias = 2, kSum = 4, kRms = 8 };

void check(std::array<int64_t, 4> shape, int64_t flags,
           std::array<int64_t, 4> residualShape, bool transposed) {
  int64_t n = shape[3], count = shape[0] * shape[1] * shape[2] * n;
  std::array<int, 4> order =
      transposed ? std::array<int, 4>{0, 1, 3, 2} : std::array<int, 4>{0, 1, 2, 3};
  Buffer xb(count, 1.0f), rb(count, 2.0f), gb(n, 3.0f), bb(n, 4.0f),
      yb(count, 5.0f), sb(count, 6.0f);
  Desc4D x = view(xb, shape, order), r = view(rb, residualShape),
         y = view(yb, shape), s = view(sb, shape);
  Desc1D g{gb.v.data(), gb.v.data(), 0, {n}, {1}},
      b{bb.v.data(), bb.v.data(), 0, {n}, {1}};
  const float eps = 1e-5f;
  _mlir_ciface_transfuse_norm_f32(&x, &r, &g, &b, &y, &s, eps, flags);
  for (int64_t i0 = 0; i0 < shape[0]; ++i0)
    for (int64_t i1 = 0; i1 < shape[1]; ++i1)
      for (int64_t i2 = 0; i2 < shape[2]; ++i2) {
        std::vector<double> v(n);
        double mean = 0, sq = 0;
        for (int64_t j = 0; j < n; ++j) {
          v[j] = at(x, i0, i1, i2, j);
          if (flags & kResidual)
            v[j] += at(r, i0, i1, i2, j);
          mean += v[j];
        }
        mean = flags & kRms ? 0 : mean / n;
        for (double e : v)
          sq += (e - mean) * (e - mean);
        double inv = 1 / std::sqrt(sq / n + eps);
        for (int64_t j = 0; j < n; ++j) {
          double ref = (v[j] - mean) * inv * gb.v[j];
          if (flags & kBias)
            ref += bb.v[j];
          ASSERT_NEAR(at(y, i0, i1, i2, j), ref, 2e-5 * (1 + std::abs(ref)))
              << "row " << i0 << "," << i1 << "," << i2 << " col " << j;
          if (flags & kSum)
            ASSERT_FLOAT_EQ(at(s, i0, i1, i2, j),
                            flags & kResidual
                                ? float(at(x, i0, i1, i2, j) +
                                        at(r, i0, i1, i2, j))
                                : at(x, i0, i1, i2, j));
        }
      }
}

TEST(Norm, LayerNormResidualBiasSum) {
  check({1, 2, 40, 768}, kResidual | kBias | kSum, {1, 2, 40, 768}, false);
  check({1, 1, 3, 37}, kResidual | kBias, {1, 1, 3, 37}, false);
}

TEST(Norm, LayerNormBroadcastResidualStridedInput) {
  // A residual shared by the batch, and an input read as a transposed
  // view (rows with a non-unit step: the scalar path).
  check({2, 1, 9, 20}, kResidual | kBias | kSum, {1, 1, 9, 20}, true);
  check({3, 1, 5, 64}, kBias, {1, 1, 1, 1}, true);
}

TEST(Norm, SumWithoutResidual) {
  check({1, 1, 4, 48}, kBias | kSum, {1, 1, 1, 1}, false);
  check({1, 1, 4, 48}, kBias | kSum, {1, 1, 1, 1}, true);
}

TEST(Norm, RmsNorm) {
  check({1, 1, 50, 512}, kRms, {1, 1, 1, 1}, false);
  check({1, 2, 3, 33}, kRms, {1, 1, 1, 1}, true);
}

TEST(Norm, ManyRowsSeveralTasks) {
  check({2, 3, 200, 96}, kBias, {1, 1, 1, 1}, false);
}

/// The norm writing its rows also as a product's A panels
/// (transfuse-cpu-a-panels): Y must equal the plain kernel's bit for
/// bit, and the panels bf16_panels.h's layout of Y's rows (all dims but the
/// last, in order) rounded by the header's scalar rounding, padding zero;
/// where the bf16 kernels are not used (TRANSFUSE_GEMM=portable), or for a
/// decode step's few rows, nothing is written to them. A transposed Y
/// takes the scalar path.
void checkPanels(std::array<int64_t, 4> shape, int64_t flags,
                 bool transposedY) {
  namespace bf16 = transfuse::bf16;
  int64_t n = shape[3], rows = shape[0] * shape[1] * shape[2],
          count = rows * n;
  std::array<int, 4> order = transposedY ? std::array<int, 4>{0, 1, 3, 2}
                                         : std::array<int, 4>{0, 1, 2, 3};
  Buffer xb(count, 1.0f), rb(count, 2.0f), gb(n, 3.0f), bb(n, 4.0f),
      yb(count, 5.0f), plainb(count, 5.0f);
  Desc4D x = view(xb, shape), r = view(rb, shape), y = view(yb, shape, order),
         plain = view(plainb, shape, order);
  Desc1D g{gb.v.data(), gb.v.data(), 0, {n}, {1}},
      b{bb.v.data(), bb.v.data(), 0, {n}, {1}};
  int64_t kp = bf16::paddedK(n), size = bf16::aPanelsSize(rows, n);
  std::vector<uint16_t> panels(size, 0x7FC0);
  Desc1DBf16 pd{panels.data(), panels.data(), 0, {size}, {1}};
  _mlir_ciface_transfuse_norm_f32_panels(&x, &r, &g, &b, &y, &y, 1e-5f, flags,
                                         &pd);
  _mlir_ciface_transfuse_norm_f32(&x, &r, &g, &b, &plain, &plain, 1e-5f,
                                  flags);
  ASSERT_EQ(yb.v, plainb.v);
  if (!transfuse::runtime::gemm::bf16PanelsUsed(rows)) {
    ASSERT_TRUE(std::all_of(panels.begin(), panels.end(),
                            [](uint16_t h) { return h == 0x7FC0; }));
    return;
  }
  for (int64_t i = 0; i < (rows + 15) / 16 * 16; ++i)
    for (int64_t p = 0; p < kp; ++p) {
      uint16_t expect = 0;
      if (i < rows && p < n)
        expect = bf16::fromFloat(at(y, i / (shape[1] * shape[2]),
                                    i / shape[2] % shape[1], i % shape[2], p));
      ASSERT_EQ(panels[bf16::aIndex(kp, i, p)], expect)
          << "panel element (" << i << ", " << p << ")";
    }
}

TEST(Norm, Bf16Panels) {
  checkPanels({1, 1, 37, 77}, kResidual | kBias, false); // edges
  checkPanels({2, 3, 40, 96}, kBias, false);             // several tasks
  checkPanels({1, 1, 20, 50}, kRms, true);               // strided Y
  checkPanels({1, 1, 1, 64}, kBias, false);              // decode: none
}

} // namespace
