#!/usr/bin/env python3
"""Times ONNX Runtime (CPU EP, all graph optimizations, 1 intra-op thread)
on an ONNX test-data set: the peer number printed next to transfuse-run's.
With --transfuse MODEL.so, also that compiled model through the Python
binding (python/transfuse), in the same process on the same arrays and
thread count, with its max abs error against the set's expected outputs.
usage: ort_latency.py MODEL.onnx TEST_DATA_DIR [--repeat K] [--threads N]
                      [--transfuse MODEL.so]"""
import argparse
import glob
import os
import sys
import time

import onnx
import onnxruntime as ort
from onnx import numpy_helper

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("data")
ap.add_argument("--repeat", type=int, default=20)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--transfuse")
args = ap.parse_args()


def timed(run):
    run()
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[0], times[len(times) // 2]


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
print("onnxruntime %s, %d thread(s), over %d runs: min %.3f ms, median %.3f ms"
      % ((ort.__version__, args.threads, args.repeat) +
         timed(lambda: sess.run(None, feeds))))
if args.transfuse:
    os.environ["TRANSFUSE_NUM_THREADS"] = str(args.threads)  # before a run
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(
        __file__)), os.pardir, "python"))
    import transfuse
    model = transfuse.Model(args.transfuse)
    out = model.run(feeds)
    err = 0.0
    for i, o in enumerate(model.outputs):
        path = os.path.join(args.data, "output_%d.pb" % i)
        if os.path.exists(path):
            expected = numpy_helper.to_array(onnx.load_tensor(path))
            err = max(err, float(abs(out[o.name] - expected).max()))
    print("transfuse (Python binding), %d thread(s), over %d runs: min %.3f "
          "ms, median %.3f ms; max abs err against the expected outputs %.3g"
          % ((args.threads, args.repeat) +
             timed(lambda: model.run(feeds)) + (err,)))
