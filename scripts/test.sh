#!/usr/bin/env bash
# Sets up, builds, and runs every test suite through ctest: lit (dialect,
# passes, importer, lowering), runtime unit tests, ONNX node tests (AOT and
# JIT), and the end-to-end model fixtures (AOT and JIT).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd build
ctest -j"$(nproc)" --output-on-failure "$@"
