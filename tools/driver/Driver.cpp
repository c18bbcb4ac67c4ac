//===- Driver.cpp - the compile pipeline shared by the tools --------------===//
#include "tools/driver/Driver.h"

#include "codegen/cpu/Passes.h"
#include "frontend/onnx/OnnxImporter.h"
#include "passes/Passes.h"

#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>

using namespace mlir;

namespace transfuse::driver {

double nowMs() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

PhaseTimer::PhaseTimer(const Options &options, std::string phase)
    : verbose_(options.verbose), phase_(std::move(phase)), start_(nowMs()) {}

PhaseTimer::~PhaseTimer() {
  if (verbose_)
    llvm::errs() << "transfuse: " << phase_ << " ("
                 << llvm::format("%.0f", nowMs() - start_) << " ms)\n";
}

void registerAll(MLIRContext &ctx) {
  static bool passesRegistered = [] {
    registerAllPasses();
    registerTransfusePasses();
    cpu::registerTransfuseCpuPasses();
    return true;
  }();
  (void)passesRegistered;
  DialectRegistry registry;
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registry.insert<transformer::TransformerDialect>();
  ctx.appendDialectRegistry(registry);
  ctx.loadAllAvailableDialects();
}

OwningOpRef<ModuleOp> importAndOptimize(MLIRContext &ctx,
                                        const std::string &path,
                                        const Options &options,
                                        std::string &error) {
  OwningOpRef<ModuleOp> module;
  {
    PhaseTimer t(options, "import " + path);
    module = onnx_frontend::importOnnxModel(ctx, path, error);
    if (!module)
      return nullptr;
  }
  PhaseTimer t(options, "fold shape computations");
  PassManager pm(&ctx);
  if (options.codegen.printIRAfterAll) {
    ctx.disableMultithreading();
    pm.enableIRPrinting([](Pass *, Operation *) { return false; },
                        [](Pass *, Operation *) { return true; }, true,
                        /*printAfterOnlyOnChange=*/false);
  }
  if (options.codegen.timePasses)
    pm.enableTiming();
  OpPassManager &fpm = pm.nest<func::FuncOp>();
  fpm.addPass(createCanonicalizerPass());
  fpm.addPass(transfuse::createFoldShapeComputations());
  fpm.addPass(createCanonicalizerPass());
  fpm.addPass(createCSEPass());
  if (failed(pm.run(*module))) {
    error = "the transformer-level pipeline failed (see diagnostics above)";
    return nullptr;
  }
  return module;
}

} // namespace transfuse::driver
