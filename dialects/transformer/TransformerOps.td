#ifndef TRANSFUSE_TRANSFORMER_OPS
#define TRANSFUSE_TRANSFORMER_OPS

include "dialects/transformer/TransformerDialect.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"
include "mlir/IR/CommonAttrConstraints.td"
include "mlir/IR/CommonTypeConstraints.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

// Every graph op is pure and verifies its result types against the shared
// shape-inference rules in ShapeInference.cpp: one source of truth for the
// importer, the verifier and the shape-refinement pass.
class Transformer_Op<string mnemonic, list<Trait> traits = []>
    : Op<Transformer_Dialect, mnemonic, !listconcat(traits, [Pure])> {
  let hasVerifier = 1;
  let assemblyFormat = "operands attr-dict `:` functional-type(operands, results)";
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::verify() {
      return ::transfuse::transformer::verifyInferredTypes(getOperation());
    }
  }];
}

def Transformer_Tensor : RankedTensorOf<[AnyType]>;
def Transformer_I64Tensor : RankedTensorOf<[I64]>;

//===----------------------------------------------------------------------===//
// Constants
//===----------------------------------------------------------------------===//

def Transformer_ConstantOp : Transformer_Op<"constant", [ConstantLike,
    DeclareOpInterfaceMethods<InferTypeOpInterface>]> {
  let summary = "A constant tensor (ONNX Constant and initializers)";
  let description = [{
    Large initializers are `dense_resource` blobs so that weights never become
    giant textual attributes; small ones (shape vectors) are `dense`.
  }];
  let arguments = (ins ElementsAttr:$value);
  let results = (outs Transformer_Tensor:$result);
  let assemblyFormat = "attr-dict $value";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

class Transformer_BinaryOp<string mnemonic, string summaryText>
    : Transformer_Op<mnemonic> {
  let summary = summaryText # " with ONNX multidirectional broadcasting";
  let arguments = (ins Transformer_Tensor:$lhs, Transformer_Tensor:$rhs);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_AddOp : Transformer_BinaryOp<"add", "Elementwise a + b">;
def Transformer_SubOp : Transformer_BinaryOp<"sub", "Elementwise a - b">;
def Transformer_MulOp : Transformer_BinaryOp<"mul", "Elementwise a * b">;
def Transformer_DivOp : Transformer_BinaryOp<"div", "Elementwise a / b">;
def Transformer_PowOp : Transformer_BinaryOp<"pow", "Elementwise a ^ b">;
def Transformer_MinOp : Transformer_BinaryOp<"min", "Elementwise minimum">;
def Transformer_MaxOp : Transformer_BinaryOp<"max", "Elementwise maximum">;
def Transformer_EqualOp : Transformer_BinaryOp<"equal", "Elementwise a == b (i1)">;
def Transformer_LessOp : Transformer_BinaryOp<"less", "Elementwise a < b (i1)">;
def Transformer_GreaterOp : Transformer_BinaryOp<"greater", "Elementwise a > b (i1)">;
def Transformer_AndOp : Transformer_BinaryOp<"and", "Elementwise logical and">;
def Transformer_OrOp : Transformer_BinaryOp<"or", "Elementwise logical or">;

def Transformer_ModOp : Transformer_Op<"mod"> {
  let summary = "Elementwise remainder with broadcasting";
  let description = [{
    `fmod = false`: integer remainder with the sign of the divisor (Python's
    %). `fmod = true`: C fmod, the sign of the dividend (required for floats).
  }];
  let arguments = (ins Transformer_Tensor:$lhs, Transformer_Tensor:$rhs,
                       BoolAttr:$fmod);
  let results = (outs Transformer_Tensor:$result);
}

class Transformer_UnaryOp<string mnemonic, string summaryText>
    : Transformer_Op<mnemonic> {
  let summary = summaryText;
  let arguments = (ins Transformer_Tensor:$input);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_SqrtOp : Transformer_UnaryOp<"sqrt", "Elementwise square root">;
def Transformer_ReciprocalOp : Transformer_UnaryOp<"reciprocal", "Elementwise 1 / x">;
def Transformer_ErfOp : Transformer_UnaryOp<"erf", "Elementwise error function">;
def Transformer_TanhOp : Transformer_UnaryOp<"tanh", "Elementwise tanh">;
def Transformer_ExpOp : Transformer_UnaryOp<"exp", "Elementwise e^x">;
def Transformer_LogOp : Transformer_UnaryOp<"log", "Elementwise natural log">;
def Transformer_NegOp : Transformer_UnaryOp<"neg", "Elementwise -x">;
def Transformer_AbsOp : Transformer_UnaryOp<"abs", "Elementwise |x|">;
def Transformer_ReluOp : Transformer_UnaryOp<"relu", "Elementwise max(x, 0)">;
def Transformer_SigmoidOp : Transformer_UnaryOp<"sigmoid", "Elementwise 1 / (1 + e^-x)">;
def Transformer_SinOp : Transformer_UnaryOp<"sin", "Elementwise sine">;
def Transformer_CosOp : Transformer_UnaryOp<"cos", "Elementwise cosine">;
def Transformer_FloorOp : Transformer_UnaryOp<"floor", "Elementwise floor">;
def Transformer_CeilOp : Transformer_UnaryOp<"ceil", "Elementwise ceil">;
def Transformer_NotOp : Transformer_UnaryOp<"not", "Elementwise logical not">;

def Transformer_IsNaNOp : Transformer_Op<"is_nan"> {
  let summary = "Elementwise x != x (i1)";
  let arguments = (ins Transformer_Tensor:$input);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_CastOp : Transformer_Op<"cast"> {
  let summary = "Elementwise conversion to the result's element type";
  let arguments = (ins Transformer_Tensor:$input);
  let results = (outs Transformer_Tensor:$result);  let hasFolder = 1;
}

def Transformer_WhereOp : Transformer_Op<"where"> {
  let summary = "Elementwise select with broadcasting";
  let arguments = (ins Transformer_Tensor:$condition, Transformer_Tensor:$x,
                       Transformer_Tensor:$y);
  let results = (outs Transformer_Tensor:$result);
}

//===----------------------------------------------------------------------===//
// Normalizations and reductions
//===----------------------------------------------------------------------===//

def Transformer_SoftmaxOp : Transformer_Op<"softmax"> {
  let summary = "Softmax along one axis (ONNX opset >= 13 semantics)";
  let arguments = (ins Transformer_Tensor:$input, I64Attr:$axis);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_LayerNormalizationOp : Transformer_Op<"layer_normalization"> {
  let summary = "ONNX LayerNormalization over dims [axis, rank)";
  let arguments = (ins Transformer_Tensor:$input, Transformer_Tensor:$scale,
                       Optional<Transformer_Tensor>:$bias, I64Attr:$axis,
                       F32Attr:$epsilon);
  let results = (outs Transformer_Tensor:$result);
}

class Transformer_ReduceOp<string mnemonic, string summaryText>
    : Transformer_Op<mnemonic> {
  let summary = summaryText # " over `axes` (empty: all axes)";
  let arguments = (ins Transformer_Tensor:$input, DenseI64ArrayAttr:$axes,
                       BoolAttr:$keepdims);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_ReduceMeanOp : Transformer_ReduceOp<"reduce_mean", "Mean">;
def Transformer_ReduceSumOp : Transformer_ReduceOp<"reduce_sum", "Sum">;
def Transformer_ReduceMaxOp : Transformer_ReduceOp<"reduce_max", "Maximum">;

def Transformer_CumSumOp : Transformer_Op<"cumsum"> {
  let summary = "Cumulative sum along one axis";
  let arguments = (ins Transformer_Tensor:$input, I64Attr:$axis,
                       BoolAttr:$exclusive, BoolAttr:$reverse);
  let results = (outs Transformer_Tensor:$result);
}

//===----------------------------------------------------------------------===//
// Contractions
//===----------------------------------------------------------------------===//

def Transformer_MatMulOp : Transformer_Op<"matmul"> {
  let summary = "numpy.matmul: batch dims broadcast, 1-D operands promoted";
  let arguments = (ins Transformer_Tensor:$lhs, Transformer_Tensor:$rhs);
  let results = (outs Transformer_Tensor:$result);
}

//===----------------------------------------------------------------------===//
// Data movement and shapes
//===----------------------------------------------------------------------===//

def Transformer_GatherOp : Transformer_Op<"gather"> {
  let summary = "ONNX Gather: take slices of `data` along `axis` at `indices`";
  let description = [{
    Negative indices count from the end. Indices outside the dim are clamped
    by the generated code (so a bad id can never read out of bounds); the
    runtime rejects out-of-range token ids before running.
  }];
  let arguments = (ins Transformer_Tensor:$data, Transformer_Tensor:$indices,
                       I64Attr:$axis);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_GatherElementsOp : Transformer_Op<"gather_elements"> {
  let summary = "ONNX GatherElements: out[i] = data[i with i[axis] = indices[i]]";
  let description = [{
    The result has the shape of `indices`. Indices are clamped like `gather`'s.
  }];
  let arguments = (ins Transformer_Tensor:$data, Transformer_Tensor:$indices,
                       I64Attr:$axis);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_GatherNDOp : Transformer_Op<"gather_nd"> {
  let summary = "ONNX GatherND with batch_dims = 0";
  let description = [{
    `indices` has shape [..., k] with k static: each index tuple selects a
    slice `data[i0, ..., ik-1]`. The result shape is indices.shape[:-1] +
    data.shape[k:]. Indices are clamped like `gather`'s.
  }];
  let arguments = (ins Transformer_Tensor:$data, Transformer_Tensor:$indices);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_ReshapeOp : Transformer_Op<"reshape"> {
  let summary = "ONNX Reshape: 0 copies the input dim, -1 is inferred";
  let arguments = (ins Transformer_Tensor:$input, Transformer_I64Tensor:$shape,
                       BoolAttr:$allowzero);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_TransposeOp : Transformer_Op<"transpose"> {
  let summary = "Permute dims: result dim i is input dim perm[i]";
  let description = [{
    Folds when the input is a constant (Gemm's transB=1 weight, or an
    exporter's Transpose of an initializer), so that the weight reaches the
    product as a constant and is packed at compile time like any other.
  }];
  let arguments = (ins Transformer_Tensor:$input, DenseI64ArrayAttr:$perm);
  let results = (outs Transformer_Tensor:$result);
  let hasFolder = 1;
}

def Transformer_UnsqueezeOp : Transformer_Op<"unsqueeze"> {
  let summary = "Insert unit dims at `axes` (positions in the result)";
  let arguments = (ins Transformer_Tensor:$input, DenseI64ArrayAttr:$axes);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_SqueezeOp : Transformer_Op<"squeeze"> {
  let summary = "Remove unit dims at `axes`";
  let arguments = (ins Transformer_Tensor:$input, DenseI64ArrayAttr:$axes);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_ConcatOp : Transformer_Op<"concat"> {
  let summary = "Concatenate along `axis`";
  let arguments = (ins Variadic<Transformer_Tensor>:$inputs, I64Attr:$axis);
  let results = (outs Transformer_Tensor:$result);
  let hasFolder = 1;
}

def Transformer_SliceOp : Transformer_Op<"slice"> {
  let summary = "ONNX Slice with run-time starts and ends, constant axes/steps";
  let arguments = (ins Transformer_Tensor:$input, Transformer_I64Tensor:$starts,
                       Transformer_I64Tensor:$ends, DenseI64ArrayAttr:$axes,
                       DenseI64ArrayAttr:$steps);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_ExpandOp : Transformer_Op<"expand"> {
  let summary = "Broadcast `input` against the run-time `shape`";
  let arguments = (ins Transformer_Tensor:$input, Transformer_I64Tensor:$shape);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_ShapeOp : Transformer_Op<"shape"> {
  let summary = "The dims [start, end) of `input` as a 1-D i64 tensor";
  let arguments = (ins Transformer_Tensor:$input, I64Attr:$start, I64Attr:$end);
  let results = (outs Transformer_I64Tensor:$result);
  let hasFolder = 1;
}

def Transformer_ConstantOfShapeOp : Transformer_Op<"constant_of_shape"> {
  let summary = "A tensor of the run-time `shape` filled with `value`";
  let arguments = (ins Transformer_I64Tensor:$shape, TypedAttrInterface:$value);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_RangeOp : Transformer_Op<"range"> {
  let summary = "start, start + delta, ... up to (not including) limit";
  let arguments = (ins Transformer_Tensor:$start, Transformer_Tensor:$limit,
                       Transformer_Tensor:$delta);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_ToeplitzOp : Transformer_Op<"toeplitz"> {
  let summary = "Spread diagonals over [rows, cols]: out[..., i, j] = input[..., j - i + rows - 1]";
  let description = [{
    `input` is [..., L] with L = rows + cols - 1 (rows and cols from the
    2-entry i64 `sizes`); the result is [..., rows, cols], constant along
    each diagonal. Never imported: `transfuse-compact-relative-bias` builds
    it for a relative position bias, which depends on the key's position
    less the query's only, so that the bias is computed and read at
    rows + cols - 1 positions instead of rows x cols. The CPU lowering of
    an attention that takes it as a mask reads it as a strided view of
    `input` (row stride -1); any other reader gets it materialized.
  }];
  let arguments = (ins Transformer_Tensor:$input, Transformer_I64Tensor:$sizes);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_KvCacheUpdateOp : Transformer_Op<"kv_cache_update"> {
  let summary = "A KV cache's present: each sequence's past rows, then its new ones, then zeros";
  let description = [{
    `past` is [B, H, P, D], `update` [B, H, S, D], `past_lengths` [B] (i64)
    and `rows` a 0-D i64 T. Row j of the [B, H, T, D] result, for sequence
    b with p = past_lengths[b], is past row j when j < p, update row
    j - p when p <= j < p + S, and zeros after; a p outside [0, P] is an
    error at run time. This is the present of ONNX Runtime's
    GroupQueryAttention, whose sequences each have a past of their own
    length (right-padded to P): the importer builds it from seqlens_k. The
    CPU lowering copies each sequence's rows (strided memref copies), so
    no index tensor or gather is built.
  }];
  let arguments = (ins Transformer_Tensor:$past, Transformer_Tensor:$update,
                       Transformer_I64Tensor:$past_lengths,
                       Transformer_I64Tensor:$rows);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_TriluOp : Transformer_Op<"trilu"> {
  let summary = "Keep the upper or lower triangle of the last two dims";
  let arguments = (ins Transformer_Tensor:$input, Transformer_I64Tensor:$k,
                       BoolAttr:$upper);
  let results = (outs Transformer_Tensor:$result);
}

//===----------------------------------------------------------------------===//
// Fused ops
//
// Produced by the fusion passes (passes/Fuse*.cpp), never by the importer.
// They are target-independent: the CPU lowering is in
// codegen/cpu/LowerFused.cpp. Their location is a FusedLoc of the ONNX nodes
// they replaced, which is what the fusion report lists.
//===----------------------------------------------------------------------===//

def Transformer_LayerNormOp : Transformer_Op<"layer_norm",
    [AttrSizedOperandSegments]> {
  let summary = "LayerNorm over the last dim, optionally after a residual add";
  let description = [{
    `sum = input + residual` (just `input` without a residual), then
    `result = (sum - mean) / sqrt(var + epsilon) * scale + bias` with the mean
    and the biased variance over the last dim. `scale` and `bias` are 1-D.
    The optional second result is `sum`, present when the residual stream is
    also used after the norm (pre-LN models).
  }];
  let arguments = (ins Transformer_Tensor:$input,
                       Optional<Transformer_Tensor>:$residual,
                       Transformer_Tensor:$scale,
                       Optional<Transformer_Tensor>:$bias, F32Attr:$epsilon);
  let results = (outs Transformer_Tensor:$result,
                      Optional<Transformer_Tensor>:$sum);
  let assemblyFormat = [{
    $input (`residual` $residual^)? `scale` $scale (`bias` $bias^)? attr-dict
    `:` functional-type(operands, results)
  }];
}

def Transformer_RmsNormOp : Transformer_Op<"rms_norm"> {
  let summary = "RMSNorm over the last dim (T5, LLaMA)";
  let description = [{
    `result = input / sqrt(mean(input^2) + epsilon) * scale`, the mean over the
    last dim; `scale` is 1-D.
  }];
  let arguments = (ins Transformer_Tensor:$input, Transformer_Tensor:$scale,
                       F32Attr:$epsilon);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_GeluOp : Transformer_Op<"gelu"> {
  let summary = "GELU: x * Phi(x), exact (erf) or with the tanh approximation";
  let arguments = (ins Transformer_Tensor:$input,
                       DefaultValuedStrAttr<StrAttr, "none">:$approximate);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_SiluOp : Transformer_Op<"silu"> {
  let summary = "SiLU (Swish): x * sigmoid(x)";
  let arguments = (ins Transformer_Tensor:$input);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_RotaryEmbeddingOp : Transformer_Op<"rotary_embedding"> {
  let summary = "Rotary position embedding of the first `rotary_dim` channels";
  let description = [{
    `input` is [..., D]; `cos` and `sin` are [..., rotary_dim] and broadcast
    (right-aligned) against `input[..., :rotary_dim]`. For `d < rotary_dim`:
    `result[d] = input[d] * cos[d] + s(d) * input[p(d)] * sin[d]`, where with
    half-split pairs (LLaMA's rotate_half, `interleaved = false`)
    `p(d) = d + r/2, s = -1` for `d < r/2` and `p(d) = d - r/2, s = +1`
    after; with interleaved pairs (GPT-J, GLM) `p(d) = d + 1, s = -1` for even
    `d` and `p(d) = d - 1, s = +1` for odd `d` (r = `rotary_dim`). Channels
    from `rotary_dim` on pass through (partial rotary).
  }];
  let arguments = (ins Transformer_Tensor:$input, Transformer_Tensor:$cos,
                       Transformer_Tensor:$sin, I64Attr:$rotary_dim,
                       DefaultValuedAttr<BoolAttr, "false">:$interleaved);
  let results = (outs Transformer_Tensor:$result);
}

def Transformer_LinearOp : Transformer_Op<"linear",
    [AttrSizedOperandSegments]> {
  let summary = "input x weight with a bias / activation / residual epilogue";
  let description = [{
    `result = act(input @ weight + bias) + residual`: `input` is [..., K],
    `weight` a [K, N] matrix (a constant in exported models), `bias` [N],
    `residual` the result's shape. `activation` is one of `none`, `relu`,
    `gelu`, `gelu_tanh`, `silu`. The lowering applies the whole epilogue in
    one pass over the product.

    `gated` is a gated linear unit (GeGLU, SwiGLU): `weight` is [K, 2N] (the
    gate's columns, then the up projection's) and `bias` [2N], and with
    `y = input @ weight + bias` the result is
    `act(y[..., :N]) * y[..., N:] + residual`, of width N.
  }];
  let arguments = (ins Transformer_Tensor:$input, Transformer_Tensor:$weight,
                       Optional<Transformer_Tensor>:$bias,
                       Optional<Transformer_Tensor>:$residual,
                       DefaultValuedStrAttr<StrAttr, "none">:$activation,
                       DefaultValuedAttr<BoolAttr, "false">:$gated);
  let results = (outs Transformer_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`bias` $bias^)? (`residual` $residual^)? attr-dict
    `:` functional-type(operands, results)
  }];
}

def Transformer_AttentionOp : Transformer_Op<"attention"> {
  let summary = "softmax(query x key^T * scale + masks) x value, per head";
  let description = [{
    `query` is [B, H, Sq, D], `key` [B, Hkv, Sk, D], `value` [B, Hkv, Sk, Dv]
    and the result [B, H, Sq, Dv]. Grouped-query and multi-query attention
    have Hkv < H (H a multiple of Hkv): query head h reads K/V head
    h / (H / Hkv). `masks` are zero or more additive terms, each broadcast
    to [B, H, Sq, Sk] on its own (so a [1, H, Sq, Sk] position bias and a
    [B, 1, 1, Sk] padding mask are never summed into a [B, H, Sq, Sk]
    buffer): padding and causal masks, T5's relative position bias and ALiBi
    all arrive this way. `scale` multiplies the scores (1.0 for T5).
    A `softcap` c > 0 caps the scaled scores at c * tanh(s / c) before the
    masks are added (Gemma 2; 0, the default, is none). A row whose scores
    are all -inf yields zeros.

    `algorithm` is set by `transfuse-select-attention`:
    - `materialized`: all Sk scores of a row at once;
    - `memory_efficient`: blocks of `kv_block` keys with an online softmax,
      so no Sq x Sk buffer exists and memory is linear in the length;
    - `by_length`: decided at run time, materialized while
      B * H * Sq * Sk scores fit in `max_materialized_bytes`.
    `reason` records why.
  }];
  let arguments = (ins Transformer_Tensor:$query, Transformer_Tensor:$key,
                       Transformer_Tensor:$value,
                       Variadic<Transformer_Tensor>:$masks, F32Attr:$scale,
                       DefaultValuedStrAttr<StrAttr, "unselected">:$algorithm,
                       DefaultValuedAttr<I64Attr, "64">:$kv_block,
                       DefaultValuedAttr<I64Attr, "0">:$max_materialized_bytes,
                       DefaultValuedStrAttr<StrAttr, "">:$reason,
                       DefaultValuedAttr<F32Attr, "0.0f">:$softcap);
  let results = (outs Transformer_Tensor:$result);
}

#endif
