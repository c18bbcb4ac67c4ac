//===- FusionReport.h - what the fusion passes did, for tools and people -*- C++
//-*-===//
#ifndef TRANSFUSE_PASSES_FUSIONREPORT_H
#define TRANSFUSE_PASSES_FUSIONREPORT_H

#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace transfuse {

/// The fusion report of `module` (after the fusion passes) as JSON:
///   {"summary": {kind: count}, "unfused_matmuls": N,
///    "unfused_matmul_nodes": [...], "fused": [{"kind", "nodes",
///    "algorithm", "reason" (attention), "epilogue" (linear)}]}
/// An activation applied in a linear's epilogue counts under its own kind
/// (gelu, silu) as well as under linear. With `attentionKernel` (the CPU
/// codegen's option: no --attention given), an attention the runtime's
/// fused kernel will take (f32, at most two masks) reports algorithm
/// "kernel" instead of transfuse-select-attention's choice, which only the
/// generated loops follow.
std::string fusionReportJson(mlir::ModuleOp module,
                             bool attentionKernel = false);

/// The same for a person, one fused op per line.
std::string fusionReportText(mlir::ModuleOp module,
                             bool attentionKernel = false);

} // namespace transfuse

#endif
