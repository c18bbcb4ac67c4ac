#!/usr/bin/env bash
# Installs everything Transfuse needs to build and test, idempotently:
# Debian packages (LLVM/MLIR 22, ONNX, protobuf, test data, ccache) and a
# Python venv (.venv) with onnx, onnxruntime and numpy for reference numerics
# (and setuptools and wheel, with which test/install pip-installs the binding;
# the setuptools a new venv comes with may predate its own bdist_wheel).
#   scripts/setup.sh            -- build + test dependencies
#   scripts/setup.sh --fixtures -- also torch + transformers (fixture generator,
#                                   bench/) and matplotlib (the bench chart)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(
  libmlir-22-dev mlir-22-tools llvm-22-dev llvm-22-tools clang-22 lld-22
  libonnx-dev libprotobuf-dev protobuf-compiler libonnx-testdata
  libgtest-dev libbenchmark-dev ccache ninja-build cmake python3-venv
)

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
# module=pip requirement. ONNX Runtime and PyTorch are pinned: they are the
# references of the tests and the peers of bench/, whose numbers in
# docs/benchmarks.md name these versions.
want="numpy=numpy onnx=onnx onnxruntime=onnxruntime==1.32.0 setuptools=setuptools wheel=wheel"
[ "${1:-}" = "--fixtures" ] &&
  want="$want torch=torch==2.15.0 transformers=transformers onnxscript=onnxscript matplotlib=matplotlib"
need=()
for w in $want; do
  .venv/bin/python -c "import ${w%%=*}" 2>/dev/null || need+=("${w#*=}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: pip install ${need[*]}"
  .venv/bin/pip install -q --disable-pip-version-check "${need[@]}"
fi
echo "setup: done"
