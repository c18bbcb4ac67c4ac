//===- core.cpp - input validation and the model calling convention -------===//
//
// Written without exceptions or RTTI and with no dependence on MLIR, so that
// it links into every model.so. Nothing here may abort on bad input.
//
//===----------------------------------------------------------------------===//
#include "alloc.h"
#include "profile.h"
#include "thread_pool.h"
#include "transfuse/runtime_core.h"

#include <csetjmp>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

namespace {

struct TensorSpec {
  int32_t dtype = 0;
  int64_t rank = 0;
  int64_t dims[TF_MAX_RANK] = {};
  int64_t indexBound = 0;
  const char *name = "";
};

// The run in progress on this thread, for __transfuse_fail to unwind to.
thread_local jmp_buf *currentRun = nullptr;
thread_local int64_t failedSite = -1;
// failRunOutOfMemory's site, and the size it failed on.
constexpr int64_t kOutOfMemorySite = -2;
thread_local size_t failedBytes = 0;

/// Calls the model; false when generated code reported a failed check (or
/// ran out of memory). The blocks the run allocated and did not free are
/// given back when it fails (its unwound frames never free them), and are
/// its outputs when it succeeds (RunBlocks, alloc.h).
bool callEntry(tf_entry_fn entry, void **args) {
  using namespace transfuse::runtime;
  jmp_buf buf;
  jmp_buf *outer = currentRun;
  RunBlocks blocks;
  RunBlocks *outerBlocks = runBlocks();
  int scopes = profile::openScopes();
  currentRun = &buf;
  setRunBlocks(&blocks);
  if (setjmp(buf) != 0) {
    currentRun = outer;
    setRunBlocks(outerBlocks);
    freeRunBlocks(blocks);
    profile::setOpenScopes(scopes);
    endRun();
    return false;
  }
  double start = profile::runStart();
  entry(args);
  profile::runEnd(start);
  currentRun = outer;
  setRunBlocks(outerBlocks);
  forgetRunBlocks(blocks);
  endRun();
  return true;
}

const char *siteMessage(const char *sites, int64_t k) {
  if (!sites)
    return "unknown check";
  for (; k > 0 && *sites; --k)
    sites += strlen(sites) + 1;
  return *sites ? sites : "unknown check";
}

} // namespace

extern "C" __attribute__((visibility("default"))) void
__transfuse_fail(int64_t site) {
  failedSite = site;
  if (currentRun)
    longjmp(*currentRun, 1);
}

void transfuse::runtime::failRunOutOfMemory(size_t bytes) {
  if (!currentRun || inPoolTask())
    return;
  failedBytes = bytes;
  __transfuse_fail(kOutOfMemorySite);
}

struct tf_core_session {
  const tf_model_desc *desc = nullptr;
  std::vector<TensorSpec> inputs, outputs;
  int64_t numSymbols = 0;
  std::string error;
  std::vector<int64_t> words; // descriptor storage, reused across runs

  tf_status fail(tf_status code, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    error = buf;
    return code;
  }
};

extern "C" {

size_t tf_dtype_size(int32_t dtype) {
  switch (dtype) {
  case TF_FLOAT: case TF_INT32: return 4;
  case TF_INT64: case TF_DOUBLE: return 8;
  case TF_UINT8: case TF_INT8: case TF_BOOL: return 1;
  case TF_INT16: case TF_FLOAT16: case TF_BFLOAT16: return 2;
  default: return 0;
  }
}

const char *tf_dtype_name(int32_t dtype) {
  switch (dtype) {
  case TF_FLOAT: return "float32";
  case TF_UINT8: return "uint8";
  case TF_INT8: return "int8";
  case TF_INT16: return "int16";
  case TF_INT32: return "int32";
  case TF_INT64: return "int64";
  case TF_BOOL: return "bool";
  case TF_FLOAT16: return "float16";
  case TF_DOUBLE: return "float64";
  case TF_BFLOAT16: return "bfloat16";
  default: return "unknown";
  }
}

size_t tf_core_num_inputs(const tf_model_desc *desc) { return (size_t)desc->meta[1]; }
size_t tf_core_num_outputs(const tf_model_desc *desc) { return (size_t)desc->meta[2]; }

tf_status tf_core_session_create(const tf_model_desc *desc, tf_core_session **out) {
  if (!out || !desc || !desc->meta || !desc->entry)
    return TF_ERROR_INVALID_ARGUMENT;
  *out = nullptr;
  if (desc->meta[0] != TF_ABI_VERSION)
    return TF_ERROR_INTERNAL;
  auto *s = new (std::nothrow) tf_core_session();
  if (!s)
    return TF_ERROR_OUT_OF_MEMORY;
  s->desc = desc;
  const int64_t *m = desc->meta + 1;
  int64_t nin = *m++, nout = *m++;
  s->numSymbols = *m++;
  const char *name = desc->names;
  for (int64_t i = 0; i < nin + nout; ++i) {
    TensorSpec spec;
    spec.dtype = (int32_t)*m++;
    spec.rank = *m++;
    if (spec.rank > TF_MAX_RANK) {
      delete s;
      return TF_ERROR_INTERNAL;
    }
    for (int64_t d = 0; d < spec.rank; ++d)
      spec.dims[d] = *m++;
    spec.indexBound = *m++;
    spec.name = name;
    name += strlen(name) + 1;
    (i < nin ? s->inputs : s->outputs).push_back(spec);
  }
  *out = s;
  return TF_OK;
}

void tf_core_session_destroy(tf_core_session *session) { delete session; }

const char *tf_core_error(const tf_core_session *session) {
  return session ? session->error.c_str() : "no session";
}

void tf_tensor_release(tf_tensor *tensor) {
  if (tensor && tensor->owned_by_runtime) {
    _mlir_memref_to_llvm_free(tensor->data);
    tensor->data = nullptr;
    tensor->owned_by_runtime = 0;
  }
}

} // extern "C"

static int64_t numElements(int64_t rank, const int64_t *shape) {
  int64_t n = 1;
  for (int64_t i = 0; i < rank; ++i)
    n *= shape[i];
  return n;
}

static std::string shapeString(int64_t rank, const int64_t *shape) {
  std::string s = "[";
  for (int64_t i = 0; i < rank; ++i)
    s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

/// Copies a strided buffer of `rank` dims into a dense one.
static void stridedCopy(char *dst, const char *src, int64_t rank,
                        const int64_t *sizes, const int64_t *strides,
                        size_t elem) {
  if (rank == 0) {
    memcpy(dst, src, elem);
    return;
  }
  int64_t inner = numElements(rank - 1, sizes + 1);
  for (int64_t i = 0; i < sizes[0]; ++i)
    stridedCopy(dst + i * inner * elem, src + i * strides[0] * (int64_t)elem,
                rank - 1, sizes + 1, strides + 1, elem);
}

static bool isDense(int64_t rank, const int64_t *sizes, const int64_t *strides) {
  int64_t expect = 1;
  for (int64_t i = rank - 1; i >= 0; --i) {
    if (sizes[i] != 1 && strides[i] != expect)
      return false;
    expect *= sizes[i];
  }
  return true;
}

extern "C" tf_status tf_core_run(tf_core_session *s, const tf_tensor *inputs,
                                 size_t num_inputs, tf_tensor *outputs,
                                 size_t num_outputs) {
  if (!s)
    return TF_ERROR_INVALID_ARGUMENT;
  s->error.clear();
  if (num_inputs != s->inputs.size())
    return s->fail(TF_ERROR_INVALID_ARGUMENT, "expected %zu inputs, got %zu",
                   s->inputs.size(), num_inputs);
  if (num_outputs != s->outputs.size())
    return s->fail(TF_ERROR_INVALID_ARGUMENT, "expected %zu outputs, got %zu",
                   s->outputs.size(), num_outputs);
  if ((num_inputs && !inputs) || (num_outputs && !outputs))
    return s->fail(TF_ERROR_INVALID_ARGUMENT, "inputs or outputs array is NULL");

  std::vector<int64_t> symbols(s->numSymbols, -1);
  std::vector<const char *> symbolOwner(s->numSymbols, nullptr);
  size_t words = 0;
  for (const TensorSpec &o : s->outputs)
    words += 3 + 2 * o.rank;
  size_t resultWords = words;
  for (const TensorSpec &in : s->inputs)
    words += 3 + 2 * in.rank;
  s->words.assign(words, 0);
  std::vector<void *> args(1 + num_inputs);
  args[0] = s->words.data();

  int64_t *desc = s->words.data() + resultWords;
  for (size_t i = 0; i < num_inputs; ++i) {
    const TensorSpec &spec = s->inputs[i];
    const tf_tensor &t = inputs[i];
    if (t.dtype != spec.dtype)
      return s->fail(TF_ERROR_INVALID_ARGUMENT,
                     "input %zu ('%s'): expected dtype %s, got %s", i, spec.name,
                     tf_dtype_name(spec.dtype), tf_dtype_name(t.dtype));
    if (t.rank != spec.rank)
      return s->fail(TF_ERROR_INVALID_ARGUMENT,
                     "input %zu ('%s'): expected rank %lld, got %d", i,
                     spec.name, (long long)spec.rank, t.rank);
    for (int64_t d = 0; d < spec.rank; ++d) {
      int64_t want = spec.dims[d], got = t.shape[d];
      if (got < 0)
        return s->fail(TF_ERROR_INVALID_ARGUMENT,
                       "input %zu ('%s'): dim %lld is negative", i, spec.name,
                       (long long)d);
      if (want >= 0 && got != want)
        return s->fail(TF_ERROR_INVALID_ARGUMENT,
                       "input %zu ('%s'): dim %lld must be %lld, got %lld "
                       "(shape %s)",
                       i, spec.name, (long long)d, (long long)want,
                       (long long)got, shapeString(t.rank, t.shape).c_str());
      if (want < 0) {
        int64_t k = -1 - want;
        if (symbols[k] < 0) {
          symbols[k] = got;
          symbolOwner[k] = spec.name;
        } else if (symbols[k] != got) {
          return s->fail(TF_ERROR_INVALID_ARGUMENT,
                         "input %zu ('%s'): dim %lld is %lld but the same "
                         "symbolic dim is %lld in '%s'",
                         i, spec.name, (long long)d, (long long)got,
                         (long long)symbols[k], symbolOwner[k]);
        }
      }
    }
    int64_t n = numElements(t.rank, t.shape);
    if (n > 0 && !t.data)
      return s->fail(TF_ERROR_INVALID_ARGUMENT, "input %zu ('%s'): data is NULL",
                     i, spec.name);
    if (spec.indexBound > 0) {
      int64_t bound = spec.indexBound;
      for (int64_t e = 0; e < n; ++e) {
        int64_t v = t.dtype == TF_INT64 ? ((const int64_t *)t.data)[e]
                                        : ((const int32_t *)t.data)[e];
        if (v < -bound || v >= bound)
          return s->fail(TF_ERROR_INVALID_ARGUMENT,
                         "input %zu ('%s'): value %lld at flat index %lld is "
                         "outside [0, %lld) (e.g. a token id >= vocabulary "
                         "size)",
                         i, spec.name, (long long)v, (long long)e,
                         (long long)bound);
      }
    }
    desc[0] = (int64_t)(intptr_t)t.data;
    desc[1] = (int64_t)(intptr_t)t.data;
    desc[2] = 0;
    int64_t stride = 1;
    for (int64_t d = spec.rank - 1; d >= 0; --d) {
      desc[3 + d] = t.shape[d];
      desc[3 + spec.rank + d] = stride;
      stride *= t.shape[d];
    }
    args[1 + i] = desc;
    desc += 3 + 2 * spec.rank;
  }

  if (!callEntry(s->desc->entry, args.data())) {
    if (failedSite == kOutOfMemorySite)
      return s->fail(TF_ERROR_OUT_OF_MEMORY,
                     "out of memory: the run needed a buffer of %zu bytes "
                     "(%.1f GiB)",
                     failedBytes, failedBytes / double(1 << 30));
    return s->fail(TF_ERROR_INVALID_ARGUMENT,
                   "the model cannot run on these input shapes: %s",
                   siteMessage(s->desc->fail_sites, failedSite));
  }

  // Take the results: copy into caller buffers, or hand the model's own
  // buffer over when the runtime is to allocate the output and the buffer
  // holds exactly it (dense, at its start, shared with no other output);
  // else copy into a runtime-owned one. Free what is not handed over (with
  // the allocator the model used, alloc.cpp).
  auto sharedWithAnother = [&](size_t i, void *allocated) {
    for (size_t j = 0, at = 0; j < num_outputs; ++j) {
      if (j != i && (void *)(intptr_t)s->words[at] == allocated)
        return true;
      at += 3 + 2 * s->outputs[j].rank;
    }
    return false;
  };
  tf_status status = TF_OK;
  int64_t *res = s->words.data();
  for (size_t i = 0; i < num_outputs; ++i) {
    const TensorSpec &spec = s->outputs[i];
    void *allocated = (void *)(intptr_t)res[0];
    char *base = (char *)(intptr_t)res[1];
    int64_t offset = res[2];
    const int64_t *sizes = res + 3, *strides = res + 3 + spec.rank;
    size_t elem = tf_dtype_size(spec.dtype);
    int64_t n = numElements(spec.rank, sizes);
    tf_tensor &out = outputs[i];
    if (status == TF_OK) {
      if (out.data) {
        bool match = out.dtype == spec.dtype && out.rank == spec.rank;
        for (int64_t d = 0; match && d < spec.rank; ++d)
          match = out.shape[d] == sizes[d];
        if (!match) {
          status = s->fail(TF_ERROR_INVALID_ARGUMENT,
                           "output %zu ('%s'): caller buffer is %s %s but the "
                           "result is %s %s",
                           i, spec.name, tf_dtype_name(out.dtype),
                           shapeString(out.rank, out.shape).c_str(),
                           tf_dtype_name(spec.dtype),
                           shapeString(spec.rank, sizes).c_str());
        }
      } else {
        out.dtype = spec.dtype;
        out.rank = (int32_t)spec.rank;
        for (int64_t d = 0; d < spec.rank; ++d)
          out.shape[d] = sizes[d];
        bool handOver = n > 0 && offset == 0 && base == allocated &&
                        isDense(spec.rank, sizes, strides) &&
                        !sharedWithAnother(i, allocated);
        // Else from the caching allocator, like the model's own buffers: a
        // decode step's outputs (its KV cache) are megabytes per run.
        out.data = handOver ? allocated
                            : _mlir_memref_to_llvm_alloc(n * elem > 0 ? n * elem
                                                                      : 1);
        if (!out.data)
          status = s->fail(TF_ERROR_OUT_OF_MEMORY, "cannot allocate output %zu", i);
        else
          out.owned_by_runtime = 1;
        if (handOver) {
          res += 3 + 2 * spec.rank;
          continue; // neither copied nor freed
        }
      }
      if (status == TF_OK && n > 0) {
        const char *src = base + offset * (int64_t)elem;
        if (isDense(spec.rank, sizes, strides))
          memcpy(out.data, src, n * elem);
        else
          stridedCopy((char *)out.data, src, spec.rank, sizes, strides, elem);
      }
    }
    _mlir_memref_to_llvm_free(allocated);
    res += 3 + 2 * spec.rank;
  }
  return status;
}
