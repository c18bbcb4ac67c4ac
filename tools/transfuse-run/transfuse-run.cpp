//===- transfuse-run.cpp - run a compiled model, compare, time ------------===//
//
//   transfuse-run MODEL.so --test-data DIR [--rtol R --atol A --range-tol F]
//                 [--repeat K --threads N]   (N: the runtime's thread pool;
//                  default TRANSFUSE_NUM_THREADS, else every CPU)
//                 [--profile]   (TRANSFUSE_PROFILE=1: at exit, the time of
//                  each runtime kernel and shape per run, on stderr)
//   transfuse-run MODEL.onnx --jit --test-data DIR ...
//
// DIR holds ONNX test data (input_N.pb, output_N.pb). Exits 0 only when
// every output is within tolerance:
//   |got - want| <= atol + rtol * |want| + F * max |want of that output|
// (F, default 0, suits reduced precision, whose error scales with the
// output's range rather than with each element).
//
//===----------------------------------------------------------------------===//
#include "codegen/cpu/Passes.h"
#include "frontend/onnx/OnnxTensors.h"
#include "tools/driver/Driver.h"
#include "transfuse/runtime_core.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <functional>
#include <optional>

// The runtime's allocator (alloc.cpp): the most bytes of buffers held at once.
extern "C" uint64_t transfuse_scratch_peak_bytes();

using namespace llvm;
using namespace transfuse;
using onnx_frontend::HostTensor;

namespace {
struct Args {
  std::string modelPath;
  std::vector<std::string> testDirs;
  bool jit = false, quiet = false, noFusion = false, profile = false;
  std::optional<bool> bf16Attention; // --jit: --bf16-attention[=false]
  std::string attention = "auto"; // --jit: the attention algorithm
  int64_t kvBlock = 64;           // --jit: keys per memory-efficient block
  std::string precision = "f32";  // --jit: f32 or bf16 weights in products
  std::vector<std::string> dims;  // --jit: --dim NAME=SIZE
  double relTol = 1e-3, absTol = 1e-4, rangeTol = 0;
  unsigned repeat = 0, threads = 0; // 0: TRANSFUSE_NUM_THREADS or all CPUs
} args;

const char *kUsage =
    "usage: transfuse-run MODEL.so --test-data DIR [--test-data DIR2 ...]\n"
    "                     [--rtol R] [--atol A] [--range-tol F]\n"
    "                     [--repeat K] [--threads N] [--profile] [--quiet]\n"
    "       transfuse-run MODEL.onnx --jit [--no-fusion]\n"
    "                     [--attention auto|materialized|memory_efficient]\n"
    "                     [--attention-kv-block N] [--precision f32|bf16]\n"
    "                     [--bf16-attention[=false]]\n"
    "                     [--dim NAME=SIZE ...] --test-data DIR ...\n";

bool parseArgs(int argc, char **argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    size_t eq = a.find('=');
    if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    auto next = [&]() -> const char * {
      if (!value.empty())
        return value.c_str();
      return i + 1 < argc ? argv[++i] : nullptr;
    };
    auto number = [&](double &out) {
      const char *v = next();
      if (!v)
        return false;
      char *end;
      out = strtod(v, &end);
      return *end == 0;
    };
    double d;
    if (a == "--jit")
      args.jit = true;
    else if (a == "--profile")
      args.profile = true;
    else if (a == "--quiet")
      args.quiet = true;
    else if (a == "--no-fusion")
      args.noFusion = true;
    else if (a == "--attention") {
      const char *v = next();
      if (!v)
        return false;
      args.attention = v;
    } else if (a == "--bf16-attention" || a == "--bf16-attention=true") {
      args.bf16Attention = true;
    } else if (a == "--bf16-attention=false") {
      args.bf16Attention = false;
    } else if (a == "--precision") {
      const char *v = next();
      if (!v)
        return false;
      args.precision = v;
    } else if (a == "--dim") {
      const char *v = next();
      if (!v)
        return false;
      args.dims.push_back(v);
    } else if (a == "--attention-kv-block") {
      if (!number(d) || d < 1)
        return false;
      args.kvBlock = (int64_t)d;
    }
    else if (a == "--test-data") {
      const char *v = next();
      if (!v)
        return false;
      args.testDirs.push_back(v);
    } else if (a == "--rtol") {
      if (!number(args.relTol))
        return false;
    } else if (a == "--atol") {
      if (!number(args.absTol))
        return false;
    } else if (a == "--range-tol") {
      if (!number(args.rangeTol) || args.rangeTol < 0)
        return false;
    } else if (a == "--repeat") {
      if (!number(d) || d < 0)
        return false;
      args.repeat = (unsigned)d;
    } else if (a == "--threads") {
      if (!number(d) || d < 1)
        return false;
      args.threads = (unsigned)d;
    } else if (a == "-h" || a == "--help")
      return false;
    else if (a[0] == '-')
      return false;
    else if (args.modelPath.empty())
      args.modelPath = a;
    else
      return false;
  }
  return !args.modelPath.empty() && !args.testDirs.empty();
}
} // namespace

namespace {
/// One way to call a model: through a model.so's exported C API, or through
/// the runtime core with a JIT-compiled descriptor.
struct Runner {
  std::function<tf_status(const tf_tensor *, size_t, tf_tensor *, size_t)> run;
  std::function<const char *()> error;
  std::function<void(tf_tensor *)> release;
  size_t numInputs = 0, numOutputs = 0;
};

int fail(const std::string &msg) {
  errs() << "transfuse-run: error: " << msg << "\n";
  return 2;
}

double toDouble(const void *data, int32_t dtype, int64_t i) {
  switch (dtype) {
  case TF_FLOAT:
    return ((const float *)data)[i];
  case TF_DOUBLE:
    return ((const double *)data)[i];
  case TF_INT64:
    return (double)((const int64_t *)data)[i];
  case TF_INT32:
    return ((const int32_t *)data)[i];
  case TF_INT16:
    return ((const int16_t *)data)[i];
  case TF_INT8:
    return ((const int8_t *)data)[i];
  case TF_UINT8:
  case TF_BOOL:
    return ((const uint8_t *)data)[i];
  case TF_FLOAT16: {
    uint16_t h = ((const uint16_t *)data)[i];
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0    ? std::ldexp(m, -24)
               : e == 31 ? (m ? NAN : INFINITY)
                         : std::ldexp(m + 1024, e - 25);
    return (h & 0x8000) ? -v : v;
  }
  default:
    return NAN;
  }
}

bool loadSet(const std::string &dir, const char *prefix,
             std::vector<HostTensor> &out, std::string &error) {
  for (int i = 0;; ++i) {
    std::string p = dir + "/" + prefix + std::to_string(i) + ".pb";
    if (!sys::fs::exists(p))
      return true;
    HostTensor t;
    if (!onnx_frontend::readTensorFile(p, t, error))
      return false;
    out.push_back(std::move(t));
  }
}
} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  if (!parseArgs(argc, argv)) {
    errs() << kUsage;
    return 2;
  }
  const std::string &modelPath = args.modelPath;
  bool jit = args.jit, quiet = args.quiet;
  double absTol = args.absTol, relTol = args.relTol;
  unsigned repeat = args.repeat;
  // The runtime's thread pool reads its size once, on first use.
  if (args.threads > 0)
    setenv("TRANSFUSE_NUM_THREADS", std::to_string(args.threads).c_str(), 1);
  // The runtime times its kernels and prints the table at exit
  // (runtime/src/profile.h), also read once.
  if (args.profile)
    setenv("TRANSFUSE_PROFILE", "1", 1);

  Runner runner;
  void *lib = nullptr;
  tf_core_session *core = nullptr;
  // Before the JIT's model: the generated code reads the weights the
  // context holds.
  mlir::MLIRContext ctx;
  std::unique_ptr<cpu::JitModel> jitModel;
  bool isOnnx = StringRef(modelPath).ends_with(".onnx");
  if (isOnnx && !jit)
    return fail("'" + modelPath +
                "' is an ONNX file: pass --jit, or compile it "
                "first with `transfuse compile`");
  if (jit) {
    if (!isOnnx)
      return fail("--jit needs an .onnx model");
    driver::Options options;
    options.verbose = !quiet;
    options.fusion = !args.noFusion;
    options.attention = args.attention;
    options.attentionKvBlock = args.kvBlock;
    if (std::string e = cpu::precisionError(args.precision, args.bf16Attention,
                                               args.attention);
        !e.empty())
      return fail(e);
    options.codegen.precision = args.precision;
    options.codegen.bf16Attention = cpu::bf16AttentionOn(
        args.precision, args.bf16Attention, args.attention);
    options.codegen.attentionKernel = args.attention == "auto";
    driver::registerAll(ctx);
    std::string error;
    for (const std::string &d : args.dims)
      if (!driver::parseDim(d, options.dims, error))
        return fail(error);
    auto module = driver::importAndOptimize(ctx, modelPath, options, error);
    if (!module)
      return fail(error);
    auto func = *module->getOps<mlir::func::FuncOp>().begin();
    cpu::ModelSignature sig = cpu::collectSignature(func);
    {
      driver::PhaseTimer t(options, "JIT compile");
      if (failed(cpu::lowerToLLVMDialect(*module, options.codegen)))
        return fail("CPU code generation failed (see diagnostics above)");
      driver::printMemoryPlan(*module, options);
      jitModel = cpu::JitModel::create(*module, sig, options.codegen, error);
      if (!jitModel)
        return fail("JIT failed: " + error);
    }
    if (tf_core_session_create(&jitModel->desc(), &core) != TF_OK)
      return fail("cannot create a session");
    runner.run = [&](const tf_tensor *i, size_t ni, tf_tensor *o, size_t no) {
      return tf_core_run(core, i, ni, o, no);
    };
    runner.error = [&] { return tf_core_error(core); };
    runner.numInputs = tf_core_num_inputs(&jitModel->desc());
    runner.numOutputs = tf_core_num_outputs(&jitModel->desc());
  } else {
    std::string path =
        modelPath.find('/') == std::string::npos ? "./" + modelPath : modelPath;
    lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib)
      return fail(std::string("cannot load model: ") + dlerror());
    auto sym = [&](const char *name) { return dlsym(lib, name); };
    auto create = (tf_status(*)(tf_session **))sym("tf_session_create");
    auto run = (decltype(&tf_run))sym("tf_run");
    auto err = (decltype(&tf_session_error))sym("tf_session_error");
    auto nin = (decltype(&tf_model_num_inputs))sym("tf_model_num_inputs");
    auto nout = (decltype(&tf_model_num_outputs))sym("tf_model_num_outputs");
    auto rel = (decltype(&tf_tensor_release))sym("tf_tensor_release");
    if (!create || !run || !err || !nin || !nout || !rel)
      return fail("'" + modelPath +
                  "' does not export the Transfuse model API");
    tf_session *session = nullptr;
    if (create(&session) != TF_OK)
      return fail("cannot create a session");
    runner.run = [=](const tf_tensor *i, size_t ni, tf_tensor *o, size_t no) {
      return run(session, i, ni, o, no);
    };
    runner.error = [=] { return err(session); };
    runner.release = rel;
    runner.numInputs = nin();
    runner.numOutputs = nout();
  }
  if (!runner.release)
    runner.release = tf_tensor_release;

  bool ok = true;
  for (const std::string &testData : args.testDirs) {
    if (args.testDirs.size() > 1)
      outs() << "== " << testData << "\n";
    std::vector<HostTensor> inputs, expected;
    std::string error;
    if (!loadSet(testData, "input_", inputs, error) ||
        !loadSet(testData, "output_", expected, error))
      return fail(error);
    if (inputs.size() != runner.numInputs)
      return fail("test data has " + std::to_string(inputs.size()) +
                  " inputs, the model takes " +
                  std::to_string(runner.numInputs));
    std::vector<tf_tensor> in(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      in[i] = tf_tensor{};
      in[i].data = inputs[i].data.data();
      in[i].dtype = inputs[i].dtype;
      in[i].rank = (int32_t)inputs[i].shape.size();
      if (in[i].rank > TF_MAX_RANK)
        return fail("input rank above " + std::to_string(TF_MAX_RANK));
      for (int32_t d = 0; d < in[i].rank; ++d)
        in[i].shape[d] = inputs[i].shape[d];
    }
    std::vector<tf_tensor> out(runner.numOutputs);
    auto runOnce = [&]() -> bool {
      for (auto &o : out) {
        runner.release(&o);
        o = tf_tensor{};
      }
      return runner.run(in.data(), in.size(), out.data(), out.size()) == TF_OK;
    };
    if (!runOnce())
      return fail(std::string("run failed: ") + runner.error());

    size_t n = std::min(expected.size(), out.size());
    if (expected.size() > out.size())
      return fail("test data has more outputs than the model");
    for (size_t i = 0; i < n; ++i) {
      const HostTensor &e = expected[i];
      const tf_tensor &o = out[i];
      bool shapeOk = (size_t)o.rank == e.shape.size();
      for (int32_t d = 0; shapeOk && d < o.rank; ++d)
        shapeOk = o.shape[d] == e.shape[d];
      if (!shapeOk) {
        outs() << "output " << i << " '" << e.name << "': shape mismatch\n";
        ok = false;
        continue;
      }
      double maxAbs = 0, maxRel = 0, range = 0;
      for (int64_t k = 0; args.rangeTol > 0 && k < e.numElements(); ++k) {
        double want = std::fabs(toDouble(e.data.data(), e.dtype, k));
        if (std::isfinite(want))
          range = std::max(range, want);
      }
      double allowance = absTol + args.rangeTol * range;
      bool within = true;
      for (int64_t k = 0; k < e.numElements(); ++k) {
        double want = toDouble(e.data.data(), e.dtype, k);
        double got = toDouble(o.data, o.dtype, k);
        if (std::isnan(want) && std::isnan(got))
          continue;
        double diff = std::fabs(got - want);
        if (std::isinf(want) && got == want)
          diff = 0;
        if (std::isnan(diff))
          diff = INFINITY;
        maxAbs = std::max(maxAbs, diff);
        if (want != 0)
          maxRel = std::max(maxRel, diff / std::fabs(want));
        within &= diff <= allowance + relTol * std::fabs(want);
      }
      outs() << "output " << i << " '" << e.name << "' "
             << tf_dtype_name(o.dtype) << " [";
      for (int32_t d = 0; d < o.rank; ++d)
        outs() << (d ? "," : "") << o.shape[d];
      outs() << "]: max abs err " << format("%.3g", maxAbs) << ", max rel err "
             << format("%.3g", maxRel);
      if (args.rangeTol > 0)
        outs() << ", of range " << format("%.3g", range ? maxAbs / range : 0);
      outs() << (within ? "  ok" : "  MISMATCH") << "\n";
      ok &= within;
    }
    if (repeat > 0) {
      std::vector<double> times;
      for (unsigned r = 0; r < repeat; ++r) {
        double t0 = driver::nowMs();
        if (!runOnce())
          return fail(std::string("run failed: ") + runner.error());
        times.push_back(driver::nowMs() - t0);
      }
      std::sort(times.begin(), times.end());
      outs() << "latency over " << repeat << " runs: min "
             << format("%.3f", times.front()) << " ms, median "
             << format("%.3f", times[times.size() / 2]) << " ms\n";
    }
    for (auto &o : out)
      runner.release(&o);
  } // each test-data set
  // The most bytes the model's buffers held at once (runtime/src/alloc.cpp):
  // from the .so's own runtime, or this process's for the JIT.
  auto scratchPeak = lib ? reinterpret_cast<uint64_t (*)()>(
                               dlsym(lib, "transfuse_scratch_peak_bytes"))
                         : &transfuse_scratch_peak_bytes;
  if (scratchPeak)
    outs() << "peak scratch: "
           << format("%.1f", scratchPeak() / (1024.0 * 1024.0)) << " MiB\n";
  // The compile-time plan (model_abi.h): the arena is part of the peak above.
  auto plan = lib ? reinterpret_cast<const uint64_t *>(
                        dlsym(lib, "tf_model_memory_plan"))
                  : jitModel->desc().memory_plan;
  if (plan)
    outs() << "planned arena: "
           << format("%.2f", plan[0] / (1024.0 * 1024.0)) << " MiB ("
           << plan[1] << " buffers planned, " << plan[2]
           << " left to the allocator)\n";
  // Peak resident memory of this process (Linux VmHWM: per address space,
  // so it does not inherit the parent's peak the way ru_maxrss does).
  if (std::FILE *f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f))
      if (std::strncmp(line, "VmHWM:", 6) == 0)
        outs() << "peak RSS: " << format("%.1f", std::atof(line + 6) / 1024)
               << " MiB\n";
    std::fclose(f);
  }
  outs() << (ok ? "PASS" : "FAIL") << "\n";
  if (core)
    tf_core_session_destroy(core);
  return ok ? 0 : 1;
}
