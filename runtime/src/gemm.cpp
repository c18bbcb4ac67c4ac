//===- gemm.cpp - the f32 GEMM microkernel generated code calls -----------===//
//
// IREE-style split: the compiler keeps the fusion (the epilogue of a
// `linear` is a separate elementwise pass it generates), and calls this
// routine for the product itself. `transfuse-cpu-matmul-to-microkernel`
// rewrites each f32 `linalg.matmul` on buffers into
//   _mlir_ciface_transfuse_matmul_f32(&A, &B, &C)   // C += A * B
// on strided 2-D descriptors, or, when B is a constant (a weight), with B
// packed into the kernel's panel layout at compile time:
//   _mlir_ciface_transfuse_matmul_f32_packed(&A, &Bpacked, &C)
//
// Blocking (Goto/BLIS): B is packed into panels of kNr columns per kKc rows,
// A into panels of kMr rows; a register-blocked kMr x kNr kernel (AVX-512:
// 12 x 32, 24 accumulators) runs over the packed panels; with weights
// prepacked, a product of few rows (a decode step) streams the panels once
// instead. Edge tiles go
// through a small buffer. Without AVX-512 a portable loop nest runs instead.
// Large products split their columns over TRANSFUSE_NUM_THREADS threads
// (default: every CPU the process may use).
//
//===----------------------------------------------------------------------===//
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <immintrin.h>

namespace {

struct Desc2D {
  float *base, *data;
  int64_t offset, sizes[2], strides[2];
  float *at(int64_t i, int64_t j) const {
    return data + offset + i * strides[0] + j * strides[1];
  }
};

constexpr int64_t kMr = 12, kNr = 32, kKc = 192, kMc = 240, kNc = 2304;

/// C[i][j] += sum_k A[i][k] B[k][j], any strides.
void matmulPortable(const Desc2D &a, const Desc2D &b, const Desc2D &c) {
  int64_t m = a.sizes[0], k = a.sizes[1], n = b.sizes[1];
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < k; ++p) {
      float av = *a.at(i, p);
      float *crow = c.at(i, 0);
      const float *brow = b.at(p, 0);
      for (int64_t j = 0; j < n; ++j)
        crow[j * c.strides[1]] += av * brow[j * b.strides[1]];
    }
}

/// B[p0:p0+kc, j0:j0+nc] as panels of kNr columns, each [kc][kNr], zero
/// padded on the right.
void packB(const Desc2D &b, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
           float *out) {
  for (int64_t jp = 0; jp < nc; jp += kNr) {
    int64_t w = std::min(kNr, nc - jp);
    for (int64_t p = 0; p < kc; ++p) {
      const float *src = b.at(p0 + p, j0 + jp);
      float *dst = out + (jp / kNr) * kc * kNr + p * kNr;
      if (b.strides[1] == 1) {
        std::memcpy(dst, src, w * sizeof(float));
      } else {
        for (int64_t j = 0; j < w; ++j)
          dst[j] = src[j * b.strides[1]];
      }
      std::fill(dst + w, dst + kNr, 0.0f);
    }
  }
}

/// A[i0:i0+mc, p0:p0+kc] as panels of kMr rows, each [kc][kMr], zero
/// padded below.
void packA(const Desc2D &a, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
           float *out) {
  for (int64_t ip = 0; ip < mc; ip += kMr) {
    int64_t h = std::min(kMr, mc - ip);
    float *panel = out + (ip / kMr) * kc * kMr;
    for (int64_t r = 0; r < kMr; ++r) {
      if (r >= h) {
        for (int64_t p = 0; p < kc; ++p)
          panel[p * kMr + r] = 0.0f;
        continue;
      }
      const float *src = a.at(i0 + ip + r, p0);
      for (int64_t p = 0; p < kc; ++p)
        panel[p * kMr + r] = src[p * a.strides[1]];
    }
  }
}

/// out[kMr][kNr] (row stride ldo) += Apanel * Bpanel over kc.
__attribute__((target("avx512f"))) void kernel12x32(int64_t kc, const float *ap,
                                                    const float *bp, float *out,
                                                    int64_t ldo) {
  __m512 c[kMr][2];
  for (int r = 0; r < kMr; ++r) {
    c[r][0] = _mm512_loadu_ps(out + r * ldo);
    c[r][1] = _mm512_loadu_ps(out + r * ldo + 16);
  }
  for (int64_t p = 0; p < kc; ++p) {
    __m512 b0 = _mm512_loadu_ps(bp + p * kNr);
    __m512 b1 = _mm512_loadu_ps(bp + p * kNr + 16);
    const float *a = ap + p * kMr;
#pragma GCC unroll 12
    for (int r = 0; r < kMr; ++r) {
      __m512 av = _mm512_set1_ps(a[r]);
      c[r][0] = _mm512_fmadd_ps(av, b0, c[r][0]);
      c[r][1] = _mm512_fmadd_ps(av, b1, c[r][1]);
    }
  }
  for (int r = 0; r < kMr; ++r) {
    _mm512_storeu_ps(out + r * ldo, c[r][0]);
    _mm512_storeu_ps(out + r * ldo + 16, c[r][1]);
  }
}

/// `packed`, when given, is B already in panel layout for the whole K:
/// panel j (columns [32 j, 32 j + 32)) is [K][kNr] at packed + j * K * kNr,
/// zero padded, as transfuse-cpu-matmul-to-microkernel writes weights at
/// compile time. Otherwise B is packed here, block by block.
__attribute__((target("avx512f"))) void matmulAvx512(const Desc2D &a,
                                                     const Desc2D &b,
                                                     const float *packed,
                                                     const Desc2D &c) {
  int64_t m = a.sizes[0], k = a.sizes[1], n = c.sizes[1];
  float *bPack = packed ? nullptr
                        : static_cast<float *>(std::aligned_alloc(
                              64, sizeof(float) * kKc * (kNc + kNr)));
  float *aPack = static_cast<float *>(
      std::aligned_alloc(64, sizeof(float) * kKc * (kMc + kMr)));
  alignas(64) float tile[kMr * kNr];
  for (int64_t j0 = 0; j0 < n; j0 += kNc) {
    int64_t nc = std::min(kNc, n - j0);
    for (int64_t p0 = 0; p0 < k; p0 += kKc) {
      int64_t kc = std::min(kKc, k - p0);
      if (!packed)
        packB(b, p0, kc, j0, nc, bPack);
      for (int64_t i0 = 0; i0 < m; i0 += kMc) {
        int64_t mc = std::min(kMc, m - i0);
        packA(a, i0, mc, p0, kc, aPack);
        for (int64_t jr = 0; jr < nc; jr += kNr) {
          int64_t w = std::min(kNr, nc - jr);
          const float *bp =
              packed ? packed + ((j0 + jr) / kNr) * k * kNr + p0 * kNr
                     : bPack + (jr / kNr) * kc * kNr;
          for (int64_t ir = 0; ir < mc; ir += kMr) {
            int64_t h = std::min(kMr, mc - ir);
            const float *ap = aPack + (ir / kMr) * kc * kMr;
            float *cij = c.at(i0 + ir, j0 + jr);
            if (h == kMr && w == kNr && c.strides[1] == 1) {
              kernel12x32(kc, ap, bp, cij, c.strides[0]);
              continue;
            }
            // Edge tile: through a zero-padded buffer.
            for (int64_t r = 0; r < kMr; ++r)
              for (int64_t j = 0; j < kNr; ++j)
                tile[r * kNr + j] =
                    r < h && j < w ? cij[r * c.strides[0] + j * c.strides[1]]
                                   : 0.0f;
            kernel12x32(kc, ap, bp, tile, kNr);
            for (int64_t r = 0; r < h; ++r)
              for (int64_t j = 0; j < w; ++j)
                cij[r * c.strides[0] + j * c.strides[1]] = tile[r * kNr + j];
          }
        }
      }
    }
  }
  std::free(aPack);
  std::free(bPack);
}

/// Few rows against prepacked B: each panel streamed once.
__attribute__((target("avx512f"))) void
matmulFewRowsPacked(const Desc2D &a, const float *packed, const Desc2D &c) {
  int64_t m = a.sizes[0], k = a.sizes[1], n = c.sizes[1];
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j0 = 0; j0 < n; j0 += kNr) {
      const float *panel = packed + (j0 / kNr) * k * kNr;
      __m512 c0 = _mm512_setzero_ps(), c1 = _mm512_setzero_ps();
      for (int64_t p = 0; p < k; ++p) {
        __m512 av = _mm512_set1_ps(*a.at(i, p));
        c0 = _mm512_fmadd_ps(av, _mm512_loadu_ps(panel + p * kNr), c0);
        c1 = _mm512_fmadd_ps(av, _mm512_loadu_ps(panel + p * kNr + 16), c1);
      }
      alignas(64) float row[kNr];
      _mm512_store_ps(row, c0);
      _mm512_store_ps(row + 16, c1);
      float *crow = c.at(i, j0);
      for (int64_t j = 0; j < std::min(kNr, n - j0); ++j)
        crow[j * c.strides[1]] += row[j];
    }
}

/// The portable path on prepacked B.
void matmulPackedPortable(const Desc2D &a, const float *packed,
                          const Desc2D &c) {
  int64_t m = a.sizes[0], k = a.sizes[1], n = c.sizes[1];
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < k; ++p) {
      float av = *a.at(i, p);
      for (int64_t j = 0; j < n; ++j)
        *c.at(i, j) += av * packed[(j / kNr) * k * kNr + p * kNr + j % kNr];
    }
}

/// AVX-512 unless the CPU lacks it or TRANSFUSE_GEMM=portable (which the
/// tests use to cover the portable path on any machine).
bool useAvx512() {
  static const bool use = __builtin_cpu_supports("avx512f") && [] {
    const char *e = std::getenv("TRANSFUSE_GEMM");
    return !e || std::strcmp(e, "portable") != 0;
  }();
  return use;
}

/// Threads a product may use: TRANSFUSE_NUM_THREADS, else the CPUs this
/// process may run on.
int numThreads() {
  static const int n = [] {
    if (const char *e = std::getenv("TRANSFUSE_NUM_THREADS"))
      return std::max(1, std::atoi(e));
    return (int)std::max(1u, std::thread::hardware_concurrency());
  }();
  return n;
}

/// Runs `part(j0, j1)` over column ranges [j0, j1) that split [0, n) at
/// panel boundaries, one per thread, when the product is large enough for
/// threads to pay (each C element is still computed by one thread, in the
/// same order, so results do not depend on the thread count).
template <typename Fn>
void splitColumns(int64_t m, int64_t n, int64_t k, Fn part) {
  int64_t panels = (n + kNr - 1) / kNr;
  int64_t threads = std::min<int64_t>(numThreads(), panels);
  if (threads <= 1 || m * n * k < (int64_t(1) << 22)) {
    part(0, n);
    return;
  }
  std::vector<std::thread> pool;
  auto range = [&](int64_t t) {
    return std::min(n, (panels * t / threads) * kNr);
  };
  for (int64_t t = 1; t < threads; ++t)
    pool.emplace_back([&, t] { part(range(t), range(t + 1)); });
  part(0, range(1));
  for (std::thread &th : pool)
    th.join();
}

/// Columns [j0, j1) of a 2-D view.
Desc2D columns(const Desc2D &d, int64_t j0, int64_t j1) {
  Desc2D out = d;
  out.offset += j0 * d.strides[1];
  out.sizes[1] = j1 - j0;
  return out;
}

} // namespace

extern "C" __attribute__((visibility("default"))) void
_mlir_ciface_transfuse_matmul_f32(Desc2D *a, Desc2D *b, Desc2D *c) {
  if (a->sizes[0] == 0 || b->sizes[1] == 0 || a->sizes[1] == 0)
    return;
  if (!useAvx512())
    return matmulPortable(*a, *b, *c);
  splitColumns(
      a->sizes[0], c->sizes[1], a->sizes[1], [&](int64_t j0, int64_t j1) {
        matmulAvx512(*a, columns(*b, j0, j1), nullptr, columns(*c, j0, j1));
      });
}

namespace {
struct Desc3D {
  float *base, *data;
  int64_t offset, sizes[3], strides[3];
};
} // namespace

/// C += A * B with B prepacked at compile time: [ceil(N / 32)][K][32].
extern "C" __attribute__((visibility("default"))) void
_mlir_ciface_transfuse_matmul_f32_packed(Desc2D *a, Desc3D *b, Desc2D *c) {
  if (a->sizes[0] == 0 || c->sizes[1] == 0 || a->sizes[1] == 0)
    return;
  const float *packed = b->data + b->offset;
  int64_t k = a->sizes[1];
  if (!useAvx512())
    return matmulPackedPortable(*a, packed, *c);
  splitColumns(a->sizes[0], c->sizes[1], k, [&](int64_t j0, int64_t j1) {
    const float *p = packed + (j0 / kNr) * k * kNr;
    if (a->sizes[0] < 4)
      matmulFewRowsPacked(*a, p, columns(*c, j0, j1));
    else
      matmulAvx512(*a, Desc2D{}, p, columns(*c, j0, j1));
  });
}
