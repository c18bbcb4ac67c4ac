#!/usr/bin/env python3
"""Expected outputs for `transfuse compile --precision bf16`, from ONNX Runtime.

--precision bf16 rounds both operands of every product by a constant weight
to bf16 (nearest, ties to even) and accumulates in f32; everything else stays
f32. This script makes ONNX Runtime compute exactly that: in a copy of the
model, each MatMul or Gemm whose B is an initializer (directly, or through
a Transpose, which Transfuse folds into the constant) gets the initializer
rounded to bf16 and its A passed through Cast(bfloat16) -> Cast(float). ORT then runs the copy, with graph
optimizations off so that it keeps the casts, on each test set's inputs, and
the inputs and ORT's outputs are written as a new test set.

usage: bf16_reference.py MODEL.onnx OUT_DIR SET_DIR [SET_DIR ...]
       (writes OUT_DIR/<basename of SET_DIR>/{input,output}_N.pb)
"""
import glob
import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def round_bf16(a):
    """f32 values rounded to the nearest bf16, ties to even (no NaNs here)."""
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16 << 16
    return u.astype(np.uint32).view(np.float32)


def emulate(model):
    """Rounds the operands of products by weights in `model`; returns how
    many products. Each weight gets a rounded copy, so that other readers of
    the same initializer (an embedding's Gather) keep f32 as in Transfuse."""
    inits = {i.name: i for i in model.graph.initializer}
    transposes = {n.output[0]: n for n in model.graph.node
                  if n.op_type == "Transpose" and n.input[0] in inits}
    copies, casts, nodes, count = {}, {}, [], 0

    def rounded(name):
        if name not in copies:
            copies[name] = name + "__bf16"
            model.graph.initializer.append(numpy_helper.from_array(
                round_bf16(numpy_helper.to_array(inits[name])),
                copies[name]))
        return copies[name]

    for node in model.graph.node:
        b = node.input[1] if node.op_type in ("MatMul", "Gemm") else None
        via = transposes.get(b)
        weight = b if b in inits else via.input[0] if via else None
        if weight is None or inits[weight].data_type != TensorProto.FLOAT:
            nodes.append(node)
            continue
        if via is None:
            node.input[1] = rounded(weight)
        else:
            out = b + "__bf16"
            if out not in casts:
                t = onnx.NodeProto()
                t.CopyFrom(via)
                del t.input[:]
                t.input.append(rounded(weight))
                del t.output[:]
                t.output.append(out)
                t.name = via.name + "__bf16"
                nodes.append(t)
                casts[out] = out
            node.input[1] = out
        a = node.input[0]
        if a not in casts:
            casts[a] = a + "__bf16_rounded"
            nodes.append(helper.make_node(
                "Cast", [a], [a + "__bf16"], to=TensorProto.BFLOAT16))
            nodes.append(helper.make_node(
                "Cast", [a + "__bf16"], [casts[a]], to=TensorProto.FLOAT))
        node.input[0] = casts[a]
        nodes.append(node)
        count += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return count


def load(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    model = onnx.load(sys.argv[1])
    if emulate(model) == 0:
        sys.exit("bf16_reference.py: %s has no product by a constant weight"
                 % sys.argv[1])
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    for src in sys.argv[3:]:
        dst = os.path.join(sys.argv[2], os.path.basename(src.rstrip("/")))
        os.makedirs(dst, exist_ok=True)
        feeds = {}
        for path in sorted(glob.glob(os.path.join(src, "input_*.pb"))):
            shutil.copy(path, dst)
            t = load(path)
            feeds[t.name] = numpy_helper.to_array(t)
        for i, value in enumerate(session.run(None, feeds)):
            t = numpy_helper.from_array(value, names[i])
            with open(os.path.join(dst, "output_%d.pb" % i), "wb") as f:
                f.write(t.SerializeToString())


if __name__ == "__main__":
    main()
