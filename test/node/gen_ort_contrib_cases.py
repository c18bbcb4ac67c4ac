#!/usr/bin/env python3
"""Writes test cases for ONNX Runtime's contrib ops (com.microsoft
Attention, MultiHeadAttention, GroupQueryAttention, SkipLayerNormalization,
SkipSimplifiedLayerNormalization, EmbedLayerNormalization, the GELUs,
MatMulNBits, and SimplifiedLayerNormalization in the ONNX domain), with
expected outputs from ONNX Runtime.

ONNX ships no cases for contrib ops, so each case here is a one-node model
with seeded random inputs; ONNX Runtime's CPU implementation computes the
expected outputs. The layout matches libonnx-testdata's, so
run_node_tests.py runs them (`--generate ort_contrib`).

usage: gen_ort_contrib_cases.py -o DIR
"""
import argparse
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

F, I32 = TensorProto.FLOAT, TensorProto.INT32
B, S, HID, N = 2, 5, 32, 4
HEAD = HID // N


def _mha(name, inputs, outputs, **attrs):
    return helper.make_node("MultiHeadAttention", inputs, outputs, name=name,
                            domain="com.microsoft", num_heads=N, **attrs)


def _attn(name, inputs, outputs, **attrs):
    return helper.make_node("Attention", inputs, outputs, name=name,
                            domain="com.microsoft", num_heads=N, **attrs)


def _cases(rng):
    """(name, node, {input: array}, [output names]) per case."""
    r = lambda *shape: rng.standard_normal(shape).astype(np.float32)
    key_mask = np.ones((B, S), np.int32)
    key_mask[1, 3:] = 0
    lengths = np.array([S, 3], np.int32)
    yield ("mha_basic", _mha("mha", ["q", "k", "v"], ["y"]),
           {"q": r(B, S, HID), "k": r(B, 7, HID), "v": r(B, 7, HID)}, ["y"])
    yield ("mha_bias_key_mask",
           _mha("mha", ["q", "k", "v", "bias", "mask"], ["y"]),
           {"q": r(B, S, HID), "k": r(B, S, HID), "v": r(B, S, HID),
            "bias": r(3 * HID), "mask": key_mask}, ["y"])
    yield ("mha_cross_bnlh_kv", _mha("mha", ["q", "k", "v"], ["y"]),
           {"q": r(B, S, HID), "k": r(B, N, 7, HEAD), "v": r(B, N, 7, HEAD)},
           ["y"])
    yield ("mha_attention_bias_scale",
           _mha("mha", ["q", "k", "v", "", "", "ab"], ["y"], scale=0.3),
           {"q": r(B, S, HID), "k": r(B, S, HID), "v": r(B, S, HID),
            "ab": r(1, N, S, S)}, ["y"])
    yield ("mha_past_unidirectional",
           _mha("mha", ["q", "k", "v", "", "", "", "pk", "pv"],
                ["y", "present_k", "present_v"], unidirectional=1),
           {"q": r(B, 3, HID), "k": r(B, 3, HID), "v": r(B, 3, HID),
            "pk": r(B, N, 4, HEAD), "pv": r(B, N, 4, HEAD)},
           ["y", "present_k", "present_v"])
    yield ("attention_raw_mask",
           _attn("attn", ["x", "w", "b", "mask"], ["y"]),
           {"x": r(B, S, HID), "w": r(HID, 3 * HID), "b": r(3 * HID),
            "mask": key_mask}, ["y"])
    yield ("attention_mask_lengths",
           _attn("attn", ["x", "w", "b", "mask"], ["y"]),
           {"x": r(B, S, HID), "w": r(HID, 3 * HID), "b": r(3 * HID),
            "mask": lengths}, ["y"])
    yield ("attention_mask_3d",
           _attn("attn", ["x", "w", "b", "mask"], ["y"]),
           {"x": r(B, S, HID), "w": r(HID, 3 * HID), "b": r(3 * HID),
            "mask": (rng.random((B, S, S)) > 0.3).astype(np.int32)}, ["y"])
    yield ("attention_qkv_hidden_sizes",
           _attn("attn", ["x", "w", "b"], ["y"],
                 qkv_hidden_sizes=[HID, HID, 2 * HID]),
           {"x": r(B, S, HID), "w": r(HID, 4 * HID), "b": r(4 * HID)}, ["y"])
    # What ONNX Runtime's transformer optimizer writes besides Attention.
    ms = dict(domain="com.microsoft")
    x, skip = r(B, S, HID), r(B, S, HID)
    gamma, beta, bias = r(HID), r(HID), r(HID)
    yield ("skiplayernorm_beta_bias_sum",
           helper.make_node("SkipLayerNormalization",
                            ["x", "skip", "gamma", "beta", "bias"],
                            ["y", "", "", "sum"], name="sln", epsilon=1e-5,
                            **ms),
           {"x": x, "skip": skip, "gamma": gamma, "beta": beta, "bias": bias},
           ["y", "sum"])
    yield ("skiplayernorm_2d_skip",
           helper.make_node("SkipLayerNormalization", ["x", "skip", "gamma"],
                            ["y"], name="sln", **ms),
           {"x": x, "skip": r(S, HID), "gamma": gamma}, ["y"])
    yield ("skipsimplifiedlayernorm_bias_sum",
           helper.make_node("SkipSimplifiedLayerNormalization",
                            ["x", "skip", "gamma", "bias"],
                            ["y", "", "", "sum"], name="ssln", epsilon=1e-6,
                            **ms),
           {"x": x, "skip": skip, "gamma": gamma, "bias": bias}, ["y", "sum"])
    yield ("simplifiedlayernorm",
           helper.make_node("SimplifiedLayerNormalization", ["x", "gamma"],
                            ["y"], name="rms", epsilon=1e-6),
           {"x": x, "gamma": gamma}, ["y"])
    yield ("biasgelu", helper.make_node("BiasGelu", ["x", "bias"], ["y"],
                                        name="bg", **ms),
           {"x": x, "bias": bias}, ["y"])
    yield ("fastgelu_bias", helper.make_node("FastGelu", ["x", "bias"], ["y"],
                                             name="fg", **ms),
           {"x": x, "bias": bias}, ["y"])
    yield ("fastgelu", helper.make_node("FastGelu", ["x"], ["y"], name="fg",
                                        **ms), {"x": x}, ["y"])
    yield ("gelu", helper.make_node("Gelu", ["x"], ["y"], name="g", **ms),
           {"x": x}, ["y"])
    yield ("quickgelu", helper.make_node("QuickGelu", ["x"], ["y"], name="qg",
                                         **ms), {"x": x}, ["y"])
    yield ("quickgelu_alpha", helper.make_node("QuickGelu", ["x"], ["y"],
                                               name="qg", alpha=1.0, **ms),
           {"x": x}, ["y"])
    vocab, positions, types = 30, 16, 2
    emb = dict(word=r(vocab, HID), pos=r(positions, HID), segemb=r(types, HID),
               gamma=gamma, beta=beta)
    ids = rng.integers(0, vocab, (B, S)).astype(np.int32)
    segs = rng.integers(0, types, (B, S)).astype(np.int32)
    yield ("embedlayernorm_segments_mask",
           helper.make_node("EmbedLayerNormalization",
                            ["ids", "segs", "word", "pos", "segemb", "gamma",
                             "beta", "mask"],
                            ["y", "mask_index", "embedding_sum"], name="eln",
                            epsilon=1e-5, **ms),
           dict(ids=ids, segs=segs, mask=key_mask, **emb),
           ["y", "mask_index", "embedding_sum"])
    yield ("embedlayernorm_position_ids",
           helper.make_node("EmbedLayerNormalization",
                            ["ids", "", "word", "pos", "", "gamma", "beta", "",
                             "position_ids"], ["y", "mask_index"], name="eln",
                            **ms),
           dict(ids=ids, position_ids=rng.integers(
               0, positions, (1, S)).astype(np.int32),
               **{k: v for k, v in emb.items() if k != "segemb"}),
           ["y", "mask_index"])
    yield ("attention_past_unidirectional",
           _attn("attn", ["x", "w", "b", "", "past"], ["y", "present"],
                 unidirectional=1),
           {"x": r(B, 3, HID), "w": r(HID, 3 * HID), "b": r(3 * HID),
            "past": r(2, B, N, 4, HEAD)}, ["y", "present"])


def _gqa_cases(rng):
    """GroupQueryAttention as onnxruntime-genai's builder uses it and
    beyond: first prompts, decode steps whose batch entries have different
    past lengths (the past right-padded, its dead rows nonzero), a past
    buffer longer than the total, a later prompt after a past; separate or
    packed QKV; rotary, interleaved or not; local windows; a softcap. Head size 16
    (ONNX Runtime's rotary needs a multiple of 16). A first prompt's rows
    past a sequence's length are undefined in ONNX Runtime, so first
    prompts here have none."""
    r = lambda *shape: rng.standard_normal(shape).astype(np.float32)
    heads, kv, head = 4, 2, 16
    angles = rng.uniform(0.0, 6.0, (16, head // 2))
    cos, sin = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)

    def case(name, b, s, past, lens, total, packed=False, rotary=False,
             **attrs):
        feeds = {}
        if packed:
            feeds["qkv"] = r(b, s, (heads + 2 * kv) * head)
            names = ["qkv", "", ""]
        else:
            feeds.update(q=r(b, s, heads * head), k=r(b, s, kv * head),
                         v=r(b, s, kv * head))
            names = ["q", "k", "v"]
        if past is None:
            names += ["", ""]
        else:
            feeds.update(pk=r(b, kv, past, head), pv=r(b, kv, past, head))
            names += ["pk", "pv"]
        feeds.update(seqlens=np.array(lens, np.int32),
                     total=np.array(total, np.int32))
        names += ["seqlens", "total"]
        if rotary:
            feeds.update(cos=cos, sin=sin)
            names += ["cos", "sin"]
        node = helper.make_node(
            "GroupQueryAttention", names, ["y", "present_k", "present_v"],
            name="gqa", domain="com.microsoft", num_heads=heads,
            kv_num_heads=kv, do_rotary=int(rotary), **attrs)
        return (name, node, feeds, ["y", "present_k", "present_v"])

    yield case("gqa_first_prompt", 2, 5, None, [4, 4], 5)
    yield case("gqa_first_prompt_empty_past_rotary", 2, 5, 0, [4, 4], 5,
               rotary=True)
    yield case("gqa_decode_padded_past_packed_rotary", 2, 1, 6, [6, 3], 7,
               packed=True, rotary=True)
    yield case("gqa_decode_long_past_buffer", 2, 1, 12, [6, 3], 7,
               scale=0.2)
    yield case("gqa_decode_window", 2, 1, 8, [8, 5], 9, local_window_size=4)
    yield case("gqa_later_prompt_window_interleaved", 1, 3, 4, [6], 7,
               rotary=True, rotary_interleaved=1, local_window_size=3)
    # Gemma 2's cap on the scores, 2 * tanh(s / 2): scores of unit inputs
    # reach past it.
    yield case("gqa_decode_softcap_window", 2, 1, 8, [8, 5], 9, softcap=2.0,
               local_window_size=4)
    yield case("gqa_first_prompt_softcap_rotary", 2, 5, 0, [4, 4], 5,
               rotary=True, softcap=1.0)


def _matmulnbits_cases(rng):
    """MatMulNBits as onnxruntime-genai's int4 and int8 exports use it: the
    quantized weights, scales and zero points are initializers (a case's
    fifth element). 4 bits with the default zero point, K a multiple of the
    block or not (the last block padded), packed uint8 zero points, float
    zero points, a bias, 8 bits; A of rank 2 and 3."""
    def case(name, a_shape, k, n, block, bits=4, zeros=None, bias=False):
        blocks = -(-k // block)
        blob = block * bits // 8
        inits = {
            "qb": rng.integers(0, 256, (n, blocks, blob), dtype=np.uint8),
            "scales": rng.uniform(0.01, 0.1, n * blocks).astype(np.float32)}
        names = ["a", "qb", "scales"]
        if zeros == "packed":
            inits["zp"] = rng.integers(
                0, 256, n * -(-blocks * bits // 8), dtype=np.uint8)
            names.append("zp")
        elif zeros == "float":
            inits["zp"] = rng.uniform(0, 2 ** bits - 1,
                                      n * blocks).astype(np.float32)
            names.append("zp")
        if bias:
            inits["bias"] = rng.standard_normal(n).astype(np.float32)
            names += [""] * (5 - len(names)) + ["bias"]
        node = helper.make_node("MatMulNBits", names, ["y"], name="mmnb",
                                domain="com.microsoft", K=k, N=n, bits=bits,
                                block_size=block)
        feeds = {"a": rng.standard_normal((*a_shape, k)).astype(np.float32)}
        return (name, node, feeds, ["y"], inits)

    yield case("matmulnbits_4bit", (2, 3), 64, 48, 32)
    yield case("matmulnbits_4bit_padded_block_zero_points_bias", (5,), 80,
               40, 16, zeros="packed", bias=True)
    yield case("matmulnbits_4bit_float_zero_points", (1, 4), 64, 24, 32,
               zeros="float")
    yield case("matmulnbits_8bit_zero_points", (2, 2), 96, 32, 64, bits=8,
               zeros="packed")


def write_cases(out_dir):
    rng = np.random.default_rng(0)
    for name, node, feeds, outs, *rest in (*_cases(rng), *_gqa_cases(rng),
                                           *_matmulnbits_cases(rng)):
        inits = rest[0] if rest else {}
        inputs = [helper.make_tensor_value_info(
            k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            for k, v in feeds.items()]
        outputs = [helper.make_tensor_value_info(
            o, I32 if o == "mask_index" else F, None) for o in outs]
        graph = helper.make_graph(
            [node], name, inputs, outputs,
            initializer=[numpy_helper.from_array(v, k)
                         for k, v in inits.items()])
        model = helper.make_model(graph, opset_imports=[
            helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
            ir_version=8)
        sess = ort.InferenceSession(model.SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        expected = sess.run(outs, feeds)
        case_dir = os.path.join(out_dir, "test_ort_contrib_" + name)
        ds = os.path.join(case_dir, "test_data_set_0")
        os.makedirs(ds, exist_ok=True)
        onnx.save(model, os.path.join(case_dir, "model.onnx"))
        for j, (k, v) in enumerate(feeds.items()):
            with open(os.path.join(ds, f"input_{j}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(v, k).SerializeToString())
        for j, (k, v) in enumerate(zip(outs, expected)):
            with open(os.path.join(ds, f"output_{j}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(v, k).SerializeToString())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    write_cases(args.output)
    print(f"{len(os.listdir(args.output))} cases in {args.output}")


if __name__ == "__main__":
    main()
