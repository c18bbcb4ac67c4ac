#!/usr/bin/env bash
# Compiles one fixture and checks every test_data_set_* against ONNX
# Runtime's expected outputs.
# usage: run_fixture.sh BIN_DIR FIXTURE_DIR MODE WORK_DIR [tolerances...]
#   MODE  aot          AOT .so, default pipeline (fusion on)
#         jit          in-process JIT, default pipeline
#         jit-nofusion JIT with --no-fusion (graph ops only)
#         jit-blocked  JIT with memory-efficient attention in blocks of 8
#                      keys, so the online softmax runs over several blocks
#                      and a partial tail
set -euo pipefail
bin=$1 dir=$2 mode=$3 work=$4
shift 4
tol=(--rtol 1e-3 --atol 1e-4 "$@")
name=$(basename "$dir")
mkdir -p "$work"
case "$mode" in
  aot)
    "$bin/transfuse" compile "$dir/model.onnx" -o "$work/$name.so"
    target=("$work/$name.so") ;;
  jit) target=("$dir/model.onnx" --jit) ;;
  jit-nofusion) target=("$dir/model.onnx" --jit --no-fusion) ;;
  jit-blocked)
    target=("$dir/model.onnx" --jit --attention memory_efficient
            --attention-kv-block 8) ;;
  *) echo "run_fixture.sh: unknown mode '$mode'" >&2; exit 2 ;;
esac
sets=()
for set in "$dir"/test_data_set_*; do sets+=(--test-data "$set"); done
# One compile (or JIT), every set.
"$bin/transfuse-run" "${target[@]}" --quiet "${sets[@]}" "${tol[@]}"
