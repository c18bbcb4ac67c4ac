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

#endif
