#ifndef TRANSFUSE_TRANSFORMER_DIALECT
#define TRANSFUSE_TRANSFORMER_DIALECT

include "mlir/IR/OpBase.td"

def Transformer_Dialect : Dialect {
  let name = "transformer";
  let cppNamespace = "::transfuse::transformer";
  let summary = "Graph and fused ops for transformer language models";
  let description = [{
    Graph ops mirror ONNX ops one to one (after the importer has desugared
    sugar such as Gemm, Clip, Split and Einsum). Every graph op carries full
    shape inference over symbolic dims: a `?` in a tensor type is a batch or
    sequence dim that is only known at run time. See
    docs/dialects/transformer.md for the rationale.
  }];
  let hasConstantMaterializer = 1;
}

#endif
