//===- Driver.h - the compile pipeline shared by the tools ------*- C++ -*-===//
#ifndef TRANSFUSE_TOOLS_DRIVER_DRIVER_H
#define TRANSFUSE_TOOLS_DRIVER_DRIVER_H

#include "codegen/cpu/Pipeline.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringMap.h"

namespace transfuse::driver {

struct Options {
  cpu::CodegenOptions codegen;
  bool verbose = true; // phase lines with timings on stderr
  bool fusion = true;  // run the fusion passes (--no-fusion turns them off)
  bool explainFusion = false;     // remarks at candidates left unfused + report
  std::string fusionReportPath;   // write the JSON fusion report here
  std::string attention = "auto"; // transfuse-select-attention's algorithm
  int64_t attentionKvBlock = 64;  // keys per block (memory-efficient)
  llvm::StringMap<int64_t> dims;  // --dim NAME=SIZE: symbolic dims made static
  std::string lastPosition; // this output at the last position only ("": off)
};

/// Parses a `--dim` value, NAME=SIZE (SIZE ≥ 1), into `dims`; false with
/// `error` set when it is malformed or names a dim twice.
bool parseDim(llvm::StringRef spec, llvm::StringMap<int64_t> &dims,
              std::string &error);

/// Registers every dialect and pass the pipeline needs.
void registerAll(mlir::MLIRContext &ctx);

/// Imports `path` and runs the transformer-level pipeline: fold shape
/// computations, canonicalize, then (unless options.fusion is off) the
/// fusion passes and attention selection, and writes the fusion report when
/// asked. Null on error (in `error`).
mlir::OwningOpRef<mlir::ModuleOp> importAndOptimize(mlir::MLIRContext &ctx,
                                                    const std::string &path,
                                                    const Options &options,
                                                    std::string &error);

/// Prints, when verbose, the buffer plan transfuse-cpu-plan-buffers left on
/// `module` (arena peak, buffers planned and not).
void printMemoryPlan(mlir::ModuleOp module, const Options &options);

enum class Emit { Mlir, Llvm, Obj, So };

/// The whole pipeline: `input` (.onnx) to `output` as MLIR, LLVM IR, an
/// object or a model.so (linked with `runtimeArchive`). False on error.
bool compileModel(const std::string &input, const std::string &output,
                  Emit emit, const Options &options,
                  const std::string &runtimeArchive, std::string &error);

/// Where the model runtime archive is, next to the running executable
/// (overridable with TRANSFUSE_RUNTIME_ARCHIVE).
std::string runtimeArchivePath(const char *argv0);

/// Prints "transfuse: <phase> (<ms> ms)" when verbose.
class PhaseTimer {
public:
  PhaseTimer(const Options &options, std::string phase);
  ~PhaseTimer();

private:
  bool verbose_;
  std::string phase_;
  double start_;
};

double nowMs();

} // namespace transfuse::driver

#endif
