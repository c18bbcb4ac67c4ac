//===- transfuse.cpp - the Transfuse compiler driver ----------------------===//
//
//   transfuse compile MODEL.onnx -o MODEL.so [--target cpu]
//             [--emit=mlir|llvm|obj|so] [--print-ir-after-all] [--time-passes]
//             [--no-fusion] [--explain-fusion] [--fusion-report FILE.json]
//             [--attention=auto|materialized|memory_efficient]
//             [--attention-kv-block=N] [--precision=f32|bf16]
//             [--bf16-attention[=false]] [-O0..-O3]
//   transfuse generate MODEL_DIR --prompt-ids 1,2,3 --max-new-tokens N
//
//===----------------------------------------------------------------------===//
#include "codegen/cpu/Passes.h"
#include "tools/driver/Driver.h"
#include "tools/transfuse/Generate.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TargetParser/Host.h"

#include <algorithm>

using namespace llvm;
using namespace transfuse;

static cl::SubCommand compileCmd("compile", "Compile an ONNX model");
static cl::SubCommand
    generateCmd("generate",
                "Greedy decoding with a model's prefill and decode exports, "
                "or with one model for both (onnxruntime-genai's builder)");
static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<model.onnx>"),
                                      cl::Required, cl::sub(compileCmd));
static cl::opt<std::string> outputFile("o", cl::desc("Output file"),
                                       cl::value_desc("path"), cl::Required,
                                       cl::sub(compileCmd));
static cl::opt<std::string> target("target", cl::desc("Target: cpu"),
                                   cl::init("cpu"), cl::sub(compileCmd));
using driver::Emit;
static cl::opt<Emit> emit(
    "emit", cl::desc("What to write"), cl::init(Emit::So),
    cl::values(clEnumValN(Emit::Mlir, "mlir", "transformer-dialect IR"),
               clEnumValN(Emit::Llvm, "llvm",
                          "optimized LLVM IR (the weights, external there, "
                          "in OUTPUT.weights.o)"),
               clEnumValN(Emit::Obj, "obj",
                          "one object file, code and weights (link it "
                          "with libtransfuse_model_runtime.a)"),
               clEnumValN(Emit::So, "so", "a self-contained shared library")),
    cl::sub(compileCmd));
static cl::opt<bool> printIRAfterAll("print-ir-after-all",
                                     cl::desc("Print the IR after each pass"),
                                     cl::sub(compileCmd));
static cl::opt<bool> timePasses("time-passes", cl::desc("Time each pass"),
                                cl::sub(compileCmd));
static cl::opt<std::string> mcpu("mcpu", cl::desc("LLVM CPU (default: host)"),
                                 cl::sub(compileCmd));
static cl::opt<unsigned> optLevel(
    "O",
    cl::desc("Optimization level of the generated code, 0-3 (default 2; "
             "the GEMM microkernel is precompiled and unaffected)"),
    cl::Prefix, cl::init(2), cl::sub(compileCmd));
static cl::opt<std::string> precision(
    "precision",
    cl::desc("f32 (default), or bf16: products by constant weights take "
             "bf16 weights and activations (on AMX tiles, else AVX512-BF16 "
             "dot products, else the f32 GEMM), accumulating in f32; "
             "everything else stays f32"),
    cl::init("f32"), cl::sub(compileCmd), cl::sub(generateCmd));
static cl::opt<bool> bf16Attention(
    "bf16-attention",
    cl::desc("With --precision bf16 (its default): the fused attention's "
             "products (Q K^T, P V) on bf16 operands too, rounded at run "
             "time, softmax statistics f32; =false keeps them f32 (see "
             "docs/benchmarks.md)"),
    cl::sub(compileCmd), cl::sub(generateCmd));
static cl::opt<bool> int4Weights(
    "int4-weights",
    cl::desc("In f32, keep weights that are 4-bit codes times scales "
             "(MatMulNBits') in 4 bits, dequantized to the same floats as "
             "they are multiplied (default on; =false: f32 weights)"),
    cl::init(true), cl::sub(compileCmd));
static cl::opt<bool> quiet("quiet", cl::desc("No progress lines"),
                           cl::sub(compileCmd));
static cl::opt<bool> noFusion("no-fusion",
                              cl::desc("Skip the fusion passes (graph ops only)"),
                              cl::sub(compileCmd));
static cl::opt<bool> explainFusion(
    "explain-fusion",
    cl::desc("Print what fused, and why each candidate that did not fuse "
             "did not"),
    cl::sub(compileCmd));
static cl::opt<std::string> fusionReport(
    "fusion-report", cl::desc("Write the fusion report as JSON"),
    cl::value_desc("file.json"), cl::sub(compileCmd));
static cl::opt<std::string> attention(
    "attention",
    cl::desc("Attention algorithm: auto (f32: the runtime's fused kernel; "
             "else the cost model), materialized or memory_efficient "
             "(generated loops)"),
    cl::init("auto"), cl::sub(compileCmd));
static cl::opt<int64_t> attentionKvBlock(
    "attention-kv-block",
    cl::desc("Keys per block of the memory-efficient attention"),
    cl::init(64), cl::sub(compileCmd));
static cl::list<std::string> dims(
    "dim",
    cl::desc("Compile for one size of a symbolic input dim, NAME=SIZE "
             "(repeatable): shapes become static and buffers are planned "
             "into one arena"),
    cl::value_desc("NAME=SIZE"), cl::sub(compileCmd));

static cl::opt<std::string> lastPosition(
    "last-position",
    cl::desc("Compute this [batch, seq, N] output (a language model's "
             "logits) at the last position only: its product by the weight "
             "takes one row per sequence, and the output is [batch, 1, N]"),
    cl::value_desc("output name"), cl::sub(compileCmd));
static cl::opt<bool> allPositions(
    "all-positions",
    cl::desc("Compute the logits of every prompt position (by default only "
             "the last one's, the only one greedy decoding reads)"),
    cl::sub(generateCmd));

static cl::opt<std::string> modelDir(
    cl::Positional,
    cl::desc("<model dir with prefill/ and decode/, or with one model.onnx>"),
    cl::Required, cl::sub(generateCmd));
static cl::list<int64_t> promptIds("prompt-ids", cl::desc("Prompt token ids"),
                                   cl::CommaSeparated, cl::OneOrMore,
                                   cl::sub(generateCmd));
static cl::opt<int64_t> maxNewTokens("max-new-tokens", cl::init(16),
                                     cl::desc("Tokens to generate"),
                                     cl::sub(generateCmd));
static cl::opt<int64_t> eosId("eos-id", cl::init(-1),
                              cl::desc("Stop at this token id (-1: never)"),
                              cl::sub(generateCmd));
static cl::opt<int64_t> decoderStartId(
    "decoder-start-id", cl::init(-1),
    cl::desc("Encoder-decoder models: the first decoder input id"),
    cl::sub(generateCmd));
static cl::opt<std::string> cacheDir(
    "cache-dir", cl::desc("Where compiled libraries go (default: the model dir)"),
    cl::sub(generateCmd));
static cl::list<int64_t> expectIds(
    "expect-ids", cl::desc("Exit 1 unless exactly these ids are generated"),
    cl::CommaSeparated, cl::sub(generateCmd));
static cl::opt<bool> generateQuiet("quiet", cl::desc("No progress lines"),
                                   cl::sub(generateCmd));

static int fail(const std::string &msg) {
  errs() << "transfuse: error: " << msg << "\n";
  return 1;
}

/// --precision and --bf16-attention (with the attention algorithm
/// `attention`) into `codegen`; the error when they do not go together.
static std::string setPrecision(cpu::CodegenOptions &codegen,
                                llvm::StringRef attention) {
  std::optional<bool> bf16AttentionChoice;
  if (bf16Attention.getNumOccurrences())
    bf16AttentionChoice = bf16Attention;
  if (std::string e =
          cpu::precisionError(precision, bf16AttentionChoice, attention);
      !e.empty())
    return e;
  codegen.precision = precision;
  codegen.bf16Attention =
      cpu::bf16AttentionOn(precision, bf16AttentionChoice, attention);
  return "";
}

static int compile(const char *argv0) {
  if (target != "cpu")
    return fail("target '" + target + "' is not available in this build (cpu)");
  driver::Options options;
  options.codegen.printIRAfterAll = printIRAfterAll;
  options.codegen.timePasses = timePasses;
  options.codegen.cpu = mcpu;
  if (optLevel > 3)
    return fail("-O" + std::to_string(optLevel) + ": the level is 0 to 3");
  options.codegen.optLevel = optLevel;
  options.codegen.int4Weights = int4Weights;
  if (std::string e = setPrecision(options.codegen, attention); !e.empty())
    return fail(e);
  options.codegen.attentionKernel = attention.getValue() == "auto";
  if (precision == "bf16" && mcpu.empty()) {
    llvm::StringMap<bool> host = llvm::sys::getHostCPUFeatures();
    if (!host.lookup("amx-bf16") && !host.lookup("avx512bf16"))
      errs() << "transfuse: warning: this CPU has neither AMX nor "
                "AVX512-BF16: the bf16 products will widen to f32 and run "
                "slower than --precision f32\n";
  }
  options.verbose = !quiet;
  options.fusion = !noFusion;
  options.explainFusion = explainFusion;
  options.fusionReportPath = fusionReport;
  options.attention = attention;
  options.attentionKvBlock = attentionKvBlock;
  options.lastPosition = lastPosition;
  std::string error;
  for (const std::string &d : dims)
    if (!driver::parseDim(d, options.dims, error))
      return fail(error);
  if (!driver::compileModel(inputFile, outputFile, emit, options,
                            driver::runtimeArchivePath(argv0), error))
    return fail(error);
  return 0;
}

static int generate(const char *argv0) {
  GenerateOptions o;
  o.modelDir = modelDir;
  o.cacheDir = cacheDir;
  o.promptIds.assign(promptIds.begin(), promptIds.end());
  if (maxNewTokens < 1)
    return fail("--max-new-tokens " + std::to_string(maxNewTokens) +
                ": generate at least 1 token");
  o.maxNewTokens = maxNewTokens;
  o.eosId = eosId;
  o.decoderStartId = decoderStartId;
  o.compile.verbose = !generateQuiet;
  if (!allPositions)
    o.compile.lastPosition = "logits";
  if (std::string e = setPrecision(o.compile.codegen, "auto"); !e.empty())
    return fail(e);
  std::vector<int64_t> ids;
  GenerateTimes times;
  std::string error;
  if (!generateGreedy(o, driver::runtimeArchivePath(argv0), ids, times, error))
    return fail(error);
  for (size_t i = 0; i < ids.size(); ++i)
    outs() << (i ? "," : "") << ids[i];
  outs() << "\n";
  errs() << "transfuse: " << ids.size() << " tokens, the first after "
         << format("%.2f", times.firstMs) << " ms";
  std::vector<double> &stepMs = times.stepMs;
  if (!stepMs.empty()) {
    double sum = 0;
    for (double t : stepMs)
      sum += t;
    std::sort(stepMs.begin(), stepMs.end());
    errs() << ", " << format("%.2f", sum / stepMs.size())
           << " ms per decode step (median "
           << format("%.2f", stepMs[stepMs.size() / 2]) << ", min "
           << format("%.2f", stepMs.front()) << ")";
  }
  errs() << "\n";
  if (!expectIds.empty()) {
    std::vector<int64_t> want(expectIds.begin(), expectIds.end());
    if (want != ids) {
      errs() << "transfuse: MISMATCH: expected ";
      for (size_t i = 0; i < want.size(); ++i)
        errs() << (i ? "," : "") << want[i];
      errs() << "\n";
      return 1;
    }
    errs() << "transfuse: generated ids match the expected ids\n";
  }
  return 0;
}

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  // `transfuse --help` lists the subcommands, not the hundreds of options
  // LLVM's backends register at the top level (they still parse).
  static cl::OptionCategory none("none");
  cl::HideUnrelatedOptions(none);
  cl::ParseCommandLineOptions(argc, argv, "Transfuse: a compiler for transformer models\n");
  if (compileCmd)
    return compile(argv[0]);
  if (generateCmd)
    return generate(argv[0]);
  errs() << "usage: transfuse compile MODEL.onnx -o MODEL.so [options]\n"
            "       transfuse generate MODEL_DIR --prompt-ids 1,2,3 "
            "--max-new-tokens N\n"
            "       transfuse compile --help | transfuse generate --help\n";
  return 2;
}
