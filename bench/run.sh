#!/usr/bin/env bash
# Side-by-side CPU benchmark (bench/bench.py): Transfuse vs ONNX Runtime vs
# PyTorch on full-size models with random weights. Needs the build and the
# venv with torch and transformers (scripts/setup.sh --fixtures).
#   bench/run.sh --quick     # bert-base seq 128 only, a few minutes
#   bench/run.sh             # every configuration
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/bin/transfuse ] || scripts/build.sh
exec .venv/bin/python bench/bench.py "$@"
