//===- Driver.h - the compile pipeline shared by the tools ------*- C++ -*-===//
#ifndef TRANSFUSE_TOOLS_DRIVER_DRIVER_H
#define TRANSFUSE_TOOLS_DRIVER_DRIVER_H

#include "codegen/cpu/Pipeline.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

namespace transfuse::driver {

struct Options {
  cpu::CodegenOptions codegen;
  bool verbose = true; // phase lines with timings on stderr
};

/// Registers every dialect and pass the pipeline needs.
void registerAll(mlir::MLIRContext &ctx);

/// Imports `path` and runs the transformer-level pipeline (fold shape
/// computations, refine shapes, canonicalize). Null on error (in `error`).
mlir::OwningOpRef<mlir::ModuleOp> importAndOptimize(mlir::MLIRContext &ctx,
                                                    const std::string &path,
                                                    const Options &options,
                                                    std::string &error);

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
