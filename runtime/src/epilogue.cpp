//===- epilogue.cpp - a linear's bias, activation and residual on C tiles -===//
//
// `transfuse_linear_f32_packed` (gemm.cpp) applies a `linear`'s epilogue,
// C = act(C + bias) + residual, to each tile of C as soon as the kernel has
// written its last K slice: the tile is still in L1, so the epilogue costs
// no pass over C in memory. The generated code's elementwise pass it
// replaces computes erf, exp and tanh with MLIR's polynomial
// approximations; these are the runtime's own, written as branch-free
// scalar code that the compiler vectorizes for AVX-512 and for AVX2 (one
// clone of the row loop per instruction set), so one source serves every
// CPU. Their errors, against libm in runtime/test/gemm_test.cpp, are a few
// 1e-7.
//
//===----------------------------------------------------------------------===//
#include "gemm.h"

#include <cstdint>
#include <cstring>

using namespace transfuse::runtime::gemm;

namespace {

/// e^x: x = n ln2 + r with |r| <= ln2 / 2, e^r by its Taylor series to
/// degree 7 (relative error below 1e-8), 2^n through the exponent bits.
/// x is clamped to [-87, 88], where 2^n stays a normal float.
inline float expApprox(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  float n = __builtin_rintf(x * 1.44269504088896341f);
  // ln 2 split so that n * kLn2Hi is exact.
  float r = x - n * 0.693145751953125f;
  r = r - n * 1.42860682030941723e-6f;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

/// erf(x) = 1 - erfc(|x|), signed, with erfc from the Chebyshev fit in
/// Numerical Recipes (erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z / 2),
/// fractional error below 1.2e-7).
inline float erfApprox(float x) {
  float z = x < 0 ? -x : x;
  float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  float e = 1.0f - t * expApprox(p - z * z);
  return x < 0 ? -e : e;
}

/// tanh(y) = 1 - 2 / (e^{2|y|} + 1), signed; |y| clamped at 9, where tanh
/// is 1 in f32.
inline float tanhApprox(float y) {
  float z = y < 0 ? -y : y;
  z = z > 9.0f ? 9.0f : z;
  float t = 1.0f - 2.0f / (expApprox(2.0f * z) + 1.0f);
  return y < 0 ? -t : t;
}

template <Epilogue::Act A> inline float activate(float v) {
  if constexpr (A == Epilogue::Relu)
    return v > 0.0f ? v : 0.0f;
  if constexpr (A == Epilogue::Gelu)
    return 0.5f * v * (1.0f + erfApprox(v * 0.70710678118654752f));
  if constexpr (A == Epilogue::GeluTanh)
    return 0.5f * v *
           (1.0f + tanhApprox(0.79788456080286536f *
                              (v + 0.044715f * v * v * v)));
  if constexpr (A == Epilogue::Silu)
    return v / (1.0f + expApprox(-v));
  return v;
}

/// One row of w elements: o[x] = act(o[x] + bias[x]) + res[x] (bias and res
/// with strides bs, rs; either may be absent).
template <Epilogue::Act A, bool Bias, bool Res>
inline void row(float *o, const float *bias, int64_t bs, const float *res,
                int64_t rs, int64_t w) {
  for (int64_t x = 0; x < w; ++x) {
    float v = o[x];
    if constexpr (Bias)
      v += bias[x * bs];
    v = activate<A>(v);
    if constexpr (Res)
      v += res[x * rs];
    o[x] = v;
  }
}

using RowFn = void (*)(float *, const float *, int64_t, const float *,
                       int64_t, int64_t);

/// The row loop for each activation and operand set, compiled for the
/// instruction set `target` names.
#define TF_EPILOGUE_ROWS(NAME, TARGET)                                         \
  template <Epilogue::Act A, bool Bias, bool Res>                              \
  __attribute__((target(TARGET))) void NAME(float *o, const float *bias,       \
                                            int64_t bs, const float *res,      \
                                            int64_t rs, int64_t w) {           \
    row<A, Bias, Res>(o, bias, bs, res, rs, w);                                \
  }
TF_EPILOGUE_ROWS(rowAvx512, "avx512f,avx512dq,avx512vl,avx2,fma")
TF_EPILOGUE_ROWS(rowAvx2, "avx2,fma")
#undef TF_EPILOGUE_ROWS
template <Epilogue::Act A, bool Bias, bool Res>
void rowPortable(float *o, const float *bias, int64_t bs, const float *res,
                 int64_t rs, int64_t w) {
  row<A, Bias, Res>(o, bias, bs, res, rs, w);
}

/// table[act][bias][res] of one instruction set's row loops.
#define TF_ROW_TABLE(F)                                                        \
  {{{F<Epilogue::None, false, false>, F<Epilogue::None, false, true>},         \
    {F<Epilogue::None, true, false>, F<Epilogue::None, true, true>}},          \
   {{F<Epilogue::Relu, false, false>, F<Epilogue::Relu, false, true>},         \
    {F<Epilogue::Relu, true, false>, F<Epilogue::Relu, true, true>}},          \
   {{F<Epilogue::Gelu, false, false>, F<Epilogue::Gelu, false, true>},         \
    {F<Epilogue::Gelu, true, false>, F<Epilogue::Gelu, true, true>}},          \
   {{F<Epilogue::GeluTanh, false, false>, F<Epilogue::GeluTanh, false, true>}, \
    {F<Epilogue::GeluTanh, true, false>, F<Epilogue::GeluTanh, true, true>}},  \
   {{F<Epilogue::Silu, false, false>, F<Epilogue::Silu, false, true>},         \
    {F<Epilogue::Silu, true, false>, F<Epilogue::Silu, true, true>}}}
constexpr RowFn kRowsAvx512[Epilogue::NumActs][2][2] = TF_ROW_TABLE(rowAvx512);
constexpr RowFn kRowsAvx2[Epilogue::NumActs][2][2] = TF_ROW_TABLE(rowAvx2);
constexpr RowFn kRowsPortable[Epilogue::NumActs][2][2] =
    TF_ROW_TABLE(rowPortable);
#undef TF_ROW_TABLE

/// The row loops this CPU runs, chosen once, as the GEMM chooses its
/// kernels (TRANSFUSE_GEMM=portable and =avx2 force the same here).
const RowFn (*rowTable())[2][2] {
  static const RowFn(*chosen)[2][2] = []() -> const RowFn(*)[2][2] {
    if (forcedPortable())
      return kRowsPortable;
    if (__builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && !forcedAvx2())
      return kRowsAvx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      return kRowsAvx2;
    return kRowsPortable;
  }();
  return chosen;
}

} // namespace

void Epilogue::apply(float *out, int64_t ldo, int64_t i0, int64_t j0,
                     int64_t h, int64_t w) const {
  RowFn fn = rowTable()[act][bias != nullptr][residual != nullptr];
  const float *b = bias ? bias + j0 * biasStride : nullptr;
  for (int64_t r = 0; r < h; ++r)
    fn(out + r * ldo, b, biasStride,
       residual ? residual->at(i0 + r, j0) : nullptr,
       residual ? residual->strides[1] : 0, w);
}

void Epilogue::applyAll(const Desc2D &c) const {
  int64_t m = c.sizes[0], n = c.sizes[1];
  if (c.strides[1] == 1) {
    apply(c.at(0, 0), c.strides[0], 0, 0, m, n);
    return;
  }
  // Strided columns: a row at a time through a buffer.
  constexpr int64_t kChunk = 256;
  float buf[kChunk];
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j0 = 0; j0 < n; j0 += kChunk) {
      int64_t w = n - j0 < kChunk ? n - j0 : kChunk;
      for (int64_t x = 0; x < w; ++x)
        buf[x] = *c.at(i, j0 + x);
      apply(buf, kChunk, i, j0, 1, w);
      for (int64_t x = 0; x < w; ++x)
        *c.at(i, j0 + x) = buf[x];
    }
}
