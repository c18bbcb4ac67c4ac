#!/usr/bin/env python3
"""Expected outputs for `transfuse compile --precision bf16`, from ONNX Runtime.

--precision bf16 rounds both operands of every product by a constant weight
to bf16 (nearest, ties to even) and accumulates in f32; everything else but
attention's products (see --attention) stays f32. This script makes ONNX
Runtime compute exactly that: in a copy of the model, each MatMul or Gemm
whose B is an initializer (directly, or through a Transpose, which
Transfuse folds into the constant) gets the initializer rounded to bf16 and
its A passed through Cast(bfloat16) -> Cast(float); a com.microsoft
MatMulNBits first becomes a MatMul by its dequantized weight, as Transfuse
imports it. ORT then runs the copy,
with graph optimizations off so that it keeps the casts, on each test set's
inputs, and the inputs and ORT's outputs are written as a new test set.

With --attention (`--precision bf16`'s default, the fused attention's
products on bf16 operands too), the operands of attention's two products
are rounded as well, as Transfuse's kernel rounds them: Q and K before a
scale the graph applies to them (Transfuse applies it to the scores), the
probabilities unnormalized (exp(s - max); the kernel divides the product's
rows by their sums after), and only in products of at least FEW_ROWS query
rows (a decode step stays f32). Over every fixture the two then agree to
0.8% of each output's range (run_bf16.sh's tolerance is 1%).

usage: bf16_reference.py [--attention] MODEL.onnx OUT_DIR SET_DIR [SET_DIR ...]
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


def rounding(x, out):
    """Nodes that write `x` rounded to bf16 (as f32) to `out`."""
    return [helper.make_node("Cast", [x], [out + "__bf16"],
                             to=TensorProto.BFLOAT16),
            helper.make_node("Cast", [out + "__bf16"], [out],
                             to=TensorProto.FLOAT)]


def unnormalized_rounding(x, out, tag, opset):
    """Nodes that write the probabilities `x` to `out` rounded as Transfuse's
    kernel rounds them: unnormalized. Each row's max is 1 / its sum, so x
    divided by it is exp(s - max) (to a few f32 ulps), which is rounded to
    bf16 and multiplied back. A row of zeros (all of it masked after the
    Softmax) divides by a floor below any row's max instead."""
    axes = {"axes": [-1]} if opset < 18 else {}
    inputs = [x] if opset < 18 else [x, "__bf16_last_axis"]
    return [helper.make_node("ReduceMax", inputs, [tag + "__rowmax"],
                             keepdims=1, **axes),
            helper.make_node("Max", [tag + "__rowmax", "__bf16_floor"],
                             [tag + "__rowscale"]),
            helper.make_node("Div", [x, tag + "__rowscale"], [tag + "__exp"]),
            *rounding(tag + "__exp", tag + "__exp_rounded"),
            helper.make_node("Mul", [tag + "__exp_rounded", tag + "__rowscale"],
                             [out])]


def dequantize_matmulnbits(model):
    """Replaces each com.microsoft MatMulNBits whose weights are
    initializers with a MatMul by its dequantized f32 weight (then the bias),
    as Transfuse imports it, so that emulate() rounds that weight: W[k][n] =
    (q - zero point) * scale per block of K, 4-bit values low nibble first,
    the zero point 2^(bits - 1) unless given (packed as B, or floats). ONNX
    Runtime's own MatMulNBits checks the f32 path (e2e.*_int4_genai.*)."""
    inits = {i.name: i for i in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        ins = list(node.input) + [""] * (6 - len(node.input))
        if (node.op_type != "MatMulNBits" or ins[4] or
                any(x and x not in inits for x in ins[1:4])):
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        k, n, block = attrs["K"], attrs["N"], attrs["block_size"]
        bits = attrs.get("bits", 4)
        blocks = -(-k // block)

        def unpack(x, count):
            x = x.reshape(n, -1)
            if bits == 4:
                x = np.stack([x & 15, x >> 4], -1).reshape(n, -1)
            return x[:, :count].astype(np.float32)

        q = unpack(numpy_helper.to_array(inits[ins[1]]), blocks * block)
        scales = numpy_helper.to_array(inits[ins[2]]).reshape(n, blocks)
        if not ins[3]:
            zeros = np.full((n, blocks), 2.0 ** (bits - 1), np.float32)
        elif inits[ins[3]].data_type == TensorProto.UINT8:
            zeros = unpack(numpy_helper.to_array(inits[ins[3]]), blocks)
        else:
            zeros = numpy_helper.to_array(inits[ins[3]]).reshape(n, blocks)
        w = (q.reshape(n, blocks, block) - zeros[..., None]) * scales[..., None]
        name = ins[1] + "__dequantized"
        model.graph.initializer.append(numpy_helper.from_array(
            np.ascontiguousarray(w.reshape(n, -1)[:, :k].T.astype(np.float32)),
            name))
        out = node.output[0]
        product = out + "__product" if ins[5] else out
        nodes.append(helper.make_node("MatMul", [ins[0], name], [product],
                                      name=node.name))
        if ins[5]:
            nodes.append(helper.make_node("Add", [product, ins[5]], [out],
                                          name=node.name + "__bias"))
    del model.graph.node[:]
    model.graph.node.extend(nodes)


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
            nodes += rounding(a, casts[a])
        node.input[0] = casts[a]
        nodes.append(node)
        count += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return count


# Query rows below which Transfuse's attention kernel keeps its products f32
# (runtime/src/attention.cpp: kFewRows).
FEW_ROWS = 12

# Ops between attention's score product and its Softmax, or between the
# Softmax and the P V product, that the search below looks through.
PASS_THROUGH = {"Add", "Sub", "Mul", "Div", "Where", "Cast", "Identity",
                "Reshape", "Dropout"}


def producers(model):
    """Each tensor name's producing node."""
    return {o: n for n in model.graph.node for o in n.output}


def attention_products(model):
    """The MatMul nodes of attention's Q K^T and P V products: the MatMul
    that reaches a Softmax's input, and one whose A the Softmax's output
    reaches, through PASS_THROUGH ops; as two lists, Q K^T's and P V's."""
    producer = producers(model)

    def back(name, depth, stop):
        """The first node of type `stop` behind `name` through
        PASS_THROUGH ops, if any."""
        node = producer.get(name)
        if node is None or depth > 8:
            return None
        if node.op_type == stop:
            return node
        if node.op_type not in PASS_THROUGH:
            return None
        for i in node.input:
            hit = back(i, depth + 1, stop)
            if hit is not None:
                return hit
        return None

    scores = [back(n.input[0], 0, "MatMul") for n in model.graph.node
              if n.op_type == "Softmax"]
    pv = [n for n in model.graph.node if n.op_type == "MatMul"
          and back(n.input[0], 0, "Softmax") is not None]
    return [n for n in scores if n is not None], pv


def constant_names(model):
    """Initializers and Constant nodes' outputs."""
    return ({i.name for i in model.graph.initializer} |
            {n.output[0] for n in model.graph.node if n.op_type == "Constant"})


def round_activations(model, scores, pv):
    """Both operands of each node in `scores` and `pv` (attention_products;
    matched by output name: emulate() copies the nodes) rounded to bf16
    when the product has at least FEW_ROWS rows (Transfuse's kernel
    computes a head with fewer query rows, a decode step, in f32):
    Where(rows >= FEW_ROWS, Cast(Cast(x, bfloat16), float), x), rows from
    dim -2 of A; a P V product's A, the probabilities, as
    unnormalized_rounding writes them. An operand that is x times or over a
    constant (a scale applied to Q and K before their product, which
    Transfuse applies to the scores instead) has x rounded, and the scaling
    redone after."""
    consts = constant_names(model)
    producer = producers(model)
    targets = {n.output[0] for n in scores + pv}
    probabilities = {n.output[0] for n in pv}
    opset = next(o.version for o in model.opset_import
                 if o.domain in ("", "ai.onnx"))
    model.graph.initializer.extend([
        numpy_helper.from_array(np.array([-2], np.int64), "__bf16_dim"),
        numpy_helper.from_array(np.array([FEW_ROWS], np.int64),
                                "__bf16_few_rows"),
        numpy_helper.from_array(np.array([-1], np.int64), "__bf16_last_axis"),
        numpy_helper.from_array(np.array(1e-30, np.float32), "__bf16_floor")])
    nodes = []
    for node in model.graph.node:
        if node.output[0] in targets:
            tag = node.output[0]
            nodes += [
                helper.make_node("Shape", [node.input[0]], [tag + "__shape"]),
                helper.make_node("Gather", [tag + "__shape", "__bf16_dim"],
                                 [tag + "__rows"]),
                helper.make_node("GreaterOrEqual",
                                 [tag + "__rows", "__bf16_few_rows"],
                                 [tag + "__round"])]
            for k in range(2):
                x, scaling = node.input[k], None
                if x in consts:
                    continue
                p = producer.get(x)
                if (p is not None and p.op_type in ("Mul", "Div") and
                        p.input[1] in consts):
                    x, scaling = p.input[0], p
                y = "%s__in%d" % (tag, k)
                operand = y + "__operand" if scaling is not None else y
                if k == 0 and tag in probabilities:
                    nodes += unnormalized_rounding(x, y + "__rounded", y,
                                                   opset)
                else:
                    nodes += rounding(x, y + "__rounded")
                nodes.append(helper.make_node(
                    "Where", [tag + "__round", y + "__rounded", x], [operand]))
                if scaling is not None:
                    nodes.append(helper.make_node(
                        scaling.op_type, [operand, scaling.input[1]], [y]))
                node.input[k] = y
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def load(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t


def main():
    args = sys.argv[1:]
    attention = args[:1] == ["--attention"]
    if attention:
        args = args[1:]
    if len(args) < 3:
        sys.exit(__doc__)
    model = onnx.load(args[0])
    if attention:
        # Found before emulate() puts casts between the ops.
        scores, pv = attention_products(model)
        if not scores + pv:
            sys.exit("bf16_reference.py: --attention: %s has no product "
                     "next to a Softmax" % args[0])
    dequantize_matmulnbits(model)
    if emulate(model) == 0:
        sys.exit("bf16_reference.py: %s has no product by a constant weight"
                 % args[0])
    if attention:
        round_activations(model, scores, pv)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    for src in args[2:]:
        dst = os.path.join(args[1], os.path.basename(src.rstrip("/")))
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
