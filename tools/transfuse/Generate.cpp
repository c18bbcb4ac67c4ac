//===- Generate.cpp - greedy decoding with prefill/decode libraries -------===//
#include "tools/transfuse/Generate.h"

#include "transfuse/transfuse.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <dlfcn.h>
#include <memory>

namespace transfuse {
namespace {

/// One compiled model.so, called through its exported C API.
class Library {
public:
  ~Library() {
    if (session_)
      destroy_(session_);
    if (handle_)
      dlclose(handle_);
  }

  bool load(const std::string &path, std::string &error) {
    handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle_)
      return error = std::string("cannot load ") + path + ": " + dlerror(), false;
    auto sym = [&](const char *n) { return dlsym(handle_, n); };
    auto create = (decltype(&tf_session_create))sym("tf_session_create");
    destroy_ = (decltype(&tf_session_destroy))sym("tf_session_destroy");
    run_ = (decltype(&tf_run))sym("tf_run");
    error_ = (decltype(&tf_session_error))sym("tf_session_error");
    release_ = (decltype(&tf_tensor_release))sym("tf_tensor_release");
    auto nin = (decltype(&tf_model_num_inputs))sym("tf_model_num_inputs");
    auto nout = (decltype(&tf_model_num_outputs))sym("tf_model_num_outputs");
    if (!create || !destroy_ || !run_ || !error_ || !release_ || !nin || !nout)
      return error = path + " does not export the Transfuse model API", false;
    numInputs = nin();
    numOutputs = nout();
    if (create(&session_) != TF_OK)
      return error = "cannot create a session for " + path, false;
    return true;
  }

  bool run(std::vector<tf_tensor> &in, std::vector<tf_tensor> &out,
           std::string &error) {
    out.assign(numOutputs, tf_tensor{});
    if (run_(session_, in.data(), in.size(), out.data(), out.size()) != TF_OK)
      return error = error_(session_), false;
    return true;
  }

  void release(std::vector<tf_tensor> &ts) {
    for (auto &t : ts)
      release_(&t);
  }

  size_t numInputs = 0, numOutputs = 0;

private:
  void *handle_ = nullptr;
  tf_session *session_ = nullptr;
  decltype(&tf_session_destroy) destroy_ = nullptr;
  decltype(&tf_run) run_ = nullptr;
  decltype(&tf_session_error) error_ = nullptr;
  decltype(&tf_tensor_release) release_ = nullptr;
};

/// Compiles dir/part/model.onnx to cache/part/model.so unless that is newer
/// than the model, the compiler and the runtime archive.
bool ensureCompiled(const GenerateOptions &o, const std::string &part,
                    const std::string &runtimeArchive, std::string &soPath,
                    std::string &error) {
  std::string onnx = o.modelDir + "/" + part + "/model.onnx";
  std::string outDir = (o.cacheDir.empty() ? o.modelDir : o.cacheDir) + "/" + part;
  soPath = outDir + "/model.so";
  llvm::sys::fs::file_status src, dst;
  if (llvm::sys::fs::status(onnx, src))
    return error = "missing " + onnx, false;
  // Up to date: newer than the model, this compiler and the runtime.
  auto newer = [&](const std::string &path) {
    llvm::sys::fs::file_status st;
    return llvm::sys::fs::status(path, st) ||
           dst.getLastModificationTime() >= st.getLastModificationTime();
  };
  std::string self = llvm::sys::fs::getMainExecutable(
      nullptr, reinterpret_cast<void *>(&ensureCompiled));
  if (!llvm::sys::fs::status(soPath, dst) && newer(onnx) && newer(self) &&
      newer(runtimeArchive))
    return true;
  if (auto ec = llvm::sys::fs::create_directories(outDir))
    return error = "cannot create " + outDir + ": " + ec.message(), false;
  return driver::compileModel(onnx, soPath, driver::Emit::So, o.compile,
                              runtimeArchive, error);
}

tf_tensor int64Tensor(std::vector<int64_t> &data, int64_t rows, int64_t cols) {
  tf_tensor t{};
  t.data = data.data();
  t.dtype = TF_INT64;
  t.rank = 2;
  t.shape[0] = rows;
  t.shape[1] = cols;
  return t;
}

/// argmax over the last position's logits ([1, seq, vocab] float32).
bool lastArgmax(const tf_tensor &logits, int64_t &token, std::string &error) {
  if (logits.dtype != TF_FLOAT || logits.rank != 3 || logits.shape[0] != 1)
    return error = "logits must be float32 [1, seq, vocab]", false;
  int64_t seq = logits.shape[1], vocab = logits.shape[2];
  const float *row = (const float *)logits.data + (seq - 1) * vocab;
  token = 0;
  for (int64_t v = 1; v < vocab; ++v)
    if (row[v] > row[token])
      token = v;
  return true;
}

} // namespace

bool generateGreedy(const GenerateOptions &o, const std::string &runtimeArchive,
                    std::vector<int64_t> &generated, double &msPerToken,
                    std::string &error) {
  bool seq2seq = llvm::sys::fs::exists(o.modelDir + "/encoder/model.onnx");
  if (seq2seq && o.decoderStartId < 0)
    return error = "an encoder-decoder model needs --decoder-start-id", false;
  std::string encoderSo, prefillSo, decodeSo;
  if ((seq2seq &&
       !ensureCompiled(o, "encoder", runtimeArchive, encoderSo, error)) ||
      !ensureCompiled(o, "prefill", runtimeArchive, prefillSo, error) ||
      !ensureCompiled(o, "decode", runtimeArchive, decodeSo, error))
    return false;
  Library encoder, prefill, decode;
  if ((seq2seq && !encoder.load(encoderSo, error)) ||
      !prefill.load(prefillSo, error) || !decode.load(decodeSo, error))
    return false;
  size_t fixed = seq2seq ? 3 : 2; // inputs before the past tensors
  size_t kv = prefill.numOutputs - 1;
  if (prefill.numInputs != fixed || decode.numInputs != fixed + kv ||
      decode.numOutputs != 1 + kv || (seq2seq && encoder.numInputs != 2))
    return error = "unexpected signatures: see `transfuse generate --help` and "
                   "docs/models.md for the prefill/decode conventions",
           false;
  if (o.promptIds.empty())
    return error = "the prompt is empty", false;

  std::vector<int64_t> prompt(o.promptIds), mask(prompt.size(), 1);
  std::vector<tf_tensor> states; // encoder output, kept for every step
  std::vector<int64_t> first;
  std::vector<tf_tensor> in;
  if (seq2seq) {
    std::vector<tf_tensor> encIn{int64Tensor(prompt, 1, prompt.size()),
                                 int64Tensor(mask, 1, mask.size())};
    if (!encoder.run(encIn, states, error))
      return error = "encoder: " + error, false;
    first = {o.decoderStartId};
    in = {int64Tensor(first, 1, 1), states[0], int64Tensor(mask, 1, mask.size())};
  } else {
    in = {int64Tensor(prompt, 1, prompt.size()), int64Tensor(mask, 1, mask.size())};
  }
  std::vector<tf_tensor> out;
  if (!prefill.run(in, out, error)) {
    encoder.release(states);
    return error = "prefill: " + error, false;
  }
  double start = driver::nowMs();
  int64_t token;
  bool ok = true;
  generated.clear();
  while (ok) {
    if (!(ok = lastArgmax(out[0], token, error)))
      break;
    generated.push_back(token);
    if ((int64_t)generated.size() >= o.maxNewTokens || token == o.eosId)
      break;
    std::vector<int64_t> next{token};
    std::vector<tf_tensor> step{int64Tensor(next, 1, 1)};
    if (seq2seq) {
      step.push_back(states[0]);
    } else {
      mask.push_back(1); // the attention mask grows with the sequence
    }
    step.push_back(int64Tensor(mask, 1, mask.size()));
    step.insert(step.end(), out.begin() + 1, out.end()); // past = present
    std::vector<tf_tensor> newOut;
    ok = decode.run(step, newOut, error);
    decode.release(out); // all outputs are runtime-owned
    out = std::move(newOut);
    if (!ok)
      error = "decode: " + error;
  }
  msPerToken = generated.size() > 1
                   ? (driver::nowMs() - start) / (generated.size() - 1)
                   : 0;
  decode.release(out);
  encoder.release(states);
  return ok;
}

} // namespace transfuse
