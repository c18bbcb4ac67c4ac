//===- q4_panels.h - 4-bit weights the f32 GEMM dequantizes -----*- C++ -*-===//
//
// A weight B [K][N] whose every column, in each block of kBlock rows, is
// a 4-bit code times a scale (what ONNX Runtime's MatMulNBits holds, which
// the importer dequantizes into an f32 weight) is stored by the compiler
// (transfuse-cpu-matmul-to-microkernel) in this form instead of as f32
// panels, and the runtime (runtime/src/gemm.cpp, transfuse_linear_q4)
// dequantizes it as it multiplies:
//   B[p][j] = (float(q) - z) * s,
// the float expression the importer evaluated, so the values are the same
// floats as the f32 weight's and the products sum the same terms in the
// same order: the results are those of the f32 weight.
//
// Layout, in panels of kPanelCols columns (the f32 GEMM's) and blocks of
// kBlock K steps, the last of each zero padded:
//   codes:  [panel][block][kBlock steps][16 bytes]: byte x of a step holds
//           column x of the panel in its low nibble and column x + 16 in
//           its high one;
//   params: [panel][block][kParamFloats] f32: the block's kPanelCols
//           scales s, then its zero points z (whole numbers in [0, 15]) as
//           16 bytes (4 floats' room), nibbles placed as the codes'.
// So 0.64 bytes a weight. As memrefs: codes [codeBytes(K, N)] i8, params
// [paramCount(K, N)] f32.
//
// One definition, used by both, so they cannot drift apart.
//
//===----------------------------------------------------------------------===//
#ifndef TRANSFUSE_Q4_PANELS_H
#define TRANSFUSE_Q4_PANELS_H

#include <cmath>
#include <cstdint>
#include <cstring>

namespace transfuse::q4 {

constexpr int64_t kBlock = 32;     // K steps per scale
constexpr int64_t kPanelCols = 32; // columns per panel (f32::kPanelCols)
constexpr int64_t kStepBytes = kPanelCols / 2;
constexpr int64_t kParamFloats = kPanelCols + kStepBytes / 4;

inline int64_t panels(int64_t n) { return (n + kPanelCols - 1) / kPanelCols; }
inline int64_t blocks(int64_t k) { return (k + kBlock - 1) / kBlock; }
inline int64_t codeBytes(int64_t k, int64_t n) {
  return panels(n) * blocks(k) * kBlock * kStepBytes;
}
inline int64_t paramCount(int64_t k, int64_t n) {
  return panels(n) * blocks(k) * kParamFloats;
}

/// The code of column x (< kPanelCols) in a step's 16 bytes.
inline int code(const uint8_t *step, int64_t x) {
  return x < kStepBytes ? step[x] & 15 : step[x - kStepBytes] >> 4;
}

/// B[p][j] from the stored form (the reference the kernels match).
inline float value(const uint8_t *codes, const float *params, int64_t k,
                   int64_t p, int64_t j) {
  int64_t pn = j / kPanelCols, x = j % kPanelCols, blk = p / kBlock;
  int64_t pb = pn * blocks(k) + blk;
  const uint8_t *step = codes + (pb * kBlock + p % kBlock) * kStepBytes;
  const float *sz = params + pb * kParamFloats;
  float z = float(code(reinterpret_cast<const uint8_t *>(sz + kPanelCols), x));
  return (float(code(step, x)) - z) * sz[x];
}

/// A scale s (at least 2^-122) and zero point z (whole, in [0, 15]) for
/// values v[0..count) (a block of one column), with codes q[i] in [0, 15]
/// such that (float(q[i]) - z) * s == v[i] for every i; false where there
/// are none. A value is m * s rounded, m a whole number: the largest |v|
/// is tried as m * s for m = 8, 7, then 15 down to 1 (8 and 7 are the
/// largest |m| under MatMulNBits' default zero point), s adjusted by up
/// to two ulps so that m * s gives it back; any s that gives back every
/// value (their m spanning at most 15) will do.
inline bool fitBlock(const float *v, int64_t count, float &s, float &z,
                     uint8_t *q) {
  float top = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(v[i]))
      return false;
    top = std::fmax(top, std::fabs(v[i]));
  }
  if (top == 0) {
    s = 1, z = 0;
    std::memset(q, 0, count);
    return true;
  }
  static constexpr int kTries[] = {8, 7, 15, 14, 13, 12, 11, 10,
                                   9, 6, 5,  4,  3,  2,  1};
  for (int m : kTries) {
    float base = top / float(m);
    for (int ulps = -2; ulps <= 2; ++ulps) {
      float cand = base;
      for (int u = 0; u < (ulps < 0 ? -ulps : ulps); ++u)
        cand = std::nextafter(cand, ulps < 0 ? 0.0f : INFINITY);
      // s / 16 must be exact too (s of at least 2^-122), which the AVX-512
      // kernels multiply the high nibbles, read as 16 q, by.
      if (!(cand >= std::ldexp(1.0f, -122)) || !std::isfinite(cand) ||
          float(m) * cand != top)
        continue;
      int lo = 16, hi = -16;
      bool ok = true;
      for (int64_t i = 0; i < count && ok; ++i) {
        float r = std::rint(v[i] / cand);
        ok = std::fabs(r) <= 15 && r * cand == v[i];
        if (ok) {
          lo = int(r) < lo ? int(r) : lo;
          hi = int(r) > hi ? int(r) : hi;
        }
      }
      if (!ok || hi - lo > 15)
        continue;
      // z in [0, 15], and every q = m + z too (hi <= 15, hi - lo <= 15).
      int zero = lo < 0 ? -lo : 0;
      s = cand, z = float(zero);
      for (int64_t i = 0; i < count; ++i)
        q[i] = uint8_t(int(std::rint(v[i] / cand)) + zero);
      return true;
    }
  }
  return false;
}

/// Writes row-major B [k][n] (row stride ldb) as codes and params (sizes
/// above); false as soon as a block of a column has no exact 4-bit form
/// (fitBlock), the outputs then partly written.
inline bool quantize(const float *b, int64_t k, int64_t n, int64_t ldb,
                     uint8_t *codes, float *params) {
  int64_t nb = blocks(k);
  std::memset(codes, 0, codeBytes(k, n));
  std::memset(params, 0, paramCount(k, n) * sizeof(float));
  float col[kBlock];
  uint8_t q[kBlock];
  for (int64_t j = 0; j < n; ++j) {
    int64_t pn = j / kPanelCols, x = j % kPanelCols;
    for (int64_t blk = 0; blk < nb; ++blk) {
      int64_t p0 = blk * kBlock, count = k - p0 < kBlock ? k - p0 : kBlock;
      for (int64_t i = 0; i < count; ++i)
        col[i] = b[(p0 + i) * ldb + j];
      int64_t pb = pn * nb + blk;
      float *sz = params + pb * kParamFloats, z;
      if (!fitBlock(col, count, sz[x], z, q))
        return false;
      reinterpret_cast<uint8_t *>(sz + kPanelCols)[x % kStepBytes] |=
          uint8_t(x < kStepBytes ? int(z) : int(z) << 4);
      uint8_t *steps = codes + pb * kBlock * kStepBytes;
      for (int64_t i = 0; i < count; ++i)
        steps[i * kStepBytes + x % kStepBytes] |=
            uint8_t(x < kStepBytes ? q[i] : q[i] << 4);
    }
  }
  return true;
}

} // namespace transfuse::q4

#endif // TRANSFUSE_Q4_PANELS_H
