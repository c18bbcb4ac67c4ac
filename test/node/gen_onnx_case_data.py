#!/usr/bin/env python3
"""Writes ONNX's own node test cases for the given op types as test data.

The Debian libonnx-testdata predates opset 23, so the cases for Attention,
RMSNormalization and RotaryEmbedding come from the onnx package instead: its
backend test case generators build each model and compute the expected
outputs with ONNX's reference implementation (what `python -m
onnx.backend.test.cmd_tools generate-data` does for every op). The layout is
the same as libonnx-testdata's, so run_node_tests.py runs it with --data.

usage: gen_onnx_case_data.py -o DIR MODULE [MODULE ...]
  MODULE: a generator in onnx.backend.test.case.node (attention,
  rmsnormalization, rotaryembedding, ...)
"""
import argparse
import importlib
import os
import shutil


def write_cases(modules, out_dir):
    from onnx import numpy_helper
    from onnx.backend.test.case import node

    # Importing a generator module registers its cases (and their
    # function-expanded twins, "_expanded").
    for m in modules:
        importlib.import_module("onnx.backend.test.case.node." + m)
    for case in node._NodeTestCases:
        model = case.model
        if any(not i.type.HasField("tensor_type") for i in model.graph.input):
            continue
        case_dir = os.path.join(out_dir, case.name)
        shutil.rmtree(case_dir, ignore_errors=True)
        os.makedirs(case_dir)
        with open(os.path.join(case_dir, "model.onnx"), "wb") as f:
            f.write(model.SerializeToString())
        for i, (inputs, outputs) in enumerate(case.data_sets):
            ds = os.path.join(case_dir, f"test_data_set_{i}")
            os.makedirs(ds)
            for kind, values, infos in (("input", inputs, model.graph.input),
                                        ("output", outputs, model.graph.output)):
                for j, value in enumerate(values):
                    proto = (value if hasattr(value, "SerializeToString")
                             else numpy_helper.from_array(value, infos[j].name))
                    with open(os.path.join(ds, f"{kind}_{j}.pb"), "wb") as f:
                        f.write(proto.SerializeToString())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("modules", nargs="+")
    args = ap.parse_args()
    os.makedirs(args.output, exist_ok=True)
    write_cases(args.modules, args.output)
    print(f"{len(os.listdir(args.output))} cases in {args.output}")


if __name__ == "__main__":
    main()
