#!/usr/bin/env python3
"""Side-by-side CPU benchmark: Transfuse (AOT .so) against ONNX Runtime and
PyTorch on full-size models with random weights (no downloads).

For each model it builds the Hugging Face model from a config, exports it to
ONNX once, writes a test-data set whose expected outputs come from ONNX
Runtime, and then, on the same ONNX file, the same inputs and the same
thread count, times:
  - Transfuse: `transfuse compile` (compile time and phases recorded) and
    `transfuse-run MODEL.so --repeat N` with TRANSFUSE_NUM_THREADS=N, which
    also checks the outputs against ONNX Runtime's;
  - ONNX Runtime: CPU EP, all graph optimizations, intra-op threads = N;
  - PyTorch eager (torch.set_num_threads(N), inference mode);
  - PyTorch torch.compile (inductor, default mode), compiled anew at each
    thread count (its C++ kernels take the count at compile time); a
    failure is recorded, not fatal; --no-torch-compile skips it.
Then, in bf16: Transfuse compiled with `--precision bf16` (products by
weights on AMX tiles, or with VDPBF16PS on CPUs with AVX512-BF16 and no
AMX, and attention's products on bf16 operands), and with `--precision bf16
--bf16-attention=false` (attention's products f32; each one's error
against ONNX Runtime's f32 outputs is reported), against
PyTorch eager with the model in torch.bfloat16, and against ONNX Runtime
f32. It also records the CPU's model name, measures the FP32 FMA and bf16
(AMX or VDPBF16PS) peaks and the GEMM microkernels on layer shapes
(bench/gemm_bench.cpp) in the same run, and reports min and median
latency, the ratio to each peer, achieved GFLOP/s and % of the measured
FMA peak. The same run times ONNX Runtime's, PyTorch's and oneDNN's f32
products on gemm_bench's layer shapes (one thread) against the same peak.

usage: bench.py [--quick] [--only MODEL] [--work DIR] [--repeat N]
                [--rounds R] [--threads 1,2] [--no-torch-compile]
  The engines take turns: R rounds (default 3) of ceil(N / R) runs each
  (after 3 warm-up runs per round), Transfuse, ONNX Runtime, PyTorch eager,
  Transfuse bf16, Transfuse bf16 with f32 attention, PyTorch bf16 in turn;
  a median is the median of the
  round medians and a min the min over all runs (torch.compile: one round
  of N runs, after its compile).
  --quick: bert-base at seq 128 only (a few minutes). Otherwise bert-base,
  GPT-2 (124M) prefill and t5-base's encoder at 128 and 512 tokens, one
  GPT-2 decode step (with its LM head) on a 128- and a 1023-token past
  ("seq" is the past length; 1023 + the new token fill GPT-2's 1024
  positions), the same step for a batch of 4 sequences on a 128-token past
  (gpt2-decode-b4), and one t5-base decoder step on a 128-token past and a
  128-token encoder memory.
Writes DIR/results.json (results-MODEL.json with --only), a bar chart of
the median latencies next to it (.png; needs matplotlib, which
`scripts/setup.sh --fixtures` installs), and the markdown tables of
docs/benchmarks.md, which it prints and writes next to it (.md) under the
command, date, CPU and commit that produced them.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.join(ROOT, "build", "bin")


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def by_name(model, in_names, out_names):
    """A Hugging Face model called with positional inputs, returning a tuple
    of the named outputs (what torch.onnx.export and the timing call)."""
    import torch

    class ByName(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, *args):
            out = self.m(**dict(zip(in_names, args)))
            return tuple(out[o] for o in out_names)

    return ByName(model).eval()


def encoder_like(model, vocab, seq, flops):
    """Inputs input_ids and attention_mask [1, seq] (both dims dynamic in
    the export), output last_hidden_state."""
    import torch
    in_names, out_names = ("input_ids", "attention_mask"), ("last_hidden_state",)
    ids = torch.randint(0, vocab, (1, seq))
    mask = torch.ones(1, seq, dtype=torch.int64)
    axes = {n: {0: "batch", 1: "seq"} for n in in_names}
    return by_name(model, in_names, out_names), in_names, (ids, mask), \
        out_names, flops, axes


def bert_base(seq):
    """bert-base-uncased's shape: 12 layers, hidden 768, 12 heads."""
    import torch
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    model = BertModel(BertConfig()).eval()
    return encoder_like(model, 30522, seq, bert_flops(12, 768, 3072, seq))


def gpt2(seq):
    """GPT-2 small (124M): 12 layers, hidden 768, 12 heads; prefill."""
    import torch
    from transformers import GPT2Config, GPT2Model
    torch.manual_seed(0)
    model = GPT2Model(GPT2Config()).eval()
    return encoder_like(model, 50257, seq, bert_flops(12, 768, 3072, seq))


def gpt2_decode(past, batch=1):
    """GPT-2 small with its LM head: one new token on a `past`-token KV
    cache, for `batch` sequences (inputs input_ids [B, 1], attention_mask
    [B, past + 1], then key and value [B, 12, past, 64] per layer; outputs
    logits and the present key/values). The past length and batch are
    dynamic in the export."""
    import torch
    from transformers import DynamicCache, GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    config = GPT2Config()
    if past + 1 > config.n_positions:
        raise SystemExit("gpt2-decode: a %d-token past and the new token "
                         "exceed GPT-2's %d positions" % (past,
                                                          config.n_positions))
    model = GPT2LMHeadModel(config).eval()
    layers = config.n_layer

    class WithCache(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, *past):
            cache = DynamicCache(
                ddp_cache_data=[(past[2 * i], past[2 * i + 1])
                                for i in range(layers)], config=config)
            out = self.model(input_ids=input_ids,
                             attention_mask=attention_mask,
                             past_key_values=cache, use_cache=True)
            flat = []
            for layer in out.past_key_values.layers:
                flat += [layer.keys, layer.values]
            return (out.logits, *flat)

    past_names = tuple(n for i in range(layers) for n in (
        "past_key_values.%d.key" % i, "past_key_values.%d.value" % i))
    in_names = ("input_ids", "attention_mask") + past_names
    out_names = ("logits",) + tuple(
        n.replace("past_key_values", "present") for n in past_names)
    g = torch.Generator().manual_seed(past)
    inputs = (torch.randint(0, config.vocab_size, (batch, 1), generator=g),
              torch.ones(batch, past + 1, dtype=torch.int64)) + tuple(
        torch.randn(batch, config.n_head, past, 64, generator=g)
        for _ in past_names)
    axes = {"input_ids": {0: "batch"},
            "attention_mask": {0: "batch", 1: "total"}}
    axes.update({n: {0: "batch", 2: "past"} for n in past_names})
    axes.update({n: {0: "batch", 2: "total"} for n in out_names[1:]})
    h, inter = 768, 3072
    flops = batch * (12 * (2 * (4 * h * h + 2 * h * inter)
                           + 4 * (past + 1) * h)
                     + 2 * h * config.vocab_size)
    return WithCache().eval(), in_names, inputs, out_names, flops, axes


def t5_base_encoder(seq):
    """t5-base's encoder: 12 layers, d_model 768, d_ff 3072, 12 heads."""
    import torch
    from transformers import T5Config, T5EncoderModel
    torch.manual_seed(0)
    config = T5Config(d_model=768, d_ff=3072, num_layers=12, num_heads=12,
                      d_kv=64)
    model = T5EncoderModel(config).eval()
    return encoder_like(model, 32128, seq, bert_flops(12, 768, 3072, seq))


def t5_base_decode(past):
    """One t5-base decoder step (with its LM head) on a `past`-token self
    cache and a 128-token encoder memory: inputs decoder_input_ids [1, 1],
    encoder_hidden_states [1, 128, 768], attention_mask [1, 128], then per
    layer the self key/value [1, 12, past, 64] and the cross key/value
    [1, 12, 128, 64]; outputs logits and the same presents. The module is
    the test fixtures' (test/models/generate.py, Seq2SeqWithCache)."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration
    sys.path.insert(0, os.path.join(ROOT, "test", "models"))
    from generate import Seq2SeqWithCache
    torch.manual_seed(0)
    config = T5Config(d_model=768, d_ff=3072, num_layers=12, num_heads=12,
                      d_kv=64)
    model = T5ForConditionalGeneration(config).eval()
    layers, memory, h, inter = 12, 128, 768, 3072
    past_names = tuple(n for i in range(layers) for n in (
        "past_key_values.%d.decoder.key" % i,
        "past_key_values.%d.decoder.value" % i,
        "past_key_values.%d.encoder.key" % i,
        "past_key_values.%d.encoder.value" % i))
    in_names = ("decoder_input_ids", "encoder_hidden_states",
                "attention_mask") + past_names
    out_names = ("logits",) + tuple(
        n.replace("past_key_values", "present") for n in past_names)
    g = torch.Generator().manual_seed(past)
    inputs = (torch.randint(0, config.vocab_size, (1, 1), generator=g),
              torch.randn(1, memory, h, generator=g),
              torch.ones(1, memory, dtype=torch.int64)) + tuple(
        torch.randn(1, 12, past if ".decoder." in n else memory, 64,
                    generator=g) for n in past_names)
    axes = {"decoder_input_ids": {0: "batch"},
            "encoder_hidden_states": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"}}
    for n in past_names:
        axes[n] = {0: "batch", 2: "past" if ".decoder." in n else "sequence"}
    for n in out_names[1:]:
        axes[n] = {0: "batch", 2: "total" if ".decoder." in n else "sequence"}
    # Per layer: self attention's 4 projections, cross attention's Q and O,
    # the FFN, and both attentions' dot products; then the LM head.
    flops = layers * (2 * (6 * h * h + 2 * h * inter)
                      + 4 * (past + 1 + memory) * h) \
        + 2 * h * config.vocab_size
    return (Seq2SeqWithCache(model, layers).eval(), in_names, inputs,
            out_names, flops, axes)


def bert_flops(layers, h, inter, s):
    # Every score counted, as the peers compute them: Transfuse's attention
    # skips a causal mask's upper triangle (LiveKeys in attention.cpp), so
    # its GFLOP/s on gpt2 prefill are nominal, a little over what it does.
    per_layer = 2 * s * (4 * h * h + 2 * h * inter) + 2 * 2 * s * s * h
    return layers * per_layer


def gpt2_decode_batch4(past):
    """One GPT-2 decode step for a batch of 4 sequences (gpt2_decode): the
    products' A has 4 rows, each weight still read once from DRAM."""
    return gpt2_decode(past, batch=4)


MODELS = {"bert-base": bert_base, "gpt2": gpt2, "gpt2-decode": gpt2_decode,
          "gpt2-decode-b4": gpt2_decode_batch4,
          "t5-base-encoder": t5_base_encoder, "t5-base-decode": t5_base_decode}


def export(name, seq, work):
    import onnxruntime as ort
    import torch
    sys.path.insert(0, os.path.join(ROOT, "test", "models"))
    from generate import save_set
    d = os.path.join(work, "%s-s%d" % (name, seq))
    onnx_path = os.path.join(d, "model.onnx")
    data = os.path.join(d, "test_data_set_0")
    model, in_names, inputs, out_names, flops, axes = MODELS[name](seq)
    if not os.path.exists(onnx_path):
        os.makedirs(data, exist_ok=True)
        log("exporting %s (seq %d)" % (name, seq))
        torch.onnx.export(model, inputs, onnx_path,
                          input_names=list(in_names),
                          output_names=list(out_names), dynamic_axes=axes,
                          opset_version=17, dynamo=False)
        feeds = {n: t.numpy() for n, t in zip(in_names, inputs)}
        sess = ort.InferenceSession(onnx_path,
                                    providers=["CPUExecutionProvider"])
        save_set(data, list(feeds), list(feeds.values()), list(out_names),
                 sess.run(list(out_names), feeds))
    return d, onnx_path, data, model, in_names, inputs, flops


def compile_transfuse(onnx_path, work_dir, precision="f32",
                      f32_attention=False, int4_weights=True):
    """transfuse compile into work_dir: model.so, model-bf16.so,
    model-bf16-f32att.so (f32_attention), model-f32w.so (int4_weights
    off: 4-bit weights as f32 too)."""
    suffix = "" if precision == "f32" else "-" + precision + (
        "-f32att" if f32_attention else "")
    so = os.path.join(work_dir, "model%s%s.so" % (
        suffix, "" if int4_weights else "-f32w"))
    t0 = time.perf_counter()
    p = subprocess.run([os.path.join(BIN, "transfuse"), "compile", onnx_path,
                        "-o", so, "--time-passes", "--precision", precision]
                       + (["--bf16-attention=false"] if f32_attention
                          else [])
                       + ([] if int4_weights else ["--int4-weights=false"]),
                       capture_output=True, text=True)
    compile_s = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit("transfuse compile failed:\n" + p.stderr)
    # `transfuse: <phase> (N ms)` lines, then --time-passes' report.
    return so, compile_s, p.stderr


def time_transfuse(so, data, threads, repeat, tolerance=()):
    env = dict(os.environ, TRANSFUSE_NUM_THREADS=str(threads))
    p = subprocess.run([os.path.join(BIN, "transfuse-run"), so,
                        "--test-data", data, "--repeat", str(repeat)] +
                       list(tolerance),
                       capture_output=True, text=True, env=env)
    out = p.stdout + p.stderr
    m = re.search(r"min ([0-9.]+) ms, median ([0-9.]+) ms", out)
    if p.returncode != 0 or not m:
        raise SystemExit("transfuse-run failed:\n" + out)
    err = re.findall(r"max abs err ([0-9.e+-]+)", out)
    of_range = re.findall(r"of range ([0-9.e+-]+)", out)
    scratch = re.search(r"peak scratch: ([0-9.]+) MiB", out)
    arena = re.search(r"planned arena: ([0-9.]+) MiB", out)
    return {"min_ms": float(m.group(1)), "median_ms": float(m.group(2)),
            "peak_scratch_mib": float(scratch.group(1)) if scratch else None,
            "planned_arena_mib": float(arena.group(1)) if arena else None,
            "max_abs_err_vs_ort": max(map(float, err)) if err else None,
            "max_err_of_range_vs_ort":
                max(map(float, of_range)) if of_range else None}


# bf16 is checked against ONNX Runtime's f32 outputs: the run must not fail
# on bf16's rounding, so every error is accepted and reported instead
# (test/models/run_bf16.sh is the test that holds bf16 to a reference).
BF16_REPORT_ONLY = ("--rtol", "0", "--atol", "0", "--range-tol", "1e30")


def time_ort(onnx_path, in_names, inputs, threads, repeat):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(onnx_path, opts,
                                providers=["CPUExecutionProvider"])
    feeds = {n: t.numpy() for n, t in zip(in_names, inputs)}
    return run_timed(lambda: sess.run(None, feeds), repeat)


def time_torch(model, inputs, threads, repeat):
    import torch
    torch.set_num_threads(threads)
    with torch.inference_mode():
        return run_timed(lambda: model(*inputs), repeat)


def time_torch_compile(model, inputs, threads, repeat):
    """torch.compile's latency at `threads`, with its compile time
    (compile_s), or {"error": message} when it fails here."""
    import torch
    torch.set_num_threads(threads)
    torch._dynamo.reset()
    try:
        compiled = torch.compile(model)
        with torch.inference_mode():
            t0 = time.perf_counter()
            compiled(*inputs)
            compile_s = time.perf_counter() - t0
            result = run_timed(lambda: compiled(*inputs), repeat)
    except Exception as e:  # any failure of the compiler is a result here
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        log("torch.compile failed: " + msg)
        return {"error": msg}
    result["compile_s"] = compile_s
    return result


def torch_bf16(model, inputs):
    """The model and its float inputs in torch.bfloat16 (a copy)."""
    import copy
    import torch
    return (copy.deepcopy(model).to(torch.bfloat16),
            tuple(t.to(torch.bfloat16) if t.is_floating_point() else t
                  for t in inputs))


def interleaved(timers, rounds):
    """Each timer run once per round, in turn, so that the machine's load,
    which drifts over minutes, falls on every engine alike. Per timer: the
    min of its rounds' mins, the median of their medians, each round's
    median (round_medians_ms), the median over the rounds of any other
    field ending in _ms, and the first round's other fields."""
    runs = {k: [] for k in timers}
    for _ in range(rounds):
        for k, fn in timers.items():
            runs[k].append(fn())
    out = {}
    for k, rs in runs.items():
        medians = [r["median_ms"] for r in rs]
        out[k] = dict(rs[0], min_ms=min(r["min_ms"] for r in rs),
                      median_ms=sorted(medians)[len(medians) // 2],
                      round_medians_ms=medians)
        for f in rs[0]:
            if f.endswith("_ms") and f not in ("min_ms", "median_ms"):
                out[k][f] = sorted(r[f] for r in rs)[len(rs) // 2]
    return out


def run_timed(fn, repeat):
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"min_ms": times[0], "median_ms": times[len(times) // 2]}


def cpu_model():
    """The CPU's model name, family and model, as /proc/cpuinfo gives them
    for the first CPU ('' elsewhere): a VM may show only the brand."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return ""
    return "%s (family %s, model %s)" % (fields.get("model name", "?"),
                                         fields.get("cpu family", "?"),
                                         fields.get("model", "?"))


def gemm_peak():
    # Built with the runtime (runtime/CMakeLists.txt).
    exe = os.path.join(BIN, "gemm_bench")
    if not os.path.exists(exe):
        raise SystemExit("%s is missing: run scripts/build.sh" % exe)
    # One core: the peak is per core, and so is this table.
    out = subprocess.run([exe, "20"], capture_output=True, text=True,
                         check=True,
                         env=dict(os.environ, TRANSFUSE_NUM_THREADS="1")).stdout
    found = re.search(r"FMA peak .*: ([0-9.]+) GFLOP/s", out)
    if not found:
        raise SystemExit("gemm_bench measured no FMA peak:\n" + out)
    return float(found.group(1)), out


def peer_gemm(gemm_table, peak, repeat):
    """The f32 products of gemm_bench's table (its [MxKxN] shapes) on one
    thread in ONNX Runtime (a MatMul by an initializer, which MLAS
    prepacks), PyTorch (torch.mm: MKL's sgemm in its wheels) and oneDNN
    (PyTorch's mkldnn linear, as torch.compile's frozen graphs call it:
    the weight reordered once into oneDNN's blocked layout for M rows, as
    Transfuse's is packed at compile time; None where PyTorch has no
    oneDNN), medians of `repeat` calls after 3 warm-up calls (run_timed),
    next to Transfuse's prepacked product from the table: GFLOP/s and % of
    the FMA peak measured in the same run. Returns the rows and a markdown
    table."""
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper, numpy_helper
    torch.set_num_threads(1)
    rows = []
    for line in gemm_table.splitlines():
        m = re.match(r"(.*?) \[(\d+)x(\d+)x(\d+)\]\s+([0-9.]+) ms", line)
        if not m:
            continue
        what, (mm, k, n) = m.group(1), map(int, m.group(2, 3, 4))
        flop = 2.0 * mm * k * n
        rng = np.random.default_rng(0)
        a = rng.standard_normal((mm, k), dtype=np.float32)
        w = rng.standard_normal((k, n), dtype=np.float32)
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["A", "W"], ["C"])], "gemm",
            [helper.make_tensor_value_info("A", TensorProto.FLOAT, [mm, k])],
            [helper.make_tensor_value_info("C", TensorProto.FLOAT, [mm, n])],
            [numpy_helper.from_array(w, "W")])
        model = helper.make_model(graph,
                                  opset_imports=[helper.make_opsetid("", 17)])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(model.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        ta, tw = torch.from_numpy(a), torch.from_numpy(w)
        tc = torch.empty(mm, n)
        ort_s = run_timed(lambda: session.run(None, {"A": a}),
                          repeat)["median_ms"] / 1e3
        torch_s = run_timed(lambda: torch.mm(ta, tw, out=tc),
                            repeat)["median_ms"] / 1e3
        onednn = None
        if hasattr(torch.ops.mkldnn, "_reorder_linear_weight"):
            packed = torch.ops.mkldnn._reorder_linear_weight(
                tw.t().contiguous(), mm)
            onednn = flop / (run_timed(
                lambda: torch.ops.mkldnn._linear_pointwise(
                    ta, packed, None, "none", [], ""),
                repeat)["median_ms"] / 1e3) / 1e9
        ours_s = float(m.group(5)) / 1e3
        rows.append({"shape": what, "m": mm, "k": k, "n": n,
                     "transfuse_gflops": flop / ours_s / 1e9,
                     "onnxruntime_gflops": flop / ort_s / 1e9,
                     "torch_mm_gflops": flop / torch_s / 1e9,
                     "onednn_gflops": onednn})
    table = ["| shape (M×K×N) | Transfuse, B prepacked | ONNX Runtime MatMul "
             "(MLAS) | PyTorch torch.mm (MKL) | oneDNN, weight prepacked "
             "|", "|---|---|---|---|---|"]
    for r in rows:
        table.append("| %s (%d×%d×%d) | %s |" % (
            r["shape"], r["m"], r["k"], r["n"], " | ".join(
                "–" if r[key] is None else
                "%.1f GFLOP/s (%.0f%%)" % (r[key], 100 * r[key] / peak)
                for key in ("transfuse_gflops", "onnxruntime_gflops",
                            "torch_mm_gflops", "onednn_gflops"))))
    return rows, "\n".join(table)


def git_commit():
    """", at <commit>" of the checkout bench.py runs from (" with local
    changes" when its tracked files differ), or "" outside a git checkout."""
    def git(*args):
        return subprocess.run(["git", "-C", ROOT] + list(args),
                              capture_output=True, text=True,
                              check=True).stdout.strip()
    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return ""
    return ", at %s%s" % (head, " with local changes" if dirty else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "bench"))
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternate the engines this many times, "
                         "ceil(repeat / rounds) runs each")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--no-torch-compile", action="store_true",
                    help="skip torch.compile (it compiles for minutes)")
    ap.add_argument("--only", choices=sorted(MODELS),
                    help="only this model's configurations")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    threads = [int(t) for t in args.threads.split(",")]
    configs = [("bert-base", 128)] if args.quick else [
        ("bert-base", 128), ("bert-base", 512), ("gpt2", 128), ("gpt2", 512),
        ("gpt2-decode", 128), ("gpt2-decode", 1023), ("gpt2-decode-b4", 128),
        ("t5-base-encoder", 128),
        ("t5-base-encoder", 512), ("t5-base-decode", 128)]
    if args.only:
        configs = [c for c in configs if c[0] == args.only]
    # What this run prints to stdout goes to DIR/results[-MODEL].md too,
    # under the command that produced it.
    md = []

    def out(text=""):
        print(text)
        md.append(text)

    log("measuring the FMA peak and the GEMM microkernel")
    peak, gemm_table = gemm_peak()
    out("```\n" + gemm_table.rstrip("\n") + "\n```\n")
    log("the same f32 products in ONNX Runtime and PyTorch (1 thread)")
    peers, peer_table = peer_gemm(gemm_table, peak, args.repeat)
    out(peer_table + "\n")
    results = {"cpu": cpu_model(), "fma_peak_gflops_1core": peak,
               "gemm": gemm_table, "gemm_peers": peers, "runs": []}
    out("CPU: " + results["cpu"] + "\n")
    for name, seq in configs:
        d, onnx_path, data, model, in_names, inputs, flops = export(
            name, seq, args.work)
        log("transfuse compile %s seq %d" % (name, seq))
        so, compile_s, compile_log = compile_transfuse(onnx_path, d)
        log("transfuse compile --precision bf16 %s seq %d" % (name, seq))
        so_bf16, compile_bf16_s, _ = compile_transfuse(onnx_path, d, "bf16")
        log("transfuse compile --precision bf16 --bf16-attention=false %s "
            "seq %d" % (name, seq))
        so_f32att, _, _ = compile_transfuse(onnx_path, d, "bf16", True)
        model_bf16, inputs_bf16 = torch_bf16(model, inputs)
        for n in threads:
            log("%s seq %d at %d thread(s)" % (name, seq, n))
            rep = -(-args.repeat // args.rounds)  # runs per round
            row = {"model": name, "seq": seq,
                   "batch": int(inputs[0].shape[0]), "threads": n,
                   "gflop": flops / 1e9,
                   "transfuse_compile_s": compile_s,
                   "transfuse_compile_log": compile_log,
                   "transfuse_bf16_compile_s": compile_bf16_s,
                   "pytorch_compile": (
                       {"error": "skipped (--no-torch-compile)"}
                       if args.no_torch_compile else
                       time_torch_compile(model, inputs, n, args.repeat))}
            row.update(interleaved({
                "transfuse": lambda: time_transfuse(so, data, n, rep),
                "onnxruntime": lambda: time_ort(onnx_path, in_names, inputs,
                                                n, rep),
                "pytorch_eager": lambda: time_torch(model, inputs, n, rep),
                "transfuse_bf16": lambda: time_transfuse(
                    so_bf16, data, n, rep, BF16_REPORT_ONLY),
                "transfuse_bf16_f32att": lambda: time_transfuse(
                    so_f32att, data, n, rep, BF16_REPORT_ONLY),
                "pytorch_eager_bf16": lambda: time_torch(
                    model_bf16, inputs_bf16, n, rep)}, args.rounds))
            for k in ("transfuse", "onnxruntime", "pytorch_eager",
                      "pytorch_compile", "transfuse_bf16",
                      "transfuse_bf16_f32att", "pytorch_eager_bf16"):
                if "error" in row[k]:
                    continue
                row[k]["gflops"] = flops / 1e9 / (row[k]["median_ms"] / 1e3)
                row[k]["pct_of_peak"] = 100 * row[k]["gflops"] / (peak * n)
            results["runs"].append(row)
    out_name = "results.json" if not args.only else "results-%s.json" % args.only
    with open(os.path.join(args.work, out_name), "w") as f:
        json.dump(results, f, indent=2)
    out("| model | seq | threads | Transfuse median (min) | ORT median (min)"
        " | PyTorch eager median | torch.compile median (compile) "
        "| Transfuse / ORT | Transfuse / torch.compile "
        "| Transfuse GFLOP/s (% peak) |")
    out("|---|---|---|---|---|---|---|---|---|---|")
    for r in results["runs"]:
        t, o, p = r["transfuse"], r["onnxruntime"], r["pytorch_eager"]
        pc = r["pytorch_compile"]
        if "error" in pc:
            compiled, vs_compiled = "failed: " + pc["error"][:60], "-"
        else:
            compiled = "%.1f ms (%.0f s)" % (pc["median_ms"], pc["compile_s"])
            vs_compiled = "%.2f" % (t["median_ms"] / pc["median_ms"])
        out("| %s | %d | %d | %.1f ms (%.1f) | %.1f ms (%.1f) | %.1f ms | "
            "%s | %.2f | %s | %.0f (%.0f%%) |" % (
                r["model"], r["seq"], r["threads"], t["median_ms"],
                t["min_ms"], o["median_ms"], o["min_ms"], p["median_ms"],
                compiled, t["median_ms"] / o["median_ms"], vs_compiled,
                t["gflops"], t["pct_of_peak"]))
    out()
    out("| model | seq | threads | Transfuse bf16 median (min) | "
        "PyTorch bf16 median | ORT f32 median | ORT f32 / Transfuse bf16 | "
        "Transfuse bf16 / PyTorch bf16 | max abs err vs ORT f32 "
        "(of output range) |")
    out("|---|---|---|---|---|---|---|---|---|")
    for r in results["runs"]:
        for key, how in (("transfuse_bf16", ""),
                         ("transfuse_bf16_f32att", " (f32 attention)")):
            b, pb, o = r[key], r["pytorch_eager_bf16"], r["onnxruntime"]
            out("| %s%s | %d | %d | %.1f ms (%.1f) | %.1f ms | %.1f ms | "
                "%.2f× | %.2f | %.3g (%.2g) |" % (
                    r["model"], how, r["seq"], r["threads"],
                    b["median_ms"], b["min_ms"], pb["median_ms"],
                    o["median_ms"], o["median_ms"] / b["median_ms"],
                    b["median_ms"] / pb["median_ms"],
                    b["max_abs_err_vs_ort"], b["max_err_of_range_vs_ort"]))
    out()
    for name, seq in configs:
        r = next(x for x in results["runs"]
                 if x["model"] == name and x["seq"] == seq)
        out("- %s seq %d: transfuse compile %.1f s (bf16 %.1f s), max abs err "
            "vs ORT %s" % (name, seq, r["transfuse_compile_s"],
                           r["transfuse_bf16_compile_s"],
                           r["transfuse"]["max_abs_err_vs_ort"]))
    md_path = os.path.join(args.work, out_name[:-len(".json")] + ".md")
    with open(md_path, "w") as f:
        f.write("Command: `bench/run.sh %s` (%s, %s%s)\n\n" % (
            " ".join(sys.argv[1:]), time.strftime("%Y-%m-%d %H:%M UTC",
                                                   time.gmtime()),
            results["cpu"], git_commit()))
        f.write("\n".join(md) + "\n")
    print("results: " + os.path.join(args.work, out_name))
    print("tables: " + md_path)
    chart = os.path.join(args.work, out_name[:-len(".json")] + ".png")
    if write_chart(results, chart):
        print("chart: " + chart)


# (key in a run, label, colour) of each bar in the chart.
CHART_BARS = [("transfuse", "Transfuse f32", "#1f5fa8"),
              ("onnxruntime", "ONNX Runtime f32", "#888888"),
              ("pytorch_eager", "PyTorch eager f32", "#d98c1f"),
              ("pytorch_compile", "torch.compile f32", "#a0522d"),
              ("transfuse_bf16", "Transfuse bf16", "#5fa8e8"),
              ("transfuse_bf16_f32att", "Transfuse bf16, f32 attention",
               "#9fd0f5"),
              ("pytorch_eager_bf16", "PyTorch eager bf16", "#f2c27a")]


def write_chart(results, path):
    """Median latency per configuration and engine, as grouped bars (lower
    is better), with the min as a tick (an engine that failed: no bar);
    False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("no matplotlib: chart not written (scripts/setup.sh --fixtures)")
        return False
    runs = results["runs"]
    labels = ["%s %s\n%d thread%s" % (
        r["model"], ("past %d" if "decode" in r["model"] else "seq %d")
        % r["seq"], r["threads"], "" if r["threads"] == 1 else "s")
        for r in runs]
    width = 0.8 / len(CHART_BARS)
    fig, ax = plt.subplots(figsize=(max(6, 1.9 * len(runs)), 4.5))
    for b, (key, label, colour) in enumerate(CHART_BARS):
        xs = [i + (b - (len(CHART_BARS) - 1) / 2) * width
              for i in range(len(runs))]
        nan = float("nan")
        med = [r.get(key, {}).get("median_ms", nan) for r in runs]
        ax.bar(xs, med, width, label=label, color=colour)
        ax.scatter(xs, [r.get(key, {}).get("min_ms", nan) for r in runs],
                   marker="_", color="black", s=40, zorder=3)
    ax.set_xticks(range(len(runs)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("latency, ms (median; tick: min)")
    ax.set_title("batch 1; within a group, one run on the same ONNX file "
                 "and thread count", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


if __name__ == "__main__":
    main()
