/* A C99 program that uses a compiled model the way the README's C users
 * do: transfuse.h, the model's .so linked in, no dlopen. It runs one
 * test-data set, dumped by dump_test_data.py as DIR/meta.txt (a line per
 * tensor: "input|output INDEX DTYPE RANK DIMS...") and DIR/{input,output}_N.bin
 * (raw bytes), and checks:
 * - the outputs the runtime allocates against the expected ones (float32,
 *   |got - expected| <= 1e-4 + 1e-3 |expected|);
 * - the same run into caller buffers gives the same bytes;
 * - an input of the wrong rank is TF_ERROR_INVALID_ARGUMENT with a message,
 *   and the session runs again after it.
 * usage: c_api_client DIR   (prints PASS, or FAIL and exits 1) */
#include "transfuse/transfuse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TENSORS 16

static int failures = 0;

static void check(int ok, const char *what) {
  if (!ok) {
    printf("FAIL: %s\n", what);
    ++failures;
  }
}

static size_t dtype_size(int32_t dtype) {
  switch (dtype) {
  case TF_INT64: case TF_DOUBLE: return 8;
  case TF_FLOAT: case TF_INT32: return 4;
  case TF_INT16: case TF_FLOAT16: case TF_BFLOAT16: return 2;
  default: return 1;
  }
}

static size_t tensor_bytes(const tf_tensor *t) {
  size_t n = dtype_size(t->dtype);
  int32_t d;
  for (d = 0; d < t->rank; ++d)
    n *= (size_t)t->shape[d];
  return n;
}

static void *read_file(const char *dir, const char *kind, int index,
                       size_t bytes) {
  char path[4096];
  FILE *f;
  void *data = malloc(bytes ? bytes : 1);
  snprintf(path, sizeof path, "%s/%s_%d.bin", dir, kind, index);
  f = fopen(path, "rb");
  if (!f || !data || fread(data, 1, bytes, f) != bytes) {
    printf("FAIL: cannot read %s\n", path);
    exit(1);
  }
  fclose(f);
  return data;
}

int main(int argc, char **argv) {
  tf_tensor in[MAX_TENSORS], expected[MAX_TENSORS], out[MAX_TENSORS],
      mine[MAX_TENSORS];
  size_t nin = 0, nout = 0, i;
  char kind[16], path[4096];
  int index, same;
  tf_session *s;
  tf_status st;
  FILE *meta;
  memset(in, 0, sizeof in);
  memset(expected, 0, sizeof expected);
  if (argc != 2)
    return 2;
  snprintf(path, sizeof path, "%s/meta.txt", argv[1]);
  meta = fopen(path, "r");
  if (!meta)
    return 2;
  while (fscanf(meta, "%15s %d", kind, &index) == 2 && index < MAX_TENSORS) {
    tf_tensor *t = strcmp(kind, "input") == 0 ? &in[index] : &expected[index];
    int32_t d;
    if (fscanf(meta, "%d %d", &t->dtype, &t->rank) != 2)
      return 2;
    for (d = 0; d < t->rank; ++d)
      if (fscanf(meta, "%lld", (long long *)&t->shape[d]) != 1)
        return 2;
    t->data = read_file(argv[1], kind, index, tensor_bytes(t));
    if (t == &in[index] && (size_t)index + 1 > nin)
      nin = (size_t)index + 1;
    if (t == &expected[index] && (size_t)index + 1 > nout)
      nout = (size_t)index + 1;
  }
  fclose(meta);

  printf("signature: %s\n", tf_model_signature());
  check(tf_model_num_inputs() == nin, "input count");
  check(tf_model_num_outputs() == nout, "output count");
  if (tf_session_create(&s) != TF_OK)
    return 1;

  /* Outputs the runtime allocates. */
  memset(out, 0, sizeof out);
  st = tf_run(s, in, nin, out, nout);
  printf("run: status %d %s\n", (int)st, tf_session_error(s));
  check(st == TF_OK, "run");
  for (i = 0; i < nout && st == TF_OK; ++i) {
    const float *g = (const float *)out[i].data,
                *e = (const float *)expected[i].data;
    size_t n = tensor_bytes(&expected[i]) / sizeof(float), j, off = 0;
    double err = 0;
    check(out[i].owned_by_runtime == 1, "runtime-owned output");
    check(out[i].dtype == TF_FLOAT && tensor_bytes(&out[i]) ==
                                          tensor_bytes(&expected[i]),
          "output dtype and shape");
    for (j = 0; j < n; ++j) {
      double d = fabs((double)g[j] - e[j]);
      err = d > err ? d : err;
      off += d > 1e-4 + 1e-3 * fabs(e[j]);
    }
    printf("output %zu: max abs err %.3g, %zu of %zu off\n", i, err, off, n);
    check(off == 0, "output values");
  }

  /* The same run into caller buffers: the same bytes. */
  for (i = 0; i < nout; ++i) {
    mine[i] = expected[i];
    mine[i].data = malloc(tensor_bytes(&expected[i]));
    mine[i].owned_by_runtime = 0;
  }
  st = tf_run(s, in, nin, mine, nout);
  check(st == TF_OK, "run into caller buffers");
  same = st == TF_OK;
  for (i = 0; i < nout && same; ++i)
    same = mine[i].owned_by_runtime == 0 &&
           memcmp(mine[i].data, out[i].data, tensor_bytes(&out[i])) == 0;
  check(same, "caller buffers hold the same bytes");
  printf("caller buffers: %s\n", same ? "same" : "differ");
  for (i = 0; i < nout; ++i) {
    tf_tensor_release(&out[i]);
    check(out[i].data == NULL, "released");
    free(mine[i].data);
  }

  /* A wrong rank: an error with a message, and the session goes on. */
  in[0].rank = 1;
  memset(out, 0, sizeof out);
  st = tf_run(s, in, nin, out, nout);
  printf("wrong rank: status %d: %s\n", (int)st, tf_session_error(s));
  check(st == TF_ERROR_INVALID_ARGUMENT, "wrong rank is an error");
  in[0].rank = 2;
  memset(out, 0, sizeof out);
  st = tf_run(s, in, nin, out, nout);
  check(st == TF_OK, "a run after the error");
  for (i = 0; i < nout; ++i)
    tf_tensor_release(&out[i]);
  tf_session_destroy(s);
  printf("%s\n", failures ? "FAIL" : "PASS");
  return failures ? 1 : 0;
}
