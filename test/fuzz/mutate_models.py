#!/usr/bin/env python3
"""Malformed models must get an error, never a crash.

Mutates the committed fixtures (test/models) at the ONNX level, one or two
mutations per model, with a fixed seed: an attribute's value, an
initializer's dims, values or presence, a graph input's dim or dtype, a
node's op type, input, output name or presence. Compiles each mutant with
`transfuse compile` (every other one with --precision bf16) and fails when
the compiler dies on a signal, prints an LLVM crash report or assertion,
exits with a status other than 0 or 1, exits 1 without an `error:` line,
or runs past the timeout. Many mutations leave a valid model, or one whose
shapes only fail at run time: a mutant that compiles is run on its
fixture's first test-data set with `transfuse-run` (every third one also
through the JIT), where a different result (exit 1) or an error (exit 2)
are fine and a signal, another status or the timeout are not. Crashing
mutants are kept in --out, with the mutations that made them.

usage: mutate_models.py --bin BUILD/bin --models test/models --out DIR
                        [--count N] [--seed S] [--show-errors]
"""
import argparse
import glob
import os
import random
import subprocess
import sys

import onnx
from onnx import TensorProto, numpy_helper

OP_TYPES = ["Add", "MatMul", "Reshape", "Transpose", "Softmax", "Gather",
            "Concat", "Slice", "Where", "Cast", "Unsqueeze", "Split",
            "LayerNormalization", "Expand", "ReduceMean", "Gemm", "Einsum",
            "Range", "Trilu", "CumSum", "ConstantOfShape", "Attention",
            "SimplifiedLayerNormalization"]
DTYPES = [TensorProto.FLOAT, TensorProto.INT32, TensorProto.INT64,
          TensorProto.FLOAT16, TensorProto.BOOL, TensorProto.DOUBLE]
ODD_INTS = [-100, -5, -1, 0, 1, 2, 3, 7, 100, 1 << 33]


def mutate_attribute(g, rng):
    nodes = [n for n in g.node if n.attribute]
    if not nodes:
        return None
    n = rng.choice(nodes)
    a = rng.choice(n.attribute)
    if a.type == onnx.AttributeProto.INT:
        a.i = rng.choice(ODD_INTS)
    elif a.type == onnx.AttributeProto.INTS:
        v = list(a.ints)
        how = rng.choice(["drop", "repeat", "set"])
        if not v:
            v = [rng.choice(ODD_INTS)]
        elif how == "drop":
            v.pop(rng.randrange(len(v)))
        elif how == "repeat":
            v.append(v[0])
        else:
            v[rng.randrange(len(v))] = rng.choice(ODD_INTS)
        del a.ints[:]
        a.ints.extend(v)
    elif a.type == onnx.AttributeProto.FLOAT:
        a.f = rng.choice([0.0, -1.0, float("nan"), float("inf"), 1e30])
    elif a.type == onnx.AttributeProto.STRING:
        a.s = rng.choice([b"", b"bogus", b"i,j->", b"ab,bc->ac"])
    elif a.type == onnx.AttributeProto.TENSOR:
        t = numpy_helper.to_array(a.t)
        if t.size and t.dtype.kind in "iu":
            flat = t.copy().reshape(-1)
            flat[rng.randrange(flat.size)] = rng.choice(ODD_INTS)
            a.t.CopyFrom(numpy_helper.from_array(flat.reshape(t.shape),
                                                 a.t.name))
        else:
            a.t.dims.append(2)  # more elements claimed than held
    else:
        return None
    return "attribute %s of %s (%s)" % (a.name, n.name, n.op_type)


def mutate_initializer_dims(g, rng):
    if not g.initializer:
        return None
    t = rng.choice(g.initializer)
    if t.dims and rng.random() < 0.6:
        t.dims[rng.randrange(len(t.dims))] += rng.choice([-1, 1, 5])
    elif rng.random() < 0.5:
        t.dims.append(1)
    elif t.dims:
        t.dims.pop()
    return "dims of initializer %s" % t.name


def drop_initializer(g, rng):
    if not g.initializer:
        return None
    i = rng.randrange(len(g.initializer))
    name = g.initializer[i].name
    del g.initializer[i]
    return "initializer %s removed" % name


def mutate_int_values(g, rng):
    inits = [t for t in g.initializer
             if t.data_type in (TensorProto.INT64, TensorProto.INT32)]
    if not inits:
        return None
    t = rng.choice(inits)
    arr = numpy_helper.to_array(t).copy()
    if not arr.size:
        return None
    arr.reshape(-1)[rng.randrange(arr.size)] = rng.choice(ODD_INTS[:-1])
    t.CopyFrom(numpy_helper.from_array(arr, t.name))
    return "a value of initializer %s" % t.name


def mutate_input_dim(g, rng):
    inp = rng.choice(g.input)
    dims = inp.type.tensor_type.shape.dim
    if not dims:
        return None
    rng.choice(dims).dim_value = rng.choice([0, 1, 3, 100000])
    return "a dim of input %s" % inp.name


def mutate_input_dtype(g, rng):
    inp = rng.choice(g.input)
    inp.type.tensor_type.elem_type = rng.choice(DTYPES)
    return "dtype of input %s" % inp.name


def rewire_input(g, rng):
    n = rng.choice(g.node)
    if not n.input:
        return None
    names = ([o for m in g.node for o in m.output] + [i.name for i in g.input]
             + [t.name for t in g.initializer] + [""])
    i = rng.randrange(len(n.input))
    n.input[i] = rng.choice(names)
    return "input %d of %s (%s)" % (i, n.name, n.op_type)


def change_op_type(g, rng):
    n = rng.choice(g.node)
    old = n.op_type
    n.op_type = rng.choice(OP_TYPES)
    return "%s: %s -> %s" % (n.name, old, n.op_type)


def drop_node(g, rng):
    i = rng.randrange(len(g.node))
    name = g.node[i].name
    del g.node[i]
    return "node %s removed" % name


def duplicate_output(g, rng):
    a, b = rng.sample(list(g.node), 2)
    if not a.output or not b.output:
        return None
    b.output[0] = a.output[0]
    return "%s writes %s's output" % (b.name, a.name)


MUTATIONS = [mutate_attribute, mutate_attribute, mutate_attribute,
             mutate_initializer_dims, drop_initializer, mutate_int_values,
             mutate_int_values, mutate_input_dim, mutate_input_dtype,
             rewire_input, change_op_type, change_op_type, drop_node,
             duplicate_output]


def crashed(rc, err, statuses, error_status):
    """Why a run of the compiler (statuses 0, 1) or of transfuse-run (0, 1,
    2) counts as a crash, or None. `error_status` must come with an
    `error:` line."""
    if rc is None:
        return "timed out"
    if rc < 0:
        return "killed by signal %d" % -rc
    if rc not in statuses:
        return "exit status %d" % rc
    for sign in ("Stack dump", "LLVM ERROR", "Assertion", "PLEASE submit"):
        if sign in err:
            return "crash report (%s)" % sign
    if rc == error_status and "error:" not in err:
        return "exit %d without an error message" % rc
    return None


def run(cmd, timeout):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout)
        return p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        return None, ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--show-errors", action="store_true",
                    help="print each rejected mutant's error")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    fixtures = sorted(glob.glob(os.path.join(args.models, "*", "model.onnx")) +
                      glob.glob(os.path.join(args.models, "*", "*",
                                             "model.onnx")))
    if not fixtures:
        sys.exit("no fixtures under " + args.models)
    os.makedirs(args.out, exist_ok=True)
    compiler = os.path.join(args.bin, "transfuse")
    runner = os.path.join(args.bin, "transfuse-run")
    counts = {"rejected": 0, "compiled": 0, "crashed": 0}
    ran = {0: 0, 1: 0, 2: 0}
    for i in range(args.count):
        src = rng.choice(fixtures)
        m = onnx.load(src)
        done = []
        for _ in range(rng.choice([1, 1, 2])):
            what = rng.choice(MUTATIONS)(m.graph, rng)
            if what:
                done.append(what)
        if not done:
            continue
        path = os.path.join(args.out, "mutant_%d.onnx" % i)
        onnx.save(m, path)
        # Every other mutant in bf16: its own lowering and kernels.
        precision = "bf16" if i % 2 else "f32"
        rc, err = run([compiler, "compile", path, "-o", path + ".so",
                       "-quiet", "--precision", precision], args.timeout)
        why = crashed(rc, err, (0, 1), 1)
        if not why and rc == 0:
            data = os.path.join(os.path.dirname(src), "test_data_set_0")
            runs = [("transfuse-run", [path + ".so"])]
            # Every third one through the JIT too (its own code path).
            if i % 3 == 0:
                runs.append(("transfuse-run --jit",
                             [path, "--jit", "--precision", precision]))
            for what, target in runs:
                run_rc, out = run([runner] + target + ["--test-data", data,
                                                        "--repeat", "1",
                                                        "--quiet"],
                                  args.timeout)
                why = crashed(run_rc, out, (0, 1, 2), 2)
                if why:
                    why, err = what + ": " + why, out
                    break
            if not why:
                ran[run_rc] += 1
        name = os.path.relpath(src, args.models)
        if why:
            counts["crashed"] += 1
            with open(path + ".txt", "w") as f:
                f.write("%s, --precision %s: %s\n%s\n"
                        % (name, precision, "; ".join(done), err))
            print("CRASH %s (%s): %s, from %s: %s"
                  % (path, precision, why, name, "; ".join(done)))
            continue
        counts["compiled" if rc == 0 else "rejected"] += 1
        if rc and args.show_errors:
            lines = [l for l in err.splitlines() if "error:" in l]
            print("%s (%s): %s" % (name, "; ".join(done), lines[0]))
        for f in (path, path + ".so"):
            if os.path.exists(f):
                os.remove(f)
    print("%d mutants of %d fixtures (seed %d): %d rejected with an error, "
          "%d compiled (run: %d passed, %d gave other results, %d stopped "
          "with an error), %d crashed"
          % (sum(counts.values()), len(fixtures), args.seed,
             counts["rejected"], counts["compiled"], ran[0], ran[1], ran[2],
             counts["crashed"]))
    sys.exit(1 if counts["crashed"] else 0)


if __name__ == "__main__":
    main()
