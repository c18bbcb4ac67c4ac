//===- memref_copy.cpp - the copy routine generated code may call ---------===//
//
// MLIR lowers a memref.copy between non-contiguous layouts to a call to
// `memrefCopy(elemSize, src, dst)` on unranked descriptors. Our own
// implementation, so a model.so needs no MLIR runtime library.
//
//===----------------------------------------------------------------------===//
#include <cstdint>
#include <cstring>

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
