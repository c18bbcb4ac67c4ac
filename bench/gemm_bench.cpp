//===- gemm_bench.cpp - the GEMM microkernel against the measured FMA peak ===//
//
// Measures, in one run on one core: the FP32 FMA peak (independent FMA
// chains, AVX-512 or, on CPUs without it or with TRANSFUSE_GEMM=avx2,
// AVX2), with AVX-512 also the FMA rate beside the f32 kernel's loads (the
// ceiling they leave it), and the bf16 peak of the kernel the runtime
// picks: with AMX the tile peak (TDPBF16PS on tiles in L1), else with
// AVX512-BF16 the VDPBF16PS peak (independent chains); then the runtime's
// transfuse_matmul_f32 and, with either, transfuse_matmul_bf16_packed on
// BERT-base and GPT-2 layer shapes, reporting GFLOP/s and the fraction of
// the matching peak. The prepacked f32 product is timed twice: on one
// weight (warm in the caches after the first call) and on copies of it
// read in turn from DRAM ("B cold"), as a model reads its weights.
// Each row names its shape as [MxKxN]; bench.py times ONNX Runtime's and
// PyTorch's f32 products on the same shapes after it (peer_gemm).
// usage: TRANSFUSE_NUM_THREADS=1 build/bin/gemm_bench [repeats]   (bench.py
// does this; built with the runtime, runtime/CMakeLists.txt)
//
//===----------------------------------------------------------------------===//
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

#include "transfuse/bf16_panels.h"

struct Desc2D {
  float *base, *data;
  int64_t offset, sizes[2], strides[2];
};
struct Desc3D {
  float *base, *data;
  int64_t offset, sizes[3], strides[3];
};
struct Desc3DBf16 {
  uint16_t *base, *data;
  int64_t offset, sizes[3], strides[3];
};
extern "C" void _mlir_ciface_transfuse_matmul_f32(Desc2D *, Desc2D *,
                                                  Desc2D *, int64_t);
extern "C" void _mlir_ciface_transfuse_matmul_bf16_packed(Desc2D *,
                                                          Desc3DBf16 *,
                                                          Desc2D *, int64_t);
extern "C" void _mlir_ciface_transfuse_matmul_f32_packed(Desc2D *, Desc3D *,
                                                         Desc2D *, int64_t);

/// 64-byte aligned storage, as the compiler gives weights and the runtime
/// its buffers: a tile or vector load of a row that straddles two cache
/// lines costs about twice as much (an AMX tile load from L1 six times).
template <typename T> struct Aligned64 {
  using value_type = T;
  Aligned64() = default;
  template <typename U> Aligned64(const Aligned64<U> &) {}
  T *allocate(size_t n) {
    return static_cast<T *>(
        std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64));
  }
  void deallocate(T *p, size_t) { std::free(p); }
  bool operator==(const Aligned64 &) const { return true; }
};
template <typename T> using Buffer = std::vector<T, Aligned64<T>>;

static double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

__attribute__((target("avx512f"), noinline)) static float fmaPeak(int64_t n) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i)
    acc[i] = _mm512_set1_ps(0.001f * i);
  __m512 x = _mm512_set1_ps(0.9999f), y = _mm512_set1_ps(0.0001f);
  for (int64_t k = 0; k < n; ++k) {
    for (int i = 0; i < 16; ++i)
      acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    // Keep the chains in registers and the loop from being folded.
    for (int i = 0; i < 16; ++i)
      asm volatile("" : "+v"(acc[i]));
  }
  float s = 0;
  for (int i = 0; i < 16; ++i)
    s += _mm512_reduce_add_ps(acc[i]);
  return s;
}

/// 24 independent FMAs (accumulators zmm0-23) beside the loads the f32
/// kernelWide (gemm.cpp) issues per K step, all from L1 and read by no
/// FMA: 4 vector loads and 6 broadcasts, `n` times. What this reaches is
/// about the most any kernel with that instruction mix can: on the Xeon of
/// docs/benchmarks.md such loads cost FMA throughput even from L1 (with 6
/// vector loads per 24 FMAs 91% of the peak, 10 85%, 14 78%; with 10
/// broadcasts 93%, 14 90%).
__attribute__((target("avx512f"), noinline)) static void
fmaBesideLoads(int64_t n, const float *l1) {
#define TF_FMA4(a, b, c, d)                                                    \
  "vfmadd231ps %%zmm30, %%zmm31, %%zmm" #a "\n"                                \
  "vfmadd231ps %%zmm30, %%zmm31, %%zmm" #b "\n"                                \
  "vfmadd231ps %%zmm30, %%zmm31, %%zmm" #c "\n"                                \
  "vfmadd231ps %%zmm30, %%zmm31, %%zmm" #d "\n"
  asm volatile(
      "1:\n"
      "vmovups (%1), %%zmm24\n"
      "vmovups 64(%1), %%zmm25\n"
      "vmovups 128(%1), %%zmm26\n"
      "vmovups 192(%1), %%zmm27\n"
      "vbroadcastss 256(%1), %%zmm28\n" TF_FMA4(0, 1, 2, 3) "vbroadcastss "
                                                            "260(%1), "
                                                            "%%zmm29\n" TF_FMA4(4, 5, 6, 7) "vbroadcastss 264(%1), %%zmm28\n" TF_FMA4(8, 9, 10, 11) "vbroadcastss 268(%1), %%zmm29\n" TF_FMA4(
                                                                12, 13, 14,
                                                                15) "vbroadcast"
                                                                    "ss "
                                                                    "272(%1), "
                                                                    "%%"
                                                                    "zmm28"
                                                                    "\n" TF_FMA4(16,
                                                                                 17,
                                                                                 18,
                                                                                 19) "vbroadcastss 276(%1), %%zmm29\n" TF_FMA4(20,
                                                                                                                               21,
                                                                                                                               22,
                                                                                                                               23) "dec %0\n"
                                                                                                                                   "jnz 1b\n"
      : "+r"(n)
      : "r"(l1)
      : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8",
        "zmm9", "zmm10", "zmm11", "zmm12", "zmm13", "zmm14", "zmm15", "zmm16",
        "zmm17", "zmm18", "zmm19", "zmm20", "zmm21", "zmm22", "zmm23", "zmm24",
        "zmm25", "zmm26", "zmm27", "zmm28", "zmm29", "cc", "memory");
#undef TF_FMA4
}

/// The same with 256-bit FMAs (12 chains of 8 lanes): the peak of the
/// f32 GEMM's AVX2 kernels, on CPUs without AVX-512 or with
/// TRANSFUSE_GEMM=avx2.
__attribute__((target("avx2,fma"), noinline)) static float
fmaPeakAvx2(int64_t n) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i)
    acc[i] = _mm256_set1_ps(0.001f * i);
  __m256 x = _mm256_set1_ps(0.9999f), y = _mm256_set1_ps(0.0001f);
  for (int64_t k = 0; k < n; ++k) {
    for (int i = 0; i < 12; ++i)
      acc[i] = _mm256_fmadd_ps(acc[i], x, y);
    for (int i = 0; i < 12; ++i)
      asm volatile("" : "+x"(acc[i]));
  }
  float s = 0;
  for (int i = 0; i < 12; ++i) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc[i]);
    for (float l : lanes)
      s += l;
  }
  return s;
}

/// VDPBF16PS throughput: 16 independent chains, 64 flops per instruction.
__attribute__((target("avx512f,avx512bf16"), noinline)) static float
dpbf16Peak(int64_t n) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i)
    acc[i] = _mm512_set1_ps(0.001f * i);
  __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80);
  __m512bh y = (__m512bh)_mm512_set1_epi32(0x3a803a80);
  for (int64_t k = 0; k < n; ++k) {
    for (int i = 0; i < 16; ++i)
      acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
    for (int i = 0; i < 16; ++i)
      asm volatile("" : "+v"(acc[i]));
  }
  float s = 0;
  for (int i = 0; i < 16; ++i)
    s += _mm512_reduce_add_ps(acc[i]);
  return s;
}

static bool avx512Bf16Available() {
  unsigned a, b, c, d;
  return __builtin_cpu_supports("avx512bw") &&
         __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 5 & 1);
}

/// Whether the tile registers are there and this process may use them.
static bool amxAvailable() {
  return __builtin_cpu_supports("avx512f") &&
         syscall(SYS_arch_prctl, 0x1023 /*ARCH_REQ_XCOMP_PERM*/,
                 18 /*XTILEDATA*/) == 0;
}

/// TDPBF16PS throughput: four independent 16 x 16 accumulators fed from
/// tiles that stay loaded, so nothing but the multiply unit is measured.
__attribute__((target("amx-tile,amx-bf16"), noinline)) static void
amxPeakLoop(const uint16_t *a, const uint16_t *b, float *c, int64_t n) {
  struct alignas(64) {
    uint8_t palette, start, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
  } cfg{};
  cfg.palette = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  _tile_loadconfig(&cfg);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, a, 64);
  _tile_loadd(5, a + 512, 64);
  _tile_loadd(6, b, 64);
  _tile_loadd(7, b + 512, 64);
  for (int64_t i = 0; i < n; ++i) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, 64);
  _tile_release();
}

/// The best of 5 timed runs of run(), in GFLOP/s for `flop` per run.
template <typename Fn> static double bestOf5(double flop, Fn run) {
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    double t = now();
    run();
    best = std::max(best, flop / (now() - t) / 1e9);
  }
  return best;
}

static Desc2D desc(Buffer<float> &v, int64_t r, int64_t c) {
  return {v.data(), v.data(), 0, {r, c}, {c, 1}};
}

int main(int argc, char **argv) {
  int repeats = argc > 1 ? atoi(argv[1]) : 20;
  const int64_t peakIters = 50'000'000;
  // The peaks of the kernels the runtime picks. f32 (gemm.cpp): AVX-512,
  // else AVX2 (also with TRANSFUSE_GEMM=avx2). bf16 (gemm_bf16.cpp): AMX,
  // else AVX512-BF16, unless TRANSFUSE_GEMM puts the bf16 product on f32.
  std::string mode = getenv("TRANSFUSE_GEMM") ? getenv("TRANSFUSE_GEMM") : "";
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    // The runtime's portable loops: no peak to compare them with.
    printf("FMA peak: not measured, this CPU has no AVX2 and FMA\n");
    return 0;
  }
  bool avx512 = __builtin_cpu_supports("avx512f") && mode != "avx2";
  double peak =
      avx512 ? bestOf5(2.0 * 16 * 16 * peakIters,
                       [&] {
                         volatile float sink = fmaPeak(peakIters);
                         (void)sink;
                       })
             : bestOf5(2.0 * 8 * 12 * peakIters,
                       [&] {
                         volatile float sink = fmaPeakAvx2(peakIters);
                         (void)sink;
                       });
  printf("FMA peak (1 core, best of 5, %s): %.1f GFLOP/s\n",
         avx512 ? "AVX-512" : "AVX2", peak);
  if (avx512) {
    // The ceiling the f32 kernel's loads leave (fmaBesideLoads).
    Buffer<float> l1(80, 0.5f);
    double beside = bestOf5(2.0 * 16 * 24 * (peakIters / 2),
                            [&] { fmaBesideLoads(peakIters / 2, l1.data()); });
    printf("FMA beside the 6 x 64 kernel's loads (4 vector loads and 6 "
           "broadcasts per 24 FMAs, from L1): %.1f GFLOP/s, %.0f%% of the "
           "peak\n",
           beside, 100 * beside / peak);
  }
  bool onF32 = mode == "portable" || mode == "f32";
  bool amx = !onF32 && mode != "no-amx" && amxAvailable();
  bool dp = !onF32 && !amx && avx512Bf16Available();
  bool bf16 = amx || dp;
  const char *bf16Kernel = amx ? "AMX" : "VDPBF16PS";
  double bf16Peak = 0;
  if (amx) {
    std::vector<uint16_t> ta(1024, 0x3f80), tb(1024, 0x3f80);
    std::vector<float> tc(256);
    const int64_t iters = 2'000'000;
    bf16Peak = bestOf5(4.0 * 2 * 16 * 16 * 32 * iters, [&] {
      amxPeakLoop(ta.data(), tb.data(), tc.data(), iters);
    });
  } else if (dp) {
    bf16Peak = bestOf5(64.0 * 16 * peakIters,
                       [&] {
                         volatile float sink = dpbf16Peak(peakIters);
                         (void)sink;
                       });
  }
  if (bf16)
    printf("bf16 %s peak (1 core, best of 5): %.1f GFLOP/s\n", bf16Kernel,
           bf16Peak);
  else
    printf("bf16 peak: none, the bf16 product runs on the f32 GEMM here\n");
  struct Shape { const char *what; int64_t m, k, n; };
  const Shape shapes[] = {
      {"bert-base QKV (merged), seq 128", 128, 768, 2304},
      {"bert-base FFN up, seq 128", 128, 768, 3072},
      {"bert-base FFN down, seq 128", 128, 3072, 768},
      {"bert-base attn out, seq 128", 128, 768, 768},
      {"bert-base FFN up, seq 512", 512, 768, 3072},
      {"gpt2 decode FFN up (M=1)", 1, 768, 3072},
  };
  printf("%-50s %10s %8s %7s %10s %8s %7s %10s %8s %7s %10s %8s %7s %10s "
         "%8s %7s\n",
         "shape", "B packed", "GFLOP/s", "% peak", "B cold", "GFLOP/s",
         "% peak", "per call", "GFLOP/s", "% peak", "bf16", "GFLOP/s",
         "% bf16", "bf16 cold", "GFLOP/s", "% bf16");
  printf("%-50s %s\n", "",
         "(f32 weights prepacked at compile time, the same weight each call "
         "| prepacked, a different copy each call, from DRAM as in a model "
         "| f32 B packed per call | bf16 weights prepacked, --precision "
         "bf16, warm | the same, cold)");
  for (const Shape &s : shapes) {
    Buffer<float> a(s.m * s.k), b(s.k * s.n), c(s.m * s.n);
    for (size_t i = 0; i < a.size(); ++i) a[i] = (i % 13) * 0.01f;
    for (size_t i = 0; i < b.size(); ++i) b[i] = (i % 7) * 0.01f;
    Desc2D da = desc(a, s.m, s.k), db = desc(b, s.k, s.n),
           dc = desc(c, s.m, s.n);
    // The layout transfuse-cpu-matmul-to-microkernel gives weights.
    int64_t panels = (s.n + 31) / 32;
    Buffer<float> packed(panels * s.k * 32, 0.0f);
    for (int64_t r = 0; r < s.k; ++r)
      for (int64_t j = 0; j < s.n; ++j)
        packed[(j / 32) * s.k * 32 + r * 32 + j % 32] = b[r * s.n + j];
    Desc3D dp{packed.data(), packed.data(), 0, {panels, s.k, 32},
              {s.k * 32, 32, 1}};
    // Copies of the packed weight filling more memory than any cache, read
    // in turn: in a model each weight is read once per run, from DRAM.
    int64_t copies = std::max<int64_t>(
        2, (int64_t(256) << 20) / int64_t(packed.size() * sizeof(float)));
    std::vector<Buffer<float>> cold(copies, packed);
    int64_t kp = transfuse::bf16::paddedK(s.k);
    Buffer<uint16_t> packedBf16(panels * kp * 32);
    transfuse::bf16::pack(b.data(), s.k, s.n, s.n, packedBf16.data());
    Desc3DBf16 dpb{packedBf16.data(), packedBf16.data(), 0, {panels, kp, 32},
                   {kp * 32, 32, 1}};
    std::vector<Buffer<uint16_t>> coldBf16(bf16 ? 2 * copies : 0,
                                                packedBf16);
    // The median over `repeats` calls of run(r), after 3 warm-up calls.
    auto timeIt = [&](auto run) {
      std::vector<double> times;
      for (int r = 0; r < repeats + 3; ++r) {
        double t = now();
        run(r);
        if (r >= 3)
          times.push_back(now() - t);
      }
      std::sort(times.begin(), times.end());
      return times[times.size() / 2];
    };
    auto f32Packed = [&](float *weight) {
      Desc3D d = dp;
      d.base = d.data = weight;
      _mlir_ciface_transfuse_matmul_f32_packed(&da, &d, &dc, 0);
    };
    auto bf16Packed = [&](uint16_t *weight) {
      Desc3DBf16 d = dpb;
      d.base = d.data = weight;
      _mlir_ciface_transfuse_matmul_bf16_packed(&da, &d, &dc, 0);
    };
    double flop = 2.0 * s.m * s.k * s.n;
    double tp = timeIt([&](int) { f32Packed(packed.data()); });
    double tc = timeIt([&](int r) { f32Packed(cold[r % copies].data()); });
    double tu = timeIt(
        [&](int) { _mlir_ciface_transfuse_matmul_f32(&da, &db, &dc, 0); });
    std::string what = std::string(s.what) + " [" + std::to_string(s.m) +
                       "x" + std::to_string(s.k) + "x" + std::to_string(s.n) +
                       "]";
    printf("%-50s %7.3f ms %8.1f %6.0f%% %7.3f ms %8.1f %6.0f%% %7.3f ms %8.1f "
           "%6.0f%%",
           what.c_str(), tp * 1e3, flop / tp / 1e9,
           100 * flop / tp / 1e9 / peak, tc * 1e3, flop / tc / 1e9, 100 * flop / tc / 1e9 / peak, tu * 1e3,
           flop / tu / 1e9, 100 * flop / tu / 1e9 / peak);
    if (bf16) {
      double tb = timeIt([&](int) { bf16Packed(packedBf16.data()); });
      double tbc = timeIt(
          [&](int r) { bf16Packed(coldBf16[r % coldBf16.size()].data()); });
      printf(" %7.3f ms %8.1f %6.0f%% %7.3f ms %8.1f %6.0f%%", tb * 1e3,
             flop / tb / 1e9, 100 * flop / tb / 1e9 / bf16Peak, tbc * 1e3,
             flop / tbc / 1e9, 100 * flop / tbc / 1e9 / bf16Peak);
    }
    printf("\n");
  }
}
