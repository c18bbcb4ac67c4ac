//===- epilogue.cpp - a linear's bias, activation and residual on C tiles -===//
//
// `transfuse_linear_f32_packed` (gemm.cpp) applies a `linear`'s epilogue,
// C = act(C + bias) + residual, to each tile of C as soon as the kernel has
// written its last K slice: the tile is still in L1, so the epilogue costs
// no pass over C in memory. The generated code's elementwise pass it
// replaces computes erf, exp and tanh with MLIR's polynomial
// approximations; these are the runtime's own, written as branch-free
// scalar code that the compiler vectorizes for AVX-512 and for AVX2 (one
// clone of the tile loop per instruction set), so one source serves every
// CPU. Their errors, against libm in runtime/test/gemm_test.cpp, are a few
// 1e-7.
//
//===----------------------------------------------------------------------===//
#include "approx_math.h"
#include "gemm.h"

#include <cstdint>
#include <cstring>

using namespace transfuse::runtime::gemm;
using transfuse::runtime::expApprox;

namespace {

/// erf(x) = x P(x^2) / Q(x^2), P and Q of degree 5: a rational fit of our
/// own (least squares on [0, 4], reweighted by 1 / Q), max abs error 4e-7
/// in f32; six FMAs, five and one division, where the textbook forms take
/// an erfc polynomial and an exp. From |x| = 3.92 on, erf is +-1 in f32,
/// and so is the result (gelu of a large negative x is then 0, not
/// x * 1e-7).
inline float erfApprox(float x) {
  if (x < -3.92f || x > 3.92f)
    return x < 0 ? -1.0f : 1.0f;
  float u = x * x;
  float p = 2.0000668e-06f;
  p = p * u + 2.8602284e-04f;
  p = p * u + 3.8950662e-03f;
  p = p * u + 5.3133678e-02f;
  p = p * u + 1.9365658e-01f;
  p = p * u + 1.1283791e+00f;
  float q = 3.7637485e-05f;
  q = q * u + 1.1908289e-03f;
  q = q * u + 1.5226652e-02f;
  q = q * u + 1.1541278e-01f;
  q = q * u + 5.0495553e-01f;
  q = q * u + 1.0f;
  return x * p / q;
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
           (1.0f +
            tanhApprox(0.79788456080286536f * (v + 0.044715f * v * v * v)));
  if constexpr (A == Epilogue::Silu)
    return v / (1.0f + expApprox(-v));
  return v;
}

/// h rows of w elements (row strides ldo, ldr): o[r][x] = act(o[r][x] +
/// bias[x * bs]) + res[r][x * rs], either operand possibly absent. One call
/// per tile, so that the constants are loaded once for its rows. A tile's
/// row is 32 wide: vectorized 16 lanes at a time without interleaving, or
/// LLVM's default (4 x 16) would leave such rows to its scalar remainder
/// loop.
template <Epilogue::Act A, bool Bias, bool Res>
inline void rows(float *o, int64_t ldo, const float *bias, int64_t bs,
                 const float *res, int64_t ldr, int64_t rs, int64_t h,
                 int64_t w) {
  for (int64_t r = 0; r < h; ++r) {
    float *orow = o + r * ldo;
    const float *rrow = Res ? res + r * ldr : nullptr;
#pragma clang loop vectorize_width(16) interleave_count(1)
    for (int64_t x = 0; x < w; ++x) {
      float v = orow[x];
      if constexpr (Bias)
        v += bias[x * bs];
      v = activate<A>(v);
      if constexpr (Res)
        v += rrow[x * rs];
      orow[x] = v;
    }
  }
}

using TileFn = Epilogue::TileFn;

/// The tile loop for each activation and operand set, compiled for the
/// instruction set `target` names, on unit column strides (bs, rs = 1).
#define TF_EPILOGUE_TILE(NAME, TARGET)                                         \
  template <Epilogue::Act A, bool Bias, bool Res>                              \
  __attribute__((target(TARGET))) void NAME(                                   \
      float *o, int64_t ldo, const float *bias, int64_t, const float *res,     \
      int64_t ldr, int64_t, int64_t h, int64_t w) {                            \
    rows<A, Bias, Res>(o, ldo, bias, 1, res, ldr, 1, h, w);                    \
  }
TF_EPILOGUE_TILE(tileAvx512, "avx512f")
TF_EPILOGUE_TILE(tileAvx2, "avx2,fma")
#undef TF_EPILOGUE_TILE
template <Epilogue::Act A, bool Bias, bool Res>
void tilePortable(float *o, int64_t ldo, const float *bias, int64_t bs,
                  const float *res, int64_t ldr, int64_t rs, int64_t h,
                  int64_t w) {
  rows<A, Bias, Res>(o, ldo, bias, bs, res, ldr, rs, h, w);
}

/// table[act][bias][res] of one instruction set's tile loops.
// clang-format off
#define TF_TILE_TABLE(F)                                                       \
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
// clang-format on
constexpr TileFn kTilesAvx512[Epilogue::NumActs][2][2] =
    TF_TILE_TABLE(tileAvx512);
constexpr TileFn kTilesAvx2[Epilogue::NumActs][2][2] = TF_TILE_TABLE(tileAvx2);
constexpr TileFn kTilesPortable[Epilogue::NumActs][2][2] =
    TF_TILE_TABLE(tilePortable);
#undef TF_TILE_TABLE

} // namespace

void Epilogue::apply(float *out, int64_t ldo, int64_t i0, int64_t j0, int64_t h,
                     int64_t w) const {
  tile(out, ldo, bias ? bias + j0 * biasStride : nullptr, biasStride,
       residual ? residual->at(i0, j0) : nullptr,
       residual ? residual->strides[0] : 0, residual ? residual->strides[1] : 0,
       h, w);
}

void Epilogue::applyAll(const Desc2D &c) const {
  if (none())
    return;
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

Epilogue Epilogue::fromFlags(int64_t flags, const Desc1D *bias,
                             const Desc2D *residual) {
  Epilogue ep;
  int64_t act = flags & transfuse::linear::kActMask;
  ep.act = act < NumActs ? (Act)act : None;
  if (flags & transfuse::linear::kHasBias) {
    ep.bias = bias->data + bias->offset;
    ep.biasStride = bias->strides[0];
  }
  if (flags & transfuse::linear::kHasResidual)
    ep.residual = residual;
  // The vector loops on unit strides (f32Path(), as the GEMM's kernels),
  // the portable ones otherwise.
  bool unit = (!ep.bias || ep.biasStride == 1) &&
              (!ep.residual || ep.residual->strides[1] == 1);
  F32Path path = unit ? f32Path() : F32Path::Portable;
  const TileFn(*table)[2][2] = path == F32Path::Avx512 ? kTilesAvx512
                               : path == F32Path::Avx2 ? kTilesAvx2
                                                       : kTilesPortable;
  ep.tile = table[ep.act][ep.bias != nullptr][ep.residual != nullptr];
  return ep;
}
