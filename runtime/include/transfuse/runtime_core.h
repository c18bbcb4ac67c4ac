/*===- runtime_core.h - run any compiled model through its descriptor -----===*
 *
 * Used by the model API inside every model.so (with the model's own
 * descriptor) and by hosts that JIT-compile a model in-process
 * (transfuse-run --jit). Same validation, same calling convention.
 *===----------------------------------------------------------------------===*/
#ifndef TRANSFUSE_RUNTIME_CORE_H
#define TRANSFUSE_RUNTIME_CORE_H

#include "transfuse/model_abi.h"
#include "transfuse/transfuse.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tf_core_session tf_core_session;

tf_status tf_core_session_create(const tf_model_desc *desc,
                                 tf_core_session **out);
void tf_core_session_destroy(tf_core_session *session);
tf_status tf_core_run(tf_core_session *session, const tf_tensor *inputs,
                      size_t num_inputs, tf_tensor *outputs,
                      size_t num_outputs);
const char *tf_core_error(const tf_core_session *session);
size_t tf_core_num_inputs(const tf_model_desc *desc);
size_t tf_core_num_outputs(const tf_model_desc *desc);
/* Size in bytes of one element of `dtype`; 0 when unknown. */
size_t tf_dtype_size(int32_t dtype);
const char *tf_dtype_name(int32_t dtype);

#ifdef __cplusplus
}
#endif
#endif
