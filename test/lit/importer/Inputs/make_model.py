#!/usr/bin/env python3
"""Builds the small ONNX graphs that the importer lit tests read.
usage: make_model.py NAME OUT.onnx"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def vi(name, t, shape):
    return helper.make_tensor_value_info(name, t, shape)


def build(name, out):
    if name == "gemm":
        w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
        b = numpy_helper.from_array(np.zeros((4,), np.float32), "b")
        return model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc",
                                       transB=1, alpha=0.5)],
                     [vi("x", F, ["batch", 3])], [vi("y", F, ["batch", 4])], [w, b])
    if name == "einsum":
        return model([helper.make_node("Einsum", ["q", "k"], ["s"], name="scores",
                                       equation="bhqd,bhkd->bhqk")],
                     [vi("q", F, ["b", 4, "s", 8]), vi("k", F, ["b", 4, "s", 8])],
                     [vi("s", F, ["b", 4, "s", "s"])])
    if name == "view_chain":
        # What torch.onnx.export emits for x.view(b, s, 4, 22).
        nodes = [
            helper.make_node("Shape", ["x"], ["shape"], name="shape"),
            helper.make_node("Constant", [], ["zero"], name="c0",
                             value=numpy_helper.from_array(np.array(0, np.int64))),
            helper.make_node("Constant", [], ["one"], name="c1",
                             value=numpy_helper.from_array(np.array(1, np.int64))),
            helper.make_node("Gather", ["shape", "zero"], ["b"], name="g0"),
            helper.make_node("Gather", ["shape", "one"], ["s"], name="g1"),
            helper.make_node("Constant", [], ["ax"], name="c2",
                             value=numpy_helper.from_array(np.array([0], np.int64))),
            helper.make_node("Unsqueeze", ["b", "ax"], ["b1"], name="u0"),
            helper.make_node("Unsqueeze", ["s", "ax"], ["s1"], name="u1"),
            helper.make_node("Constant", [], ["heads"], name="c3",
                             value=numpy_helper.from_array(np.array([4, 22], np.int64))),
            helper.make_node("Concat", ["b1", "s1", "heads"], ["target"], name="cat", axis=0),
            helper.make_node("Reshape", ["x", "target"], ["y"], name="view"),
        ]
        return model(nodes, [vi("x", F, ["batch", "seq", 88])],
                     [vi("y", F, ["batch", "seq", 4, 22])])
    if name == "view_minus_one_bias":
        # The head split of a projection with a bias: the target reads the
        # projection's input, the reshape reads input + bias.
        bias = numpy_helper.from_array(np.zeros(88, np.float32), "bias")
        nodes = [
            helper.make_node("Add", ["x", "bias"], ["xb"], name="add_bias"),
            helper.make_node("Shape", ["x"], ["shape"], name="shape", end=2),
            helper.make_node("Constant", [], ["tail"], name="c2",
                             value=numpy_helper.from_array(np.array([-1, 22], np.int64))),
            helper.make_node("Concat", ["shape", "tail"], ["target"], name="cat", axis=0),
            helper.make_node("Reshape", ["xb", "target"], ["y"], name="view"),
        ]
        return model(nodes, [vi("x", F, ["batch", "seq", 88])],
                     [vi("y", F, None)], [bias], opset=17)
    if name in ("view_minus_one", "flatten_last_two"):
        # x.view(*x.shape[:-1], -1, 22) and x.flatten(-2), as TorchScript
        # exports them: the target reads the input's own leading dims.
        x_shape = ["batch", "seq", 88] if name == "view_minus_one" else \
            ["batch", "seq", 4, 2]
        tail = [-1, 22] if name == "view_minus_one" else [-1]
        keep = len(x_shape) - 1 if name == "view_minus_one" else 2
        nodes = [
            helper.make_node("Shape", ["x"], ["shape"], name="shape"),
            helper.make_node("Constant", [], ["lo"], name="c0",
                             value=numpy_helper.from_array(np.array([0], np.int64))),
            helper.make_node("Constant", [], ["hi"], name="c1",
                             value=numpy_helper.from_array(np.array([keep], np.int64))),
            helper.make_node("Slice", ["shape", "lo", "hi"], ["lead"], name="lead"),
            helper.make_node("Constant", [], ["tail"], name="c2",
                             value=numpy_helper.from_array(np.array(tail, np.int64))),
            helper.make_node("Concat", ["lead", "tail"], ["target"], name="cat", axis=0),
            helper.make_node("Reshape", ["x", "target"], ["y"], name="view"),
        ]
        return model(nodes, [vi("x", F, x_shape)], [vi("y", F, None)])
    if name.startswith("tile"):
        # Tile: constant repeats, repeats as a graph input, and the errors.
        repeats = {"tile": [1, 2], "tile_rank": [1, 2, 3],
                   "tile_negative": [2, -1]}.get(name)
        inits = [] if repeats is None else \
            [numpy_helper.from_array(np.array(repeats, np.int64), "repeats")]
        inputs = [vi("x", F, ["batch", 3])]
        if repeats is None:
            inputs.append(vi("repeats", I64, [2]))
        return model([helper.make_node("Tile", ["x", "repeats"], ["y"], name="tile")],
                     inputs, [vi("y", F, None)], inits)
    if name == "int2_input":
        # Opset 25's int2, newer than the ONNX schema Transfuse is built with.
        return model([helper.make_node("Identity", ["x"], ["y"], name="id")],
                     [vi("x", TensorProto.INT2, [4])],
                     [vi("y", TensorProto.INT2, [4])], opset=25)
    if name == "unsupported_op":
        return model([helper.make_node("LpNormalization", ["x"], ["y"], name="my_norm")],
                     [vi("x", F, [2, 3])], [vi("y", F, [2, 3])])
    if name == "bad_shapes":
        return model([helper.make_node("Add", ["x", "z"], ["y"], name="bad_add")],
                     [vi("x", F, [2, 3]), vi("z", F, [4])], [vi("y", F, [2, 3])])
    if name == "external_data":
        w = numpy_helper.from_array(np.arange(100, dtype=np.float32).reshape(10, 10), "w")
        m = model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                  [vi("x", F, ["n", 10])], [vi("y", F, ["n", 10])], [w])
        onnx.save_model(m, out, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=os.path.basename(out) + ".data", size_threshold=0)
        return None
    if name == "missing_external_data":
        build("external_data", out)
        os.remove(out + ".data")
        return None
    if name == "bad_reshape":
        # Valid for n divisible by 3 only; the test data has n = 7.
        shape = numpy_helper.from_array(np.array([3, -1], np.int64), "shape")
        m = model([helper.make_node("Reshape", ["x", "shape"], ["y"], name="view")],
                  [vi("x", F, ["n"])], [vi("y", F, [3, "m"])], [shape])
        data = os.path.join(os.path.dirname(out), "bad_reshape_data")
        os.makedirs(data, exist_ok=True)
        x = np.arange(7, dtype=np.float32)
        with open(os.path.join(data, "input_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(x, "x").SerializeToString())
        with open(os.path.join(data, "output_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(np.zeros((3, 2), np.float32), "y").SerializeToString())
        return m
    if name == "reshape_empty":
        # [0, 4] to [0, -1, 2] (the 0 copies the input's dim): no size of the
        # -1 is right, and ONNX Runtime fails here too.
        m = model([helper.make_node("Reshape", ["x", "shape"], ["y"], name="heads")],
                  [vi("x", F, ["n", 4]), vi("shape", I64, [3])],
                  [vi("y", F, ["a", "b", "c"])])
        data = os.path.join(os.path.dirname(out), "reshape_empty_data")
        os.makedirs(data, exist_ok=True)
        for i, a in enumerate([numpy_helper.from_array(np.zeros((0, 4), np.float32), "x"),
                               numpy_helper.from_array(np.array([0, -1, 2], np.int64),
                                                       "shape")]):
            with open(os.path.join(data, "input_%d.pb" % i), "wb") as f:
                f.write(a.SerializeToString())
        return m
    if name == "gemm_transa":
        # A^T [4, n] by a [3, 5] weight: n must be 3, which linalg's
        # canonicalization assumes, making the transpose of A run over 3 of
        # its rows. The test data has n = 2.
        w = numpy_helper.from_array(np.ones((3, 5), np.float32), "w")
        m = model([helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transA=1)],
                  [vi("x", F, ["n", 4])], [vi("y", F, [4, 5])], [w])
        data = os.path.join(os.path.dirname(out), "gemm_transa_data")
        os.makedirs(data, exist_ok=True)
        with open(os.path.join(data, "input_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(np.ones((2, 4), np.float32), "x")
                    .SerializeToString())
        return m
    if name in ("attention23", "attention23_softcap", "attention23_negcap",
                "attention23_qk", "attention23_qk3", "attention23_qk4",
                "attention25_window", "attention25_badwindow", "attention26"):
        # Opset-23 Attention, 3-D layout, GQA, causal, with a past KV cache;
        # a softcap of 30 or -1, or the scores as a fourth output (mode 0,
        # 3, or an invalid 4); opset 25
        # with a sliding window of 2 keys before each query, or a window of
        # -2; the same at opset 26.
        attrs = dict(q_num_heads=4, kv_num_heads=2, is_causal=1)
        opset = 23
        if name.endswith("softcap"):
            attrs["softcap"] = 30.0
        if name.endswith("negcap"):
            attrs["softcap"] = -1.0
        if name.startswith("attention25"):
            opset = 25
            attrs["left_window_size"] = -2 if "bad" in name else 2
        if name == "attention26":
            opset = 26
        outs = ["y", "present_k", "present_v"]
        out_vis = [vi("y", F, ["b", "s", 32]), vi("present_k", F, ["b", 2, "t", 8]),
                   vi("present_v", F, ["b", 2, "t", 8])]
        if "_qk" in name:
            outs.append("qk")
            if name[-1] in "34":
                attrs["qk_matmul_output_mode"] = int(name[-1])
            out_vis.append(vi("qk", F, ["b", 4, "s", "t"]))
        return model([helper.make_node("Attention", ["q", "k", "v", "", "pk", "pv"],
                                       outs, name="attn", **attrs)],
                     [vi("q", F, ["b", "s", 32]), vi("k", F, ["b", "s", 16]),
                      vi("v", F, ["b", "s", 16]), vi("pk", F, ["b", 2, "p", 8]),
                      vi("pv", F, ["b", 2, "p", 8])], out_vis, opset=opset)
    if name in ("attention24_nonpad", "attention24_nonpad_i32"):
        # Opset-24 Attention on an external cache of 6 keys, nonpad_kv_seqlen
        # valid ones per sequence, causal.
        t = TensorProto.INT32 if name.endswith("i32") else I64
        return model([helper.make_node("Attention",
                                       ["q", "k", "v", "", "", "", "lens"],
                                       ["y"], name="attn", is_causal=1)],
                     [vi("q", F, [2, 2, 3, 8]), vi("k", F, [2, 2, 6, 8]),
                      vi("v", F, [2, 2, 6, 8]), vi("lens", t, [2])],
                     [vi("y", F, [2, 2, 3, 8])], opset=24)
    if name == "attention23_shortmask":
        # A float attn_mask of 4 keys for 6: the spec pads it with -inf.
        return model([helper.make_node("Attention", ["q", "k", "v", "m"], ["y"],
                                       name="attn")],
                     [vi("q", F, [1, 2, 3, 8]), vi("k", F, [1, 2, 6, 8]),
                      vi("v", F, [1, 2, 6, 8]), vi("m", F, [3, 4])],
                     [vi("y", F, [1, 2, 3, 8])], opset=23)
    if name == "rope23":
        # Opset-23 RMSNormalization then RotaryEmbedding (interleaved, partial,
        # caches gathered by position ids).
        scale = numpy_helper.from_array(np.ones((16,), np.float32), "g")
        cache = numpy_helper.from_array(np.ones((64, 4), np.float32), "cache")
        return model([helper.make_node("RMSNormalization", ["x", "g"], ["n"], name="norm",
                                       epsilon=1e-6),
                      helper.make_node("RotaryEmbedding", ["n", "cache", "cache", "pos"],
                                       ["y"], name="rope", interleaved=1,
                                       rotary_embedding_dim=8)],
                     [vi("x", F, ["b", 2, "s", 16]), vi("pos", I64, ["b", "s"])],
                     [vi("y", F, ["b", 2, "s", 16])], [scale, cache], opset=23)
    if name == "ms_attention":
        w = numpy_helper.from_array(np.ones((16, 48), np.float32), "w")
        b = numpy_helper.from_array(np.zeros((48,), np.float32), "b")
        m = model([helper.make_node("Attention", ["x", "w", "b", "mask"], ["y"],
                                    name="qkv", domain="com.microsoft", num_heads=2)],
                  [vi("x", F, ["b", "s", 16]), vi("mask", TensorProto.INT32, ["b", "s"])],
                  [vi("y", F, ["b", "s", 16])], [w, b])
        m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
        return m
    if name == "ms_packed":
        m = model([helper.make_node("MultiHeadAttention", ["qkv"], ["y"], name="mha",
                                    domain="com.microsoft", num_heads=2)],
                  [vi("qkv", F, ["b", "s", 2, 3, 8])], [vi("y", F, ["b", "s", 16])])
        m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
        return m
    # com.microsoft GroupQueryAttention as onnxruntime-genai's builder
    # writes it (packed QKV, a past, rotary), and variants it rejects.
    if name.startswith("ms_gqa"):
        I32 = TensorProto.INT32
        attrs = dict(num_heads=4, kv_num_heads=2, do_rotary=1)
        names = ["qkv", "", "", "pk", "pv", "lens", "total", "cos", "sin"]
        width = 128
        if name == "ms_gqa_softcap":
            attrs["softcap"] = 30.0
        elif name == "ms_gqa_smooth":
            attrs["smooth_softmax"] = 1
        elif name == "ms_gqa_heads":
            attrs["kv_num_heads"] = 3
        elif name == "ms_gqa_width":
            width = 100
        elif name == "ms_gqa_position_ids":
            names += ["pos"]
        elif name == "ms_gqa_window":
            attrs["local_window_size"] = 4
        cache = numpy_helper.from_array(np.ones((64, 8), np.float32), "cos")
        sin = numpy_helper.from_array(np.zeros((64, 8), np.float32), "sin")
        m = model([helper.make_node("GroupQueryAttention", names,
                                    ["y", "present_k", "present_v"],
                                    name="gqa", domain="com.microsoft",
                                    **attrs)],
                  [vi("qkv", F, ["b", "s", width]),
                   vi("pk", F, ["b", 2, "p", 16]),
                   vi("pv", F, ["b", 2, "p", 16]), vi("lens", I32, ["b"]),
                   vi("total", I32, []), vi("pos", I64, ["b", "s"])],
                  [vi("y", F, ["b", "s", 64]),
                   vi("present_k", F, ["b", 2, "t", 16]),
                   vi("present_v", F, ["b", 2, "t", 16])], [cache, sin])
        m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
        return m
    # The ops ONNX Runtime's transformer optimizer writes (variant: what
    # the lit test checks).
    if name.startswith("ms_skipnorm") or name.startswith("ms_gelus"):
        g = numpy_helper.from_array(np.ones((16,), np.float32), "g")
        g2 = numpy_helper.from_array(np.ones((2, 8), np.float32), "g2")
        bias = numpy_helper.from_array(np.zeros((16,), np.float32), "bias")
        ms = dict(domain="com.microsoft")
        x, skip = vi("x", F, ["b", "s", 16]), vi("skip", F, ["b", "s", 16])
        if name == "ms_skipnorm":
            nodes = [
                helper.make_node("SkipLayerNormalization",
                                 ["x", "skip", "g", "bias", "bias"],
                                 ["y", "", "", "sum"], name="sln", epsilon=1e-5,
                                 **ms),
                helper.make_node("SkipSimplifiedLayerNormalization",
                                 ["y", "sum", "g"], ["z"], name="ssln", **ms),
                helper.make_node("SimplifiedLayerNormalization", ["z", "g"],
                                 ["w"], name="rms", epsilon=1e-6)]
            outs = [vi("w", F, ["b", "s", 16])]
        elif name == "ms_skipnorm_mean":
            nodes = [helper.make_node("SkipLayerNormalization",
                                      ["x", "skip", "g"], ["y", "mean"],
                                      name="sln", **ms)]
            outs = [vi("y", F, ["b", "s", 16]), vi("mean", F, None)]
        elif name == "ms_skipnorm_gamma2d":
            nodes = [helper.make_node("SkipSimplifiedLayerNormalization",
                                      ["x", "skip", "g2"], ["y"], name="ssln",
                                      **ms)]
            outs = [vi("y", F, ["b", "s", 16])]
        elif name == "ms_gelus":
            nodes = [
                helper.make_node("BiasGelu", ["x", "bias"], ["a"], name="bg",
                                 **ms),
                helper.make_node("FastGelu", ["a", "bias"], ["c"], name="fg",
                                 **ms),
                helper.make_node("Gelu", ["c"], ["d"], name="gelu", **ms),
                helper.make_node("QuickGelu", ["d"], ["y"], name="qg",
                                 alpha=1.5, **ms)]
            outs = [vi("y", F, ["b", "s", 16])]
        elif name == "ms_skipnorm_no_word":
            # EmbedLayerNormalization may leave segment_ids and the segment
            # table out (inputs 1 and 4), not the word table (input 2).
            nodes = [helper.make_node("EmbedLayerNormalization",
                                      ["ids", "", "", "pos", "", "g", "bias"],
                                      ["y", "mask_index"], name="eln", **ms)]
            m = model(nodes, [vi("ids", TensorProto.INT32, ["b", "s"]),
                              vi("pos", F, [8, 16])],
                      [vi("y", F, ["b", "s", 16])], [g, bias])
            m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
            return m
        else:  # ms_gelus_unsupported: a contrib op Transfuse does not take
            nodes = [helper.make_node("BiasSoftmax", ["x", "skip"], ["y"],
                                      name="bsm", **ms)]
            outs = [vi("y", F, ["b", "s", 16])]
        m = model(nodes, [x, skip], outs, [g, g2, bias])
        m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
        return m
    # Nodes whose inputs or outputs do not fit their op's schema.
    if name == "where_two_inputs":
        return model([helper.make_node("Where", ["c", "x"], ["y"], name="pick")],
                     [vi("c", TensorProto.BOOL, [2]), vi("x", F, [2])], [vi("y", F, [2])])
    if name == "add_no_inputs":
        return model([helper.make_node("Add", [], ["y"], name="sum")],
                     [vi("x", F, [2])], [vi("y", F, [2])])
    if name == "gather_empty_input":
        return model([helper.make_node("Gather", ["", "i"], ["y"], name="lookup")],
                     [vi("i", I64, [2])], [vi("y", F, [2])])
    if name == "relu_no_output":
        return model([helper.make_node("Relu", ["x"], [], name="act")],
                     [vi("x", F, [2])], [vi("x", F, [2])])
    if name == "slice_no_ends":
        starts = numpy_helper.from_array(np.array([0], np.int64), "starts")
        return model([helper.make_node("Slice", ["x", "starts"], ["y"], name="cut")],
                     [vi("x", F, [4])], [vi("y", F, [2])], [starts])
    if name == "softmax_two_inputs":
        return model([helper.make_node("Softmax", ["x", "x"], ["y"], name="probs")],
                     [vi("x", F, [2])], [vi("y", F, [2])])
    if name == "range_delta":
        # Range with its delta an input: 0 in one test-data set (the
        # division that counts the elements trapped).
        m = model([helper.make_node("Range", ["start", "limit", "delta"], ["y"],
                                    name="steps")],
                  [vi("start", I64, []), vi("limit", I64, []), vi("delta", I64, [])],
                  [vi("y", I64, ["n"])])
        # And 2^46 elements (2^49 bytes): more memory than any machine has.
        for sub, limit, delta in (("range_delta_data", 5, 0),
                                  ("range_huge_data", 1 << 46, 1)):
            data = os.path.join(os.path.dirname(out), sub)
            os.makedirs(data, exist_ok=True)
            for i, (n, v) in enumerate([("start", 0), ("limit", limit),
                                        ("delta", delta)]):
                with open(os.path.join(data, "input_%d.pb" % i), "wb") as f:
                    f.write(numpy_helper.from_array(np.array(v, np.int64), n)
                            .SerializeToString())
        return m
    if name == "range_zero_delta":
        zero = numpy_helper.from_array(np.array(0, np.int64), "zero")
        return model([helper.make_node("Range", ["start", "limit", "zero"], ["y"],
                                       name="steps")],
                     [vi("start", I64, []), vi("limit", I64, [])],
                     [vi("y", I64, ["n"])], [zero])
    # com.microsoft MatMulNBits (4-bit weights, K 40 in blocks of 16, N 8),
    # and variants it rejects.
    if name.startswith("ms_matmulnbits"):
        U8 = TensorProto.UINT8
        k, n, block, bits = 40, 8, 16, 4
        names = ["a", "qb", "scales"]
        ins = [vi("a", F, ["b", k])]
        if name == "ms_matmulnbits_bits":
            bits = 2
        qb = numpy_helper.from_array(
            np.full((n, 3, block * bits // 8), 0x98, np.uint8), "qb")
        scales = numpy_helper.from_array(np.full(n * 3, 0.5, np.float32),
                                         "scales")
        inits = [qb, scales]
        if name == "ms_matmulnbits_g_idx":
            names += ["", "g_idx"]
            inits.append(numpy_helper.from_array(
                np.arange(k, dtype=np.int32) // block, "g_idx"))
        if name == "ms_matmulnbits_scales_input":
            inits = [qb]
            ins.append(vi("scales", F, [n * 3]))
        if name == "ms_matmulnbits_uint8_input":
            inits = [scales]
            ins.append(vi("qb", U8, [n, 3, block * bits // 8]))
        nodes = [helper.make_node("MatMulNBits", names, ["y"], name="mm",
                                  domain="com.microsoft", K=k, N=n, bits=bits,
                                  block_size=block)]
        outs = [vi("y", F, ["b", n])]
        if name == "ms_matmulnbits_uint8_elsewhere":
            nodes = [helper.make_node("Cast", ["qb"], ["y"], name="widen",
                                      to=F)]
            outs = [vi("y", F, [n, 3, block * bits // 8])]
        m = model(nodes, ins, outs, inits)
        m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
        return m
    if name == "defined_twice":
        return model([helper.make_node("Relu", ["x"], ["y"], name="first"),
                      helper.make_node("Neg", ["x"], ["y"], name="second")],
                     [vi("x", F, [2])], [vi("y", F, [2])])
    raise SystemExit("unknown model " + name)


if __name__ == "__main__":
    name, out = sys.argv[1], sys.argv[2]
    m = build(name, out)
    if m is not None:
        onnx.save(m, out)
