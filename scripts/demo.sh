#!/usr/bin/env bash
# The main job on the bundled tiny BERT: compile it to a self-contained .so,
# run it on a batch of 2 x 33 tokens with right padding, compare with ONNX
# Runtime's outputs, and time it next to ONNX Runtime on the same input, all
# on one thread (transfuse-run, then in one Python process with ONNX
# Runtime, through the Python binding).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
model=test/models/bert_tiny
data=$model/test_data_set_1
build/bin/transfuse compile $model/model.onnx -o build/bert_tiny.so
build/bin/transfuse-run build/bert_tiny.so --test-data $data --repeat 20 --threads 1
.venv/bin/python scripts/ort_latency.py $model/model.onnx $data --repeat 20 \
  --transfuse build/bert_tiny.so
