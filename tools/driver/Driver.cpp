//===- Driver.cpp - the compile pipeline shared by the tools --------------===//
#include "tools/driver/Driver.h"

#include "codegen/cpu/LoweringUtils.h"
#include "codegen/cpu/Passes.h"
#include "frontend/onnx/OnnxImporter.h"
#include "passes/FusionReport.h"
#include "passes/FusionUtils.h"
#include "passes/Passes.h"

#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/ToolOutputFile.h"
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

bool parseDim(llvm::StringRef spec, llvm::StringMap<int64_t> &dims,
              std::string &error) {
  auto [name, size] = spec.split('=');
  int64_t value;
  if (name.empty() || size.getAsInteger(10, value) || value < 1) {
    error = "--dim " + spec.str() +
            ": expected NAME=SIZE, a symbolic dim of a graph input and a "
            "size of at least 1 (e.g. --dim sequence=128)";
    return false;
  }
  if (!dims.try_emplace(name, value).second) {
    error = "--dim " + spec.str() + ": '" + name.str() + "' is given twice";
    return false;
  }
  return true;
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
    module = onnx_frontend::importOnnxModel(ctx, path, error, options.dims);
    if (!module)
      return nullptr;
  }
  // --explain-fusion: the passes' remarks, one line per candidate that did
  // not fuse, naming its ONNX node.
  ScopedDiagnosticHandler remarks(&ctx, [&](Diagnostic &d) {
    if (d.getSeverity() == DiagnosticSeverity::Warning) {
      auto names = fusion::onnxNodeNames(d.getLocation());
      llvm::errs() << "transfuse: warning: "
                   << (names.empty() ? std::string() : names.front() + ": ")
                   << d.str() << "\n";
      return success();
    }
    if (d.getSeverity() != DiagnosticSeverity::Remark)
      return failure(); // errors go to the default handler
    if (options.explainFusion) {
      auto names = fusion::onnxNodeNames(d.getLocation());
      llvm::errs() << "remark: "
                   << (names.empty() ? std::string("?") : names.front()) << ": "
                   << d.str() << "\n";
    }
    return success();
  });
  PhaseTimer t(options, options.fusion ? "fold shapes and fuse"
                                       : "fold shape computations");
  PassManager pm(&ctx);
  if (options.codegen.printIRAfterAll)
    cpu::enableIRPrintingAfterAll(pm);
  if (options.codegen.timePasses)
    pm.enableTiming();
  OpPassManager &fpm = pm.nest<func::FuncOp>();
  fpm.addPass(createCanonicalizerPass());
  fpm.addPass(transfuse::createFoldShapeComputations());
  fpm.addPass(createCanonicalizerPass());
  fpm.addPass(createCSEPass());
  if (options.fusion) {
    bool explain = options.explainFusion;
    fpm.addPass(createFuseActivations({explain}));
    fpm.addPass(createFuseNorms({explain}));
    fpm.addPass(createFuseRotary({explain}));
    fpm.addPass(createFuseAttention({explain}));
    fpm.addPass(createCompactRelativeBias({explain}));
    fpm.addPass(createFuseLinear({explain}));
    fpm.addPass(createMergeProjections({explain}));
    SelectAttentionOptions select;
    select.algorithm = options.attention;
    select.kvBlock = options.attentionKvBlock;
    fpm.addPass(createSelectAttention(select));
    fpm.addPass(createCSEPass());
  }
  if (!options.lastPosition.empty())
    fpm.addPass(createLastPosition({options.lastPosition}));
  if (failed(pm.run(*module))) {
    error = "the transformer-level pipeline failed (see diagnostics above)";
    return nullptr;
  }
  if (options.explainFusion)
    llvm::errs() << fusionReportText(*module,
                                     options.codegen.attentionKernel);
  if (!options.fusionReportPath.empty()) {
    std::error_code ec;
    llvm::raw_fd_ostream out(options.fusionReportPath, ec);
    if (ec) {
      error = "cannot write " + options.fusionReportPath + ": " + ec.message();
      return nullptr;
    }
    out << fusionReportJson(*module, options.codegen.attentionKernel);
  }
  return module;
}

std::string runtimeArchivePath(const char *argv0) {
  if (const char *env = getenv("TRANSFUSE_RUNTIME_ARCHIVE"))
    return env;
  std::string exe =
      llvm::sys::fs::getMainExecutable(argv0, (void *)&runtimeArchivePath);
  llvm::SmallString<256> p(
      llvm::sys::path::parent_path(llvm::sys::path::parent_path(exe)));
  llvm::sys::path::append(p, "lib", "libtransfuse_model_runtime.a");
  return std::string(p);
}

void printMemoryPlan(ModuleOp module, const Options &options) {
  auto plan = module->getAttrOfType<DenseI64ArrayAttr>(cpu::kMemoryPlanAttr);
  if (!options.verbose || !plan || plan.size() != 3)
    return;
  llvm::errs() << "transfuse: buffer plan: " << plan[1]
               << " buffers in arenas of at most "
               << llvm::format("%.2f", plan[0] / (1024.0 * 1024.0))
               << " MiB at once; " << plan[2]
               << " left to the allocator (run-time sizes, outputs, buffers "
                  "inside loops)\n";
}

bool compileModel(const std::string &input, const std::string &output,
                  Emit emit, const Options &options,
                  const std::string &runtimeArchive, std::string &error) {
  MLIRContext ctx;
  registerAll(ctx);
  double start = nowMs();
  auto module = importAndOptimize(ctx, input, options, error);
  if (!module)
    return false;
  std::error_code ec;
  if (emit == Emit::Mlir) {
    llvm::ToolOutputFile out(output, ec, llvm::sys::fs::OF_Text);
    if (ec)
      return error = "cannot write " + output + ": " + ec.message(), false;
    module->print(out.os(), cpu::weightsElided());
    out.keep();
    return true;
  }
  auto func = *module->getOps<func::FuncOp>().begin();
  cpu::ModelSignature sig = cpu::collectSignature(func);
  {
    PhaseTimer t(options, "lower to LLVM dialect");
    if (failed(cpu::lowerToLLVMDialect(*module, options.codegen)))
      return error = "CPU code generation failed (see diagnostics above)", false;
  }
  printMemoryPlan(*module, options);
  llvm::LLVMContext llvmCtx;
  std::unique_ptr<llvm::Module> llvmModule;
  // The weights stay out of LLVM, which would optimize and emit them (most
  // of the compile time of a large model): emitWeightsObject writes them
  // into an object of their own (OUTPUT.weights.o beside LLVM IR), which is
  // linked with the code's into a .so, or merged with it into one object
  // for --emit=obj. Printed inline in LLVM IR, bert-base's 440 MB of
  // weights were 2.87 GB of text, and --emit=llvm took 391 s and 10.9 GB of
  // memory (3.4 s and 0.7 GB without them); its --emit=obj took 9.8-10.9 s
  // and 1.86 GB (3.2-4.9 s and 0.91 GB merged).
  cpu::ExternalWeights weights;
  {
    PhaseTimer t(options, "translate and optimize LLVM IR");
    llvmModule = cpu::translateToLLVMIR(*module, llvmCtx, sig, options.codegen,
                                        error, weights);
    if (!llvmModule)
      return false;
  }
  if (emit == Emit::Llvm) {
    llvm::ToolOutputFile out(output, ec, llvm::sys::fs::OF_Text);
    if (ec)
      return error = "cannot write " + output + ": " + ec.message(), false;
    llvmModule->print(out.os(), nullptr);
    out.keep();
    if (weights.symbols.empty())
      return true;
    if (output == "-") {
      llvm::errs() << "transfuse: the weights (external symbols in the IR) "
                      "are not written with -o -\n";
      return true;
    }
    PhaseTimer t(options, "write weights");
    return succeeded(
        cpu::emitWeightsObject(weights, output + ".weights.o", error));
  }
  // The code's object goes straight to OUTPUT only as an object without
  // weights; else to a temporary file, linked or merged with theirs.
  bool link = emit == Emit::So || !weights.symbols.empty();
  std::vector<std::string> temps;
  auto removeTemps = [&] {
    for (const std::string &t : temps)
      llvm::sys::fs::remove(t);
  };
  auto tempFile = [&](llvm::StringRef suffix) -> std::string {
    llvm::SmallString<128> path;
    if (auto e = llvm::sys::fs::createTemporaryFile("transfuse-model", suffix,
                                                    path)) {
      error = "cannot create a temporary file: " + e.message();
      return "";
    }
    temps.push_back(std::string(path));
    return temps.back();
  };
  std::string objPath = link ? tempFile("o") : output;
  if (objPath.empty())
    return false;
  {
    PhaseTimer t(options, "emit object");
    if (failed(
            cpu::emitObjectFile(*llvmModule, objPath, options.codegen, error)))
      return removeTemps(), false;
  }
  if (link) {
    std::vector<std::string> objects{objPath};
    if (!weights.symbols.empty()) {
      PhaseTimer t(options, "write weights");
      objects.push_back(tempFile("o"));
      if (objects.back().empty() ||
          failed(cpu::emitWeightsObject(weights, objects.back(), error)))
        return removeTemps(), false;
    }
    PhaseTimer t(options, emit == Emit::So ? "link " + output
                                           : std::string("merge objects"));
    // The linker writes a file: for stdout, a temporary one, copied after.
    std::string target = output == "-" ? tempFile("o") : output;
    LogicalResult linked =
        target.empty() ? failure()
        : emit == Emit::So
            ? cpu::linkSharedLibrary(objects, runtimeArchive, target, error)
            : cpu::linkRelocatable(objects, target, error);
    if (succeeded(linked) && target != output) {
      auto buffer = llvm::MemoryBuffer::getFile(target);
      if (!buffer) {
        error = "cannot read " + target + ": " + buffer.getError().message();
        linked = failure();
      } else {
        llvm::outs() << (*buffer)->getBuffer();
        llvm::outs().flush();
      }
    }
    removeTemps();
    if (failed(linked))
      return false;
  }
  if (options.verbose)
    llvm::errs() << "transfuse: wrote " << output << " in "
                 << llvm::format("%.2f", (nowMs() - start) / 1000) << " s\n";
  return true;
}

} // namespace transfuse::driver
