#!/usr/bin/env python3
"""Generates the committed end-to-end fixtures under test/models/.

Each fixture is a tiny model built from Hugging Face's own model code with a
config and random weights (no hub download), exported to ONNX with
torch.onnx.export, plus ONNX test-data sets whose expected outputs come from
ONNX Runtime. PyTorch's outputs are compared with ONNX Runtime's too, and the
difference is recorded in the fixture's manifest.json.

Run in a venv with torch and transformers (scripts/setup.sh --fixtures):
    .venv/bin/python test/models/generate.py [--only NAME]
"""
import argparse
import json
import os
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OPSET = 17
DYNAMO = False  # --dynamo: export with torch.export instead, into NAME_dynamo/
SEED = 0  # weight seed; scripts/check_hf_variants.py sets others


def save_set(dirpath, names_in, arrays_in, names_out, arrays_out):
    os.makedirs(dirpath, exist_ok=True)
    for i, (n, a) in enumerate(zip(names_in, arrays_in)):
        with open(os.path.join(dirpath, "input_%d.pb" % i), "wb") as f:
            f.write(numpy_helper.from_array(a, n).SerializeToString())
    for i, (n, a) in enumerate(zip(names_out, arrays_out)):
        with open(os.path.join(dirpath, "output_%d.pb" % i), "wb") as f:
            f.write(numpy_helper.from_array(a, n).SerializeToString())


class ByName(torch.nn.Module):
    """Calls a Hugging Face model with keyword inputs and returns a tuple of
    the named outputs, so the exporter sees a plain positional signature."""

    def __init__(self, model, input_names, output_names):
        super().__init__()
        self.model, self.inputs, self.outputs = model, input_names, output_names

    def forward(self, *args):
        if isinstance(self.model, (WithCache, Seq2SeqEncoder, Seq2SeqWithCache)):
            out = self.model(*args)  # our own wrappers are positional
            return out if isinstance(out, tuple) else (out,)
        out = self.model(**dict(zip(self.inputs, args)))
        return tuple(out[o] for o in self.outputs)


def export_fixture(name, model, input_names, output_names, dynamic_axes,
                   make_inputs, cases, description):
    if DYNAMO:
        first, _, rest = name.partition("/")
        name = first + "_dynamo" + ("/" + rest if rest else "")
    out_dir = os.path.join(HERE, name)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    # eval() on the wrapper: the exporter restores the wrapper's mode after
    # tracing, and a wrapper left in training mode re-enables dropout.
    model = ByName(model, input_names, output_names).eval()
    example = make_inputs(*cases[0])
    path = os.path.join(out_dir, "model.onnx")
    exporter = "TorchScript"
    args = tuple(example[n] for n in input_names)
    with torch.no_grad():
        try:
            if DYNAMO:
                raise RuntimeError("dynamo variant requested")
            torch.onnx.export(model, args, path, input_names=input_names,
                              output_names=output_names, dynamic_axes=dynamic_axes,
                              opset_version=OPSET, dynamo=False)
        except Exception as e:  # e.g. GLM's rotary: fall back to dynamo
            if not DYNAMO:
                print("%s: the TorchScript exporter failed (%s); using dynamo"
                      % (name, str(e).splitlines()[0][:100]))
            exporter = "dynamo"
            dims = {}
            def dim(label):
                return dims.setdefault(label, torch.export.Dim.DYNAMIC)
            shapes = tuple({k: dim(v) for k, v in dynamic_axes[n].items()}
                           for n in input_names)
            torch.onnx.export(model, args, path, input_names=input_names,
                              output_names=output_names, dynamic_shapes=(shapes,),
                              opset_version=18, dynamo=True, external_data=False)
    onnx.checker.check_model(path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    manifest = {"description": description,
                "opset": onnx.load(path).opset_import[0].version,
                "exporter": "torch.onnx.export (%s), torch %s, transformers %s"
                % (exporter, torch.__version__, __import__("transformers").__version__),
                "expected_outputs": "ONNX Runtime %s (CPU EP)" % ort.__version__,
                "sets": []}
    for k, case in enumerate(cases):
        feeds = make_inputs(*case)
        np_feeds = {n: feeds[n].numpy() for n in input_names}
        ort_out = sess.run(output_names, np_feeds)
        with torch.no_grad():
            pt_out = [t.numpy() for t in model(*(feeds[n] for n in input_names))]
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(ort_out, pt_out))
        save_set(os.path.join(out_dir, "test_data_set_%d" % k), input_names,
                 [np_feeds[n] for n in input_names], output_names, ort_out)
        manifest["sets"].append({"batch": case[0], "seq": case[1],
                                 "padded": bool(case[2]),
                                 "max_abs_diff_pytorch_vs_ort": diff})
    manifest["ops"] = sorted({n.op_type for n in onnx.load(path).graph.node})
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    size = os.path.getsize(path)
    print("%s: %d bytes, ops %s" % (name, size, ", ".join(manifest["ops"])))
    return path


def token_inputs(vocab, with_token_types):
    def make(batch, seq, padded):
        g = torch.Generator().manual_seed(1000 + batch * 100 + seq)
        ids = torch.randint(1, vocab, (batch, seq), generator=g)
        mask = torch.ones(batch, seq, dtype=torch.int64)
        if padded and batch > 1:
            # Right padding: the second row is shorter.
            cut = max(1, seq // 2)
            mask[1, cut:] = 0
            ids[1, cut:] = 0
        out = {"input_ids": ids, "attention_mask": mask}
        if with_token_types:
            tt = torch.zeros(batch, seq, dtype=torch.int64)
            tt[:, seq // 2:] = 1
            out["token_type_ids"] = tt
        return out
    return make


def bert():
    from transformers import BertConfig, BertModel
    torch.manual_seed(SEED)
    cfg = BertConfig(vocab_size=1000, hidden_size=88, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=176,
                     max_position_embeddings=128, type_vocab_size=2)
    model = BertModel(cfg)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
    axes["pooler_output"] = {0: "batch"}
    export_fixture("bert_tiny", model, names,
                   ["last_hidden_state", "pooler_output"], axes,
                   token_inputs(1000, True),
                   [(1, 16, False), (2, 33, True), (1, 1, False)],
                   "BertModel, 2 layers, hidden 88, 4 heads, FFN 176, vocab 1000")


def gpt2():
    decoder("gpt2_tiny", "GPT2Config", "GPT2LMHeadModel",
            dict(vocab_size=1000, n_embd=88, n_layer=2, n_head=4, n_positions=128),
            "GPT2LMHeadModel, 2 layers, hidden 88, 4 heads, vocab 1000, no KV cache")


def encoder(name, config_cls, model_cls, cfg_kwargs, with_token_types, description,
            outputs=("last_hidden_state",)):
    import transformers
    torch.manual_seed(SEED)
    cfg = getattr(transformers, config_cls)(**cfg_kwargs)
    model = getattr(transformers, model_cls)(cfg)
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_token_types else [])
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    for o in outputs:
        axes[o] = {0: "batch", 1: "sequence"}
    export_fixture(name, model, names, list(outputs), axes,
                   token_inputs(cfg_kwargs["vocab_size"], with_token_types),
                   [(1, 16, False), (2, 33, True), (1, 1, False)], description)


def decoder(name, config_cls, model_cls, cfg_kwargs, description):
    import transformers
    torch.manual_seed(SEED)
    cfg = getattr(transformers, config_cls)(use_cache=False, **cfg_kwargs)
    model = getattr(transformers, model_cls)(cfg)
    names = ["input_ids", "attention_mask"]
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["logits"] = {0: "batch", 1: "sequence"}
    export_fixture(name, model, names, ["logits"], axes,
                   token_inputs(cfg_kwargs["vocab_size"], False),
                   [(1, 16, False), (2, 33, True), (1, 1, False)], description)


def bert_mlm():
    encoder("bert_mlm_tiny", "BertConfig", "BertForMaskedLM",
            dict(vocab_size=1000, hidden_size=88, num_hidden_layers=2,
                 num_attention_heads=4, intermediate_size=176,
                 max_position_embeddings=128, type_vocab_size=2),
            True, "BertForMaskedLM: tied MLM head", outputs=("logits",))


def ernie():
    import transformers
    torch.manual_seed(SEED)
    cfg = transformers.ErnieConfig(vocab_size=1000, hidden_size=88, num_hidden_layers=2,
                                   num_attention_heads=4, intermediate_size=176,
                                   max_position_embeddings=128, use_task_id=True,
                                   task_type_vocab_size=3)
    model = transformers.ErnieModel(cfg)
    names = ["input_ids", "attention_mask", "token_type_ids", "task_type_ids"]
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
    base = token_inputs(1000, True)

    def make(batch, seq, padded):
        feeds = base(batch, seq, padded)
        feeds["task_type_ids"] = torch.full((batch, seq), 2, dtype=torch.int64)
        return feeds
    export_fixture("ernie_tiny", model, names, ["last_hidden_state"], axes, make,
                   [(1, 16, False), (2, 33, True), (1, 1, False)],
                   "ErnieModel (3.0): task-type embedding, gelu")


def roberta():
    encoder("roberta_tiny", "RobertaConfig", "RobertaModel",
            dict(vocab_size=1000, hidden_size=88, num_hidden_layers=2,
                 num_attention_heads=4, intermediate_size=176,
                 max_position_embeddings=130, pad_token_id=1),
            False, "RobertaModel, 2 layers, hidden 88: padding-offset position ids")


def albert():
    encoder("albert_tiny", "AlbertConfig", "AlbertModel",
            dict(vocab_size=1000, embedding_size=40, hidden_size=88,
                 num_hidden_layers=4, num_hidden_groups=1, num_attention_heads=4,
                 intermediate_size=176, max_position_embeddings=128),
            True, "AlbertModel: E=40 -> H=88 projection, 4 layers sharing 1, gelu_new")


def electra():
    encoder("electra_tiny", "ElectraConfig", "ElectraModel",
            dict(vocab_size=1000, embedding_size=40, hidden_size=88,
                 num_hidden_layers=2, num_attention_heads=4, intermediate_size=176,
                 max_position_embeddings=128),
            True, "ElectraModel: embeddings_project 40 -> 88")


def bloom():
    decoder("bloom_tiny", "BloomConfig", "BloomForCausalLM",
            dict(vocab_size=1000, hidden_size=90, n_layer=2, n_head=6),
            "BloomForCausalLM, 6 heads (non-power-of-two ALiBi slopes), hidden 90")


def llama():
    decoder("llama_tiny", "LlamaConfig", "LlamaForCausalLM",
            dict(vocab_size=1000, hidden_size=96, intermediate_size=160,
                 num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2,
                 max_position_embeddings=128, tie_word_embeddings=False),
            "LlamaForCausalLM: RMSNorm, SwiGLU, rotary, 6 heads / 2 KV heads")


def glm():
    decoder("glm_tiny", "GlmConfig", "GlmForCausalLM",
            dict(vocab_size=1000, hidden_size=96, intermediate_size=160,
                 num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2,
                 head_dim=16, max_position_embeddings=128, pad_token_id=0,
                 bos_token_id=1, eos_token_id=2),
            "GlmForCausalLM (GLM-4): partial interleaved rotary, GQA with qkv bias")


class WithCache(torch.nn.Module):
    """A causal LM with its KV cache as flat tensors: inputs input_ids,
    attention_mask, then past key/value per layer (decode form only);
    outputs logits, then present key/value per layer."""

    def __init__(self, model, layers):
        super().__init__()
        self.model, self.layers = model, layers

    def forward(self, input_ids, attention_mask, *past):
        from transformers import DynamicCache
        if past:
            cache = DynamicCache(ddp_cache_data=[(past[2 * i], past[2 * i + 1])
                                                 for i in range(self.layers)],
                                 config=self.model.config)
        else:
            cache = DynamicCache(config=self.model.config)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                         past_key_values=cache, use_cache=True)
        flat = []
        for layer in out.past_key_values.layers:
            flat += [layer.keys, layer.values]
        return (out.logits, *flat)


def kv_fixture(name, config_cls, model_cls, cfg_kwargs, description,
               prompt=(5, 17, 42, 7, 99, 3), new_tokens=12, reference=True):
    # A larger init std than the default (set by the callers) makes greedy
    # decoding move between tokens instead of repeating one, so that the
    # reference ids test something.
    """prefill/ and decode/ exports of one decoder, with test data for each,
    and generate.json: a prompt and the ids that Hugging Face's greedy
    model.generate produces for it."""
    import transformers
    torch.manual_seed(SEED)
    cfg = getattr(transformers, config_cls)(**cfg_kwargs)
    model = getattr(transformers, model_cls)(cfg).eval()
    layers = cfg.num_hidden_layers
    root = os.path.join(HERE, name + ("_dynamo" if DYNAMO else ""))
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    wrapped = WithCache(model, layers).eval()
    past_names = [n for i in range(layers)
                  for n in ("past_key_values.%d.key" % i, "past_key_values.%d.value" % i)]
    present_names = [n.replace("past_key_values", "present") for n in past_names]
    vocab = cfg_kwargs["vocab_size"]

    def prefill_inputs(batch, seq, padded):
        return token_inputs(vocab, False)(batch, seq, padded)

    def cache_for(batch, past_len):
        g = torch.Generator().manual_seed(99 + past_len)
        ids = torch.randint(1, vocab, (batch, past_len), generator=g)
        with torch.no_grad():
            out = wrapped(ids, torch.ones(batch, past_len, dtype=torch.int64))
        return out[1:]

    def decode_inputs(batch, past_len, padded):
        g = torch.Generator().manual_seed(5 + past_len)
        feeds = {"input_ids": torch.randint(1, vocab, (batch, 1), generator=g),
                 "attention_mask": torch.ones(batch, past_len + 1, dtype=torch.int64)}
        for n, t in zip(past_names, cache_for(batch, past_len)):
            feeds[n] = t
        return feeds

    io_axes = {"input_ids": {0: "batch", 1: "sequence"},
               "attention_mask": {0: "batch", 1: "total_sequence"},
               "logits": {0: "batch", 1: "sequence"}}
    kv_axes = {n: {0: "batch", 2: "past_sequence"} for n in past_names}
    kv_axes.update({n: {0: "batch", 2: "total_sequence"} for n in present_names})
    export_fixture(os.path.join(name, "prefill"), wrapped,
                   ["input_ids", "attention_mask"], ["logits"] + present_names,
                   {**io_axes, "attention_mask": {0: "batch", 1: "sequence"},
                    **{n: {0: "batch", 2: "sequence"} for n in present_names}},
                   prefill_inputs, [(2, 16, False), (1, 6, False), (1, 33, False)],
                   description + " (prefill: no past, returns present)")
    export_fixture(os.path.join(name, "decode"), wrapped,
                   ["input_ids", "attention_mask"] + past_names,
                   ["logits"] + present_names, {**io_axes, **kv_axes},
                   # The first case is the export example: batch 2, so that
                   # torch.export does not specialize the batch dim to 1.
                   decode_inputs, [(2, 16, False), (1, 6, False), (1, 33, False)],
                   description + " (decode: one token with past key/values)")
    if not reference:
        return
    ids = torch.tensor([list(prompt)])
    with torch.no_grad():
        ref = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             pad_token_id=0)
    with open(os.path.join(root, "generate.json"), "w") as f:
        json.dump({"prompt_ids": list(prompt), "max_new_tokens": new_tokens,
                   "expected_ids": ref[0, len(prompt):].tolist(),
                   "reference": "transformers %s model.generate(do_sample=False)"
                   % transformers.__version__}, f, indent=2)
    print("%s: generate reference %s" % (name, ref[0, len(prompt):].tolist()))


def gpt2_kv():
    kv_fixture("gpt2_kv", "GPT2Config", "GPT2LMHeadModel",
               dict(vocab_size=1000, n_embd=88, n_layer=2, n_head=4, n_positions=128,
                    initializer_range=0.3),
               "GPT2LMHeadModel, 2 layers, hidden 88, init std 0.3")


def bloom_kv():
    kv_fixture("bloom_kv", "BloomConfig", "BloomForCausalLM",
               dict(vocab_size=1000, hidden_size=90, n_layer=2, n_head=6,
                    initializer_range=0.3, tie_word_embeddings=False),
               "BloomForCausalLM, 6 heads (ALiBi), hidden 90, init std 0.3, untied head")


def llama_kv():
    kv_fixture("llama_kv", "LlamaConfig", "LlamaForCausalLM",
               dict(vocab_size=1000, hidden_size=96, intermediate_size=160,
                    num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2,
                    max_position_embeddings=128, tie_word_embeddings=False,
                    initializer_range=0.3),
               "LlamaForCausalLM, 6 heads / 2 KV heads, init std 0.3")


def mistral_kv():
    # No generate.json: past the window, Hugging Face's generate and its own
    # export's decode step, fed back through ONNX Runtime, part ways (4 of
    # 12 greedy ids agree; Transfuse gives ORT's 12), so HF's ids are no
    # reference for the export. The decode sets' pasts (16, 6, 33) straddle
    # the window and are checked against ORT.
    kv_fixture("mistral_kv", "MistralConfig", "MistralForCausalLM",
               dict(vocab_size=1000, hidden_size=96, intermediate_size=160,
                    num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2,
                    max_position_embeddings=128, sliding_window=8,
                    tie_word_embeddings=False, initializer_range=0.3),
               "MistralForCausalLM, sliding window 8, 6 heads / 2 KV heads, "
               "init std 0.3", reference=False)


def glm_kv():
    kv_fixture("glm_kv", "GlmConfig", "GlmForCausalLM",
               dict(vocab_size=1000, hidden_size=96, intermediate_size=160,
                    num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2,
                    head_dim=16, max_position_embeddings=128, pad_token_id=0,
                    bos_token_id=1, eos_token_id=2, initializer_range=0.3,
                    attn_implementation="eager"),
               "GlmForCausalLM (GLM-4), 6 heads / 2 KV heads, init std 0.3, eager "
               "attention (SDPA's symbolic is_causal does not export)")


class Seq2SeqEncoder(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model.get_encoder()(input_ids=input_ids,
                                        attention_mask=attention_mask).last_hidden_state


class Seq2SeqWithCache(torch.nn.Module):
    """A seq2seq decoder step with flat caches: inputs decoder_input_ids,
    encoder_hidden_states, attention_mask (the encoder's), then per layer
    past self key/value and cross key/value (decode form only); outputs
    logits, then the same four presents per layer."""

    def __init__(self, model, layers):
        super().__init__()
        self.model, self.layers = model, layers

    def forward(self, decoder_input_ids, encoder_hidden_states, attention_mask, *past):
        from transformers import DynamicCache, EncoderDecoderCache
        cfg = self.model.config
        if past:
            own = DynamicCache(ddp_cache_data=[(past[4 * i], past[4 * i + 1])
                                               for i in range(self.layers)], config=cfg)
            cross = DynamicCache(ddp_cache_data=[(past[4 * i + 2], past[4 * i + 3])
                                                 for i in range(self.layers)], config=cfg)
        else:
            own, cross = DynamicCache(config=cfg), DynamicCache(config=cfg)
        out = self.model(encoder_outputs=(encoder_hidden_states,),
                         attention_mask=attention_mask,
                         decoder_input_ids=decoder_input_ids,
                         past_key_values=EncoderDecoderCache(own, cross), use_cache=True)
        pkv = out.past_key_values
        flat = []
        for i in range(self.layers):
            a, c = pkv.self_attention_cache.layers[i], pkv.cross_attention_cache.layers[i]
            flat += [a.keys, a.values, c.keys, c.values]
        return (out.logits, *flat)


def seq2seq_kv_fixture(name, config_cls, model_cls, cfg_kwargs, description,
                       prompt=(5, 17, 42, 7, 99, 3, 250, 31), new_tokens=12):
    """encoder/, prefill/ (first decoder step) and decode/ exports, and
    generate.json with Hugging Face's greedy ids (see kv_fixture)."""
    import transformers
    torch.manual_seed(SEED)
    cfg = getattr(transformers, config_cls)(**cfg_kwargs)
    model = getattr(transformers, model_cls)(cfg).eval()
    layers = cfg.decoder_layers if hasattr(cfg, "decoder_layers") else cfg.num_decoder_layers
    root = os.path.join(HERE, name)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    enc = Seq2SeqEncoder(model).eval()
    dec = Seq2SeqWithCache(model, layers).eval()
    vocab = cfg_kwargs["vocab_size"]
    past_names = [n for i in range(layers) for n in (
        "past_key_values.%d.decoder.key" % i, "past_key_values.%d.decoder.value" % i,
        "past_key_values.%d.encoder.key" % i, "past_key_values.%d.encoder.value" % i)]
    present_names = [n.replace("past_key_values", "present") for n in past_names]
    enc_inputs = token_inputs(vocab, False)

    def encoded(batch, seq, padded):
        feeds = enc_inputs(batch, seq, padded)
        with torch.no_grad():
            hidden = enc(feeds["input_ids"], feeds["attention_mask"])
        return hidden, feeds["attention_mask"]

    def prefill_inputs(batch, seq, padded):
        hidden, mask = encoded(batch, seq, padded)
        return {"decoder_input_ids": torch.full((batch, 1), cfg.decoder_start_token_id),
                "encoder_hidden_states": hidden, "attention_mask": mask}

    def decode_inputs(batch, seq, padded):
        hidden, mask = encoded(batch, seq, padded)
        g = torch.Generator().manual_seed(3 + seq)
        steps = torch.randint(1, vocab, (batch, 4), generator=g)
        with torch.no_grad():
            past = dec(steps, hidden, mask)[1:]
        feeds = {"decoder_input_ids": torch.randint(1, vocab, (batch, 1), generator=g),
                 "encoder_hidden_states": hidden, "attention_mask": mask}
        feeds.update(dict(zip(past_names, past)))
        return feeds

    cases = [(2, 16, True), (1, 6, False), (1, 33, False)]
    export_fixture(os.path.join(name, "encoder"), enc, ["input_ids", "attention_mask"],
                   ["encoder_hidden_states"],
                   {"input_ids": {0: "batch", 1: "sequence"},
                    "attention_mask": {0: "batch", 1: "sequence"},
                    "encoder_hidden_states": {0: "batch", 1: "sequence"}},
                   enc_inputs, cases, description + " (encoder)")
    step_axes = {"decoder_input_ids": {0: "batch", 1: "decoder_sequence"},
                 "encoder_hidden_states": {0: "batch", 1: "sequence"},
                 "attention_mask": {0: "batch", 1: "sequence"},
                 "logits": {0: "batch", 1: "decoder_sequence"}}
    for n in past_names:
        step_axes[n] = {0: "batch", 2: "past_sequence" if ".decoder." in n else "sequence"}
    for n in present_names:
        step_axes[n] = {0: "batch", 2: "total_sequence" if ".decoder." in n else "sequence"}
    io = ["decoder_input_ids", "encoder_hidden_states", "attention_mask"]
    export_fixture(os.path.join(name, "prefill"), dec, io, ["logits"] + present_names,
                   step_axes, prefill_inputs, cases,
                   description + " (first decoder step: returns self and cross present)")
    export_fixture(os.path.join(name, "decode"), dec, io + past_names,
                   ["logits"] + present_names, step_axes, decode_inputs, cases,
                   description + " (decoder step with self and cross past)")
    ids = torch.tensor([list(prompt)])
    with torch.no_grad():
        ref = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    expected = ref[0, 1:].tolist()  # drop the decoder start token
    with open(os.path.join(root, "generate.json"), "w") as f:
        json.dump({"prompt_ids": list(prompt), "max_new_tokens": new_tokens,
                   "decoder_start_id": cfg.decoder_start_token_id,
                   "expected_ids": expected,
                   "reference": "transformers %s model.generate(do_sample=False)"
                   % transformers.__version__}, f, indent=2)
    print("%s: generate reference %s" % (name, expected))


def t5_kv():
    seq2seq_kv_fixture("t5_kv", "T5Config", "T5ForConditionalGeneration",
                       dict(vocab_size=1000, d_model=88, d_kv=22, d_ff=176, num_layers=2,
                            num_decoder_layers=2, num_heads=4, feed_forward_proj="relu",
                            tie_word_embeddings=True, decoder_start_token_id=0,
                            initializer_factor=2.3),
                       "T5ForConditionalGeneration v1.0, init factor 2.3")


def t5v11_kv():
    seq2seq_kv_fixture("t5v11_kv", "T5Config", "T5ForConditionalGeneration",
                       dict(vocab_size=1000, d_model=88, d_kv=22, d_ff=176, num_layers=2,
                            num_decoder_layers=2, num_heads=4,
                            feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                            decoder_start_token_id=0, initializer_factor=1.7),
                       "T5 v1.1 / mT5 config (GeGLU, untied), init factor 1.7")


def bart_kv():
    seq2seq_kv_fixture("bart_kv", "BartConfig", "BartForConditionalGeneration",
                       dict(vocab_size=1000, d_model=88, encoder_layers=2, decoder_layers=2,
                            encoder_attention_heads=4, decoder_attention_heads=4,
                            encoder_ffn_dim=176, decoder_ffn_dim=176,
                            max_position_embeddings=128, pad_token_id=1, bos_token_id=0,
                            eos_token_id=2, decoder_start_token_id=2,
                            forced_eos_token_id=None, forced_bos_token_id=None,
                            init_std=0.3),
                       "BartForConditionalGeneration, init std 0.3")


def seq2seq(name, config_cls, model_cls, cfg_kwargs, description):
    import transformers
    torch.manual_seed(SEED)
    cfg = getattr(transformers, config_cls)(use_cache=False, **cfg_kwargs)
    model = getattr(transformers, model_cls)(cfg)
    names = ["input_ids", "attention_mask", "decoder_input_ids"]
    axes = {"input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "decoder_input_ids": {0: "batch", 1: "decoder_sequence"},
            "logits": {0: "batch", 1: "decoder_sequence"}}
    enc = token_inputs(cfg_kwargs["vocab_size"], False)

    def make(batch, seq, padded):
        feeds = enc(batch, seq, padded)
        g = torch.Generator().manual_seed(7 + seq)
        feeds["decoder_input_ids"] = torch.randint(
            1, cfg_kwargs["vocab_size"], (batch, max(1, seq // 2 + 1)), generator=g)
        return feeds
    export_fixture(name, model, names, ["logits"], axes, make,
                   [(1, 16, False), (2, 33, True), (1, 1, False)], description)


def t5():
    seq2seq("t5_tiny", "T5Config", "T5ForConditionalGeneration",
            dict(vocab_size=1000, d_model=88, d_kv=22, d_ff=176, num_layers=2,
                 num_decoder_layers=2, num_heads=4, relative_attention_num_buckets=32,
                 relative_attention_max_distance=128, feed_forward_proj="relu",
                 tie_word_embeddings=True, decoder_start_token_id=0),
            "T5ForConditionalGeneration v1.0: ReLU, tied head (x d_model^-0.5), relative buckets")


def mt5():
    seq2seq("t5v11_tiny", "T5Config", "T5ForConditionalGeneration",
            dict(vocab_size=1000, d_model=88, d_kv=22, d_ff=176, num_layers=2,
                 num_decoder_layers=2, num_heads=4, feed_forward_proj="gated-gelu",
                 tie_word_embeddings=False, decoder_start_token_id=0),
            "T5 v1.1 / mT5 config: GeGLU, untied head")


def bart():
    seq2seq("bart_tiny", "BartConfig", "BartForConditionalGeneration",
            dict(vocab_size=1000, d_model=88, encoder_layers=2, decoder_layers=2,
                 encoder_attention_heads=4, decoder_attention_heads=4,
                 encoder_ffn_dim=176, decoder_ffn_dim=176, max_position_embeddings=128,
                 pad_token_id=1, bos_token_id=0, eos_token_id=2,
                 decoder_start_token_id=2, forced_eos_token_id=None),
            "BartForConditionalGeneration: post-LN, learned positions (offset 2), final_logits_bias")


def opt():
    decoder("opt_tiny", "OPTConfig", "OPTForCausalLM",
            dict(vocab_size=1000, hidden_size=88, num_hidden_layers=2, ffn_dim=176,
                 num_attention_heads=4, max_position_embeddings=128,
                 word_embed_proj_dim=88),
            "OPTForCausalLM: learned positions (offset 2), ReLU, tied head")


def gpt_neox():
    decoder("gpt_neox_tiny", "GPTNeoXConfig", "GPTNeoXForCausalLM",
            dict(vocab_size=1000, hidden_size=96, num_hidden_layers=2,
                 num_attention_heads=6, intermediate_size=176, rotary_pct=0.25,
                 max_position_embeddings=128),
            "GPTNeoXForCausalLM: parallel residual, partial rotary (4 of 16)")


def gptj():
    decoder("gptj_tiny", "GPTJConfig", "GPTJForCausalLM",
            dict(vocab_size=1000, n_embd=96, n_layer=2, n_head=6, rotary_dim=8,
                 n_positions=128, bos_token_id=0, eos_token_id=0),
            "GPTJForCausalLM: parallel residual, interleaved partial rotary "
            "(8 of 16) with Tile-repeated tables, gelu_new")


def roformer():
    encoder("roformer_tiny", "RoFormerConfig", "RoFormerModel",
            dict(vocab_size=1000, hidden_size=96, embedding_size=96,
                 num_hidden_layers=2, num_attention_heads=6,
                 intermediate_size=176, max_position_embeddings=128),
            True, "RoFormerModel: interleaved rotary on q and k, post-LN encoder")


def mistral():
    decoder("mistral_tiny", "MistralConfig", "MistralForCausalLM",
            dict(vocab_size=1000, hidden_size=96, intermediate_size=160,
                 num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2,
                 max_position_embeddings=128, sliding_window=8),
            "MistralForCausalLM: sliding-window causal mask (8), GQA 6/2")


def qwen2():
    decoder("qwen2_tiny", "Qwen2Config", "Qwen2ForCausalLM",
            dict(vocab_size=1000, hidden_size=96, intermediate_size=160,
                 num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2,
                 max_position_embeddings=128),
            "Qwen2ForCausalLM: q/k/v biases, GQA 6/2")


def gemma2():
    # Eager attention (SDPA cannot cap scores): scores * scaling / 1.5,
    # tanh, * 1.5, then the mask; the init std makes the cap bite.
    decoder("gemma2_tiny", "Gemma2Config", "Gemma2ForCausalLM",
            dict(vocab_size=1000, hidden_size=96, intermediate_size=160,
                 num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2,
                 head_dim=16, max_position_embeddings=128, sliding_window=8,
                 attn_logit_softcapping=1.5, initializer_range=0.3,
                 attn_implementation="eager"),
            "Gemma2ForCausalLM: attention softcap 1.5, sliding window 8 on "
            "alternate layers, GeGLU, GQA 6/2, init std 0.3")


FIXTURES = {"bert_tiny": bert, "bert_mlm_tiny": bert_mlm, "ernie_tiny": ernie, "gpt2_tiny": gpt2, "roberta_tiny": roberta,
            "albert_tiny": albert, "electra_tiny": electra, "bloom_tiny": bloom,
            "llama_tiny": llama, "glm_tiny": glm, "t5_tiny": t5,
            "t5v11_tiny": mt5, "bart_tiny": bart, "gpt2_kv": gpt2_kv,
            "bloom_kv": bloom_kv, "llama_kv": llama_kv, "glm_kv": glm_kv,
            "t5_kv": t5_kv, "t5v11_kv": t5v11_kv, "bart_kv": bart_kv,
            "opt_tiny": opt, "gpt_neox_tiny": gpt_neox, "gptj_tiny": gptj,
            "roformer_tiny": roformer, "mistral_tiny": mistral,
            "qwen2_tiny": qwen2, "mistral_kv": mistral_kv,
            "gemma2_tiny": gemma2}

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=sorted(FIXTURES))
    ap.add_argument("--dynamo", action="store_true",
                    help="export with the dynamo exporter into NAME_dynamo/")
    args = ap.parse_args()
    DYNAMO = args.dynamo
    for name, fn in FIXTURES.items():
        if not args.only or args.only == name:
            fn()
