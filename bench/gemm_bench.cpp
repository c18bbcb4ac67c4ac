//===- gemm_bench.cpp - the GEMM microkernel against the measured FMA peak ===//
//
// Measures, in one run on one core: the FP32 FMA peak (independent AVX-512
// FMA chains), then the runtime's transfuse_matmul_f32 on BERT-base and
// GPT-2 layer shapes, reporting GFLOP/s and the fraction of that peak.
// usage: TRANSFUSE_NUM_THREADS=1 gemm_bench [repeats]   (bench.py does this)
//
//===----------------------------------------------------------------------===//
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <immintrin.h>
#include <vector>

struct Desc2D {
  float *base, *data;
  int64_t offset, sizes[2], strides[2];
};
struct Desc3D {
  float *base, *data;
  int64_t offset, sizes[3], strides[3];
};
extern "C" void _mlir_ciface_transfuse_matmul_f32(Desc2D *, Desc2D *,
                                                  Desc2D *);
extern "C" void _mlir_ciface_transfuse_matmul_f32_packed(Desc2D *, Desc3D *,
                                                         Desc2D *);

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

static Desc2D desc(std::vector<float> &v, int64_t r, int64_t c) {
  return {v.data(), v.data(), 0, {r, c}, {c, 1}};
}

int main(int argc, char **argv) {
  int repeats = argc > 1 ? atoi(argv[1]) : 20;
  const int64_t peakIters = 50'000'000;
  std::vector<double> peaks;
  for (int r = 0; r < 5; ++r) {
    double t = now();
    volatile float sink = fmaPeak(peakIters);
    (void)sink;
    peaks.push_back(2.0 * 16 * 16 * peakIters / (now() - t) / 1e9);
  }
  double peak = *std::max_element(peaks.begin(), peaks.end());
  printf("FMA peak (1 core, best of 5): %.1f GFLOP/s\n", peak);
  struct Shape { const char *what; int64_t m, k, n; };
  const Shape shapes[] = {
      {"bert-base QKV (merged), seq 128", 128, 768, 2304},
      {"bert-base FFN up, seq 128", 128, 768, 3072},
      {"bert-base FFN down, seq 128", 128, 3072, 768},
      {"bert-base attn out, seq 128", 128, 768, 768},
      {"bert-base FFN up, seq 512", 512, 768, 3072},
      {"gpt2 decode FFN up (M=1)", 1, 768, 3072},
  };
  printf("%-34s %10s %8s %7s %10s %8s %7s\n", "shape", "B packed", "GFLOP/s",
         "% peak", "per call", "GFLOP/s", "% peak");
  printf("%-34s %s\n", "",
         "(weights prepacked at compile time | B packed per call)");
  for (const Shape &s : shapes) {
    std::vector<float> a(s.m * s.k), b(s.k * s.n), c(s.m * s.n);
    for (size_t i = 0; i < a.size(); ++i) a[i] = (i % 13) * 0.01f;
    for (size_t i = 0; i < b.size(); ++i) b[i] = (i % 7) * 0.01f;
    Desc2D da = desc(a, s.m, s.k), db = desc(b, s.k, s.n),
           dc = desc(c, s.m, s.n);
    // The layout transfuse-cpu-matmul-to-microkernel gives weights.
    int64_t panels = (s.n + 31) / 32;
    std::vector<float> packed(panels * s.k * 32, 0.0f);
    for (int64_t r = 0; r < s.k; ++r)
      for (int64_t j = 0; j < s.n; ++j)
        packed[(j / 32) * s.k * 32 + r * 32 + j % 32] = b[r * s.n + j];
    Desc3D dp{packed.data(), packed.data(), 0, {panels, s.k, 32},
              {s.k * 32, 32, 1}};
    auto timeIt = [&](bool prepacked) {
      std::vector<double> times;
      for (int r = 0; r < repeats + 3; ++r) {
        std::fill(c.begin(), c.end(), 0.0f);
        double t = now();
        if (prepacked)
          _mlir_ciface_transfuse_matmul_f32_packed(&da, &dp, &dc);
        else
          _mlir_ciface_transfuse_matmul_f32(&da, &db, &dc);
        if (r >= 3)
          times.push_back(now() - t);
      }
      std::sort(times.begin(), times.end());
      return times[times.size() / 2];
    };
    double flop = 2.0 * s.m * s.k * s.n;
    double tp = timeIt(true), tu = timeIt(false);
    printf("%-34s %7.3f ms %8.1f %6.0f%% %7.3f ms %8.1f %6.0f%%\n", s.what,
           tp * 1e3, flop / tp / 1e9, 100 * flop / tp / 1e9 / peak, tu * 1e3,
           flop / tu / 1e9, 100 * flop / tu / 1e9 / peak);
  }
}
