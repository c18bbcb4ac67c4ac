/*===- transfuse.h - the C API of a model compiled by Transfuse -----------===*
 *
 * A compiled model.so exports these functions. Include this header, link or
 * dlopen the .so, and:
 *
 *   tf_session *s;
 *   if (tf_session_create(&s) != TF_OK) ...
 *   tf_tensor in[2] = {...}, out[1] = {0};   // out data NULL: runtime allocates
 *   if (tf_run(s, in, 2, out, 1) != TF_OK) puts(tf_session_error(s));
 *   ... use out[0] ...; tf_tensor_release(&out[0]);
 *   tf_session_destroy(s);
 *
 * A model never aborts on bad input: a wrong rank, shape or dtype, or a token
 * id outside the vocabulary, returns an error code and a message.
 * One session must not run on two threads at once; use one session per thread.
 *===----------------------------------------------------------------------===*/
#ifndef TRANSFUSE_TRANSFUSE_H
#define TRANSFUSE_TRANSFUSE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TF_EXPORT __attribute__((visibility("default")))
#else
#define TF_EXPORT
#endif

#define TF_MAX_RANK 8

/* Element types use ONNX's TensorProto codes. */
typedef enum {
  TF_FLOAT = 1, TF_UINT8 = 2, TF_INT8 = 3, TF_INT16 = 5, TF_INT32 = 6,
  TF_INT64 = 7, TF_BOOL = 9, TF_FLOAT16 = 10, TF_DOUBLE = 11, TF_BFLOAT16 = 16
} tf_dtype;

typedef enum {
  TF_OK = 0,
  TF_ERROR_INVALID_ARGUMENT = 1, /* wrong count, rank, shape, dtype or value */
  TF_ERROR_OUT_OF_MEMORY = 2,
  TF_ERROR_INTERNAL = 3
} tf_status;

typedef struct {
  void *data;           /* dense, row-major */
  int32_t dtype;        /* tf_dtype */
  int32_t rank;
  int64_t shape[TF_MAX_RANK];
  /* Set by tf_run when it allocated `data`; release with tf_tensor_release. */
  int32_t owned_by_runtime;
} tf_tensor;

typedef struct tf_session tf_session;

/* Names, dtypes and symbolic shapes of inputs and outputs, as JSON:
 * {"inputs":[{"name":"input_ids","dtype":"int64","shape":["batch","seq"],
 *             "index_bound":30522}],
 *  "outputs":[...]} -- a dim is an integer or the name of a symbolic dim;
 * an integer input that indexes a table (token ids) has "index_bound", and
 * tf_run rejects a value outside [0, index_bound). */
TF_EXPORT const char *tf_model_signature(void);
TF_EXPORT size_t tf_model_num_inputs(void);
TF_EXPORT size_t tf_model_num_outputs(void);

/* Bytes of the arena that holds, during a run, the buffers the compiler
 * planned (those of static size; compile with --dim to make a model's shapes
 * static). Buffers of run-time size and the outputs come from the allocator
 * on top of it. */
TF_EXPORT uint64_t tf_model_arena_bytes(void);

TF_EXPORT tf_status tf_session_create(tf_session **out);
TF_EXPORT void tf_session_destroy(tf_session *session);

/* Runs the model. For each output, pass data == NULL to have the runtime
 * allocate it (shape and dtype are filled in), or a buffer whose dtype, rank
 * and shape the caller fills in; a mismatch is an error. */
TF_EXPORT tf_status tf_run(tf_session *session, const tf_tensor *inputs,
                           size_t num_inputs, tf_tensor *outputs,
                           size_t num_outputs);

/* The message of the last failed call on `session` ("" when none). */
TF_EXPORT const char *tf_session_error(const tf_session *session);

/* Frees an output that tf_run allocated; a no-op for caller buffers. */
TF_EXPORT void tf_tensor_release(tf_tensor *tensor);

#ifdef __cplusplus
}
#endif
#endif
