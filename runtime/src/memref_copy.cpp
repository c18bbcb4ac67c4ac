//===- memref_copy.cpp - the copy routines generated code may call --------===//
//
// MLIR lowers a memref.copy between non-contiguous layouts to a call to
// `memrefCopy(elemSize, src, dst)` on unranked descriptors. Our own
// implementation, so a model.so needs no MLIR runtime library.
//
// transfuse_copy_f32(src, dst), also on unranked descriptors, is what
// transfuse-cpu-stream-large-copies turns a possibly large f32 copy with
// contiguous rows into (a KV cache's concatenation). From kStreamBytes on,
// its rows are split over the thread pool and written with non-temporal
// stores: the destination is not read into the cache before it is
// overwritten, and the copy does not evict what the next ops read. Below
// that, one memcpy per row on the calling thread.
//
//===----------------------------------------------------------------------===//
#include "gemm.h"
#include "profile.h"
#include "thread_pool.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include <immintrin.h>

namespace {
struct UnrankedDesc {
  int64_t rank;
  void *descriptor; // {base, data, offset, sizes[rank], strides[rank]}
};

struct View {
  char *data;
  const int64_t *sizes, *strides;
};

View viewOf(const UnrankedDesc *d, int64_t elemSize) {
  auto *words = static_cast<int64_t *>(d->descriptor);
  char *data = reinterpret_cast<char *>(words[1]) + words[2] * elemSize;
  return {data, words + 3, words + 3 + d->rank};
}

void copyDim(const View &src, const View &dst, int64_t rank, int64_t dim,
             int64_t elemSize, int64_t srcOff, int64_t dstOff) {
  if (dim == rank) {
    memcpy(dst.data + dstOff * elemSize, src.data + srcOff * elemSize, elemSize);
    return;
  }
  // A row that is contiguous on both sides: one memcpy, not one per element
  // (the strided slices of a merged projection are copied this way).
  if (dim == rank - 1 && src.strides[dim] == 1 && dst.strides[dim] == 1) {
    memcpy(dst.data + dstOff * elemSize, src.data + srcOff * elemSize,
           src.sizes[dim] * elemSize);
    return;
  }
  for (int64_t i = 0; i < src.sizes[dim]; ++i)
    copyDim(src, dst, rank, dim + 1, elemSize, srcOff + i * src.strides[dim],
            dstOff + i * dst.strides[dim]);
}
} // namespace

extern "C" __attribute__((visibility("default"))) void
memrefCopy(int64_t elemSize, UnrankedDesc *src, UnrankedDesc *dst) {
  View s = viewOf(src, elemSize), d = viewOf(dst, elemSize);
  for (int64_t i = 0; i < src->rank; ++i)
    if (s.sizes[i] == 0)
      return;
  copyDim(s, d, src->rank, 0, elemSize, 0, 0);
}

namespace {

constexpr int64_t kStreamBytes = int64_t(256) << 10; // StreamLargeCopies.cpp
constexpr int64_t kTaskBytes = int64_t(256) << 10; // per pool task

/// A copy as rows: dims of size 1 dropped (but the last), and each dim
/// merged into the one inside it where both sides are contiguous across
/// them (a KV cache slice [1, H, S, D] of [1, H, S + 1, D] is H rows of
/// S * D floats).
struct Rows {
  int64_t rank = 0, sizes[8], src[8], dst[8];
  int64_t count() const {
    int64_t n = 1;
    for (int64_t d = 0; d + 1 < rank; ++d)
      n *= sizes[d];
    return n;
  }
  /// Offsets of row r (row-major over all dims but the last).
  void offsets(int64_t r, int64_t &so, int64_t &dof) const {
    so = dof = 0;
    for (int64_t d = rank - 2; d >= 0; --d) {
      int64_t i = r % sizes[d];
      r /= sizes[d];
      so += i * src[d];
      dof += i * dst[d];
    }
  }
};

/// The rows of a copy of `rank` dims whose last dim has unit strides on
/// both sides; false when more than 8 dims remain (copied dim by dim then).
bool rowsOf(const View &s, const View &d, int64_t rank, Rows &out) {
  for (int64_t i = 0; i < rank; ++i) {
    if (s.sizes[i] == 1 && i + 1 < rank)
      continue;
    if (out.rank == 8)
      return false;
    out.sizes[out.rank] = s.sizes[i];
    out.src[out.rank] = s.strides[i];
    out.dst[out.rank] = d.strides[i];
    ++out.rank;
  }
  // From the inside out, dim j folds into the kept dim inside it when
  // stepping j is stepping that dim across its whole size, on both sides.
  int64_t w = out.rank - 1;
  for (int64_t j = out.rank - 2; j >= 0; --j) {
    if (out.src[j] == out.src[w] * out.sizes[w] &&
        out.dst[j] == out.dst[w] * out.sizes[w]) {
      out.sizes[w] *= out.sizes[j];
      continue;
    }
    --w;
    out.sizes[w] = out.sizes[j];
    out.src[w] = out.src[j];
    out.dst[w] = out.dst[j];
  }
  int64_t kept = out.rank - w;
  for (int64_t j = 0; j < kept; ++j) {
    out.sizes[j] = out.sizes[w + j];
    out.src[j] = out.src[w + j];
    out.dst[j] = out.dst[w + j];
  }
  out.rank = kept;
  return true;
}

/// n floats from src to dst with non-temporal stores, plain ones up to
/// dst's first 64-byte boundary and after its last.
__attribute__((target("avx512f"))) void streamRow(float *dst, const float *src,
                                                 int64_t n) {
  int64_t head = (64 - reinterpret_cast<uintptr_t>(dst) % 64) % 64;
  if (head % sizeof(float) != 0) { // not even float aligned
    std::memcpy(dst, src, n * sizeof(float));
    return;
  }
  head = std::min(n, head / int64_t(sizeof(float)));
  std::memcpy(dst, src, head * sizeof(float));
  int64_t i = head;
  for (; i + 16 <= n; i += 16)
    _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
  std::memcpy(dst + i, src + i, (n - i) * sizeof(float));
}

} // namespace

void transfuse::runtime::gemm::streamFloats(float *dst, const float *src,
                                            int64_t n) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  if (avx512)
    streamRow(dst, src, n);
  else
    std::memcpy(dst, src, n * sizeof(float));
}

extern "C" __attribute__((visibility("default"))) void
_mlir_ciface_transfuse_copy_f32(UnrankedDesc *src, UnrankedDesc *dst) {
  int64_t rank = src->rank;
  View s = viewOf(src, sizeof(float)), d = viewOf(dst, sizeof(float));
  transfuse::runtime::profile::Scope scope("copy_f32", s.sizes,
                                           (int)std::min<int64_t>(rank, 5));
  for (int64_t i = 0; i < rank; ++i)
    if (s.sizes[i] == 0)
      return;
  Rows rows;
  if (!rowsOf(s, d, rank, rows))
    return copyDim(s, d, rank, 0, sizeof(float), 0, 0);
  auto *sd = reinterpret_cast<const float *>(s.data);
  auto *dd = reinterpret_cast<float *>(d.data);
  int64_t count = rows.count(), n = rows.sizes[rows.rank - 1];
  int64_t bytes = count * n * int64_t(sizeof(float));
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  if (bytes < kStreamBytes || !avx512) {
    for (int64_t r = 0; r < count; ++r) {
      int64_t so, dof;
      rows.offsets(r, so, dof);
      std::memcpy(dd + dof, sd + so, n * sizeof(float));
    }
    return;
  }
  // Tasks of about kTaskBytes: several short rows, or pieces of a long one
  // (a multiple of 16 floats each).
  int64_t rowBytes = n * int64_t(sizeof(float));
  int64_t group = std::max<int64_t>(1, kTaskBytes / rowBytes);
  int64_t pieces = std::max<int64_t>(1, rowBytes / kTaskBytes);
  int64_t piece = (n / pieces + 15) / 16 * 16;
  int64_t tasks = (count + group - 1) / group * pieces;
  auto task = [&](int64_t t) {
    int64_t r0 = t / pieces * group, p0 = t % pieces * piece;
    for (int64_t r = r0; r < std::min(count, r0 + group) && p0 < n; ++r) {
      int64_t so, dof;
      rows.offsets(r, so, dof);
      streamRow(dd + dof + p0, sd + so + p0, std::min(piece, n - p0));
    }
    // Non-temporal stores are weakly ordered: make them visible before the
    // pool reports the task done.
    _mm_sfence();
  };
  transfuse::runtime::parallelFor(tasks, task);
}
