/*===- model_abi.h - what the compiler emits and the runtime reads --------===*
 *
 * Internal contract between codegen and the runtime; users include
 * transfuse.h instead. A compiled model defines:
 *
 *   void tf_model_entry(void **args);
 *     args[0]    -> result area: for each output, a memref descriptor
 *                   {allocated, aligned, offset, sizes[r], strides[r]},
 *                   3 + 2r int64-sized words, back to back;
 *     args[1+i]  -> memref descriptor of input i (same layout).
 *   Returned buffers were malloc'ed by the model; the runtime frees them.
 *
 *   const int64_t tf_model_meta[];   (encoding below)
 *   const char tf_model_signature_json[];
 *   const char tf_model_names[];     (names, each NUL-terminated, inputs
 *                                     then outputs)
 *   const char tf_model_fail_sites[]; (messages, each NUL-terminated; the
 *                                     generated code calls
 *                                     __transfuse_fail(k) when run-time check
 *                                     k fails, e.g. a reshape whose target
 *                                     does not match the element count)
 *   const uint64_t tf_model_memory_plan[3];
 *                                    (the compile-time buffer plan,
 *                                     transfuse-cpu-plan-buffers: [0] the
 *                                     most arena bytes one run holds, [1]
 *                                     buffers placed in arenas, [2] buffers
 *                                     left to the allocator: run-time sizes,
 *                                     outputs, allocs inside loops)
 *
 * tf_model_meta: [TF_ABI_VERSION, num_inputs, num_outputs, num_symbols,
 *   then for each input and then each output:
 *     dtype, rank, dim[rank] (>= 0 static; -1 - k: symbolic dim number k),
 *     index_bound (> 0: every value must lie in [-bound, bound), e.g. a
 *                  vocabulary; 0: unchecked)]
 *===----------------------------------------------------------------------===*/
#ifndef TRANSFUSE_MODEL_ABI_H
#define TRANSFUSE_MODEL_ABI_H

#include <stdint.h>

#define TF_ABI_VERSION 1

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*tf_entry_fn)(void **args);

/* Everything the runtime core needs about one compiled model. The AOT model
 * API fills it from the symbols above; the JIT fills it from lookups. */
typedef struct {
  tf_entry_fn entry;
  const int64_t *meta;
  const char *signature_json;
  const char *names;
  const char *fail_sites;
  const uint64_t *memory_plan;
} tf_model_desc;

/* Called by generated code when a run-time check fails; never returns (the
 * runtime unwinds to tf_run, which reports message `site`). Buffers the
 * model allocated before the failure are leaked. */
void __transfuse_fail(int64_t site);

#ifdef __cplusplus
}
#endif
#endif
