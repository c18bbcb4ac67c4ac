#!/usr/bin/env python3
"""Fixtures as ONNX Runtime's transformer optimizer leaves them.

People often ship a model after `python -m onnxruntime.transformers.optimizer`,
which rewrites the export's residual adds and norms into com.microsoft
SkipLayerNormalization / SkipSimplifiedLayerNormalization, RMSNorm into
SimplifiedLayerNormalization, and GELU with its bias into BiasGelu or
FastGelu. This derives NAME_ortopt/ from each fixture in FIXTURES: the
optimizer's model (opt_level 1, the fusions ONNX Runtime saves to a file),
every test-data set's inputs, and ONNX Runtime's outputs for the optimized
model (CPU EP) as the expected outputs, with a manifest. Needs only
onnxruntime (no torch).

usage: ort_optimized.py [--only NAME]
"""
import argparse
import collections
import glob
import json
import os
import shutil

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnxruntime.transformers import optimizer

HERE = os.path.dirname(os.path.abspath(__file__))
# fixture: (the optimizer's model_type, heads, hidden size). LLaMA has no
# model_type of its own there; "gpt2"'s fusions find its RMSNorms.
FIXTURES = {
    "bert_tiny": ("bert", 4, 88),
    "gpt2_tiny": ("gpt2", 4, 88),
    "t5_tiny": ("t5", 4, 88),
    "llama_tiny": ("gpt2", 4, 96),
}


def derive(name, model_type, heads, hidden):
    src = os.path.join(HERE, name)
    dst = os.path.join(HERE, name + "_ortopt")
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(dst)
    opt = optimizer.optimize_model(os.path.join(src, "model.onnx"),
                                   model_type=model_type, num_heads=heads,
                                   hidden_size=hidden, opt_level=1)
    path = os.path.join(dst, "model.onnx")
    opt.save_model_to_file(path)
    model = onnx.load(path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    sets = []
    for s in sorted(glob.glob(os.path.join(src, "test_data_set_*"))):
        out = os.path.join(dst, os.path.basename(s))
        os.makedirs(out)
        feeds = {}
        for p in sorted(glob.glob(os.path.join(s, "input_*.pb"))):
            shutil.copy(p, out)
            t = onnx.load_tensor(p)
            feeds[t.name] = numpy_helper.to_array(t)
        diff = 0.0
        for i, value in enumerate(sess.run(None, feeds)):
            with open(os.path.join(out, "output_%d.pb" % i), "wb") as f:
                f.write(numpy_helper.from_array(value, names[i])
                        .SerializeToString())
            before = numpy_helper.to_array(onnx.load_tensor(
                os.path.join(s, "output_%d.pb" % i)))
            diff = max(diff, float(np.abs(value - before).max()))
        sets.append({"set": os.path.basename(s),
                     "max_abs_diff_vs_" + name: diff})
    ops = collections.Counter(
        (n.domain + ":" if n.domain else "") + n.op_type
        for n in model.graph.node)
    manifest = {
        "description": "%s after onnxruntime.transformers.optimizer "
                       "(model_type %s, opt_level 1)" % (name, model_type),
        "source_fixture": name,
        "expected_outputs": "ONNX Runtime %s (CPU EP) on this model"
                            % ort.__version__,
        "sets": sets,
        "contrib_ops": sorted(k for k in ops if k.startswith("com.microsoft")
                              or k == "SimplifiedLayerNormalization"),
        "ops": sorted(ops),
    }
    with open(os.path.join(dst, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print("%s: %s" % (dst, ", ".join(manifest["contrib_ops"])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append")
    args = ap.parse_args()
    for name, spec in FIXTURES.items():
        if not args.only or name in args.only:
            derive(name, *spec)


if __name__ == "__main__":
    main()
