#!/usr/bin/env python3
"""Transfuse against ONNX Runtime on an onnxruntime-genai export.

onnxruntime-genai's model builder writes one decoder model for prompts and
decode steps, each layer's attention a com.microsoft GroupQueryAttention
(packed QKV, rotary, a KV cache whose per-sequence past comes from the
attention mask). This builds a LlamaForCausalLM with random weights (no
download) in a small-LLM shape (8 layers, hidden 1024, 16 query / 4 KV
heads of 64, FFN 2816, vocabulary 32000), runs the builder on it (fp32,
CPU), and on that one ONNX file, at 1 and 2 threads, times a 128-token
prompt and one decode step on a 128- and a 1023-token past (random past
values; the inputs and ONNX Runtime's outputs are a test-data set, which
`transfuse-run` checks its outputs against):
  - Transfuse: the AOT .so, `transfuse-run --repeat N`;
  - ONNX Runtime: CPU EP, all graph optimizations, intra-op threads = N.
Then (with --int4 too) greedy generation of 128 tokens after a
128-token prompt: the time to the first token, each decode step's (from
one token to the next), and whether both generate the same ids (else how
many leading ids agree):
  - Transfuse: `transfuse generate` on the builder's directory (f32, and
    --precision bf16: how many leading ids agree is reported);
  - onnxruntime-genai: its Generator (greedy) on the same directory, the
    decoder's intra-op threads = N.
With --int4, the builder's int4 export of the same model (MatMulNBits,
ONNX Runtime's default accuracy level, which rounds activations to int8)
instead: the prompt and decode steps against ONNX Runtime, Transfuse f32
(the weights kept in 4 bits, dequantized to the same floats as they are
multiplied), f32 with --int4-weights=false (dequantized to f32 weights
at compile time) and --precision bf16 (dequantized to bf16).
The engines take turns in R rounds (bench.py's `interleaved`); a median is
the median of the round medians.

Needs the venv with torch and transformers (scripts/setup.sh --fixtures)
and onnxruntime-genai, installed beside it (its wheel pins no torch):
    .venv/bin/pip install --no-deps --target DIR onnxruntime-genai
    PYTHONPATH=DIR .venv/bin/python bench/genai.py [--repeat N] [--rounds R]
        [--threads 1,2] [--generate-only | --int4]
Writes WORK/results-genai.json and prints a markdown table.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, os.pardir, "test", "models"))
import bench  # noqa: E402  (its timers and helpers)
from generate import save_set  # noqa: E402
from genai_builder import word_tokenizer  # noqa: E402

CONFIG = dict(vocab_size=32000, hidden_size=1024, intermediate_size=2816,
              num_hidden_layers=8, num_attention_heads=16,
              num_key_value_heads=4, head_dim=64,
              max_position_embeddings=2048)
CASES = [("prompt", 128, 0), ("decode", 1, 128), ("decode", 1, 1023)]
GENERATE = (128, 128)  # prompt tokens, new tokens
EOS = 2  # the word-level tokenizer's "w2", the builder's eos_token_id


def generate_transfuse(model_dir, work, prompt, n, threads,
                       precision="f32"):
    """`transfuse generate` (compiled into work/ once): the time to its
    first token, its decode steps' median and min, and the ids."""
    p = subprocess.run(
        [os.path.join(bench.BIN, "transfuse"), "generate", model_dir,
         "--prompt-ids", ",".join(map(str, prompt)),
         "--max-new-tokens", str(n), "--eos-id", str(EOS),
         "--cache-dir", work, "--quiet", "--precision", precision],
        env=dict(os.environ, TRANSFUSE_NUM_THREADS=str(threads)),
        capture_output=True, text=True, check=True)
    m = re.search(r"the first after ([0-9.]+) ms, .*median ([0-9.]+), "
                  r"min ([0-9.]+)", p.stderr)
    return {"first_ms": float(m.group(1)), "median_ms": float(m.group(2)),
            "min_ms": float(m.group(3)),
            "ids": [int(x) for x in p.stdout.split(",")]}


def generate_genai(model_dir, prompt, n, threads):
    """onnxruntime-genai's greedy Generator: the time to the first token
    (the prompt's step: append_tokens and the first generate_next_token),
    the time between consecutive tokens (each a decode step of the model
    and the search), median and min, and the ids."""
    import onnxruntime_genai as og
    config = og.Config(model_dir)
    config.overlay(json.dumps({"model": {"decoder": {"session_options": {
        "intra_op_num_threads": threads}}}}))
    model = og.Model(config)
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=len(prompt) + n)
    gen = og.Generator(model, params)
    start = time.perf_counter()
    gen.append_tokens([prompt])
    steps, first, last = [], None, None
    while not gen.is_done():
        gen.generate_next_token()
        now = time.perf_counter()
        if last is not None:
            steps.append((now - last) * 1000)
        else:
            first = (now - start) * 1000
        last = now
    steps.sort()
    return {"first_ms": first, "median_ms": steps[len(steps) // 2],
            "min_ms": steps[0],
            "ids": [int(t) for t in gen.get_sequence(0)][len(prompt):]}


def build(work, int4=False):
    """The builder's model.onnx (weights beside it) under work/model; with
    int4, its int4 export (-p int4: MatMulNBits, ONNX Runtime's default
    accuracy level) under work/model-int4."""
    import torch
    import transformers
    out = os.path.join(work, "model-int4" if int4 else "model")
    if os.path.exists(os.path.join(out, "model.onnx")):
        return os.path.join(out, "model.onnx")
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(**CONFIG)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(os.path.join(tmp, "hf"))
        word_tokenizer(os.path.join(tmp, "hf"))
        bench.log("building the genai export")
        subprocess.run([sys.executable, "-m",
                        "onnxruntime_genai.models.builder", "-m", "llama",
                        "-i", os.path.join(tmp, "hf"), "-o", out,
                        "-p", "int4" if int4 else "fp32", "-e", "cpu",
                        "-c", os.path.join(tmp, "cache")],
                       check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return os.path.join(out, "model.onnx")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=os.path.join(bench.ROOT, "build",
                                                   "bench", "genai"))
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--generate-only", action="store_true",
                    help="only the generation rows")
    ap.add_argument("--int4", action="store_true",
                    help="the int4 export's steps instead (Transfuse f32 "
                         "and bf16), in WORK/int4")
    args = ap.parse_args()
    import onnxruntime as ort
    import torch
    os.makedirs(args.work, exist_ok=True)
    path = build(args.work, int4=args.int4)
    if args.int4:
        args.work = os.path.join(args.work, "int4")
        os.makedirs(args.work, exist_ok=True)
    so, compile_s, _ = bench.compile_transfuse(path, args.work)
    bench.log("compiled in %.1f s" % compile_s)
    # The int4 export: ONNX Runtime rounds the activations to int8 (its
    # accuracy level 4), which Transfuse does not; its outputs are compared
    # at 10% of each output's range, and the error is reported.
    tolerance = ("--range-tol", "0.1") if args.int4 else ()
    if args.int4:
        so_bf16 = bench.compile_transfuse(path, args.work, "bf16")[0]
        so_f32w = bench.compile_transfuse(path, args.work,
                                          int4_weights=False)[0]
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    kv = CONFIG["num_key_value_heads"], CONFIG["head_dim"]
    per_round = -(-args.repeat // args.rounds)
    results = {"cpu": bench.cpu_model(),
               "commit": bench.git_commit().replace(", at ", ""),
               "config": CONFIG, "compile_s": compile_s, "rows": []}
    for kind, seq, past in [] if args.generate_only else CASES:
        feeds = {"input_ids": rng.integers(3, CONFIG["vocab_size"],
                                           (1, seq)).astype(np.int64),
                 "attention_mask": np.ones((1, past + seq), np.int64)}
        for i in sess.get_inputs():
            if i.name.startswith("past_key_values"):
                feeds[i.name] = (0.5 * rng.standard_normal(
                    (1, kv[0], past, kv[1]))).astype(np.float32)
        feeds = {i.name: feeds[i.name] for i in sess.get_inputs()}
        data = os.path.join(args.work, "%s-%d-%d" % (kind, seq, past))
        save_set(data, list(feeds), list(feeds.values()),
                 [o.name for o in sess.get_outputs()], sess.run(None, feeds))
        # time_ort takes the inputs as torch tensors (bench.py's models).
        tensors = [torch.from_numpy(a) for a in feeds.values()]

        for threads in map(int, args.threads.split(",")):
            timers = {
                "transfuse": lambda: bench.time_transfuse(
                    so, data, threads, per_round, tolerance),
                "ort": lambda: bench.time_ort(
                    path, list(feeds), tensors, threads, per_round),
            }
            if args.int4:
                timers["transfuse_bf16"] = lambda: bench.time_transfuse(
                    so_bf16, data, threads, per_round, tolerance)
                timers["transfuse_f32w"] = lambda: bench.time_transfuse(
                    so_f32w, data, threads, per_round, tolerance)
            timed = bench.interleaved(timers, args.rounds)
            row = {"case": kind, "seq": seq, "past": past,
                   "threads": threads, **timed}
            results["rows"].append(row)
            bench.log("%s seq %d past %d, %d thread(s): Transfuse %.2f ms, "
                      "ORT %.2f ms" % (kind, seq, past, threads,
                                       timed["transfuse"]["median_ms"],
                                       timed["ort"]["median_ms"]))
    model_dir = os.path.dirname(path)
    prompt = rng.integers(3, CONFIG["vocab_size"], GENERATE[0]).tolist()
    for threads in map(int, args.threads.split(",")):
        timed = bench.interleaved({
            "transfuse": lambda: generate_transfuse(
                model_dir, args.work, prompt, GENERATE[1], threads),
            "transfuse_bf16": lambda: generate_transfuse(
                model_dir, args.work, prompt, GENERATE[1], threads, "bf16"),
            "ort": lambda: generate_genai(model_dir, prompt, GENERATE[1],
                                          threads),
        }, args.rounds)
        want = timed["ort"]["ids"]
        same = timed["transfuse"]["ids"] == want

        # How many leading ids agree with onnxruntime-genai's greedy
        # search: bf16 rounds the products, and on the int4 export ONNX
        # Runtime rounds the activations to int8.
        def agreeing(ids):
            return next((i for i, (a, b) in enumerate(zip(ids, want))
                         if a != b), len(want))
        agree = agreeing(timed["transfuse_bf16"]["ids"])
        bf16 = timed.pop("transfuse_bf16")
        results["rows"].append({"case": "generate", "seq": GENERATE[1],
                                "past": GENERATE[0], "threads": threads,
                                "same_ids": same, "leading_ids_agree":
                                agreeing(timed["transfuse"]["ids"]),
                                "bf16_median_ms":
                                bf16["median_ms"], "bf16_min_ms":
                                bf16["min_ms"], "bf16_first_ms":
                                bf16["first_ms"], "bf16_leading_ids_agree":
                                agree, **timed})
        bench.log("generate %d after %d, %d thread(s): Transfuse %.2f ms "
                  "(bf16 %.2f), onnxruntime-genai %.2f ms per step; same "
                  "ids: %s (bf16: the first %d)" % (
                      GENERATE[1], GENERATE[0], threads,
                      timed["transfuse"]["median_ms"], bf16["median_ms"],
                      timed["ort"]["median_ms"], same, agree))
    with open(os.path.join(args.work, "results-genai.json"), "w") as f:
        json.dump(results, f, indent=2)
    print("| case | threads | Transfuse f32 (min) | ORT %s (min) | "
          "Transfuse / ORT |" % ("int4" if args.int4 else "f32"))
    print("|---|---|---|---|---|")
    for r in results["rows"]:
        t, o = r["transfuse"], r["ort"]
        what = ("prompt of %d tokens" % r["seq"] if r["case"] == "prompt"
                else "decode step, past of %d" % r["past"]
                if r["case"] == "decode" else
                "generation, %d tokens after %d, per step (peer: "
                "onnxruntime-genai; same ids: %s)" % (
                    r["seq"], r["past"], "yes" if r["same_ids"] else
                    "the first %d" % r["leading_ids_agree"]))
        print("| %s | %d | %.1f ms (%.1f) | %.1f ms (%.1f) | %.2f |" % (
            what, r["threads"], t["median_ms"], t["min_ms"], o["median_ms"],
            o["min_ms"], t["median_ms"] / o["median_ms"]))
    for r in results["rows"]:
        if "transfuse_bf16" in r:
            b = r["transfuse_bf16"]
            w = r["transfuse_f32w"]
            print("\nint4 %s, seq %d past %d, %d thread(s): Transfuse with "
                  "the weights dequantized to f32 at compile time "
                  "(--int4-weights=false) %.1f ms (min %.1f), %.2fx ORT's "
                  "time" % (r["case"], r["seq"], r["past"], r["threads"],
                            w["median_ms"], w["min_ms"],
                            w["median_ms"] / r["ort"]["median_ms"]))
            print("\nint4 %s, seq %d past %d, %d thread(s): Transfuse bf16 "
                  "%.1f ms (min %.1f), %.2fx ORT's time; error against ORT "
                  "(f32 / bf16): %.3g / %.3g of the range" % (
                      r["case"], r["seq"], r["past"], r["threads"],
                      b["median_ms"], b["min_ms"],
                      b["median_ms"] / r["ort"]["median_ms"],
                      r["transfuse"]["max_err_of_range_vs_ort"],
                      b["max_err_of_range_vs_ort"]))
        if r["case"] == "generate":
            print("\ntime to the first token (%d-token prompt), %d "
                  "thread(s), median of the rounds' runs: Transfuse %.1f ms "
                  "(bf16 %.1f), onnxruntime-genai %.1f ms" % (
                      r["past"], r["threads"], r["transfuse"]["first_ms"],
                      r["bf16_first_ms"], r["ort"]["first_ms"]))
            print("\nbf16 generation, %d thread(s): %.1f ms per step (min "
                  "%.1f), %.2fx onnxruntime-genai's time (%s); its first %d "
                  "of %d ids agree with onnxruntime-genai's" % (
                      r["threads"], r["bf16_median_ms"], r["bf16_min_ms"],
                      r["bf16_median_ms"] / r["ort"]["median_ms"],
                      "int4" if args.int4 else "f32",
                      r["bf16_leading_ids_agree"], r["seq"]))


if __name__ == "__main__":
    main()
