//===- Pipeline.cpp - from transformer IR to a model.so or a JIT ----------===//
#include "codegen/cpu/Pipeline.h"
#include "codegen/cpu/LoweringUtils.h"
#include "codegen/cpu/Passes.h"
#include "transfuse/runtime_core.h"
#include "dialects/transformer/TransformerDialect.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/BinaryFormat/ELF.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/PassTimingInfo.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Passes/StandardInstrumentations.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

#include <cstdlib>
#include <cstring>
#include <map>

using namespace mlir;

// From the runtime (memref_copy.cpp, gemm.cpp, gemm_bf16.cpp, attention.cpp,
// norms.cpp, alloc.cpp, thread_pool.cpp);
// the JIT resolves calls to them.
extern "C" void memrefCopy(int64_t, void *, void *);
extern "C" void _mlir_ciface_transfuse_copy_f32(void *, void *);
extern "C" void *_mlir_memref_to_llvm_alloc(size_t);
extern "C" void *_mlir_memref_to_llvm_aligned_alloc(size_t, size_t);
extern "C" void _mlir_memref_to_llvm_free(void *);
extern "C" void _mlir_ciface_transfuse_matmul_f32(void *, void *, void *,
                                                  int64_t);
extern "C" void _mlir_ciface_transfuse_matmul_f32_packed(void *, void *,
                                                         void *, int64_t);
extern "C" void _mlir_ciface_transfuse_matmul_bf16_packed(void *, void *,
                                                          void *, int64_t);
extern "C" void _mlir_ciface_transfuse_linear_f32_packed(void *, void *,
                                                         void *, void *,
                                                         void *, int64_t);
extern "C" void _mlir_ciface_transfuse_linear_bf16_packed(void *, void *,
                                                          void *, void *,
                                                          void *, int64_t);
extern "C" void _mlir_ciface_transfuse_linear_q4(void *, void *, void *, void *,
                                                 void *, void *, int64_t,
                                                 int64_t);
extern "C" void _mlir_ciface_transfuse_linear_f32_panels(void *, void *, void *,
                                                         void *, void *, void *,
                                                         int64_t, void *);
extern "C" void _mlir_ciface_transfuse_linear_bf16_panels(void *, void *,
                                                          void *, void *,
                                                          void *, void *,
                                                          int64_t, void *);
extern "C" void _mlir_ciface_transfuse_attention_f32(void *, void *, void *,
                                                     void *, void *, void *,
                                                     int64_t, float, float,
                                                     int64_t);
extern "C" void
_mlir_ciface_transfuse_attention_f32_past(void *, void *, void *, void *,
                                          void *, void *, void *, void *,
                                          int64_t, float, float, int64_t);
extern "C" void _mlir_ciface_transfuse_norm_f32(void *, void *, void *, void *,
                                                void *, void *, float, int64_t);
extern "C" void _mlir_ciface_transfuse_norm_f32_panels(void *, void *, void *,
                                                       void *, void *, void *,
                                                       float, int64_t, void *);
extern "C" void transfuse_parallel_loop(int64_t, int64_t,
                                        void (*)(void *, int64_t, int64_t),
                                        void *);

namespace transfuse::cpu {

int32_t onnxDtypeOf(Type t) {
  if (t.isF32()) return TF_FLOAT;
  if (t.isF64()) return TF_DOUBLE;
  if (t.isF16()) return TF_FLOAT16;
  if (t.isBF16()) return TF_BFLOAT16;
  if (t.isInteger(1)) return TF_BOOL;
  if (t.isInteger(8)) return TF_INT8;
  if (t.isInteger(16)) return TF_INT16;
  if (t.isInteger(32)) return TF_INT32;
  if (t.isInteger(64)) return TF_INT64;
  return 0;
}

static std::string jsonEscape(llvm::StringRef s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    if ((unsigned char)c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      continue;
    }
    out += c;
  }
  return out;
}

std::string ModelSignature::json() const {
  std::string out = "{";
  auto list = [&](const char *key, const std::vector<TensorSignature> &ts) {
    out += std::string("\"") + key + "\":[";
    for (size_t i = 0; i < ts.size(); ++i) {
      const TensorSignature &t = ts[i];
      out += i ? "," : "";
      out += "{\"name\":\"" + jsonEscape(t.name) + "\",\"dtype\":\"" +
             tf_dtype_name(t.dtype) + "\",\"shape\":[";
      for (size_t d = 0; d < t.dims.size(); ++d) {
        out += d ? "," : "";
        if (t.dims[d] >= 0)
          out += std::to_string(t.dims[d]);
        else
          out += "\"" + jsonEscape(symbols[-1 - t.dims[d]]) + "\"";
      }
      out += "]";
      if (t.indexBound > 0)
        out += ",\"index_bound\":" + std::to_string(t.indexBound);
      out += "}";
    }
    out += "]";
  };
  list("inputs", inputs);
  out += ",";
  list("outputs", outputs);
  return out + "}";
}

std::vector<int64_t> ModelSignature::meta() const {
  std::vector<int64_t> m{TF_ABI_VERSION, (int64_t)inputs.size(),
                         (int64_t)outputs.size(), (int64_t)symbols.size()};
  for (const auto *list : {&inputs, &outputs})
    for (const TensorSignature &t : *list) {
      m.push_back(t.dtype);
      m.push_back(t.dims.size());
      m.insert(m.end(), t.dims.begin(), t.dims.end());
      m.push_back(t.indexBound);
    }
  return m;
}

std::string ModelSignature::names() const {
  std::string out;
  for (const auto *list : {&inputs, &outputs})
    for (const TensorSignature &t : *list) {
      out += t.name;
      out.push_back('\0');
    }
  return out;
}

/// The smallest dim that `arg` indexes as Gather indices, or 0.
static int64_t indexBoundOf(Value arg) {
  int64_t bound = 0;
  for (Operation *user : arg.getUsers()) {
    auto gather = dyn_cast<transformer::GatherOp>(user);
    if (!gather || gather.getIndices() != arg)
      continue;
    auto data = cast<RankedTensorType>(gather.getData().getType());
    int64_t axis = transformer::normalizeAxis(gather.getAxis(), data.getRank());
    int64_t d = data.getDimSize(axis);
    if (ShapedType::isDynamic(d))
      continue;
    bound = bound ? std::min(bound, d) : d;
  }
  return bound;
}

ModelSignature collectSignature(func::FuncOp func) {
  ModelSignature sig;
  std::map<std::string, int64_t> symbolIds;
  auto describe = [&](Type type, DictionaryAttr attrs, std::string fallback) {
    TensorSignature t;
    auto tt = cast<RankedTensorType>(type);
    t.dtype = onnxDtypeOf(tt.getElementType());
    auto name = attrs ? attrs.getAs<StringAttr>("transformer.name") : nullptr;
    t.name = name ? name.str() : fallback;
    auto dimNames = attrs ? attrs.getAs<ArrayAttr>("transformer.dims") : nullptr;
    for (int64_t d = 0; d < tt.getRank(); ++d) {
      if (!tt.isDynamicDim(d)) {
        t.dims.push_back(tt.getDimSize(d));
        continue;
      }
      std::string sym;
      if (dimNames && d < (int64_t)dimNames.size())
        if (auto s = dyn_cast<StringAttr>(dimNames[d]))
          sym = s.str();
      if (sym.empty())
        sym = t.name + ".dim" + std::to_string(d);
      auto [it, inserted] = symbolIds.try_emplace(sym, sig.symbols.size());
      if (inserted)
        sig.symbols.push_back(sym);
      t.dims.push_back(-1 - it->second);
    }
    return t;
  };
  for (unsigned i = 0; i < func.getNumArguments(); ++i) {
    TensorSignature t = describe(func.getArgument(i).getType(),
                                 func.getArgAttrDict(i), "input_" + std::to_string(i));
    if (t.dtype == TF_INT64 || t.dtype == TF_INT32)
      t.indexBound = indexBoundOf(func.getArgument(i));
    sig.inputs.push_back(t);
  }
  for (unsigned i = 0; i < func.getNumResults(); ++i)
    sig.outputs.push_back(describe(func.getResultTypes()[i],
                                   func.getResultAttrDict(i),
                                   "output_" + std::to_string(i)));
  return sig;
}

OpPrintingFlags weightsElided() {
  return OpPrintingFlags().elideLargeElementsAttrs(16).elideLargeResourceString(
      16);
}

void enableIRPrintingAfterAll(PassManager &pm) {
  pm.getContext()->disableMultithreading();
  pm.enableIRPrinting([](Pass *, Operation *) { return false; },
                      [](Pass *, Operation *) { return true; },
                      /*printModuleScope=*/true,
                      /*printAfterOnlyOnChange=*/false,
                      /*printAfterOnlyOnFailure=*/false, llvm::errs(),
                      weightsElided());
}

LogicalResult lowerToLLVMDialect(ModuleOp module, const CodegenOptions &options) {
  // Inputs belong to the caller: never bufferize in place into them.
  module.walk([](func::FuncOp f) {
    for (unsigned i = 0; i < f.getNumArguments(); ++i)
      f.setArgAttr(i, "bufferization.writable",
                   BoolAttr::get(f.getContext(), false));
    f->setAttr("llvm.emit_c_interface", UnitAttr::get(f.getContext()));
  });
  PassManager pm(module.getContext());
  if (options.printIRAfterAll)
    enableIRPrintingAfterAll(pm);
  if (options.timePasses)
    pm.enableTiming();
  std::string pipeline =
      "transfuse-cpu-outline-kernels{norm-kernel=" +
      std::string(options.normKernel ? "true" : "false") +
      " attention-kernel=" +
      std::string(options.attentionKernel ? "true" : "false") +
      "},transfuse-cpu-lower-to-linalg{"
      "attention-kernel=" +
      std::string(options.attentionKernel ? "true" : "false") +
      (options.bf16Attention ? " bf16-attention=true" : "") +
      (options.normKernel ? " norm-kernel=true" : "") +
      "},"
      "canonicalize,cse,"
      "func.func(transfuse-cpu-fuse-elementwise),canonicalize,"
      "transfuse-cpu-check-refined-casts,"
      "func.func(transfuse-cpu-split-empty-tensors),"
      "one-shot-bufferize{bufferize-function-boundaries "
      "allow-return-allocs-from-loops "
      "function-boundary-type-conversion=identity-layout-map "
      "unknown-type-conversion=identity-layout-map},"
      "canonicalize,transfuse-cpu-matmul-to-microkernel{precision=" +
      options.precision + (options.int4Weights ? "" : " int4=false") +
      "},transfuse-cpu-a-panels,"
      // buffer-deallocation-pipeline, with buffers freed after their last
      // use instead of at the end of their block.
      "expand-realloc,canonicalize,ownership-based-buffer-deallocation,"
      "canonicalize,buffer-deallocation-simplification,"
      "transfuse-cpu-early-dealloc,bufferization-lower-deallocations,cse,"
      "canonicalize,transfuse-cpu-plan-buffers,"
      "transfuse-cpu-stream-large-copies,transfuse-cpu-fuse-kv-append,"
      "func.func(transfuse-cpu-copy-to-linalg,scf-forall-to-parallel,"
      "convert-linalg-to-parallel-loops,transfuse-cpu-promote-reductions,"
      "transfuse-cpu-approximate-math),"
      "transfuse-cpu-parallelize-loops,convert-bufferization-to-memref,"
      "convert-scf-to-cf,expand-strided-metadata,lower-affine,"
      "convert-math-to-funcs,convert-math-to-llvm,convert-math-to-libm,"
      "finalize-memref-to-llvm{use-generic-functions=1},"
      "convert-arith-to-llvm,convert-index-to-llvm,"
      "convert-cf-to-llvm,convert-func-to-llvm,reconcile-unrealized-casts";
  if (failed(parsePassPipeline(pipeline, pm, llvm::errs())))
    return failure();
  return pm.run(module);
}

/// LLVM's default pipeline at `options.optLevel`; with --time-passes, each
/// LLVM pass is timed too (LLVM prints the table when the report is freed).
static void optimizeModule(llvm::Module &m, llvm::TargetMachine &tm,
                           const CodegenOptions &options) {
  llvm::TimePassesIsEnabled = options.timePasses;
  // On AVX-512 targets LLVM vectorizes for 256-bit registers unless a
  // function asks for more; the generated loops (epilogues, GELU, softmax,
  // norms) are compute-bound enough to gain from the full width.
  if (tm.getMCSubtargetInfo()->checkFeatures("+avx512f"))
    for (llvm::Function &f : m)
      if (!f.isDeclaration())
        f.addFnAttr("prefer-vector-width", "512");
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassInstrumentationCallbacks pic;
  llvm::StandardInstrumentations si(m.getContext(), /*DebugLogging=*/false);
  si.registerCallbacks(pic, &mam);
  llvm::PassBuilder pb(&tm, llvm::PipelineTuningOptions(), std::nullopt, &pic);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  const llvm::OptimizationLevel levels[] = {
      llvm::OptimizationLevel::O0, llvm::OptimizationLevel::O1,
      llvm::OptimizationLevel::O2, llvm::OptimizationLevel::O3};
  llvm::OptimizationLevel level = levels[std::min(options.optLevel, 3u)];
  llvm::ModulePassManager mpm = options.optLevel == 0
                                    ? pb.buildO0DefaultPipeline(level)
                                    : pb.buildPerModuleDefaultPipeline(level);
  mpm.run(m, mam);
}

/// tf_model_entry(void **args): unpacks args and calls the C interface.
static LogicalResult addEntryPoint(llvm::Module &m, size_t numInputs,
                                   std::string &error) {
  llvm::Function *ciface = m.getFunction("_mlir_ciface_main_graph");
  if (!ciface || ciface->arg_size() != numInputs + 1) {
    error = "internal: main_graph has no C interface with a result pointer";
    return failure();
  }
  llvm::LLVMContext &ctx = m.getContext();
  auto *ptrTy = llvm::PointerType::get(ctx, 0);
  auto *fnTy = llvm::FunctionType::get(llvm::Type::getVoidTy(ctx), {ptrTy}, false);
  auto *entry = llvm::Function::Create(fnTy, llvm::GlobalValue::ExternalLinkage,
                                       "tf_model_entry", m);
  llvm::IRBuilder<> b(llvm::BasicBlock::Create(ctx, "entry", entry));
  std::vector<llvm::Value *> args;
  for (size_t i = 0; i < numInputs + 1; ++i) {
    llvm::Value *slot = b.CreateConstGEP1_64(ptrTy, entry->getArg(0), i);
    args.push_back(b.CreateLoad(ptrTy, slot));
  }
  b.CreateCall(ciface, args);
  b.CreateRetVoid();
  return success();
}

static void addMetadata(llvm::Module &m, const ModelSignature &sig,
                        ModuleOp module) {
  llvm::LLVMContext &ctx = m.getContext();
  auto addGlobal = [&](llvm::Constant *init, const char *name) {
    new llvm::GlobalVariable(m, init->getType(), /*isConstant=*/true,
                             llvm::GlobalValue::ExternalLinkage, init, name);
  };
  std::vector<int64_t> meta = sig.meta();
  std::vector<uint64_t> umeta(meta.begin(), meta.end());
  addGlobal(llvm::ConstantDataArray::get(ctx, umeta), "tf_model_meta");
  addGlobal(llvm::ConstantDataArray::getString(ctx, sig.json(), true),
            "tf_model_signature_json");
  std::string names = sig.names();
  addGlobal(llvm::ConstantDataArray::getString(ctx, names, true),
            "tf_model_names");
  std::string sites;
  if (auto list = module->getAttrOfType<ArrayAttr>(kFailSitesAttr))
    for (Attribute a : list) {
      sites += cast<StringAttr>(a).str();
      sites.push_back('\0');
    }
  addGlobal(llvm::ConstantDataArray::getString(ctx, sites, true),
            "tf_model_fail_sites");
  std::vector<uint64_t> plan(3, 0);
  if (auto a = module->getAttrOfType<DenseI64ArrayAttr>(kMemoryPlanAttr))
    for (auto [i, v] : llvm::enumerate(a.asArrayRef()))
      if (i < plan.size())
        plan[i] = (uint64_t)v;
  addGlobal(llvm::ConstantDataArray::get(ctx, plan), "tf_model_memory_plan");
}

static std::unique_ptr<llvm::TargetMachine>
createTargetMachine(const CodegenOptions &options, std::string &error) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return nullptr;
  std::string cpu = options.cpu.empty() ? llvm::sys::getHostCPUName().str()
                                        : options.cpu;
  std::string features;
  if (options.cpu.empty())
    for (auto &f : llvm::sys::getHostCPUFeatures())
      features += (features.empty() ? "" : ",") +
                  std::string(f.second ? "+" : "-") + f.first().str();
  llvm::TargetOptions to;
  return std::unique_ptr<llvm::TargetMachine>(target->createTargetMachine(
      triple, cpu, features, to, llvm::Reloc::PIC_, std::nullopt,
      llvm::CodeGenOpt::getLevel(options.optLevel)
          .value_or(llvm::CodeGenOptLevel::Default)));
}

/// Takes every constant global of at least 64 KiB whose value is raw bytes
/// (a dense resource blob, or a dense attribute that is not a splat) out of
/// the LLVM-dialect `module`: the global becomes a hidden external
/// declaration and `weights` gets its bytes, which stay owned by the
/// module's context. Translation then never copies the weights into LLVM
/// constants, and emitWeightsObject writes them straight from the blobs.
static void externalizeWeights(ModuleOp module, ExternalWeights &weights) {
  const size_t threshold = 64 << 10;
  for (auto g : module.getOps<LLVM::GlobalOp>()) {
    if (!g.getConstant() || g.getLinkage() == LLVM::Linkage::External)
      continue;
    llvm::ArrayRef<char> bytes;
    Attribute value = g.getValueAttr();
    if (auto r = dyn_cast_or_null<DenseResourceElementsAttr>(value)) {
      if (AsmResourceBlob *blob = r.getRawHandle().getBlob())
        bytes = blob->getData();
    } else if (auto d = dyn_cast_or_null<DenseElementsAttr>(value)) {
      Type elem = d.getElementType();
      if (!d.isSplat() && elem.isIntOrFloat() &&
          elem.getIntOrFloatBitWidth() % 8 == 0)
        bytes = d.getRawData();
    }
    if (bytes.size() < threshold)
      continue;
    g.removeValueAttr();
    g.removeUnnamedAddrAttr();
    g.setLinkage(LLVM::Linkage::External);
    g.setVisibility_(LLVM::Visibility::Hidden);
    g.setDsoLocal(true);
    g.setAlignment(64);
    weights.symbols.push_back(
        {g.getSymName().str(), llvm::StringRef(bytes.data(), bytes.size())});
  }
}

std::unique_ptr<llvm::Module>
translateToLLVMIR(ModuleOp module, llvm::LLVMContext &ctx,
                  const ModelSignature &sig, const CodegenOptions &options,
                  std::string &error, ExternalWeights &weights) {
  DialectRegistry registry;
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  module.getContext()->appendDialectRegistry(registry);
  externalizeWeights(module, weights);
  std::unique_ptr<llvm::Module> m = translateModuleToLLVMIR(module, ctx, "model");
  if (!m) {
    error = "translation to LLVM IR failed";
    return nullptr;
  }
  // The weights' references go through 64-bit addresses (the GOT): they
  // lie in .lrodata (emitWeightsObject), which may reach past 2 GiB of
  // the code, where 32-bit PC-relative ones would not link (in the JIT,
  // the context's blobs lie anywhere).
  for (const ExternalWeights::Symbol &w : weights.symbols)
    if (llvm::GlobalVariable *g = m->getGlobalVariable(w.name, true))
      g->setCodeModel(llvm::CodeModel::Large);
  if (failed(addEntryPoint(*m, sig.inputs.size(), error)))
    return nullptr;
  addMetadata(*m, sig, module);
  auto tm = createTargetMachine(options, error);
  if (!tm)
    return nullptr;
  m->setDataLayout(tm->createDataLayout());
  m->setTargetTriple(tm->getTargetTriple());
  optimizeModule(*m, *tm, options);
  return m;
}

LogicalResult emitObjectFile(llvm::Module &module, llvm::StringRef path,
                             const CodegenOptions &options, std::string &error) {
  auto tm = createTargetMachine(options, error);
  if (!tm)
    return failure();
  module.setDataLayout(tm->createDataLayout());
  std::error_code ec;
  llvm::raw_fd_ostream out(path, ec, llvm::sys::fs::OF_None);
  if (ec) {
    error = "cannot write " + path.str() + ": " + ec.message();
    return failure();
  }
  llvm::legacy::PassManager pm;
  if (tm->addPassesToEmitFile(pm, out, nullptr, llvm::CodeGenFileType::ObjectFile)) {
    error = "the target cannot emit object files";
    return failure();
  }
  pm.run(module);
  return success();
}

/// The compiler driver used to link (clang++ by default; TRANSFUSE_LINKER,
/// a path or a name looked up in PATH).
static std::string linkerDriver() {
  const char *env = getenv("TRANSFUSE_LINKER");
  if (!env || !*env)
    return TRANSFUSE_DEFAULT_LINKER;
  if (llvm::StringRef(env).contains('/'))
    return env;
  llvm::ErrorOr<std::string> found = llvm::sys::findProgramByName(env);
  return found ? *found : env;
}

LogicalResult emitWeightsObject(const ExternalWeights &weights,
                                llvm::StringRef path, std::string &error) {
  // An x86-64 ELF relocatable object written directly from the blobs: one
  // .lrodata section (large data: the linker keeps it apart from the
  // code's 32-bit reach, translateToLLVMIR makes the code address it with
  // 64 bits) holding the weights at 64-byte aligned offsets, and a hidden
  // symbol for each. Past 2 GiB of weights in .rodata, the code's
  // PC-relative references to its own constants did not link. Emitted by
  // LLVM from a module of ConstantDataArrays instead, the bytes were
  // copied into the constants and again into the object's buffers first: the
  // t5-base decoder step (594 MB of weights) on a Zen 4, alternated compiles,
  // "write weights" 1.8 -> 1.0 s and the compiler's peak RSS 2.61 -> 1.55 GB;
  // bert-base (440 MB) 0.65-0.73 -> 0.62-0.67 s and 1.97 -> 1.04 GB.
  llvm::Triple host(llvm::sys::getDefaultTargetTriple());
  if (host.getArch() != llvm::Triple::x86_64 || !host.isOSBinFormatELF()) {
    error = "weights object: only x86-64 ELF is supported, not " + host.str();
    return failure();
  }
  namespace elf = llvm::ELF;
  auto alignTo = [](uint64_t v, uint64_t a) { return (v + a - 1) / a * a; };
  // .lrodata's layout, the symbol and string tables.
  std::vector<uint64_t> offsets;
  uint64_t sectionSize = 0;
  std::string strtab(1, '\0');
  std::vector<elf::Elf64_Sym> syms(1); // [0]: the null symbol
  for (const ExternalWeights::Symbol &w : weights.symbols) {
    sectionSize = alignTo(sectionSize, 64);
    elf::Elf64_Sym sym{};
    sym.st_name = strtab.size();
    sym.setBindingAndType(elf::STB_GLOBAL, elf::STT_OBJECT);
    sym.st_other = elf::STV_HIDDEN;
    sym.st_shndx = 1; // .lrodata
    sym.st_value = sectionSize;
    sym.st_size = w.bytes.size();
    syms.push_back(sym);
    strtab += w.name;
    strtab += '\0';
    offsets.push_back(sectionSize);
    sectionSize += w.bytes.size();
  }
  // .note.GNU-stack, empty: the stack need not be executable (without it,
  // GNU ld warned and made a .so's stack executable).
  const char shstrtab[] =
      "\0.lrodata\0.symtab\0.strtab\0.shstrtab\0.note.GNU-stack";
  enum : uint32_t {
    kSectionName = 1,
    kSymtabName = 10,
    kStrtabName = 18,
    kShstrtabName = 26,
    kNoteName = 36
  };
  // File: header, .lrodata, .symtab, .strtab, .shstrtab, section headers.
  uint64_t sectionOff = 64, symtabOff = alignTo(sectionOff + sectionSize, 8),
           symtabSize = syms.size() * sizeof(elf::Elf64_Sym),
           strtabOff = symtabOff + symtabSize,
           shstrtabOff = strtabOff + strtab.size(),
           shOff = alignTo(shstrtabOff + sizeof(shstrtab), 8);
  elf::Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, elf::ElfMagic, 4);
  eh.e_ident[elf::EI_CLASS] = elf::ELFCLASS64;
  eh.e_ident[elf::EI_DATA] = elf::ELFDATA2LSB;
  eh.e_ident[elf::EI_VERSION] = elf::EV_CURRENT;
  eh.e_ident[elf::EI_OSABI] = elf::ELFOSABI_NONE;
  eh.e_type = elf::ET_REL;
  eh.e_machine = elf::EM_X86_64;
  eh.e_version = elf::EV_CURRENT;
  eh.e_shoff = shOff;
  eh.e_ehsize = sizeof(elf::Elf64_Ehdr);
  eh.e_shentsize = sizeof(elf::Elf64_Shdr);
  eh.e_shnum = 6;
  eh.e_shstrndx = 4;
  elf::Elf64_Shdr sh[6] = {};
  sh[1] = {kSectionName,
           elf::SHT_PROGBITS,
           elf::SHF_ALLOC | elf::SHF_X86_64_LARGE,
           0,
           sectionOff,
           sectionSize,
           0,
           0,
           64,
           0};
  sh[2] = {kSymtabName, elf::SHT_SYMTAB, 0, 0, symtabOff, symtabSize,
           /*link: .strtab*/ 3, /*info: first global*/ 1, 8,
           sizeof(elf::Elf64_Sym)};
  sh[3] = {kStrtabName, elf::SHT_STRTAB, 0, 0, strtabOff, strtab.size(),
           0, 0, 1, 0};
  sh[4] = {kShstrtabName, elf::SHT_STRTAB, 0, 0, shstrtabOff,
           sizeof(shstrtab), 0, 0, 1, 0};
  sh[5] = {kNoteName, elf::SHT_PROGBITS, 0, 0, shOff, 0, 0, 0, 1, 0};

  std::error_code ec;
  llvm::raw_fd_ostream out(path, ec, llvm::sys::fs::OF_None);
  if (ec) {
    error = "cannot write " + path.str() + ": " + ec.message();
    return failure();
  }
  auto pad = [&](uint64_t to) {
    static const char zeros[64] = {};
    while (out.tell() < static_cast<int64_t>(to))
      out.write(zeros, std::min<uint64_t>(64, to - out.tell()));
  };
  out.write(reinterpret_cast<const char *>(&eh), sizeof(eh));
  for (size_t i = 0; i < weights.symbols.size(); ++i) {
    pad(sectionOff + offsets[i]);
    out.write(weights.symbols[i].bytes.data(), weights.symbols[i].bytes.size());
  }
  pad(symtabOff);
  out.write(reinterpret_cast<const char *>(syms.data()), symtabSize);
  out.write(strtab.data(), strtab.size());
  out.write(shstrtab, sizeof(shstrtab));
  pad(shOff);
  out.write(reinterpret_cast<const char *>(sh), sizeof(sh));
  out.close();
  if (out.has_error()) {
    error = "cannot write " + path.str() + ": " + out.error().message();
    out.clear_error();
    return failure();
  }
  return success();
}

/// Runs the linker driver with `args` (after its name), `what` naming the
/// link in an error.
static LogicalResult runLinker(std::vector<std::string> args,
                               llvm::StringRef what, std::string &error) {
  std::string linker = linkerDriver();
  args.insert(args.begin(), linker);
  if (llvm::StringRef(linker).contains("clang"))
    args.insert(args.begin() + 1, "-fuse-ld=lld");
  std::vector<llvm::StringRef> refs(args.begin(), args.end());
  std::string msg;
  int rc = llvm::sys::ExecuteAndWait(linker, refs, std::nullopt, {}, 0, 0, &msg);
  if (rc != 0) {
    error = what.str() + " failed (" + linker +
            "): " + (msg.empty() ? "exit " + std::to_string(rc) : msg);
    return failure();
  }
  return success();
}

LogicalResult linkSharedLibrary(llvm::ArrayRef<std::string> objects,
                                llvm::StringRef runtimeArchive,
                                llvm::StringRef output, std::string &error) {
  if (!llvm::sys::fs::exists(runtimeArchive)) {
    error = "model runtime not found at " + runtimeArchive.str();
    return failure();
  }
  // Its soname is its file name, so that a program linked with it finds
  // it by that name (its run path, LD_LIBRARY_PATH) wherever it is moved.
  std::vector<std::string> args{
      "-shared", "-Wl,-soname," + llvm::sys::path::filename(output).str(), "-o",
      output.str()};
  args.insert(args.end(), objects.begin(), objects.end());
  args.insert(args.end(), {"-Wl,--whole-archive", runtimeArchive.str(),
                           "-Wl,--no-whole-archive", "-lm"});
  return runLinker(std::move(args), "linking", error);
}

LogicalResult linkRelocatable(llvm::ArrayRef<std::string> objects,
                              llvm::StringRef output, std::string &error) {
  std::vector<std::string> args{"-r", "-o", output.str()};
  args.insert(args.end(), objects.begin(), objects.end());
  return runLinker(std::move(args), "merging objects", error);
}

void JitModel::FreeDeleter::operator()(void *p) const { std::free(p); }

std::unique_ptr<JitModel> JitModel::create(ModuleOp module,
                                           const ModelSignature &sig,
                                           const CodegenOptions &options,
                                           std::string &error) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  DialectRegistry registry;
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  module.getContext()->appendDialectRegistry(registry);
  ExecutionEngineOptions eo;
  std::string buildError;
  auto model = std::unique_ptr<JitModel>(new JitModel());
  // The weights stay out of LLVM, as for a .so. With them as LLVM
  // constants, `transfuse-run --jit` took 12.1-13.6 s and a 3.09 GB peak RSS
  // to compile bert-base and run it once; without, 2.4-2.6 s and 0.80 GB.
  auto builder = [&](Operation *op,
                     llvm::LLVMContext &ctx) -> std::unique_ptr<llvm::Module> {
    return translateToLLVMIR(cast<ModuleOp>(op), ctx, sig, options, buildError,
                             model->weights_);
  };
  eo.llvmModuleBuilder = builder; // a function_ref: `builder` outlives create
  auto engine = ExecutionEngine::create(module, eo);
  if (!engine) {
    error = buildError.empty() ? llvm::toString(engine.takeError()) : buildError;
    return nullptr;
  }
  model->engine_ = std::move(*engine);
  // The weights' symbols: their bytes in place, or an aligned copy.
  std::vector<std::pair<std::string, const void *>> weightAddresses;
  for (const ExternalWeights::Symbol &w : model->weights_.symbols) {
    const char *at = w.bytes.data();
    if (reinterpret_cast<uintptr_t>(at) % 64 != 0) {
      size_t size = (w.bytes.size() + 63) / 64 * 64;
      char *copy = static_cast<char *>(std::aligned_alloc(64, size));
      if (!copy) {
        error = "out of memory copying weight " + w.name;
        return nullptr;
      }
      std::memcpy(copy, at, w.bytes.size());
      model->alignedCopies_.emplace_back(copy);
      at = copy;
    }
    weightAddresses.emplace_back(w.name, at);
  }
  // Runtime routines the generated code may call, resolved in-process.
  model->engine_->registerSymbols([&](llvm::orc::MangleAndInterner interner) {
    llvm::orc::SymbolMap map;
    for (const auto &[name, at] : weightAddresses)
      map[interner(name)] = {llvm::orc::ExecutorAddr::fromPtr(at),
                             llvm::JITSymbolFlags::Exported};
    auto add = [&](llvm::StringRef name, auto *fn) {
      map[interner(name)] = {llvm::orc::ExecutorAddr::fromPtr(fn),
                             llvm::JITSymbolFlags::Exported};
    };
    add("memrefCopy", &memrefCopy);
    add("_mlir_ciface_transfuse_copy_f32", &_mlir_ciface_transfuse_copy_f32);
    add("_mlir_memref_to_llvm_alloc", &_mlir_memref_to_llvm_alloc);
    add("_mlir_memref_to_llvm_aligned_alloc",
        &_mlir_memref_to_llvm_aligned_alloc);
    add("_mlir_memref_to_llvm_free", &_mlir_memref_to_llvm_free);
    add(kFailFunc, &__transfuse_fail);
    add("_mlir_ciface_transfuse_matmul_f32",
        &_mlir_ciface_transfuse_matmul_f32);
    add("_mlir_ciface_transfuse_matmul_f32_packed",
        &_mlir_ciface_transfuse_matmul_f32_packed);
    add("_mlir_ciface_transfuse_linear_f32_packed",
        &_mlir_ciface_transfuse_linear_f32_packed);
    add("_mlir_ciface_transfuse_linear_bf16_packed",
        &_mlir_ciface_transfuse_linear_bf16_packed);
    add("_mlir_ciface_transfuse_linear_q4", &_mlir_ciface_transfuse_linear_q4);
    add("_mlir_ciface_transfuse_matmul_bf16_packed",
        &_mlir_ciface_transfuse_matmul_bf16_packed);
    add("_mlir_ciface_transfuse_attention_f32",
        &_mlir_ciface_transfuse_attention_f32);
    add("_mlir_ciface_transfuse_attention_f32_past",
        &_mlir_ciface_transfuse_attention_f32_past);
    add("_mlir_ciface_transfuse_norm_f32", &_mlir_ciface_transfuse_norm_f32);
    add("_mlir_ciface_transfuse_linear_f32_panels",
        &_mlir_ciface_transfuse_linear_f32_panels);
    add("_mlir_ciface_transfuse_linear_bf16_panels",
        &_mlir_ciface_transfuse_linear_bf16_panels);
    add("_mlir_ciface_transfuse_norm_f32_panels",
        &_mlir_ciface_transfuse_norm_f32_panels);
    add("transfuse_parallel_loop", &transfuse_parallel_loop);
    return map;
  });
  auto lookup = [&](const char *name) -> void * {
    auto sym = model->engine_->lookup(name);
    if (!sym) {
      error = llvm::toString(sym.takeError());
      return nullptr;
    }
    return *sym;
  };
  model->desc_.entry = (tf_entry_fn)lookup("tf_model_entry");
  model->desc_.meta = (const int64_t *)lookup("tf_model_meta");
  model->desc_.signature_json = (const char *)lookup("tf_model_signature_json");
  model->desc_.names = (const char *)lookup("tf_model_names");
  model->desc_.fail_sites = (const char *)lookup("tf_model_fail_sites");
  model->desc_.memory_plan = (const uint64_t *)lookup("tf_model_memory_plan");
  if (!model->desc_.entry || !model->desc_.meta || !model->desc_.names ||
      !model->desc_.fail_sites || !model->desc_.memory_plan)
    return nullptr;
  return model;
}

} // namespace transfuse::cpu
