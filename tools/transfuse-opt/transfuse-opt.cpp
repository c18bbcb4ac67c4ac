//===- transfuse-opt.cpp - mlir-opt with the transformer dialect ----------===//
#include "codegen/cpu/Passes.h"
#include "dialects/transformer/TransformerDialect.h"
#include "passes/Passes.h"

#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::registerAllPasses();
  registry.insert<transfuse::transformer::TransformerDialect>();
  transfuse::registerTransfusePasses();
  transfuse::cpu::registerTransfuseCpuPasses();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "Transfuse optimizer driver\n", registry));
}
