#!/usr/bin/env python3
"""`transfuse compile --last-position=logits` against ONNX Runtime.

For each fixture given, compiles its model with the logits computed at the
last position only, and runs every test-data set through transfuse-run,
whose expected outputs are ONNX Runtime's: the logits' last position
(expected[:, -1:, :]) and every other output (the presents) whole. The
compile must not warn: a warning means the pass left every position.
usage: last_position.py BIN_DIR WORK_DIR FIXTURE_DIR...
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def logits_index(model_path):
    graph = onnx.load(model_path, load_external_data=False).graph
    for i, out in enumerate(graph.output):
        if out.name == "logits":
            return i
    raise SystemExit("%s: no output named logits" % model_path)


def main():
    bin_dir, work, fixtures = sys.argv[1], sys.argv[2], sys.argv[3:]
    failed = 0
    for fixture in fixtures:
        parts = os.path.normpath(fixture).split(os.sep)
        name = ".".join(parts[-2:] if parts[-1] in ("prefill", "decode")
                        else parts[-1:])
        out = os.path.join(work, name)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        model = os.path.join(fixture, "model.onnx")
        index = logits_index(model)
        so = os.path.join(out, "model.so")
        p = subprocess.run([os.path.join(bin_dir, "transfuse"), "compile",
                            model, "--last-position=logits", "-o", so,
                            "--quiet"], capture_output=True, text=True)
        if p.returncode != 0 or "warning" in p.stderr:
            print("FAIL %s: compile:\n%s" % (name, p.stderr))
            failed += 1
            continue
        sets = []
        for s in sorted(os.listdir(fixture)):
            if not s.startswith("test_data_set_"):
                continue
            src, dst = os.path.join(fixture, s), os.path.join(out, s)
            os.makedirs(dst)
            for f in os.listdir(src):
                if f == "output_%d.pb" % index:
                    t = onnx.load_tensor(os.path.join(src, f))
                    a = numpy_helper.to_array(t)
                    onnx.save_tensor(numpy_helper.from_array(
                        np.ascontiguousarray(a[:, -1:, :]), t.name),
                        os.path.join(dst, f))
                else:
                    shutil.copy(os.path.join(src, f), dst)
            sets += ["--test-data", dst]
        p = subprocess.run([os.path.join(bin_dir, "transfuse-run"), so,
                            "--quiet", "--rtol", "1e-3", "--atol", "1e-4"] +
                           sets, capture_output=True, text=True)
        print("%s %s: %d sets" % ("ok" if p.returncode == 0 else "FAIL",
                                  name, len(sets) // 2))
        if p.returncode != 0:
            print(p.stdout + p.stderr)
            failed += 1
    print("%d passed, %d failed" % (len(fixtures) - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
