// transfuse_copy_f32 (memref_copy.cpp) against an element-by-element copy:
// rows merged across contiguous dims, strided and unaligned destinations,
// size-1 dims, copies under and over the streaming size, any thread count.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace {

struct Unranked {
  int64_t rank;
  void *descriptor;
};

extern "C" void _mlir_ciface_transfuse_copy_f32(Unranked *src, Unranked *dst);

/// A strided view of `buf` as a memref descriptor {base, data, offset,
/// sizes, strides}.
struct View {
  std::vector<int64_t> words;
  View(std::vector<float> &buf, int64_t offset, std::vector<int64_t> sizes,
       std::vector<int64_t> strides) {
    words = {reinterpret_cast<intptr_t>(buf.data()),
             reinterpret_cast<intptr_t>(buf.data()), offset};
    words.insert(words.end(), sizes.begin(), sizes.end());
    words.insert(words.end(), strides.begin(), strides.end());
  }
};

/// Copies sizes elements from src (strides ss, offset so) into dst
/// (strides ds, offset dof) and checks every destination element: copied
/// ones against the source, the others untouched.
void check(std::vector<int64_t> sizes, std::vector<int64_t> ss, int64_t so,
           std::vector<int64_t> ds, int64_t dof) {
  int64_t rank = sizes.size(), n = 1, srcLen = so + 1, dstLen = dof + 1;
  for (int64_t d = 0; d < rank; ++d) {
    n *= sizes[d];
    srcLen += (sizes[d] - 1) * ss[d];
    dstLen += (sizes[d] - 1) * ds[d];
  }
  std::vector<float> src(srcLen), dst(dstLen, -1.0f), want(dstLen, -1.0f);
  for (int64_t i = 0; i < srcLen; ++i)
    src[i] = float(i % 1000003) * 0.5f;
  for (int64_t e = 0; e < n; ++e) {
    int64_t rest = e, s = so, t = dof;
    for (int64_t d = rank - 1; d >= 0; --d) {
      s += rest % sizes[d] * ss[d];
      t += rest % sizes[d] * ds[d];
      rest /= sizes[d];
    }
    want[t] = src[s];
  }
  View sv(src, so, sizes, ss), dv(dst, dof, sizes, ds);
  Unranked su{rank, sv.words.data()}, du{rank, dv.words.data()};
  _mlir_ciface_transfuse_copy_f32(&su, &du);
  int64_t wrong = 0;
  for (int64_t i = 0; i < dstLen; ++i)
    wrong += dst[i] != want[i];
  EXPECT_EQ(wrong, 0);
}

TEST(Copy, SmallCopies) {
  check({3, 5}, {5, 1}, 0, {5, 1}, 0);         // contiguous: one row
  check({3, 5}, {5, 1}, 2, {8, 1}, 1);         // strided destination rows
  check({1, 4, 1, 7}, {28, 7, 7, 1}, 0, {40, 10, 10, 1}, 3); // size-1 dims
  check({6, 1}, {1, 1}, 0, {3, 1}, 0);         // last dim of size 1
  check({0, 5}, {5, 1}, 0, {5, 1}, 0);         // empty
}

TEST(Copy, StreamedCopies) {
  // A KV cache: [1, 12, 1023, 64] into the first 1023 positions of
  // [1, 12, 1024, 64] (12 rows of 1023 * 64 floats once merged).
  check({1, 12, 1023, 64}, {12 * 1023 * 64, 1023 * 64, 64, 1}, 0,
        {12 * 1024 * 64, 1024 * 64, 64, 1}, 0);
  // The same one position further in, unaligned (the new token's slot
  // written after the past in a concatenation along positions).
  check({1, 12, 1023, 64}, {12 * 1023 * 64, 1023 * 64, 64, 1}, 0,
        {12 * 1024 * 64, 1024 * 64, 64, 1}, 64 + 1);
  // Short rows that do not merge: 5000 rows of 60 floats, stride 61.
  check({5000, 60}, {60, 1}, 0, {61, 1}, 0);
  // Rank 3, strided on both sides, rows longer than a task.
  check({3, 2, 300000}, {700000, 300001, 1}, 5, {600000, 300000, 1}, 7);
}

} // namespace
