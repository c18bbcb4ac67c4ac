#!/usr/bin/env bash
# Compiles one fixture (AOT .so, or JIT in-process) and checks every
# test_data_set_* against ONNX Runtime's expected outputs.
# usage: run_fixture.sh BIN_DIR FIXTURE_DIR aot|jit WORK_DIR [tolerances...]
set -euo pipefail
bin=$1 dir=$2 mode=$3 work=$4
shift 4
tol=(--rtol 1e-3 --atol 1e-4 "$@")
name=$(basename "$dir")
mkdir -p "$work"
if [ "$mode" = aot ]; then
  "$bin/transfuse" compile "$dir/model.onnx" -o "$work/$name.so"
  target=("$work/$name.so")
else
  target=("$dir/model.onnx" --jit)
fi
sets=()
for set in "$dir"/test_data_set_*; do sets+=(--test-data "$set"); done
# One compile (or JIT), every set.
"$bin/transfuse-run" "${target[@]}" --quiet "${sets[@]}" "${tol[@]}"
