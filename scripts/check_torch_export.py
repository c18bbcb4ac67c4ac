#!/usr/bin/env python3
"""Checks Transfuse on PyTorch exports that no test has seen.

Builds a model from PyTorch's own nn.TransformerEncoderLayer at a size and
seed given on the command line, exports it with torch.onnx.export (opset 17,
dynamic batch and sequence axes), writes test data whose expected outputs
come from ONNX Runtime, then runs `transfuse compile` + `transfuse-run`
(AOT), `transfuse-run --jit` and `--jit --no-fusion` on several
batch/sequence shapes, and prints the fusion summary and why any candidate
did not fuse.

  .venv/bin/python scripts/check_torch_export.py --variant post-ln-padding
  .venv/bin/python scripts/check_torch_export.py --variant pre-ln-causal --seed 7 --d-model 72 --heads 6

Needs torch in .venv (scripts/setup.sh --fixtures). Exits non-zero on any
mismatch."""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort
import torch
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class PaddedEncoder(torch.nn.Module):
    def __init__(self, d, heads, ffn, layers):
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(d, heads, ffn, dropout=0.1,
                                                 batch_first=True, norm_first=False)
        self.enc = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, x, padding_mask):
        return self.enc(x, src_key_padding_mask=padding_mask)


class CausalEncoder(torch.nn.Module):
    def __init__(self, d, heads, ffn, layers):
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(d, heads, ffn, dropout=0.1,
                                                 activation="gelu", batch_first=True,
                                                 norm_first=True)
        self.enc = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, x):
        s = x.shape[1]
        mask = torch.triu(torch.full((s, s), float("-inf")), diagonal=1)
        return self.enc(x, mask=mask, is_causal=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", choices=["post-ln-padding", "pre-ln-causal"], required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    # The fused inference fast path has no ONNX export; users disable it too.
    torch.backends.mha.set_fastpath_enabled(False)
    padded = args.variant == "post-ln-padding"
    cls = PaddedEncoder if padded else CausalEncoder
    model = cls(args.d_model, args.heads, args.ffn, args.layers).eval()
    tmp = tempfile.mkdtemp(prefix="transfuse-check-")
    path = os.path.join(tmp, "model.onnx")
    x = torch.randn(2, 7, args.d_model)
    names = ["x", "padding_mask"] if padded else ["x"]
    example = (x, torch.zeros(2, 7, dtype=torch.bool)) if padded else (x,)
    axes = {n: {0: "batch", 1: "sequence"} for n in names + ["y"]}
    with torch.no_grad():
        torch.onnx.export(model, example, path, input_names=names, output_names=["y"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    shapes = [(2, 7), (1, 1), (1, 16), (2, 33), (3, 7), (5, 7)]
    failures = skipped = 0
    so = os.path.join(tmp, "model.so")
    c = subprocess.run([os.path.join(args.bin, "transfuse"), "compile", path, "-o", so,
                        "-quiet", "--explain-fusion"], capture_output=True, text=True)
    if c.returncode:
        sys.exit(c.stderr)
    # What fused, and a remark for each candidate that did not.
    for l in c.stderr.splitlines():
        if "fusion summary" in l or "remark" in l or "unfused matmul" in l:
            print(l)
    for k, (b, s) in enumerate(shapes):
        rng = np.random.default_rng(args.seed * 100 + k)
        feeds = {"x": rng.standard_normal((b, s, args.d_model)).astype(np.float32)}
        if padded:
            m = np.zeros((b, s), dtype=bool)
            if b > 1:
                m[1, max(1, s // 2):] = True  # right padding on the second row
            feeds["padding_mask"] = m
        try:
            (y,) = sess.run(["y"], feeds)
        except Exception as e:  # the exporter baked a traced dim into the graph
            print("%s batch=%d seq=%d: skipped, ONNX Runtime rejects this shape "
                  "for this export (%s)" % (args.variant, b, s, str(e).splitlines()[0][:120]))
            skipped += 1
            continue
        d = os.path.join(tmp, "set_%d" % k)
        os.makedirs(d)
        for i, n in enumerate(names):
            with open(os.path.join(d, "input_%d.pb" % i), "wb") as f:
                f.write(numpy_helper.from_array(feeds[n], n).SerializeToString())
        with open(os.path.join(d, "output_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(y, "y").SerializeToString())
        for target in ([so], [path, "--jit", "--quiet"],
                       [path, "--jit", "--no-fusion", "--quiet"]):
            p = subprocess.run([os.path.join(args.bin, "transfuse-run")] + target +
                               ["--test-data", d], capture_output=True, text=True)
            mode = ("jit-nofusion" if "--no-fusion" in target else
                    "jit" if "--jit" in target else "aot")
            line = [l for l in p.stdout.splitlines() if l.startswith("output")]
            print("%s %s batch=%d seq=%d: %s" % (args.variant, mode, b, s,
                                                 (line or [p.stderr.strip()])[0]))
            failures += p.returncode != 0
    ran = 3 * (len(shapes) - skipped)
    print("%d passed, %d failed" % (ran - failures, failures))
    return 1 if failures or ran == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
