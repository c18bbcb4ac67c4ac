"""Writes an ONNX test-data set as raw bytes for c_api_client.c: OUT/meta.txt
(a line per tensor: "input|output INDEX DTYPE RANK DIMS...", DTYPE the
TensorProto code) and OUT/{input,output}_N.bin.
usage: dump_test_data.py SET_DIR OUT_DIR"""
import glob
import os
import sys

import onnx
from onnx import numpy_helper

src, out = sys.argv[1:3]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "meta.txt"), "w") as meta:
    for kind in ("input", "output"):
        for path in sorted(glob.glob(os.path.join(src, kind + "_*.pb"))):
            index = int(path.rsplit("_", 1)[1][:-3])
            t = onnx.load_tensor(path)
            a = numpy_helper.to_array(t)
            meta.write("%s %d %d %d %s\n" % (kind, index, t.data_type, a.ndim,
                                             " ".join(map(str, a.shape))))
            a.tofile(os.path.join(out, "%s_%d.bin" % (kind, index)))
