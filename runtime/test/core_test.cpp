//===- core_test.cpp - runtime core: validation and calling convention ----===//
#include "transfuse/runtime_core.h"

#include "alloc.h"
#include "thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

// A hand-written "compiled model": y[b, s] = ids[b, s] * 2 as float, with
// inputs ids: int64 [batch, seq] (vocab 10) and mask: int64 [batch, seq].
extern "C" void fakeEntry(void **args) {
  int64_t *res = (int64_t *)args[0];
  int64_t *ids = (int64_t *)args[1];
  int64_t b = ids[3], s = ids[4];
  const int64_t *data = (const int64_t *)(intptr_t)ids[1];
  // From the runtime's allocator, as generated code's buffers are: the
  // runtime frees what it does not hand over with it.
  float *out = (float *)_mlir_memref_to_llvm_alloc(sizeof(float) *
                                                   (b * s > 0 ? b * s : 1));
  for (int64_t i = 0; i < b * s; ++i)
    out[i] = 2.0f * (float)data[i];
  res[0] = res[1] = (int64_t)(intptr_t)out;
  res[2] = 0;
  res[3] = b;
  res[4] = s;
  res[5] = s;
  res[6] = 1;
}

const int64_t kMeta[] = {TF_ABI_VERSION, 2, 1, 2,
                         TF_INT64, 2, -1, -2, 10,  // ids
                         TF_INT64, 2, -1, -2, 0,   // mask
                         TF_FLOAT, 2, -1, -2, 0};  // y
const char kNames[] = "ids\0mask\0y";
const tf_model_desc kDesc = {fakeEntry, kMeta, "{}", kNames, "site zero\0"};

// A model whose run-time check fails: the runtime unwinds and reports it.
extern "C" void failingEntry(void **) { __transfuse_fail(0); }
const tf_model_desc kFailing = {failingEntry, kMeta, "{}", kNames,
                                "node 'r' (Reshape): target does not match\0"};

// A model that allocates buffers (one on its own thread, one in each task
// of a parallel loop) and keeps them, as generated code does until a later
// op frees them, then fails a check.
extern "C" void leakyFailingEntry(void **) {
  _mlir_memref_to_llvm_alloc(1 << 20);
  auto task = [](int64_t) { _mlir_memref_to_llvm_alloc(4096); };
  transfuse::runtime::parallelFor(16, task);
  __transfuse_fail(0);
}
const tf_model_desc kLeakyFailing = {leakyFailingEntry, kMeta, "{}", kNames,
                                     "node 'x': a check\0"};

// A model whose parallel loop cannot allocate: tasks 8 and on ask for
// 2^50 bytes, which the allocator refuses without asking the system, on
// whichever threads take them; tasks 0-7 keep their 64 bytes.
std::atomic<int> tasksStarted{0};
extern "C" void oomInTaskEntry(void **) {
  auto task = [](int64_t i) {
    ++tasksStarted;
    _mlir_memref_to_llvm_alloc(i >= 8 ? size_t(1) << 50 : 64);
  };
  transfuse::runtime::parallelFor(64, task);
  std::abort(); // the run ends in the loop
}
const tf_model_desc kOomInTask = {oomInTaskEntry, kMeta, "{}", kNames, ""};

struct CoreTest : ::testing::Test {
  tf_core_session *s = nullptr;
  int64_t ids[6] = {1, 2, 3, 4, 5, 6};
  int64_t mask[6] = {1, 1, 1, 1, 1, 1};
  tf_tensor in[2];
  void SetUp() override {
    ASSERT_EQ(tf_core_session_create(&kDesc, &s), TF_OK);
    in[0] = tf_tensor{ids, TF_INT64, 2, {2, 3}, 0};
    in[1] = tf_tensor{mask, TF_INT64, 2, {2, 3}, 0};
  }
  void TearDown() override { tf_core_session_destroy(s); }
};

TEST_F(CoreTest, RunsAndAllocatesOutputs) {
  tf_tensor out{};
  ASSERT_EQ(tf_core_run(s, in, 2, &out, 1), TF_OK) << tf_core_error(s);
  EXPECT_EQ(out.rank, 2);
  EXPECT_EQ(out.shape[0], 2);
  EXPECT_EQ(out.shape[1], 3);
  EXPECT_EQ(((float *)out.data)[5], 12.0f);
  tf_tensor_release(&out);
  EXPECT_EQ(out.data, nullptr);
}

TEST_F(CoreTest, CallerBuffer) {
  float buf[6];
  tf_tensor out{buf, TF_FLOAT, 2, {2, 3}, 0};
  ASSERT_EQ(tf_core_run(s, in, 2, &out, 1), TF_OK) << tf_core_error(s);
  EXPECT_EQ(buf[0], 2.0f);
  tf_tensor bad{buf, TF_FLOAT, 2, {3, 2}, 0};
  EXPECT_EQ(tf_core_run(s, in, 2, &bad, 1), TF_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(tf_core_error(s)).find("caller buffer"), std::string::npos);
}

TEST_F(CoreTest, RejectsWrongDtype) {
  in[0].dtype = TF_INT32;
  tf_tensor out{};
  EXPECT_EQ(tf_core_run(s, in, 2, &out, 1), TF_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(tf_core_error(s)).find("'ids'"), std::string::npos);
}

TEST_F(CoreTest, RejectsWrongRank) {
  in[1].rank = 1;
  tf_tensor out{};
  EXPECT_EQ(tf_core_run(s, in, 2, &out, 1), TF_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(tf_core_error(s)).find("rank"), std::string::npos);
}

TEST_F(CoreTest, RejectsInconsistentSymbolicDims) {
  in[1].shape[0] = 3;
  in[1].shape[1] = 2;
  tf_tensor out{};
  EXPECT_EQ(tf_core_run(s, in, 2, &out, 1), TF_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(tf_core_error(s)).find("same symbolic dim"),
            std::string::npos);
}

TEST_F(CoreTest, RejectsTokenOutsideVocabulary) {
  ids[4] = 10;
  tf_tensor out{};
  EXPECT_EQ(tf_core_run(s, in, 2, &out, 1), TF_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(tf_core_error(s)).find("value 10"), std::string::npos);
}

TEST_F(CoreTest, RejectsWrongCountsAndNulls) {
  tf_tensor out{};
  EXPECT_EQ(tf_core_run(s, in, 1, &out, 1), TF_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(tf_core_run(s, nullptr, 2, &out, 1), TF_ERROR_INVALID_ARGUMENT);
  in[0].data = nullptr;
  EXPECT_EQ(tf_core_run(s, in, 2, &out, 1), TF_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(tf_core_run(nullptr, in, 2, &out, 1), TF_ERROR_INVALID_ARGUMENT);
}

TEST_F(CoreTest, EmptyTensorsRun) {
  in[0].shape[1] = 0;
  in[1].shape[1] = 0;
  tf_tensor out{};
  ASSERT_EQ(tf_core_run(s, in, 2, &out, 1), TF_OK) << tf_core_error(s);
  EXPECT_EQ(out.shape[1], 0);
  tf_tensor_release(&out);
}

TEST_F(CoreTest, FailedCheckIsAnErrorNotACrash) {
  tf_core_session *f = nullptr;
  ASSERT_EQ(tf_core_session_create(&kFailing, &f), TF_OK);
  tf_tensor out{};
  EXPECT_EQ(tf_core_run(f, in, 2, &out, 1), TF_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(tf_core_error(f)).find("node 'r' (Reshape)"),
            std::string::npos);
  EXPECT_EQ(out.data, nullptr);
  // The session stays usable.
  EXPECT_EQ(tf_core_run(s, in, 2, &out, 1), TF_OK);
  tf_tensor_release(&out);
  tf_core_session_destroy(f);
}

// A failed run gives back the buffers it held (its frames never free
// them), on its own thread and in the pool's tasks; runs that succeed keep
// their outputs.
TEST_F(CoreTest, FailedRunGivesItsBuffersBack) {
  tf_core_session *f = nullptr;
  ASSERT_EQ(tf_core_session_create(&kLeakyFailing, &f), TF_OK);
  tf_tensor out{};
  uint64_t before = transfuse_live_scratch_bytes();
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(tf_core_run(f, in, 2, &out, 1), TF_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(transfuse_live_scratch_bytes(), before) << "round " << round;
  }
  ASSERT_EQ(tf_core_run(s, in, 2, &out, 1), TF_OK);
  EXPECT_GT(transfuse_live_scratch_bytes(), before); // the output
  EXPECT_EQ(((float *)out.data)[5], 12.0f);
  tf_tensor_release(&out);
  EXPECT_EQ(transfuse_live_scratch_bytes(), before);
  tf_core_session_destroy(f);
}

// Out of memory in a task of the thread pool ends the run with the error,
// on every thread count (runtime.gemm_threads runs this at three), and
// leaves the pool and the sessions usable.
TEST_F(CoreTest, OutOfMemoryInAParallelTaskIsAnError) {
  tf_core_session *f = nullptr;
  ASSERT_EQ(tf_core_session_create(&kOomInTask, &f), TF_OK);
  tf_tensor out{};
  uint64_t before = transfuse_live_scratch_bytes();
  for (int round = 0; round < 3; ++round) {
    tasksStarted = 0;
    EXPECT_EQ(tf_core_run(f, in, 2, &out, 1), TF_ERROR_OUT_OF_MEMORY);
    EXPECT_EQ(transfuse_live_scratch_bytes(), before); // tasks' blocks back
    EXPECT_NE(std::string(tf_core_error(f)).find("buffer of 1125899906842624"),
              std::string::npos)
        << tf_core_error(f);
    EXPECT_EQ(out.data, nullptr);
    // The loop stopped handing out tasks at the first failure (task 8;
    // each other thread may have started one more).
    EXPECT_LE(tasksStarted.load(), 8 + transfuse::runtime::numThreads());
    EXPECT_FALSE(transfuse::runtime::inPoolTask());
  }
  std::atomic<int> done{0};
  auto count = [&](int64_t) { ++done; };
  transfuse::runtime::parallelFor(100, count);
  EXPECT_EQ(done.load(), 100);
  EXPECT_EQ(tf_core_run(s, in, 2, &out, 1), TF_OK);
  tf_tensor_release(&out);
  tf_core_session_destroy(f);
}

} // namespace
