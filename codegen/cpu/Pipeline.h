//===- Pipeline.h - from transformer IR to a model.so or a JIT --*- C++ -*-===//
#ifndef TRANSFUSE_CODEGEN_CPU_PIPELINE_H
#define TRANSFUSE_CODEGEN_CPU_PIPELINE_H

#include "transfuse/model_abi.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/IR/Module.h"

#include <memory>
#include <string>
#include <vector>

namespace transfuse::cpu {

struct CodegenOptions {
  bool printIRAfterAll = false;
  bool timePasses = false;
  std::string cpu;      // LLVM CPU name; empty: the host's
  unsigned optLevel = 2;
  /// f32, or bf16: constant weights of products packed as bf16
  /// (transfuse-cpu-matmul-to-microkernel), multiplied by the runtime's bf16
  /// GEMM (runtime/src/gemm_bf16.cpp: AMX or AVX512-BF16).
  std::string precision = "f32";
  /// f32 attention (at most two masks) on the runtime's fused kernel
  /// (runtime/src/attention.cpp); false: the generated loops of the
  /// algorithm select-attention chose. The tools turn it off when
  /// --attention is given.
  bool attentionKernel = true;
  /// In f32: weights that are 4-bit codes times scales (MatMulNBits') kept
  /// so, their products on the runtime's 4-bit kernels
  /// (transfuse-cpu-matmul-to-microkernel); false: as f32 panels.
  bool int4Weights = true;
  /// f32 layer_norm and rms_norm on the runtime's norm kernel
  /// (runtime/src/norms.cpp); false: generated loops.
  bool normKernel = true;
  /// With bf16 and attentionKernel: the fused attention's two products on
  /// bf16 operands too, rounded at run time.
  bool bf16Attention = false;
};

/// One input or output of the compiled model's C ABI.
struct TensorSignature {
  std::string name;
  int32_t dtype = 0;                // ONNX TensorProto code
  std::vector<int64_t> dims;        // -1 - k for symbolic dim k
  int64_t indexBound = 0;           // > 0: values must be in [-b, b)
};

struct ModelSignature {
  std::vector<TensorSignature> inputs, outputs;
  std::vector<std::string> symbols; // names of symbolic dims
  std::string json() const;
  std::vector<int64_t> meta() const;
  std::string names() const;        // NUL-separated
};

/// ONNX dtype code of an MLIR element type; 0 when it has none.
int32_t onnxDtypeOf(mlir::Type elem);

/// Reads names and symbolic dims that the importer attached to `func`'s
/// arguments and results, and finds inputs used as Gather indices (token
/// ids) to bound-check at run time. Call before lowering.
ModelSignature collectSignature(mlir::func::FuncOp func);

/// How the driver prints MLIR (--emit=mlir, --print-ir-after-all): with
/// constants of more than 16 elements and resource blobs (the weights) of
/// more than 16 bytes elided; a bert-base printed in full would be
/// gigabytes.
mlir::OpPrintingFlags weightsElided();

/// Prints the IR after every pass of `pm` to stderr, the whole module each
/// time, weightsElided().
void enableIRPrintingAfterAll(mlir::PassManager &pm);

/// transformer dialect -> linalg -> buffers -> LLVM dialect, in place.
llvm::LogicalResult lowerToLLVMDialect(mlir::ModuleOp module,
                                       const CodegenOptions &options);

/// LLVM dialect -> LLVM IR, plus the model ABI (entry point and metadata
/// globals, see model_abi.h), optimized at `optLevel`.
/// Large constants (weights) moved out of the module before translation, so
/// that LLVM neither copies, optimizes nor emits them: for each, the hidden
/// external symbol the module now references and its bytes. The bytes
/// belong to the MLIR module's context (its resource blobs and attributes),
/// which must outlive this.
struct ExternalWeights {
  struct Symbol {
    std::string name;
    llvm::StringRef bytes;
  };
  std::vector<Symbol> symbols;
};

/// Every constant global of at least 64 KiB held as raw bytes is moved to
/// `weights` first: emitWeightsObject then provides the symbols (the JIT
/// their addresses).
std::unique_ptr<llvm::Module>
translateToLLVMIR(mlir::ModuleOp module, llvm::LLVMContext &ctx,
                  const ModelSignature &sig, const CodegenOptions &options,
                  std::string &error, ExternalWeights &weights);

/// An object file defining the symbols of `weights` (64-byte aligned,
/// read-only, hidden): an x86-64 ELF relocatable object holding their bytes
/// in .lrodata, written directly, without LLVM's code generation.
llvm::LogicalResult emitWeightsObject(const ExternalWeights &weights,
                                      llvm::StringRef path,
                                      std::string &error);

/// Writes an object file for the host (or options.cpu).
llvm::LogicalResult emitObjectFile(llvm::Module &module, llvm::StringRef path,
                                   const CodegenOptions &options,
                                   std::string &error);

/// Links `objects` with the model runtime archive into a shared library.
llvm::LogicalResult linkSharedLibrary(llvm::ArrayRef<std::string> objects,
                                      llvm::StringRef runtimeArchive,
                                      llvm::StringRef output,
                                      std::string &error);

/// Merges `objects` into one relocatable object (the linker's -r): the
/// generated code's and emitWeightsObject's, for --emit=obj.
llvm::LogicalResult linkRelocatable(llvm::ArrayRef<std::string> objects,
                                    llvm::StringRef output, std::string &error);

/// A model compiled in-process with MLIR's ExecutionEngine. As for a .so,
/// the weights stay out of LLVM (ExternalWeights): the generated code
/// reads them where the MLIR module's context holds them, so that context
/// must outlive the model. (A weight whose bytes are not 64-byte aligned,
/// as the code assumes, is copied into the model.)
class JitModel {
public:
  static std::unique_ptr<JitModel> create(mlir::ModuleOp module,
                                          const ModelSignature &sig,
                                          const CodegenOptions &options,
                                          std::string &error);
  const tf_model_desc &desc() const { return desc_; }

private:
  std::unique_ptr<mlir::ExecutionEngine> engine_;
  ExternalWeights weights_;
  struct FreeDeleter {
    void operator()(void *p) const;
  };
  /// Aligned copies of the weights whose bytes were not 64-byte aligned.
  std::vector<std::unique_ptr<char, FreeDeleter>> alignedCopies_;
  tf_model_desc desc_{};
};

} // namespace transfuse::cpu

#endif
