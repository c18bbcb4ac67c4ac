#!/usr/bin/env python3
"""Checks Transfuse on Hugging Face models at sizes and seeds that the
committed fixtures do not use.

Builds each family from transformers' own model code with its own config
(other hidden sizes, head counts, GQA ratios and layer counts than
test/models/) and weights from --seed. Exports it with the fixture
generator's export path (TorchScript, or dynamo with --dynamo), and takes
the expected outputs from ONNX Runtime. Then it runs every test-data set
through `transfuse compile` + `transfuse-run` (AOT), `--jit` and
`--jit --no-fusion`, and prints the fusion summary of each model.

  .venv/bin/python scripts/check_hf_variants.py --seed 7
  .venv/bin/python scripts/check_hf_variants.py --seed 11 --dynamo --only llama
  .venv/bin/python scripts/check_hf_variants.py --seed 5 --generate   # KV cache + greedy ids

Needs torch and transformers (scripts/setup.sh --fixtures). The last line
is "N passed, N failed"; exits non-zero on any failure."""
import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "models"))
import generate as gen  # noqa: E402

VARIANTS = {
    "bert": lambda: gen.encoder(
        "bert_v", "BertConfig", "BertModel",
        dict(vocab_size=500, hidden_size=120, num_hidden_layers=3,
             num_attention_heads=5, intermediate_size=200,
             max_position_embeddings=96, type_vocab_size=2),
        True, "BertModel, 3 layers, hidden 120, 5 heads of 24"),
    "gpt2": lambda: gen.decoder(
        "gpt2_v", "GPT2Config", "GPT2LMHeadModel",
        dict(vocab_size=500, n_embd=80, n_layer=3, n_head=5, n_positions=96),
        "GPT2LMHeadModel, 3 layers, hidden 80, 5 heads"),
    "llama": lambda: gen.decoder(
        "llama_v", "LlamaConfig", "LlamaForCausalLM",
        dict(vocab_size=500, hidden_size=128, intermediate_size=200,
             num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=2,
             max_position_embeddings=96, tie_word_embeddings=True),
        "LlamaForCausalLM, 8 heads / 2 KV heads, tied head"),
    "bloom": lambda: gen.decoder(
        "bloom_v", "BloomConfig", "BloomForCausalLM",
        dict(vocab_size=500, hidden_size=100, n_layer=3, n_head=10),
        "BloomForCausalLM, 10 heads of 10"),
    "glm": lambda: gen.decoder(
        "glm_v", "GlmConfig", "GlmForCausalLM",
        dict(vocab_size=500, hidden_size=128, intermediate_size=192,
             num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=4,
             head_dim=16, max_position_embeddings=96, pad_token_id=0,
             bos_token_id=1, eos_token_id=2),
        "GlmForCausalLM, 8 heads / 4 KV heads"),
    "t5": lambda: gen.seq2seq(
        "t5_v", "T5Config", "T5ForConditionalGeneration",
        dict(vocab_size=500, d_model=72, d_kv=12, d_ff=150, num_layers=3,
             num_decoder_layers=2, num_heads=6, feed_forward_proj="relu",
             tie_word_embeddings=True, decoder_start_token_id=0),
        "T5 v1.0, 3 encoder / 2 decoder layers, 6 heads of 12"),
    "bart": lambda: gen.seq2seq(
        "bart_v", "BartConfig", "BartForConditionalGeneration",
        dict(vocab_size=500, d_model=96, encoder_layers=3, decoder_layers=2,
             encoder_attention_heads=6, decoder_attention_heads=3,
             encoder_ffn_dim=160, decoder_ffn_dim=160, max_position_embeddings=96,
             pad_token_id=1, bos_token_id=0, eos_token_id=2,
             decoder_start_token_id=2, forced_eos_token_id=None),
        "BART, 6 encoder heads / 3 decoder heads"),
}

# KV-cache exports (prefill + decode, and encoder for seq2seq) whose greedy
# generation must reproduce Hugging Face's model.generate ids exactly.
GEN_VARIANTS = {
    "gpt2": lambda: gen.kv_fixture(
        "gpt2_gen", "GPT2Config", "GPT2LMHeadModel",
        dict(vocab_size=500, n_embd=80, n_layer=3, n_head=5, n_positions=96,
             initializer_range=0.3), "GPT-2 variant", prompt=(4, 9, 33, 200)),
    "llama": lambda: gen.kv_fixture(
        "llama_gen", "LlamaConfig", "LlamaForCausalLM",
        dict(vocab_size=500, hidden_size=128, intermediate_size=200,
             num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=2,
             max_position_embeddings=96, initializer_range=0.3),
        "LLaMA variant", prompt=(4, 9, 33, 200)),
    "bloom": lambda: gen.kv_fixture(
        "bloom_gen", "BloomConfig", "BloomForCausalLM",
        dict(vocab_size=500, hidden_size=100, n_layer=3, n_head=10,
             initializer_range=0.3), "BLOOM variant", prompt=(4, 9, 33, 200)),
    "bart": lambda: gen.seq2seq_kv_fixture(
        "bart_gen", "BartConfig", "BartForConditionalGeneration",
        dict(vocab_size=500, d_model=96, encoder_layers=3, decoder_layers=2,
             encoder_attention_heads=6, decoder_attention_heads=3,
             encoder_ffn_dim=160, decoder_ffn_dim=160, max_position_embeddings=96,
             pad_token_id=1, bos_token_id=0, eos_token_id=2,
             decoder_start_token_id=2, forced_eos_token_id=None,
             forced_bos_token_id=None, init_std=0.3), "BART variant"),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dynamo", action="store_true")
    ap.add_argument("--only", choices=sorted(set(VARIANTS) | set(GEN_VARIANTS)),
                    action="append")
    ap.add_argument("--generate", action="store_true",
                    help="KV-cache exports and greedy generation instead")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="transfuse-variants-")
    gen.HERE, gen.SEED, gen.DYNAMO = work, args.seed, args.dynamo
    passed = failed = 0
    if args.generate:
        for fam in args.only or sorted(GEN_VARIANTS):
            GEN_VARIANTS[fam]()
            d = os.path.join(work, fam + "_gen")
            p = subprocess.run(["bash", os.path.join(ROOT, "test", "models", "run_generate.sh"),
                                args.bin, d, sys.executable, os.path.join(d, "out")],
                               capture_output=True, text=True)
            ok = p.returncode == 0
            print("%s seed %d generate: %s %s" % (fam, args.seed, "PASS" if ok else "FAIL",
                                                   p.stderr.strip().splitlines()[-1]
                                                   if p.stderr.strip() else ""))
            passed += ok
            failed += not ok
        print("%d passed, %d failed" % (passed, failed))
        return 1 if failed else 0
    for fam in args.only or sorted(VARIANTS):
        VARIANTS[fam]()
        d = os.path.join(work, fam + "_v" + ("_dynamo" if args.dynamo else ""))
        path = os.path.join(d, "model.onnx")
        c = subprocess.run([os.path.join(args.bin, "transfuse"), "compile", path,
                            "-o", os.path.join(d, "model.so"), "-quiet",
                            "--explain-fusion"], capture_output=True, text=True)
        summary = [l for l in c.stderr.splitlines() if "fusion summary" in l]
        print("%s seed %d: %s" % (fam, args.seed, summary[0] if summary else c.stderr))
        for mode in ("aot", "jit", "jit-nofusion"):
            p = subprocess.run(["bash", os.path.join(ROOT, "test", "models", "run_fixture.sh"),
                                args.bin, d, mode, os.path.join(d, "out")],
                               capture_output=True, text=True)
            ok = p.returncode == 0
            print("  %-13s %s %s" % (mode, "PASS" if ok else "FAIL",
                                      "" if ok else (p.stdout + p.stderr)[-600:]))
            passed += ok
            failed += not ok
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
