//===- transfuse.cpp - the Transfuse compiler driver ----------------------===//
//
//   transfuse compile MODEL.onnx -o MODEL.so [--target cpu]
//             [--emit=mlir|llvm|obj|so] [--print-ir-after-all] [--time-passes]
//
//===----------------------------------------------------------------------===//
#include "tools/driver/Driver.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;
using namespace transfuse;

static cl::SubCommand compileCmd("compile", "Compile an ONNX model");
static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<model.onnx>"),
                                      cl::Required, cl::sub(compileCmd));
static cl::opt<std::string> outputFile("o", cl::desc("Output file"),
                                       cl::value_desc("path"), cl::Required,
                                       cl::sub(compileCmd));
static cl::opt<std::string> target("target", cl::desc("Target: cpu"),
                                   cl::init("cpu"), cl::sub(compileCmd));
enum class Emit { Mlir, Llvm, Obj, So };
static cl::opt<Emit> emit(
    "emit", cl::desc("What to write"), cl::init(Emit::So),
    cl::values(clEnumValN(Emit::Mlir, "mlir", "transformer-dialect IR"),
               clEnumValN(Emit::Llvm, "llvm", "optimized LLVM IR"),
               clEnumValN(Emit::Obj, "obj", "an object file"),
               clEnumValN(Emit::So, "so", "a self-contained shared library")),
    cl::sub(compileCmd));
static cl::opt<bool> printIRAfterAll("print-ir-after-all",
                                     cl::desc("Print the IR after each pass"),
                                     cl::sub(compileCmd));
static cl::opt<bool> timePasses("time-passes", cl::desc("Time each pass"),
                                cl::sub(compileCmd));
static cl::opt<std::string> mcpu("mcpu", cl::desc("LLVM CPU (default: host)"),
                                 cl::sub(compileCmd));
static cl::opt<bool> quiet("quiet", cl::desc("No progress lines"),
                           cl::sub(compileCmd));

static int fail(const std::string &msg) {
  errs() << "transfuse: error: " << msg << "\n";
  return 1;
}

static std::string runtimeArchivePath(const char *argv0) {
  std::string exe = sys::fs::getMainExecutable(argv0, (void *)&runtimeArchivePath);
  SmallString<256> p(sys::path::parent_path(sys::path::parent_path(exe)));
  sys::path::append(p, "lib", "libtransfuse_model_runtime.a");
  if (const char *env = getenv("TRANSFUSE_RUNTIME_ARCHIVE"))
    return env;
  return std::string(p);
}

static int compile(const char *argv0) {
  if (target != "cpu")
    return fail("target '" + target + "' is not available in this build (cpu)");
  driver::Options options;
  options.codegen.printIRAfterAll = printIRAfterAll;
  options.codegen.timePasses = timePasses;
  options.codegen.cpu = mcpu;
  options.verbose = !quiet;
  mlir::MLIRContext ctx;
  driver::registerAll(ctx);
  std::string error;
  double start = driver::nowMs();
  auto module = driver::importAndOptimize(ctx, inputFile, options, error);
  if (!module)
    return fail(error);
  std::error_code ec;
  if (emit == Emit::Mlir) {
    ToolOutputFile out(outputFile, ec, sys::fs::OF_Text);
    if (ec)
      return fail("cannot write " + outputFile + ": " + ec.message());
    module->print(out.os(), mlir::OpPrintingFlags().elideLargeElementsAttrs(16)
                                .elideLargeResourceString(16));
    out.keep();
    return 0;
  }
  auto func = *module->getOps<mlir::func::FuncOp>().begin();
  cpu::ModelSignature sig = cpu::collectSignature(func);
  {
    driver::PhaseTimer t(options, "lower to LLVM dialect");
    if (failed(cpu::lowerToLLVMDialect(*module, options.codegen)))
      return fail("CPU code generation failed (see diagnostics above)");
  }
  LLVMContext llvmCtx;
  std::unique_ptr<Module> llvmModule;
  {
    driver::PhaseTimer t(options, "translate and optimize LLVM IR");
    llvmModule = cpu::translateToLLVMIR(*module, llvmCtx, sig, options.codegen, error);
    if (!llvmModule)
      return fail(error);
  }
  if (emit == Emit::Llvm) {
    ToolOutputFile out(outputFile, ec, sys::fs::OF_Text);
    if (ec)
      return fail("cannot write " + outputFile + ": " + ec.message());
    llvmModule->print(out.os(), nullptr);
    out.keep();
    return 0;
  }
  std::string objPath = outputFile;
  SmallString<128> tmpObj;
  if (emit == Emit::So) {
    if (auto e = sys::fs::createTemporaryFile("transfuse-model", "o", tmpObj))
      return fail("cannot create a temporary file: " + e.message());
    objPath = std::string(tmpObj);
  }
  {
    driver::PhaseTimer t(options, "emit object");
    if (failed(cpu::emitObjectFile(*llvmModule, objPath, options.codegen, error)))
      return fail(error);
  }
  if (emit == Emit::So) {
    driver::PhaseTimer t(options, "link " + outputFile);
    LogicalResult linked = cpu::linkSharedLibrary(
        objPath, runtimeArchivePath(argv0), outputFile, error);
    sys::fs::remove(objPath);
    if (failed(linked))
      return fail(error);
  }
  if (!quiet)
    errs() << "transfuse: wrote " << outputFile << " in "
           << format("%.2f", (driver::nowMs() - start) / 1000) << " s\n";
  return 0;
}

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::ParseCommandLineOptions(argc, argv, "Transfuse: a compiler for transformer models\n");
  if (compileCmd)
    return compile(argv[0]);
  errs() << "usage: transfuse compile MODEL.onnx -o MODEL.so [options]\n"
            "       transfuse compile --help\n";
  return 2;
}
