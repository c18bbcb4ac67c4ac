//===- model_api.cpp - the tf_* C API exported by every model.so ----------===//
#include "transfuse/runtime_core.h"

extern "C" {
// Defined by the compiled model (see model_abi.h).
void tf_model_entry(void **args);
extern const int64_t tf_model_meta[];
extern const char tf_model_signature_json[];
extern const char tf_model_names[];
extern const char tf_model_fail_sites[];
extern const uint64_t tf_model_memory_plan[];
}

static const tf_model_desc kModel = {
    tf_model_entry, tf_model_meta,        tf_model_signature_json,
    tf_model_names, tf_model_fail_sites, tf_model_memory_plan};

extern "C" {

const char *tf_model_signature(void) { return tf_model_signature_json; }
size_t tf_model_num_inputs(void) { return tf_core_num_inputs(&kModel); }
size_t tf_model_num_outputs(void) { return tf_core_num_outputs(&kModel); }
uint64_t tf_model_arena_bytes(void) { return tf_model_memory_plan[0]; }

tf_status tf_session_create(tf_session **out) {
  if (!out)
    return TF_ERROR_INVALID_ARGUMENT;
  return tf_core_session_create(&kModel, (tf_core_session **)out);
}

void tf_session_destroy(tf_session *session) {
  tf_core_session_destroy((tf_core_session *)session);
}

tf_status tf_run(tf_session *session, const tf_tensor *inputs,
                 size_t num_inputs, tf_tensor *outputs, size_t num_outputs) {
  return tf_core_run((tf_core_session *)session, inputs, num_inputs, outputs,
                     num_outputs);
}

const char *tf_session_error(const tf_session *session) {
  return tf_core_error((const tf_core_session *)session);
}

} // extern "C"
