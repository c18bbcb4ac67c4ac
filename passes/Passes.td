#ifndef TRANSFUSE_PASSES
#define TRANSFUSE_PASSES

include "mlir/Pass/PassBase.td"

def FoldShapeComputations : Pass<"transfuse-fold-shapes", "mlir::func::FuncOp"> {
  let summary = "Fold the exporters' shape-computation subgraphs into constants";
  let description = [{
    Matches every small 0-D/1-D integer value that is computed from shapes
    (`shape`, `gather`, `concat`, `unsqueeze`, `slice`, `cast`, integer
    arithmetic: the Shape->Gather->Concat->Reshape chains that
    torch.onnx.export emits) and whose every entry is known at compile time,
    and replaces it with a `transformer.constant`. Then re-infers result types
    so that reshapes fed by folded shapes get static dims.

    Leaves alone: values with any entry that depends on a run-time dim (batch,
    sequence); those remain real computations, and their known entries still
    refine result types through shape inference.
  }];
  let dependentDialects = ["transfuse::transformer::TransformerDialect"];
}

def RefineShapes : Pass<"transfuse-refine-shapes", "mlir::func::FuncOp"> {
  let summary = "Re-run shape inference and make result types more static";
  let description = [{
    Walks the function in order and replaces each graph op's result types with
    the inferred ones where those are more static, then updates the function
    signature. Never makes a type less static; an op whose inference fails is
    left as is (the verifier reports it).
  }];
}

//===----------------------------------------------------------------------===//
// Fusion: raise graph-op subgraphs into the fused ops. Each pass is a set of
// greedy patterns; `explain` emits a remark at each candidate it left alone.
// The driver runs them in this order (see docs/writing-a-pass.md).
//===----------------------------------------------------------------------===//

class FusionPass<string arg, string candidates> : Pass<arg, "mlir::func::FuncOp"> {
  let options = [
    Option<"explain", "explain", "bool", /*default=*/"false",
           "Remark at each " # candidates # " left unfused, with the reason">
  ];
  let dependentDialects = ["transfuse::transformer::TransformerDialect"];
}

def FuseActivations : FusionPass<"transfuse-fuse-activations",
                                 "erf, tanh and sigmoid"> {
  let summary = "Raise GELU (erf and tanh forms) and SiLU subgraphs";
  let description = [{
    Anchors on `erf`, `tanh` and `sigmoid`. Grows the largest expression
    around the anchor that is computed from one tensor `x` and scalar
    constants only, then evaluates it at sample points and compares with
    GELU (exact), GELU (tanh approximation) and SiLU. So the TorchScript,
    dynamo and hand-written forms (0.5 * x * (1 + erf(x / sqrt 2)), BLOOM's
    0.79788456 * x * (1 + 0.044715 * x * x), x * sigmoid(x), ...) all fuse
    without one pattern per spelling. ONNX's native Gelu is imported as the
    same `gelu` op.
  }];
}

def FuseNorms : FusionPass<"transfuse-fuse-norms",
                           "reduce_mean and layer_normalization"> {
  let summary = "Raise LayerNorm and RMSNorm, and fold a preceding residual add";
  let description = [{
    Matches ONNX LayerNormalization over the last axis, the decomposed
    LayerNorm (ReduceMean, Sub, Pow or Mul, ReduceMean, Add eps, Sqrt, Div or
    Reciprocal/Mul, optional scale and bias) and the decomposed RMSNorm of T5,
    LLaMA and GLM (Pow or Mul, ReduceMean, Add eps, Sqrt, Div or
    Reciprocal/Mul, optional scale). A `layer_norm` whose input is the sum of
    two tensors of its shape takes that add as its residual (skip-layernorm);
    when the sum is used elsewhere it becomes the op's second result.
  }];
}

def FuseRotary : FusionPass<"transfuse-fuse-rotary", "neg"> {
  let summary = "Raise rotary position embedding into `rotary_embedding`";
  let description = [{
    Anchors on the `neg` inside rotate(x) and matches
    `x * cos + rotate(x) * sin` with half-split pairs (LLaMA's rotate_half:
    Concat(-x[d/2:], x[:d/2])) or interleaved pairs (GPT-J, GLM:
    stack((-x[1::2], x[0::2]), -1) flattened), in either operand order.
    Partial rotary, where only x[..., :r] rotates and x[..., r:] is
    concatenated back, becomes one op with `rotary_dim = r`.
  }];
}

def FuseAttention : FusionPass<"transfuse-fuse-attention", "softmax"> {
  let summary = "Raise scaled-dot-product attention into `attention`";
  let description = [{
    Anchors on a last-axis `softmax` fed by MatMul(Q, K^T), optionally scaled
    (Mul/Div by a scalar, before or after the MatMul, on Q and/or K), plus any
    number of additive masks or biases; its result (optionally through the
    SDPA exporters' Where(IsNaN(p), 0, p)) must feed only MatMul(p, V). Peels
    the transpose of K and the Unsqueeze/Expand/Reshape that repeats K/V heads
    for grouped-query attention.
  }];
}

def CompactRelativeBias : FusionPass<"transfuse-compact-relative-bias",
                                     "attention with a gathered bias"> {
  let summary = "Compute a relative position bias once per diagonal";
  let description = [{
    Anchors on `attention`. A mask that is a gather from a table (through
    transposes and unsqueezes, its last two dims the gather's two index
    dims), whose [Sq, Sk] index is an elementwise function (with scalars
    and splats of its shape) of range(k0, k1)[None, :] -
    range(q0, q1)[:, None] or its negation, each range of step 1: T5's
    bucketed relative position bias. That index depends on j - i only, so
    the pass computes it over the Sq + Sk - 1 differences, gathers that
    many rows, and passes `toeplitz` of the result as the mask. The values
    are those of the original at every position.
  }];
}

def FuseLinear : FusionPass<"transfuse-fuse-linear", "matmul"> {
  let summary = "Raise MatMul by a matrix plus its epilogue into `linear`";
  let description = [{
    A `matmul` whose right operand is a 2-D matrix, followed by (each
    optional, each the single user of the previous) a 1-D bias add, an
    activation (relu, gelu, silu) and a residual add of the result's shape.
    Also, an activation of a `linear` that has none and is not gated (an
    ONNX Gemm is imported as one), directly or through a reshape, each the
    single user of the one before (GPT-2's MLP: Gemm on [B*S, E], reshape,
    GELU): the linear takes the activation and the reshape follows it.
    Run after the activation, norm and attention fusions.
  }];
}

def MergeProjections : FusionPass<"transfuse-merge-projections",
                                  "projection pair or sibling set"> {
  let summary = "Give linears that read one input one wider GEMM";
  let description = [{
    Runs after `transfuse-fuse-linear`. Concatenates constant weights (and
    biases) at compile time:
    - `act(x @ Wg + bg) * (x @ Wu + bu)`, a gated linear unit (LLaMA's
      SwiGLU, T5 v1.1's GeGLU), becomes one `linear {gated}` over [Wg | Wu];
      so does `act(y[..., :N]) * y[..., N:]` of one linear y (GLM's
      gate_up projection, chunked), with its weight as is;
    - projections of one input with no epilogue beyond a bias (Q, K and V;
      the K and V projections of every cross-attention layer reading the
      encoder output) become one `linear` over [W1 | W2 | ...], and each
      original result a `slice` of it.
  }];
}

def SelectAttention : Pass<"transfuse-select-attention", "mlir::func::FuncOp"> {
  let summary = "Choose materialized or memory-efficient attention per op";
  let description = [{
    Cost model: the materialized algorithm writes and reads the B*H*Sq*Sk
    fp32 scores; it is chosen while they fit in `budget-bytes`. Otherwise the
    memory-efficient one streams blocks of `kv-block` keys with an online
    softmax (the same FLOPs plus one rescale of the accumulator per block) and
    needs B*H*Sq*(kv-block + Dv + 2) floats. When a length is only known at
    run time the op gets `by_length`: the choice is made per call with the
    same budget. Records `algorithm` and `reason` on each op.
  }];
  let options = [
    Option<"algorithm", "algorithm", "std::string", /*default=*/"\"auto\"",
           "auto, materialized or memory_efficient">,
    Option<"budgetBytes", "budget-bytes", "int64_t", /*default=*/"8 << 20",
           "Largest score buffer the materialized algorithm may use">,
    Option<"kvBlock", "kv-block", "int64_t", /*default=*/"64",
           "Keys per block in the memory-efficient algorithm">
  ];
  let dependentDialects = ["transfuse::transformer::TransformerDialect"];
}

def LastPosition : Pass<"transfuse-last-position", "mlir::func::FuncOp"> {
  let summary = "Compute one [batch, seq, N] output at the last position only";
  let description = [{
    For generation: a prompt's step needs only the last position's logits.
    The region is every row-wise op that the function result named
    `output` depends on through [batch, seq, ...] operands and whose
    results nothing else reads: products by a weight (`linear`, with its
    residual; `matmul` by a matrix), `rms_norm` / `layer_norm`, and
    elementwise ops whose other operands are the same at every position
    (scalars, [N], [1, N]) or are [batch, seq, ...] themselves. In a
    decoder that is the LM head, the final norm, and the last layer from
    its attention's output on (output projection, residuals, norm, FFN),
    plus Gemma 2's final softcap or BART's logits bias after the head.
    Each [batch, seq, ...] operand that enters the region from outside it
    (the attention's output, the residual stream that also feeds the
    attention) is sliced once to its last position (`slice` starts -1 on
    axis 1), the region's types are re-inferred, and the result and its
    `transformer.dims` get a seq of 1. The output keeps its rank.

    Leaves the function unchanged, with a warning, when the result is
    missing, is not rank 3, is returned twice, or when no product by a
    weight is in the region (the product is read elsewhere, or the result
    is computed by an op over the positions, such as a softmax on axis 1).
  }];
  let options = [
    Option<"output", "output", "std::string", /*default=*/"\"logits\"",
           "The function result (its transformer.name) to slice">
  ];
  let dependentDialects = ["transfuse::transformer::TransformerDialect"];
}

#endif
