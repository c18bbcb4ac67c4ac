#!/usr/bin/env python3
"""Runs ONNX's own node tests (libonnx-testdata) through Transfuse.

A case is selected when every op in its graph is one the importer claims
(CLAIMED below, the op list of the foundation issue). Each selected case is
compiled and run AOT (`transfuse compile` + `transfuse-run MODEL.so`) or JIT
(`transfuse-run MODEL.onnx --jit`), and compared with the expected outputs
that ship with ONNX. Cases listed in the exclusions file are not run; each
is printed with its reason. Any other failure fails the suite.

The opset-23 ops (Attention, RMSNormalization, RotaryEmbedding) postdate
libonnx-testdata; `--generate attention,rmsnormalization,rotaryembedding`
writes ONNX's own cases for them from the installed onnx package
(gen_onnx_case_data.py, expected outputs from ONNX's reference
implementation) and runs those, with exclusions_fused_ops.txt. `ort_contrib`
among them adds the ONNX Runtime contrib-op cases of
gen_ort_contrib_cases.py (expected outputs from ONNX Runtime).

usage: run_node_tests.py --mode aot|jit --bin BUILD/bin [--data DIR |
                         --generate MODULES] [--exclusions FILE] [-j N]
                         [--filter SUBSTRING] [--list-failures]
"""
import argparse
import concurrent.futures as cf
import os
import subprocess
import sys
import tempfile

import onnx

CLAIMED = {
    "MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Reciprocal",
    "Erf", "Tanh", "Exp", "Neg", "Relu", "Sigmoid", "Softmax",
    "LayerNormalization", "ReduceMean", "ReduceSum", "ReduceMax", "Gather",
    "Reshape", "Transpose", "Unsqueeze", "Squeeze", "Concat", "Slice", "Split",
    "Expand", "Where", "Equal", "Less", "Greater", "Not", "And", "Cast",
    "Range", "Shape", "ConstantOfShape", "Trilu", "Constant", "Identity",
    "Einsum", "CumSum", "Min", "Max", "Clip",
    # Beyond the foundation list: ops that real exports were seen to use.
    "Mod", "Flatten", "IsNaN", "LessOrEqual", "GreaterOrEqual", "Or", "Log",
    "Abs", "Sin", "Cos", "Floor", "Ceil", "Dropout", "GatherElements",
    "GatherND", "Gelu", "Tile",
    # Opset 23, imported straight into fused ops (cases from --generate),
    # and ONNX Runtime's contrib ops (com.microsoft, and its
    # SimplifiedLayerNormalization in the ONNX domain).
    "Attention", "RMSNormalization", "RotaryEmbedding", "MultiHeadAttention",
    "SkipLayerNormalization", "SkipSimplifiedLayerNormalization",
    "SimplifiedLayerNormalization", "BiasGelu", "FastGelu", "QuickGelu",
    "EmbedLayerNormalization", "GroupQueryAttention", "MatMulNBits",
}
HERE = os.path.dirname(os.path.abspath(__file__))


def load_exclusions(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, reason = line.partition(":")
            out[name.strip()] = reason.strip()
    return out


def select_cases(data_dir, name_filter):
    cases = []
    for name in sorted(os.listdir(data_dir)):
        if name_filter and name_filter not in name:
            continue
        path = os.path.join(data_dir, name, "model.onnx")
        if not os.path.exists(path):
            continue
        model = onnx.load(path, load_external_data=False)
        ops = {n.op_type for n in model.graph.node}
        if ops and ops <= CLAIMED:
            cases.append(name)
    return cases


def run_case(name, args, tmp):
    case_dir = os.path.join(args.data, name)
    model = os.path.join(case_dir, "model.onnx")
    sets = sorted(d for d in os.listdir(case_dir) if d.startswith("test_data_set"))
    run = os.path.join(args.bin, "transfuse-run")
    if args.mode == "aot":
        so = os.path.join(tmp, name + ".so")
        p = subprocess.run([os.path.join(args.bin, "transfuse"), "compile", model,
                            "-o", so, "-quiet"], capture_output=True, text=True,
                           timeout=300)
        if p.returncode != 0:
            return name, False, "compile: " + (p.stderr.strip().splitlines() or ["?"])[-1]
        target = [run, so]
    else:
        target = [run, model, "--jit", "--quiet"]
    for s in sets:
        p = subprocess.run(target + ["--test-data", os.path.join(case_dir, s)],
                           capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            lines = (p.stderr.strip() + "\n" + p.stdout.strip()).strip().splitlines()
            detail = [l for l in lines if "error" in l or "MISMATCH" in l or "mismatch" in l]
            return name, False, (detail or lines or ["exit %d" % p.returncode])[-1]
    return name, True, ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["aot", "jit"], required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--data", default="/usr/share/libonnx-testdata/data/node")
    ap.add_argument("--generate", metavar="MODULES",
                    help="instead of --data, generate the cases of these "
                         "comma-separated onnx.backend.test.case.node "
                         "modules (gen_onnx_case_data.py), and of "
                         "gen_ort_contrib_cases.py for 'ort_contrib'")
    ap.add_argument("--exclusions", default=os.path.join(HERE, "exclusions.txt"))
    ap.add_argument("-j", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--filter", default="")
    ap.add_argument("--list-failures", action="store_true",
                    help="print failures as exclusion lines and exit 0")
    args = ap.parse_args()

    exclusions = load_exclusions(args.exclusions)
    with tempfile.TemporaryDirectory() as tmp:
        if args.generate:
            import gen_onnx_case_data
            import gen_ort_contrib_cases
            args.data = os.path.join(tmp, "data")
            os.makedirs(args.data)
            modules = args.generate.split(",")
            if "ort_contrib" in modules:
                modules.remove("ort_contrib")
                gen_ort_contrib_cases.write_cases(args.data)
            if modules:
                gen_onnx_case_data.write_cases(modules, args.data)
        return run_all(args, exclusions, tmp)


def run_all(args, exclusions, tmp):
    cases = select_cases(args.data, args.filter)
    to_run = [c for c in cases if c not in exclusions or args.list_failures]
    passed, failed = [], []
    with cf.ThreadPoolExecutor(args.j) as pool:
        for name, ok, msg in pool.map(lambda c: run_case(c, args, tmp), to_run):
            (passed if ok else failed).append((name, msg))
            if not ok and not args.list_failures:
                print("FAIL %s: %s" % (name, msg), flush=True)
    if args.list_failures:
        for name, msg in failed:
            print("%s: %s" % (name, msg))
        return 0
    skipped = [c for c in cases if c in exclusions]
    print("\nExcluded (%d), each with its reason:" % len(skipped))
    for c in skipped:
        print("  %s: %s" % (c, exclusions[c]))
    stale = sorted(set(exclusions) - set(cases))
    if stale:
        print("exclusions.txt names cases that are not selected: %s" % ", ".join(stale))
    print("\nONNX node tests (%s): %d selected, %d passed, %d failed, %d excluded"
          % (args.mode, len(cases), len(passed), len(failed), len(skipped)))
    print("%d passed, %d failed, %d skipped" % (len(passed), len(failed), len(skipped)))
    return 1 if failed or stale else 0


if __name__ == "__main__":
    sys.exit(main())
