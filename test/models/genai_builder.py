#!/usr/bin/env python3
"""Fixtures as onnxruntime-genai's model builder writes them.

The builder (`python -m onnxruntime_genai.models.builder`) is how many people
get an ONNX decoder for the CPU: one model for prompt and decode steps, each
layer's attention a com.microsoft GroupQueryAttention with packed QKV,
rotary inside it and the KV cache as BNSH past/present (Gemma 2's with a
softcap), norms as (Skip)SimplifiedLayerNormalization. This builds a tiny Hugging Face model
per family (random weights, a word-level tokenizer the builder can load),
runs the builder (fp32, CPU) on it, and writes NAME_genai/: the model as one
file, and test-data sets whose expected outputs are ONNX Runtime's on that
model:
  0  a first prompt: batch 2, 7 tokens, an empty past;
  1  a decode step after a 9-token prompt (the past is ONNX Runtime's own
     present for that prompt);
  2  a decode step of a batch whose sequences have 9 and 6 tokens: the
     shorter one's past right-padded (with nonzero rows, which the step
     must drop), as the builder's attention_mask -> seqlens_k implies;
  3  a later prompt of 4 tokens after a 5-token one (chunked prefill).
Each set's logits are also compared with the Hugging Face model's on the
whole sequence (its manifest records the largest difference). generate.json
holds the ids that onnxruntime-genai's own greedy search generates with the
builder's output for a prompt (`transfuse generate` must match them,
test/models/run_generate.sh), and whether Hugging Face's generate agrees.

Needs torch, transformers and onnxruntime-genai. The builder's wheel pins
no torch, so install it beside the venv's packages:
    .venv/bin/pip install --no-deps --target DIR onnxruntime-genai
    PYTHONPATH=DIR .venv/bin/python test/models/genai_builder.py [--only NAME]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
import torch

from generate import save_set

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 0
VOCAB = 1000

# fixture: (transformers config class, model class, config kwargs, what it
# covers). head_dim 16: GroupQueryAttention's rotary needs a multiple of 16.
FAMILIES = {
    "llama_genai": ("LlamaConfig", "LlamaForCausalLM",
                    dict(num_attention_heads=4, num_key_value_heads=2),
                    "LlamaForCausalLM, 4 heads / 2 KV heads"),
    # The second layer's attention slides over 4 keys (local_window_size).
    # (The builder leaves Mistral's sliding window out, so Qwen2 is the
    # family that carries it.)
    "qwen2_genai": ("Qwen2Config", "Qwen2ForCausalLM",
                    dict(num_attention_heads=4, num_key_value_heads=1,
                         use_sliding_window=True, sliding_window=4,
                         max_window_layers=1),
                    "Qwen2ForCausalLM, 4 heads / 1 KV head, q/k/v biases, "
                    "the second layer's sliding window of 4"),
    # Scores capped at 1.5 * tanh(s / 1.5) (the weights' scale makes the
    # cap bite), the first layer's window of 4, logits capped too.
    "gemma2_genai": ("Gemma2Config", "Gemma2ForCausalLM",
                     dict(num_attention_heads=4, num_key_value_heads=2,
                          sliding_window=4, attn_logit_softcapping=1.5,
                          tie_word_embeddings=False),
                     "Gemma2ForCausalLM, 4 heads / 2 KV heads, attention "
                     "softcap 1.5, sliding window 4 on alternate layers"),
    # The builder's int4 export: every projection a MatMulNBits (4-bit
    # weights in blocks of 32, a scale each); accuracy level 1 keeps ONNX
    # Runtime's products in f32 (its default for the CPU, 4, rounds the
    # activations to int8).
    "llama_int4_genai": ("LlamaConfig", "LlamaForCausalLM",
                         dict(num_attention_heads=4, num_key_value_heads=2),
                         "LlamaForCausalLM, 4 heads / 2 KV heads, int4 "
                         "weights (MatMulNBits)",
                         ["-p", "int4", "--extra_options",
                          "accuracy_level=1", "windowed_kv_cache=false"]),
}


def word_tokenizer(path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    t = Tokenizer(models.WordLevel({"w%d" % i: i for i in range(VOCAB)},
                                   unk_token="w0"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=t, unk_token="w0",
                            bos_token="w1", eos_token="w2").save_pretrained(path)


GENERATE_PROMPT = [5, 17, 42, 7, 99, 3, 250, 31]
GENERATE_TOKENS = 12


def genai_greedy(out_dir, hf):
    """onnxruntime-genai's greedy search on the builder's output directory
    (its genai_config.json: the end-of-sequence id "w2" = 2 stops it), and
    whether Hugging Face's generate gives the same ids."""
    import onnxruntime_genai as og
    model = og.Model(out_dir)
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False,
                              max_length=len(GENERATE_PROMPT) + GENERATE_TOKENS)
    gen = og.Generator(model, params)
    gen.append_tokens([GENERATE_PROMPT])
    while not gen.is_done():
        gen.generate_next_token()
    ids = [int(t) for t in gen.get_sequence(0)][len(GENERATE_PROMPT):]
    with torch.no_grad():
        want = hf.generate(torch.tensor([GENERATE_PROMPT]), do_sample=False,
                           max_new_tokens=GENERATE_TOKENS, eos_token_id=2,
                           pad_token_id=0)[0, len(GENERATE_PROMPT):].tolist()
    return {"prompt_ids": GENERATE_PROMPT, "max_new_tokens": GENERATE_TOKENS,
            "eos_id": 2, "expected_ids": ids,
            "reference": "onnxruntime-genai %s greedy search on this model"
                         % og.__version__,
            "hf_generate_agrees": want == ids}


def build(name, config_cls, model_cls, kwargs, description, options=None):
    import transformers
    torch.manual_seed(SEED)
    cfg = getattr(transformers, config_cls)(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, head_dim=16, max_position_embeddings=64,
        initializer_range=0.3, **kwargs)
    hf = getattr(transformers, model_cls)(cfg).eval()
    dst = os.path.join(HERE, name)
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(dst)
    with tempfile.TemporaryDirectory() as tmp:
        hf.save_pretrained(os.path.join(tmp, "hf"))
        word_tokenizer(os.path.join(tmp, "hf"))
        subprocess.run([sys.executable, "-m", "onnxruntime_genai.models.builder",
                        "-m", name, "-i", os.path.join(tmp, "hf"),
                        "-o", os.path.join(tmp, "out"), "-e", "cpu",
                        "-c", os.path.join(tmp, "cache")] + (options or [
                        "-p", "fp32",
                        # Sliding layers' caches as long as the others'.
                        "--extra_options", "windowed_kv_cache=false"]),
                       check=True, stdout=subprocess.DEVNULL)
        model = onnx.load(os.path.join(tmp, "out", "model.onnx"))
        generation = genai_greedy(os.path.join(tmp, "out"), hf)
    path = os.path.join(dst, "model.onnx")
    onnx.save(model, path)  # weights inside: one file
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    layers = cfg.num_hidden_layers
    past_names = [n for i in range(layers) for n in
                  ("past_key_values.%d.key" % i, "past_key_values.%d.value" % i)]
    kv_heads, head = cfg.num_key_value_heads, cfg.head_dim
    g = torch.Generator().manual_seed(7)

    def ids(batch, n):
        return torch.randint(3, VOCAB, (batch, n), generator=g).numpy()

    def run(tokens, mask, past):
        feeds = {"input_ids": tokens, "attention_mask": mask}
        feeds.update(zip(past_names, past))
        # In the model's input order.
        feeds = {i.name: feeds[i.name] for i in sess.get_inputs()}
        return feeds, sess.run(None, feeds)

    def empty_past(batch):
        return [np.zeros((batch, kv_heads, 0, head), np.float32)] * len(past_names)

    def prompt(tokens):
        _, out = run(tokens, np.ones(tokens.shape, np.int64),
                     empty_past(tokens.shape[0]))
        present = dict(zip(names, out))
        return [present[n.replace("past_key_values", "present")]
                for n in past_names]

    def hf_last(seqs, n):
        """HF's logits for the last n tokens of each sequence."""
        with torch.no_grad():
            return [hf(torch.tensor(s[None])).logits[0, -n:].numpy()
                    for s in seqs]

    sets = []
    # 0: a first prompt.
    p0 = ids(2, 7)
    sets.append(("first prompt, batch 2, 7 tokens",
                 *run(p0, np.ones((2, 7), np.int64), empty_past(2)),
                 list(p0), 7))
    # 1: a decode step after a 9-token prompt.
    p1, t1 = ids(1, 9), ids(1, 1)
    sets.append(("decode step, past of 9",
                 *run(t1, np.ones((1, 10), np.int64), prompt(p1)),
                 [np.concatenate([p1[0], t1[0]])], 1))
    # 2: a decode step, sequences of 9 and 6 tokens; the shorter one's past
    # rows 6..8 hold another prompt's keys, which present must not keep.
    a, b, t2 = ids(1, 9), ids(1, 6), ids(2, 1)
    pa, pb = prompt(a), prompt(b)
    junk = prompt(ids(1, 9))
    past = [np.concatenate([x, np.concatenate([y, j[:, :, 6:]], 2)], 0)
            for x, y, j in zip(pa, pb, junk)]
    mask = np.ones((2, 10), np.int64)
    mask[1, 7:] = 0
    sets.append(("decode step, batch 2 with pasts of 9 and 6 (right-padded)",
                 *run(t2, mask, past),
                 [np.concatenate([a[0], t2[0]]), np.concatenate([b[0], t2[1]])],
                 1))
    # 3: a later prompt of 4 tokens after 5.
    p3, t3 = ids(1, 5), ids(1, 4)
    sets.append(("later prompt of 4 tokens, past of 5",
                 *run(t3, np.ones((1, 9), np.int64), prompt(p3)),
                 [np.concatenate([p3[0], t3[0]])], 4))

    manifest = {
        "description": description + ", through onnxruntime-genai's model "
                       "builder (%s, CPU)" % ("int4" if options else "fp32"),
        "builder": "onnxruntime-genai %s, transformers %s"
                   % (__import__("onnxruntime_genai").__version__,
                      transformers.__version__),
        "expected_outputs": "ONNX Runtime %s (CPU EP) on this model"
                            % ort.__version__,
        "sets": [],
    }
    for k, (what, feeds, out, seqs, n) in enumerate(sets):
        save_set(os.path.join(dst, "test_data_set_%d" % k), list(feeds),
                 list(feeds.values()), names, out)
        diff = max(float(np.abs(out[0][i] - ref).max())
                   for i, ref in enumerate(hf_last(seqs, n)))
        manifest["sets"].append({"set": what,
                                 "max_abs_diff_logits_vs_hf": diff})
    manifest["ops"] = sorted({(n.domain + ":" if n.domain else "") + n.op_type
                              for n in model.graph.node})
    with open(os.path.join(dst, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    with open(os.path.join(dst, "generate.json"), "w") as f:
        json.dump(generation, f, indent=2)
        f.write("\n")
    print("%s: %d bytes; logits vs HF %s" % (
        dst, os.path.getsize(path),
        ", ".join("%.1e" % s["max_abs_diff_logits_vs_hf"]
                  for s in manifest["sets"])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append")
    args = ap.parse_args()
    for name, spec in FAMILIES.items():
        if not args.only or name in args.only:
            build(name, *spec)


if __name__ == "__main__":
    main()
