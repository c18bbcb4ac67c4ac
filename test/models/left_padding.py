#!/usr/bin/env python3
"""A left-padded batch through a decoder-only fixture, against ONNX Runtime.

Batched prompts of different lengths are padded on the left for
generation, so a padded sequence's first keys are dead (-inf, or finfo.min
in the dynamo, BLOOM and GLM exports) in every query row, and its padded
query rows see no live key at all. The runtime's fused attention skips the
leading dead keys of each block of query rows and sums the rows with no
live key from the masks alone (LiveKeys and Call::uniformRow in
runtime/src/attention.cpp); the committed test-data sets pad on the right
only. This writes a batch of three 70-token sequences, the second with 20
padding tokens on the left and the third with 55, runs the model in ONNX
Runtime for the expected outputs, and checks `transfuse compile` (AOT)
against them with run_fixture.sh's tolerances.

usage: left_padding.py BIN_DIR FIXTURE_DIR WORK_DIR
"""
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def main():
    bin_dir, fixture, work = sys.argv[1:4]
    name = os.path.basename(fixture)
    os.makedirs(work, exist_ok=True)
    model = os.path.join(fixture, "model.onnx")
    graph = onnx.load(model, load_external_data=False).graph
    inputs = [i.name for i in graph.input]
    if inputs != ["input_ids", "attention_mask"]:
        raise SystemExit("%s: expected inputs input_ids, attention_mask; "
                         "got %s" % (name, inputs))
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    # The vocabulary: the logits' last dim, for one token.
    one = np.ones((1, 1), np.int64)
    vocab = sess.run(None, {"input_ids": one, "attention_mask": one})[0].shape[-1]
    batch, seq, pads = 3, 70, (0, 20, 55)
    rng = np.random.default_rng(7)
    ids = rng.integers(1, vocab, (batch, seq)).astype(np.int64)
    mask = np.ones((batch, seq), np.int64)
    for b, pad in enumerate(pads):
        mask[b, :pad] = 0
        ids[b, :pad] = 0
    feeds = {"input_ids": ids, "attention_mask": mask}
    outputs = sess.run(None, feeds)
    data = os.path.join(work, "test_data_set_left_padded")
    os.makedirs(data, exist_ok=True)
    for i, (n, a) in enumerate(feeds.items()):
        with open(os.path.join(data, "input_%d.pb" % i), "wb") as f:
            f.write(numpy_helper.from_array(a, n).SerializeToString())
    for i, (o, a) in enumerate(zip(sess.get_outputs(), outputs)):
        if not np.isfinite(a).all():
            raise SystemExit("%s: ONNX Runtime's output %s is not finite"
                             % (name, o.name))
        with open(os.path.join(data, "output_%d.pb" % i), "wb") as f:
            f.write(numpy_helper.from_array(a, o.name).SerializeToString())
    so = os.path.join(work, name + ".so")
    subprocess.run([os.path.join(bin_dir, "transfuse"), "compile", model,
                    "-o", so], check=True)
    run = subprocess.run([os.path.join(bin_dir, "transfuse-run"), so,
                          "--test-data", data, "--rtol", "1e-3",
                          "--atol", "1e-4"])
    sys.exit(run.returncode)


if __name__ == "__main__":
    main()
