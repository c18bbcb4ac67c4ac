#!/usr/bin/env python3
"""Times ONNX Runtime (CPU EP, all graph optimizations, 1 intra-op thread)
on an ONNX test-data set: the peer number printed next to transfuse-run's.
usage: ort_latency.py MODEL.onnx TEST_DATA_DIR [--repeat K] [--threads N]"""
import argparse
import glob
import os
import time

import onnx
import onnxruntime as ort
from onnx import numpy_helper

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("data")
ap.add_argument("--repeat", type=int, default=20)
ap.add_argument("--threads", type=int, default=1)
args = ap.parse_args()

opts = ort.SessionOptions()
opts.intra_op_num_threads = args.threads
opts.inter_op_num_threads = 1
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
sess = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
feeds = {}
names = [i.name for i in sess.get_inputs()]
for i, path in enumerate(sorted(glob.glob(os.path.join(args.data, "input_*.pb")))):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    feeds[names[i]] = numpy_helper.to_array(t)
sess.run(None, feeds)
times = []
for _ in range(args.repeat):
    t0 = time.perf_counter()
    sess.run(None, feeds)
    times.append((time.perf_counter() - t0) * 1000)
times.sort()
print("onnxruntime %s, %d thread(s), over %d runs: min %.3f ms, median %.3f ms"
      % (ort.__version__, args.threads, args.repeat, times[0], times[len(times) // 2]))
