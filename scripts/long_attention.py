#!/usr/bin/env python3
"""Runs one self-attention layer at a long sequence (8192 tokens by default)
through Transfuse and checks it against ONNX Runtime, reporting the peak
resident memory of the run.

The layer is written in PyTorch (QKV projections, 4 heads of 64, scaled
scores, softmax, output projection), random weights, exported with dynamic
batch and sequence axes. At this length the scores would take B*H*S*S*4
bytes (1 GiB at 8k). Transfuse compiles it twice: by default (the
runtime's fused attention kernel, whose memory per head is linear in the
length), and with --attention=memory_efficient (generated loops over
blocks of keys with an online softmax). Both are held to --max-rss-mib.

  .venv/bin/python scripts/long_attention.py                 # 8192 tokens
  .venv/bin/python scripts/long_attention.py --compare-materialized

--max-rss-mib N fails a run whose peak RSS exceeds N MiB (the ctest
`long.attention_8k` uses 512, half of what the scores alone would take).
--compare-materialized also runs with --attention=materialized to show
the difference. Needs torch
(scripts/setup.sh --fixtures) unless --model gives an existing export."""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def export(path, d, heads, seed):
    import torch

    class SelfAttention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = torch.nn.Linear(d, 3 * d)
            self.out = torch.nn.Linear(d, d)

        def forward(self, x):
            b, s, _ = x.shape
            q, k, v = self.qkv(x).split(d, dim=-1)
            shape = (b, s, heads, d // heads)
            q, k, v = (t.reshape(shape).transpose(1, 2) for t in (q, k, v))
            scores = q @ k.transpose(-1, -2) / (d // heads) ** 0.5
            o = scores.softmax(-1) @ v
            return self.out(o.transpose(1, 2).reshape(b, s, d))

    torch.manual_seed(seed)
    model = SelfAttention().eval()
    with torch.no_grad():
        torch.onnx.export(model, (torch.randn(2, 7, d),), path, input_names=["x"],
                          output_names=["y"], opset_version=17, dynamo=False,
                          dynamic_axes={"x": {0: "batch", 1: "sequence"},
                                        "y": {0: "batch", 1: "sequence"}})


def run_measured(cmd):
    """Runs transfuse-run; returns (returncode, output, peak RSS in MiB, s).
    The peak is the "peak RSS" line transfuse-run prints (VmHWM)."""
    start = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rss = [float(l.split()[2]) for l in p.stdout.splitlines() if l.startswith("peak RSS:")]
    return p.returncode, p.stdout, rss[0] if rss else float("inf"), time.time() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq", type=int, default=8192)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", help="an existing export (skips torch)")
    ap.add_argument("--max-rss-mib", type=float, default=0)
    ap.add_argument("--compare-materialized", action="store_true")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="transfuse-long-")
    os.makedirs(work, exist_ok=True)
    path = args.model or os.path.join(work, "attention.onnx")
    if not args.model:
        export(path, args.d_model, args.heads, args.seed)

    x = np.random.default_rng(args.seed).standard_normal(
        (1, args.seq, args.d_model)).astype(np.float32)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (y,) = sess.run(["y"], {"x": x})
    data = os.path.join(work, "test_data_set_0")
    os.makedirs(data, exist_ok=True)
    with open(os.path.join(data, "input_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(x, "x").SerializeToString())
    with open(os.path.join(data, "output_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(y, "y").SerializeToString())
    scores_mib = args.heads * args.seq * args.seq * 4 / 2**20
    print("seq %d, %d heads: the scores alone would take %.0f MiB"
          % (args.seq, args.heads, scores_mib))

    failed = False
    modes = [("auto", []),
             ("memory_efficient", ["--attention=memory_efficient"])]
    if args.compare_materialized:
        modes.append(("materialized", ["--attention=materialized"]))
    for name, flags in modes:
        so = os.path.join(work, "attention-%s.so" % name)
        c = subprocess.run([os.path.join(args.bin, "transfuse"), "compile", path, "-o",
                            so, "-quiet", "--explain-fusion"] + flags,
                           capture_output=True, text=True)
        if c.returncode:
            print(c.stderr)
            return 1
        alg = [l.strip() for l in c.stderr.splitlines() if l.strip().startswith("attention")]
        print("%s: %s" % (name, alg[0] if alg else "NO FUSED ATTENTION"))
        failed |= not alg
        rc, out, rss, secs = run_measured(
            [os.path.join(args.bin, "transfuse-run"), so, "--test-data", data,
             "--quiet", "--rtol", "1e-3", "--atol", "1e-4"])
        line = [l for l in out.splitlines() if l.startswith("output")]
        print("%s: %s" % (name, (line or [out.strip()])[0]))
        print("%s: peak RSS %.0f MiB, %.1f s" % (name, rss, secs))
        failed |= rc != 0
        if name != "materialized" and args.max_rss_mib and rss > args.max_rss_mib:
            print("FAIL: peak RSS %.0f MiB exceeds the bound of %.0f MiB"
                  % (rss, args.max_rss_mib))
            failed = True
    print("1 passed, 0 failed" if not failed else "0 passed, 1 failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
