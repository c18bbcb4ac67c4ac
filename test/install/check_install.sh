#!/usr/bin/env bash
# What `cmake --install` gives a user, used from outside the source and
# build trees: the installed compiler builds bert_tiny into a .so (finding
# the runtime archive in PREFIX/lib), the installed runner runs it and the
# JIT, a C99 client built against PREFIX/include links it, a CMake project
# finds the package (find_package(Transfuse)) and builds the client with a
# model compiled by transfuse_add_model, and the Python
# binding installed by pip (python/pyproject.toml) compiles and runs it with
# the compiler found through PATH. Outputs are checked against ONNX
# Runtime's (the fixture's test data) by transfuse-run, the C client and
# the Python check below.
# usage: check_install.sh BUILD_DIR SOURCE_DIR PYTHON C_COMPILER WORK_DIR
set -euo pipefail
abs() { (cd "$1" && pwd); }
build=$(abs "$1") src=$(abs "$2") py=$3 cc=$4 work=$5
case $py in /*) ;; */*) py=$PWD/$py ;; esac
rm -rf "$work"
mkdir -p "$work"
work=$(abs "$work")
cd "$work"
prefix=$work/prefix
fixture=$src/test/models/bert_tiny

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/transfuse bin/transfuse-run bin/transfuse-opt \
         lib/libtransfuse_model_runtime.a include/transfuse/transfuse.h \
         lib/cmake/Transfuse/TransfuseConfig.cmake \
         lib/cmake/Transfuse/TransfuseConfigVersion.cmake; do
  [ -e "$prefix/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done

echo "== the installed compiler and runner"
"$prefix/bin/transfuse" compile "$fixture/model.onnx" -o libbert.so -quiet
"$prefix/bin/transfuse-run" libbert.so --test-data "$fixture/test_data_set_0"
"$prefix/bin/transfuse-run" "$fixture/model.onnx" --jit --quiet \
  --test-data "$fixture/test_data_set_1"

echo "== a C client against the installed header"
"$cc" -std=c99 -pedantic -Wall -Wextra -Werror -I"$prefix/include" \
  "$src/test/lit/runtime/Inputs/c_api_client.c" -o client \
  -L. -lbert -Wl,-rpath,"$work" -lm
"$py" "$src/test/lit/runtime/Inputs/dump_test_data.py" \
  "$fixture/test_data_set_1" data
./client data

echo "== a CMake project: find_package(Transfuse), transfuse_add_model"
cmake -S "$src/test/install/consumer" -B consumer -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_PREFIX_PATH="$prefix" -DMODEL="$fixture/model.onnx" \
  -DCLIENT_SOURCE="$src/test/lit/runtime/Inputs/c_api_client.c" >/dev/null
cmake --build consumer >/dev/null
./consumer/client data
# A model that is not there is a configure error naming it.
if cmake -S "$src/test/install/consumer" -B consumer-bad \
     -DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$prefix" \
     -DMODEL="$work/missing.onnx" -DCLIENT_SOURCE=x.c >bad.log 2>&1; then
  echo "FAIL: configuring with a missing model succeeded"; exit 1
fi
# (CMake wraps the message's lines.)
grep -q "transfuse_add_model(bert): no model at" bad.log &&
  grep -q "$work/missing.onnx" bad.log ||
  { cat bad.log; echo "FAIL: no error naming the missing model"; exit 1; }

echo "== the Python binding installed by pip"
# From a copy: an in-tree build would leave build/ and *.egg-info in python/.
cp -r "$src/python" pysrc
"$py" -m pip install -q --disable-pip-version-check --no-deps \
  --no-build-isolation --target site ./pysrc
env -u TRANSFUSE_BIN_DIR PYTHONPATH="$work/site" PATH="$prefix/bin:$PATH" \
  "$py" - "$fixture" "$work/site" <<'PY'
import glob, os, sys
import numpy as np
import onnx
from onnx import numpy_helper
import transfuse

fixture, site = sys.argv[1:3]
assert transfuse.__file__.startswith(site), transfuse.__file__
model = transfuse.compile(os.path.join(fixture, "model.onnx"))
failures = 0
for data in sorted(glob.glob(os.path.join(fixture, "test_data_set_*"))):
    def load(kind):
        paths = sorted(glob.glob(os.path.join(data, kind + "_*.pb")),
                       key=lambda p: int(p.rsplit("_", 1)[1][:-3]))
        return [numpy_helper.to_array(onnx.load_tensor(p))
                for p in paths]
    got = model.run(load("input"))
    for info, want in zip(model.outputs, load("output")):
        ok = np.allclose(got[info.name], want, rtol=1e-3, atol=1e-4)
        err = float(np.max(np.abs(got[info.name] - want)))
        print("%s %s: max abs err %.3g %s" % (os.path.basename(data), info.name,
                                              err, "ok" if ok else "FAIL"))
        failures += not ok
sys.exit(1 if failures else 0)
PY
echo "PASS"
