#!/usr/bin/env python3
"""The Python binding (python/transfuse) against the fixtures' references.

Compiles fixtures through transfuse.compile, runs them through
transfuse.Model, and checks:
- every test-data set of BERT, GPT-2, LLaMA and T5 fixtures against its
  expected outputs (ONNX Runtime's, committed), with run_fixture.sh's
  tolerances;
- greedy generation with GPT-2's and LLaMA's KV-cache exports, the present
  key/values fed back as the past, against Hugging Face's ids
  (generate.json);
- bad inputs raise InvalidArgumentError naming the input, and the session
  still runs afterwards; compile errors raise CompileError;
- caller output buffers, non-contiguous and list inputs, outputs that
  outlive their session and model, and sessions on two threads at once.

usage: test_binding.py WORK_DIR   (with python/ on PYTHONPATH and
TRANSFUSE_BIN_DIR set; test/CMakeLists.txt does both)
"""
import gc
import glob
import json
import os
import sys
import threading
import unittest

import numpy as np
import onnx
from onnx import numpy_helper

import transfuse

MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                      "models")
WORK = None
RTOL, ATOL = 1e-3, 1e-4  # run_fixture.sh's
_compiled = {}


def model(name):
    """The fixture MODELS/name/model.onnx, compiled once into WORK."""
    if name not in _compiled:
        so = os.path.join(WORK, name.replace("/", ".") + ".so")
        _compiled[name] = transfuse.compile(
            os.path.join(MODELS, name, "model.onnx"), so)
    return _compiled[name]


def load_set(directory):
    def tensors(kind):
        files = sorted(glob.glob(os.path.join(directory, kind + "_*.pb")),
                       key=lambda f: int(f.rsplit("_", 1)[1][:-3]))
        return [numpy_helper.to_array(onnx.load_tensor(f)) for f in files]
    return tensors("input"), tensors("output")


def assert_close(test, got, expected, what):
    test.assertEqual(got.shape, expected.shape, what)
    test.assertEqual(got.dtype, expected.dtype, what)
    bad = np.abs(got - expected) > ATOL + RTOL * np.abs(expected)
    test.assertFalse(bad.any(), "%s: %d elements off, max abs err %g" % (
        what, bad.sum(), np.abs(got - expected).max()))


class Fixtures(unittest.TestCase):
    def test_fixtures_match_onnx_runtime(self):
        for name in ["bert_tiny", "gpt2_tiny", "llama_tiny", "t5_tiny"]:
            m = model(name)
            sets = sorted(glob.glob(os.path.join(MODELS, name,
                                                 "test_data_set_*")))
            self.assertTrue(sets, name)
            for d in sets:
                inputs, expected = load_set(d)
                feeds = {i.name: a for i, a in zip(m.inputs, inputs)}
                out = m.run(feeds)
                self.assertEqual(list(out), [o.name for o in m.outputs])
                for o, e in zip(m.outputs, expected):
                    assert_close(self, out[o.name], e,
                                 "%s %s %s" % (name, os.path.basename(d),
                                               o.name))

    def test_greedy_generation_matches_hugging_face(self):
        for name in ["gpt2_kv", "llama_kv"]:
            with open(os.path.join(MODELS, name, "generate.json")) as f:
                ref = json.load(f)
            prefill, decode = model(name + "/prefill"), model(name + "/decode")
            ids = np.array([ref["prompt_ids"]], np.int64)
            out = prefill.run({"input_ids": ids,
                               "attention_mask": np.ones_like(ids)})
            generated = []
            total = ids.shape[1]
            with decode.session() as s:
                for _ in range(ref["max_new_tokens"]):
                    logits = out["logits"]
                    generated.append(int(logits[0, -1].argmax()))
                    total += 1
                    feeds = {"input_ids": np.array([[generated[-1]]]),
                             "attention_mask": np.ones((1, total), np.int64)}
                    # present.L.key/value -> past_key_values.L.key/value,
                    # the arrays the last run gave, without a copy.
                    for i in decode.inputs[2:]:
                        feeds[i.name] = out[i.name.replace(
                            "past_key_values", "present")]
                    out = s.run(feeds)
            self.assertEqual(generated, ref["expected_ids"], name)


class Api(unittest.TestCase):
    def setUp(self):
        self.m = model("bert_tiny")
        self.inputs, self.expected = load_set(
            os.path.join(MODELS, "bert_tiny", "test_data_set_0"))

    def test_signature(self):
        self.assertEqual([i.name for i in self.m.inputs],
                         ["input_ids", "attention_mask", "token_type_ids"])
        self.assertEqual(self.m.inputs[0].dtype, np.int64)
        self.assertEqual(self.m.inputs[0].shape, ("batch", "sequence"))
        self.assertEqual(self.m.inputs[0].index_bound, 1000)  # vocabulary
        self.assertIsNone(self.m.inputs[1].index_bound)
        self.assertEqual(self.m.outputs[0].shape, ("batch", "sequence", 88))
        self.assertGreaterEqual(self.m.arena_bytes, 0)

    def test_bad_inputs_are_errors_and_the_session_goes_on(self):
        ids, mask, types = self.inputs
        with self.m.session() as s:
            cases = [
                ([ids.astype(np.int32), mask, types], "input_ids"),
                ([ids[0], mask, types], "input_ids"),  # rank 1
                ([ids, mask[:, :-1], types], "attention_mask"),
                ([ids + 10 ** 6, mask, types], "vocabulary"),
                ([ids, mask], "takes 3 inputs"),
                ({"input_ids": ids, "attention_mask": mask}, "token_type_ids"),
                ({"input_ids": ids, "attention_mask": mask,
                  "token_type_ids": types, "extra": ids}, "extra"),
                ([ids.astype(np.complex64), mask, types], "complex64"),
            ]
            for inputs, needle in cases:
                with self.assertRaises(transfuse.InvalidArgumentError) as c:
                    s.run(inputs)
                self.assertIn(needle, str(c.exception))
                self.assertIsInstance(c.exception, ValueError)
            out = s.run(self.inputs)
            assert_close(self, out["last_hidden_state"], self.expected[0],
                         "after the errors")

    def test_caller_output_buffers(self):
        buf = np.full(self.expected[0].shape, np.nan, np.float32)
        out = self.m.run(self.inputs, outputs={"last_hidden_state": buf})
        self.assertIs(out["last_hidden_state"], buf)
        assert_close(self, buf, self.expected[0], "caller's buffer")
        assert_close(self, out["pooler_output"], self.expected[1], "pooler")
        for bad in [np.zeros((1, 1, 88), np.float32),
                    np.zeros(self.expected[0].shape, np.float64)]:
            with self.assertRaises(transfuse.InvalidArgumentError) as c:
                self.m.run(self.inputs, outputs={"last_hidden_state": bad})
            self.assertIn("last_hidden_state", str(c.exception))
        with self.assertRaises(transfuse.InvalidArgumentError):
            self.m.run(self.inputs, outputs={"last_hidden_state": buf.T})
        with self.assertRaises(transfuse.InvalidArgumentError):
            self.m.run(self.inputs, outputs={"logits": buf})

    def test_non_contiguous_and_list_inputs(self):
        ids, mask, types = self.inputs
        wide = np.zeros((ids.shape[0], ids.shape[1] * 2), np.int64)
        wide[:, ::2] = ids
        strided = [wide[:, ::2], np.asfortranarray(mask), types]
        out = self.m.run(strided)
        assert_close(self, out["last_hidden_state"], self.expected[0],
                     "strided inputs")
        out = self.m.run([ids.tolist(), mask.tolist(), types.tolist()])
        assert_close(self, out["last_hidden_state"], self.expected[0],
                     "list inputs")

    def test_outputs_outlive_their_session_and_model(self):
        m = transfuse.Model(self.m.path)  # a second handle on the library
        s = m.session()
        out = s.run(self.inputs)["last_hidden_state"]
        s.close()
        del s, m
        gc.collect()
        assert_close(self, out, self.expected[0], "after close")
        with self.assertRaises(transfuse.Error):
            s = self.m.session()
            s.close()
            s.run(self.inputs)

    def test_sessions_on_two_threads(self):
        results, errors = {}, []

        def work(t):
            try:
                with self.m.session() as s:
                    results[t] = [s.run(self.inputs)["last_hidden_state"]
                                  for _ in range(20)]
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(t,)) for t in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for runs in results.values():
            for r in runs:
                assert_close(self, r, self.expected[0], "threaded run")

    def test_load_and_compile_errors(self):
        with self.assertRaises(FileNotFoundError):
            transfuse.Model(os.path.join(WORK, "missing.so"))
        text = os.path.join(WORK, "not-a-library.so")
        with open(text, "w") as f:
            f.write("not an ELF file\n")
        with self.assertRaises(transfuse.Error) as c:
            transfuse.Model(text)
        self.assertIn("cannot load", str(c.exception))
        bad = os.path.join(WORK, "not-onnx.onnx")
        with open(bad, "wb") as f:
            f.write(b"\x08\x07garbage")
        with self.assertRaises(transfuse.CompileError) as c:
            transfuse.compile(bad)
        self.assertIn("error", str(c.exception))

    def test_compile_to_a_temporary_file(self):
        m = transfuse.compile(os.path.join(MODELS, "bert_tiny", "model.onnx"),
                              dims={"batch": 1, "sequence": 16})
        self.assertFalse(os.path.exists(m.path))  # removed once loaded
        self.assertEqual(m.inputs[0].shape, (1, 16))
        out = m.run(self.inputs)
        assert_close(self, out["last_hidden_state"], self.expected[0],
                     "static shapes")


if __name__ == "__main__":
    WORK = os.path.abspath(sys.argv.pop(1))
    os.makedirs(WORK, exist_ok=True)
    unittest.main(verbosity=2)
