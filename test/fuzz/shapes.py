#!/usr/bin/env python3
"""Every fixture at random batch sizes, lengths and padding, against ONNX
Runtime.

The committed test-data sets hold three shapes per fixture. Kernels have
edges (row blocks of 12, key panels of 32, masked tails), and the fused
attention skips keys by reading the mask, so other sizes and other padding
can break where those do not. This compiles each fixture (AOT, f32, through
the Python binding), then, for CASES random cases each:
- batch 1-5, a length among edge sizes up to the model's positions;
- an attention mask with some rows padded, at least one live token per
  row: on the left (as batched prompts are) in models without token types
  or a decoder (the decoder-only ones, and RoBERTa), else on the right;
- for KV-cache decode exports, a past of random length and values, and a
  mask over past and new tokens (a sliding-window export: a past shorter
  than the window under a mask over a longer history, as its cache keeps
  it); for encoder-decoder ones, encoder states;
- for onnxruntime-genai's exports (GroupQueryAttention: one model for
  prompts and decode steps), a first prompt (no padding: ONNX Runtime
  leaves a padded prompt's rows undefined), a decode step whose sequences
  have pasts of their own lengths (right-padded, as seqlens_k implies), or
  a later prompt after a past (batch 1, as ONNX Runtime requires).
It runs the model in ONNX Runtime and in Transfuse on the same inputs and
compares every output (tolerances in TOLERANCES below). A case ONNX Runtime
rejects, or whose reference is not finite (a row whose every key is -inf),
is skipped and counted; an error from Transfuse where ONNX Runtime ran is a
failure, and so is a crash (the process dies).

With --precision bf16 the model is compiled so, and the reference is ONNX
Runtime running the same bf16 rounding (test/models/bf16_reference.py
--attention), held to run_bf16.sh's tolerance: 1% of each output's range.
Only the fixtures with one export (not the KV-cache ones, in
subdirectories, nor onnxruntime-genai's, whose attention products the
reference cannot see inside GroupQueryAttention) take part: the KV-cache fixtures' weights (init std 0.3)
make softmax so sharp that bf16's rounding alone moves their outputs by
3-41% of the range from f32 at these shapes, and the last-bit differences
between the kernel and the emulation (accumulation order, exp) by up to 4%
(ours against the reference, seeds 1-3; 0-0.2% on the other fixtures).

usage: shapes.py --bin BIN --models DIR --work DIR [--cases N] [--seed S]
                 [--precision f32|bf16] [--only NAME]
"""
import argparse
import glob
import json
import os
import re
import sys

import numpy as np
import onnx
import onnxruntime as ort

# (rtol, atol, range tol) by precision. f32: run_fixture.sh's tolerances,
# plus 1e-4 of the output's largest magnitude
# (transfuse-run's --range-tol): the KV fixtures' logits reach 12-130, and in
# larger batches than the committed sets' a few of their ~1e5 logits near 0
# come out of cancellation 2e-4 to 4e-4 off (3e-6 to 3e-5 of the range).
# A mask or an edge read wrong is off by more (one dead key taken as
# live: 0.16% and 0.56% of the range in two t5_kv decode cases). bf16:
# run_bf16.sh's.
TOLERANCES = {"f32": (1e-3, 1e-4, 1e-4),
              "bf16": (0.0, 1e-5, 1e-2)}
MAX_POSITIONS = 128  # the fixtures' position tables (generate.py)
LENGTHS = [1, 2, 3, 7, 11, 12, 13, 16, 24, 31, 32, 33, 47, 64, 65, 97, 100,
           127, 128]
VOCAB = 1000  # every fixture's (generate.py)


def graph_inputs(path):
    g = onnx.load(path, load_external_data=False).graph
    inits = {i.name for i in g.initializer}
    return [(i.name, [d.dim_value if d.HasField("dim_value") else None
                      for d in i.type.tensor_type.shape.dim])
            for i in g.input if i.name not in inits]


def sliding_window(path):
    """The window of a Hugging Face sliding-window decode export (Mistral's
    fixture: "sliding window N" in its manifest's description), else None.
    Its cache holds at most N - 1 past tokens while the attention mask
    covers the whole history (its committed sets: a past of 7 under masks
    of 17 and 34), and ONNX Runtime rejects a past of N or more."""
    manifest = os.path.join(os.path.dirname(path), "manifest.json")
    if not os.path.exists(manifest):
        return None
    with open(manifest) as f:
        m = re.search(r"sliding window (\d+)",
                      json.load(f).get("description", ""))
    return int(m.group(1)) if m else None


def genai_cache(path):
    """For an onnxruntime-genai export: (head size, positions), from its
    first GroupQueryAttention (packed QKV from a MatMul, or MatMulNBits, by
    a weight of (heads + 2 KV heads) x head size columns) and its cos_cache
    rows; None
    for other models."""
    g = onnx.load(path).graph
    gqa = [n for n in g.node if n.op_type == "GroupQueryAttention"]
    if not gqa:
        return None
    attrs = {a.name: onnx.helper.get_attribute_value(a)
             for a in gqa[0].attribute}
    inits = {i.name: i for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}[gqa[0].input[0]]
    if producer.op_type == "MatMulNBits":  # int4 weights: N columns
        width = next(onnx.helper.get_attribute_value(a)
                     for a in producer.attribute if a.name == "N")
    else:
        width = inits[producer.input[1]].dims[1]
    head = width // (attrs["num_heads"] + 2 * attrs["kv_num_heads"])
    return head, inits[gqa[0].input[7]].dims[0]


def make_genai_case(rng, inputs, head, positions):
    """Feeds for an onnxruntime-genai export: a first prompt, a decode step
    with right-padded pasts, or a later prompt (above)."""
    kind = rng.choice(["prompt", "decode", "later prompt"])
    batch = 1 if kind == "later prompt" else int(rng.integers(1, 6))
    if kind == "prompt":
        past = 0
        new = int(rng.choice([n for n in LENGTHS if n <= positions]))
    elif kind == "decode":
        past, new = int(rng.integers(1, positions)), 1
    else:
        new = int(rng.choice([2, 3, 7, 12, 13]))
        past = int(rng.integers(1, positions - new + 1))
    mask = np.ones((batch, past + new), np.int64)
    if kind == "decode":
        for b in range(batch):  # this row's past: its first `live` rows
            if rng.random() < 0.6:
                mask[b, int(rng.integers(0, past)) + 1:] = 0
    feeds = {}
    for name, dims in inputs:
        if name == "input_ids":
            feeds[name] = rng.integers(0, VOCAB, (batch, new)).astype(np.int64)
        elif name == "attention_mask":
            feeds[name] = mask
        elif "past" in name:
            feeds[name] = rng.standard_normal(
                (batch, dims[1], past, head)).astype(np.float32)
        else:
            raise SystemExit("no rule for input %r" % name)
    label = "%s, batch %d, new %d, past %d, padded rows %d" % (
        kind, batch, new, past, int((mask.min(axis=1) == 0).sum()))
    return feeds, label


def mask_rows(rng, batch, length, left):
    """A [batch, length] 0/1 mask: per row none, or some padding on one side
    (the left for decoders' batched prompts), at least one live token."""
    mask = np.ones((batch, length), np.int64)
    for b in range(batch):
        if length > 1 and rng.random() < 0.6:
            pad = int(rng.integers(1, length))
            if left:
                mask[b, :pad] = 0
            else:
                mask[b, length - pad:] = 0
    return mask


def make_case(rng, inputs, window=None):
    """Feeds for one case, by each input's role (its name), and a label.
    With a sliding `window` (a decode export), a past of at most window - 1
    tokens under a mask over a longer history."""
    names = [n for n, _ in inputs]
    has_past = any("past" in n for n in names)
    seq2seq = "encoder_hidden_states" in names or "decoder_input_ids" in names
    left = not seq2seq and "token_type_ids" not in names  # padding side
    batch = int(rng.integers(1, 6))
    if has_past:
        # Decoder-only decode exports take one new token (ONNX Runtime
        # rejects more); an encoder-decoder's decoder takes a few.
        new = int(rng.choice([1, 2])) if seq2seq else 1
        past = int(rng.integers(1, MAX_POSITIONS - new + 1))
        history = past  # the tokens before the new ones, under the mask
        if window:
            past = int(rng.integers(1, window))
            history = int(rng.integers(past, MAX_POSITIONS - new + 1))
    else:
        new, past, history = 0, 0, 0
    length = int(rng.choice(LENGTHS))  # encoder (or only) sequence
    dec_len = int(rng.choice([1, 2, 5, 17, 33]))
    if has_past and not seq2seq:
        length = new
    feeds = {}
    for name, dims in inputs:
        if name == "input_ids":
            feeds[name] = rng.integers(0, VOCAB, (batch, length))
        elif name == "decoder_input_ids":
            feeds[name] = rng.integers(
                0, VOCAB, (batch, new if has_past else dec_len))
        elif name == "token_type_ids":
            feeds[name] = rng.integers(0, 2, (batch, length))
        elif name == "task_type_ids":
            feeds[name] = rng.integers(0, 3, (batch, length))
        elif name == "attention_mask":
            total = history + length if has_past and not seq2seq else length
            feeds[name] = mask_rows(rng, batch, total, left)
        elif name == "encoder_hidden_states":
            feeds[name] = rng.standard_normal(
                (batch, length, dims[2])).astype(np.float32)
        elif "past" in name:
            keys = length if ".encoder." in name else past
            feeds[name] = rng.standard_normal(
                (batch, dims[1], keys, dims[3])).astype(np.float32)
        else:
            raise SystemExit("no rule for input %r" % name)
    for name in ("input_ids", "decoder_input_ids"):
        if name in feeds:
            feeds[name] = feeds[name].astype(np.int64)
    label = "batch %d, length %d" % (batch, length)
    if "decoder_input_ids" in feeds:
        label += ", decoder length %d" % feeds["decoder_input_ids"].shape[1]
    if has_past:
        label += ", past %d" % past
        if history != past:
            label += " of a history of %d" % history
    if "attention_mask" in feeds:
        m = feeds["attention_mask"]
        label += ", padded rows %d" % int((m.min(axis=1) == 0).sum())
    return feeds, label


def bf16_session(bf16_reference, path):
    """ONNX Runtime on the model with --precision bf16's rounding
    (bf16_reference.py --attention; its graph optimizations off, so that
    it keeps the casts)."""
    model = onnx.load(path)
    scores, pv = bf16_reference.attention_products(model)
    bf16_reference.emulate(model)
    bf16_reference.round_activations(model, scores, pv)
    options = ort.SessionOptions()
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def fixtures(models, only):
    paths = sorted(glob.glob(os.path.join(models, "*", "model.onnx")) +
                   glob.glob(os.path.join(models, "*", "*", "model.onnx")))
    for p in paths:
        name = os.path.relpath(os.path.dirname(p), models)
        if not only or name in only:
            yield name, p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--cases", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--precision", choices=sorted(TOLERANCES), default="f32")
    ap.add_argument("--only", action="append")
    args = ap.parse_args()
    rtol, atol, range_tol = TOLERANCES[args.precision]
    os.environ.setdefault("TRANSFUSE_BIN_DIR", os.path.abspath(args.bin))
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, os.pardir, os.pardir, "python"))
    sys.path.insert(0, os.path.join(here, os.pardir, "models"))
    import transfuse
    import bf16_reference

    ort.set_default_logger_severity(3)  # its rejections are counted
    os.makedirs(args.work, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    passed, failed, skipped = 0, 0, 0
    for name, path in fixtures(args.models, args.only):
        genai = genai_cache(path)
        if args.precision == "bf16" and (os.sep in name or genai):
            continue  # a KV-cache export (above)
        so = os.path.join(args.work, name.replace("/", ".") + ".so")
        try:
            model = transfuse.compile(path, so, precision=args.precision)
        except transfuse.Error as e:
            print("FAIL %s: compile: %s" % (name, e), flush=True)
            failed += 1
            continue
        if args.precision == "bf16":
            sess = bf16_session(bf16_reference, path)
        else:
            sess = ort.InferenceSession(path,
                                        providers=["CPUExecutionProvider"])
        inputs = graph_inputs(path)
        window = sliding_window(path)
        for _ in range(args.cases):
            feeds, label = (make_genai_case(rng, inputs, *genai) if genai
                            else make_case(rng, inputs, window))
            try:
                expected = sess.run(None, feeds)
            except Exception:  # a shape this export cannot take
                skipped += 1
                print("skip %s (%s): ONNX Runtime rejects it" % (name, label))
                continue
            if not all(np.isfinite(e).all() for e in expected
                       if e.dtype.kind == "f"):
                skipped += 1
                print("skip %s (%s): ONNX Runtime's outputs are not finite"
                      % (name, label))
                continue
            try:
                got = model.run(feeds)
            except transfuse.Error as e:
                failed += 1
                print("FAIL %s (%s): %s" % (name, label, e), flush=True)
                continue
            bad = []
            for o, e in zip(model.outputs, expected):
                g = got[o.name]
                if g.shape != e.shape:
                    bad.append("%s: shape %s, expected %s"
                               % (o.name, g.shape, e.shape))
                    continue
                err = np.abs(g.astype(np.float64) - e)
                off = err > (atol + rtol * np.abs(e) +
                             range_tol * np.abs(e).max())
                if off.any():
                    i = np.unravel_index(np.argmax(err - rtol * np.abs(e)),
                                         e.shape)
                    bad.append("%s: %d of %d off, max abs err %.3g (at %s: "
                               "%.6g, expected %.6g; max |expected| %.3g)"
                               % (o.name, off.sum(), off.size, err.max(), i,
                                  g[i], e[i], np.abs(e).max()))
            if bad:
                failed += 1
                print("FAIL %s (%s): %s" % (name, label, "; ".join(bad)),
                      flush=True)
            else:
                passed += 1
                print("ok   %s (%s)" % (name, label), flush=True)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
