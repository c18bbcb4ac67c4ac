//===- FusionReport.cpp - what the fusion passes did ----------------------===//
#include "passes/FusionReport.h"

#include "codegen/cpu/RuntimeKernels.h"
#include "dialects/transformer/TransformerDialect.h"
#include "passes/FusionUtils.h"

#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <map>

using namespace mlir;
using namespace transfuse::transformer;

namespace transfuse {
namespace {

struct Entry {
  std::string kind;
  SmallVector<std::string> nodes;
  std::string algorithm, reason;
  SmallVector<std::string> epilogue;
};

struct Report {
  std::map<std::string, int64_t> summary{
      {"attention", 0}, {"layer_norm", 0},
      {"rms_norm", 0},  {"gelu", 0},
      {"silu", 0},      {"relu", 0},
      {"linear", 0},    {"rotary_embedding", 0}};
  std::vector<Entry> fused;
  SmallVector<std::string> unfusedMatmuls;
};

Report collect(ModuleOp module, bool attentionKernel) {
  Report r;
  module.walk([&](Operation *op) {
    Entry e;
    if (auto a = dyn_cast<AttentionOp>(op)) {
      e.kind = "attention";
      if (attentionKernel && cpu::takesAttentionKernel(a)) {
        e.algorithm = "kernel";
        e.reason = "the runtime's fused attention (runtime/src/"
                   "attention.cpp): per head, 48 query rows at a time "
                   "through scores, softmax and P V on the GEMM, memory "
                   "linear in the key length; a head with fewer than 12 "
                   "query rows reads K and V in place";
      } else {
        e.algorithm = a.getAlgorithm().str();
        e.reason = a.getReason().str();
      }
      if (llvm::any_of(a.getMasks(), [](Value m) {
            return m.getDefiningOp<ToeplitzOp>() != nullptr;
          }))
        e.epilogue.push_back("relative position bias per diagonal");
    } else if (isa<LayerNormOp>(op)) {
      e.kind = "layer_norm";
      if (cast<LayerNormOp>(op).getResidual())
        e.epilogue.push_back("residual (skip-layernorm)");
    } else if (isa<RmsNormOp>(op)) {
      e.kind = "rms_norm";
    } else if (auto rope = dyn_cast<RotaryEmbeddingOp>(op)) {
      e.kind = "rotary_embedding";
      e.epilogue.push_back(rope.getInterleaved() ? "interleaved"
                                                 : "half-split");
    } else if (isa<GeluOp>(op)) {
      e.kind = "gelu";
    } else if (isa<SiluOp>(op)) {
      e.kind = "silu";
    } else if (auto l = dyn_cast<LinearOp>(op)) {
      e.kind = "linear";
      if (l.getGated())
        e.epilogue.push_back("gated");
      if (l.getBias())
        e.epilogue.push_back("bias");
      StringRef act = l.getActivation();
      if (act != "none") {
        e.epilogue.push_back(act.str());
        r.summary[act.starts_with("gelu") ? "gelu" : act.str()]++;
      }
      if (l.getResidual())
        e.epilogue.push_back("residual");
    } else if (isa<MatMulOp>(op)) {
      r.unfusedMatmuls.push_back(fusion::nodeName(op));
      return;
    } else {
      return;
    }
    e.nodes = fusion::onnxNodeNames(op->getLoc());
    r.summary[e.kind]++;
    r.fused.push_back(std::move(e));
  });
  return r;
}

} // namespace

std::string fusionReportJson(ModuleOp module, bool attentionKernel) {
  Report r = collect(module, attentionKernel);
  llvm::json::Object summary;
  for (auto &[k, n] : r.summary)
    summary[k] = n;
  llvm::json::Array fused;
  for (Entry &e : r.fused) {
    llvm::json::Object o{{"kind", e.kind},
                         {"nodes", llvm::json::Array(e.nodes)}};
    if (e.kind == "attention") {
      o["algorithm"] = e.algorithm;
      o["reason"] = e.reason;
    }
    if (!e.epilogue.empty())
      o["epilogue"] = llvm::json::Array(e.epilogue);
    fused.push_back(std::move(o));
  }
  llvm::json::Object root{
      {"summary", std::move(summary)},
      {"unfused_matmuls", (int64_t)r.unfusedMatmuls.size()},
      {"unfused_matmul_nodes", llvm::json::Array(r.unfusedMatmuls)},
      {"fused", std::move(fused)}};
  std::string s;
  llvm::raw_string_ostream os(s);
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(root))) << "\n";
  return s;
}

std::string fusionReportText(ModuleOp module, bool attentionKernel) {
  Report r = collect(module, attentionKernel);
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "fusion summary:";
  for (auto &[k, n] : r.summary)
    os << " " << k << "=" << n;
  os << ", unfused matmuls=" << r.unfusedMatmuls.size() << "\n";
  for (Entry &e : r.fused) {
    os << "  " << e.kind;
    if (!e.algorithm.empty())
      os << " [" << e.algorithm << ": " << e.reason << "]";
    if (!e.epilogue.empty()) {
      os << " +";
      for (auto &x : e.epilogue)
        os << " " << x;
    }
    os << " <-";
    for (size_t i = 0; i < e.nodes.size(); ++i)
      os << (i ? ", " : " ") << e.nodes[i];
    os << "\n";
  }
  for (auto &m : r.unfusedMatmuls)
    os << "  unfused matmul: " << m << "\n";
  return s;
}

} // namespace transfuse
