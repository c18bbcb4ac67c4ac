//===- Generate.cpp - greedy decoding with prefill/decode libraries -------===//
#include "tools/transfuse/Generate.h"

#include "transfuse/transfuse.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <dlfcn.h>
#include <memory>
#include <optional>

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
    auto sig = (decltype(&tf_model_signature))sym("tf_model_signature");
    if (!create || !destroy_ || !run_ || !error_ || !release_ || !nin ||
        !nout || !sig)
      return error = path + " does not export the Transfuse model API", false;
    numInputs = nin();
    numOutputs = nout();
    signature = sig();
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
  /// tf_model_signature's JSON (names, dtypes, shapes of the model's inputs
  /// and outputs).
  std::string signature;

private:
  void *handle_ = nullptr;
  tf_session *session_ = nullptr;
  decltype(&tf_session_destroy) destroy_ = nullptr;
  decltype(&tf_run) run_ = nullptr;
  decltype(&tf_session_error) error_ = nullptr;
  decltype(&tf_tensor_release) release_ = nullptr;
};

/// Compiles dir/part/model.onnx (dir/model.onnx with an empty part) to
/// cache/part/model.so (model-bf16.so with --precision bf16,
/// model-bf16-f32att.so with its attention f32; each with -last-position
/// before .so when it computes its logits there only, so that a library of
/// a plain `transfuse compile -o model.so` there is never taken for one)
/// unless that is newer than the model, the compiler and the runtime
/// archive.
bool ensureCompiled(const GenerateOptions &o, const std::string &part,
                    const std::string &runtimeArchive, std::string &soPath,
                    std::string &error) {
  std::string sub = part.empty() ? "" : "/" + part;
  std::string onnx = o.modelDir + sub + "/model.onnx";
  std::string outDir = (o.cacheDir.empty() ? o.modelDir : o.cacheDir) + sub;
  // An encoder has no logits: every position of its output is read.
  driver::Options options = o.compile;
  if (part == "encoder")
    options.lastPosition.clear();
  const cpu::CodegenOptions &c = options.codegen;
  std::string variant =
      (c.precision == "f32"
           ? ""
           : "-" + c.precision + (c.bf16Attention ? "" : "-f32att")) +
      (options.lastPosition.empty() ? "" : "-last-position");
  soPath = outDir + "/model" + variant + ".so";
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
  return driver::compileModel(onnx, soPath, driver::Emit::So, options,
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

/// The tokens greedy decoding generates, and their times: the first from
/// the construction (made right before the first model runs), the others
/// from one token to the next.
class Greedy {
public:
  Greedy(const GenerateOptions &o, std::vector<int64_t> &generated,
         GenerateTimes &times)
      : o(o), generated(generated), times(times), last(driver::nowMs()) {
    generated.clear();
    times = {};
  }

  /// Takes the argmax of the last position's logits ([1, seq, vocab]
  /// float32) as the next token; false with `error` set when they are not
  /// such logits.
  bool take(const tf_tensor &logits, int64_t &token, std::string &error) {
    if (logits.dtype != TF_FLOAT || logits.rank != 3 || logits.shape[0] != 1)
      return error = "logits must be float32 [1, seq, vocab]", false;
    int64_t seq = logits.shape[1], vocab = logits.shape[2];
    const float *row = (const float *)logits.data + (seq - 1) * vocab;
    token = 0;
    for (int64_t v = 1; v < vocab; ++v)
      if (row[v] > row[token])
        token = v;
    generated.push_back(token);
    double now = driver::nowMs();
    if (generated.size() > 1)
      times.stepMs.push_back(now - last);
    else
      times.firstMs = now - last;
    last = now;
    return true;
  }

  /// Whether `token` (the last taken) ends the generation.
  bool done(int64_t token) const {
    return (int64_t)generated.size() >= o.maxNewTokens || token == o.eosId;
  }

private:
  const GenerateOptions &o;
  std::vector<int64_t> &generated;
  GenerateTimes &times;
  double last; // when the last token came (at first, the start)
};

/// How generation feeds one model that takes both the prompt and each
/// decode step (onnxruntime-genai's model builder writes such a model):
/// which role each input has, in the model's order, and where the outputs
/// are. Read from the library's signature (tf_model_signature).
struct SingleModel {
  enum Role { Ids, Mask, Positions, Past };
  std::vector<Role> roles;
  /// Per past input, in order: its name, and its shape with an empty past
  /// (dim 2 = 0).
  std::vector<std::string> pastNames;
  std::vector<std::vector<int64_t>> emptyPast;
  size_t logits = 0;
  /// Per past input, in order: the output that is its next value.
  std::vector<size_t> presents;

  bool parse(const std::string &signature, std::string &error) {
    auto json = llvm::json::parse(signature);
    if (!json)
      return error = "cannot read the model's signature: " +
                     llvm::toString(json.takeError()),
             false;
    const llvm::json::Object *root = json->getAsObject();
    const llvm::json::Array *ins = root ? root->getArray("inputs") : nullptr;
    const llvm::json::Array *outs = root ? root->getArray("outputs") : nullptr;
    if (!ins || !outs)
      return error = "the model's signature lists no inputs or outputs", false;
    bool haveIds = false;
    for (const llvm::json::Value &v : *ins) {
      const llvm::json::Object *in = v.getAsObject();
      if (!in)
        return error = "the model's signature has a malformed input", false;
      std::string name = in->getString("name").value_or("").str();
      std::string dtype = in->getString("dtype").value_or("").str();
      const llvm::json::Array *shape = in->getArray("shape");
      size_t rank = shape ? shape->size() : 0;
      if ((name == "input_ids" || name == "attention_mask" ||
           name == "position_ids") &&
          dtype == "int64" && rank == 2) {
        haveIds |= name == "input_ids";
        roles.push_back(name == "input_ids"        ? Ids
                        : name == "attention_mask" ? Mask
                                                   : Positions);
        continue;
      }
      // A past key or value, [batch, heads, past, head dim].
      if (name.find("past") == std::string::npos || dtype != "float32" ||
          rank != 4)
        return error = "input '" + name + "' (" + dtype + ", rank " +
                       std::to_string(rank) +
                       ") is not one that generation can feed: a single model "
                       "takes input_ids, attention_mask, position_ids (int64 "
                       "[batch, seq]) and past key/values (float32 [batch, "
                       "heads, past, head dim])",
               false;
      roles.push_back(Past);
      pastNames.push_back(name);
      emptyPast.push_back({1, (*shape)[1].getAsInteger().value_or(-1), 0,
                           (*shape)[3].getAsInteger().value_or(-1)});
    }
    if (!haveIds)
      return error = "the model has no input_ids input", false;
    if (emptyPast.empty())
      return error = "the model has no past key/value inputs: generation "
                     "feeds each step only its new token, so it needs a "
                     "model that keeps a KV cache",
             false;
    bool haveLogits = false;
    for (size_t i = 0; i < outs->size(); ++i) {
      const llvm::json::Object *out = (*outs)[i].getAsObject();
      std::string name = out ? out->getString("name").value_or("").str() : "";
      if (name == "logits") {
        logits = i;
        haveLogits = true;
      } else if (name.find("present") != std::string::npos) {
        presents.push_back(i);
      }
    }
    if (!haveLogits)
      return error = "the model has no output named logits", false;
    if (presents.size() != emptyPast.size())
      return error = "the model has " + std::to_string(emptyPast.size()) +
                     " past inputs but " + std::to_string(presents.size()) +
                     " present outputs",
             false;
    // A past's heads or head dim that the signature leaves symbolic (the
    // builder's "kv_cache_dim") from its present's, which shape inference
    // knows.
    for (size_t k = 0; k < presents.size(); ++k) {
      const llvm::json::Array *shape =
          (*outs)[presents[k]].getAsObject()->getArray("shape");
      for (int d : {1, 3}) {
        std::optional<int64_t> n;
        if (shape && shape->size() == 4)
          n = (*shape)[d].getAsInteger();
        int64_t &dim = emptyPast[k][d];
        if (dim < 0 && n)
          dim = *n;
        if (dim < 0 || (n && *n != dim))
          return error = "cannot tell the " +
                         std::string(d == 1 ? "heads" : "head dim") +
                         " of an empty '" + pastNames[k] +
                         "' from the model's signature",
                 false;
      }
    }
    return true;
  }
};

/// Greedy generation with one model for the prompt and the decode steps
/// (dir/model.onnx): the prompt with empty pasts, then one token at a time
/// with the last step's presents as pasts; the attention mask covers every
/// token so far, the positions count from 0.
bool generateSingle(const GenerateOptions &o, const std::string &runtimeArchive,
                    std::vector<int64_t> &generated, GenerateTimes &times,
                    std::string &error) {
  if (o.decoderStartId >= 0)
    return error = "--decoder-start-id is for encoder-decoder exports "
                   "(encoder/, prefill/ and decode/)",
           false;
  std::string so;
  Library model;
  SingleModel sig;
  if (!ensureCompiled(o, "", runtimeArchive, so, error) ||
      !model.load(so, error) || !sig.parse(model.signature, error))
    return false;

  std::vector<int64_t> ids(o.promptIds), mask(ids.size(), 1), positions;
  for (size_t i = 0; i < ids.size(); ++i)
    positions.push_back(i);
  float noData = 0.0f; // an empty past's data pointer
  std::vector<tf_tensor> pasts;
  for (const std::vector<int64_t> &shape : sig.emptyPast) {
    tf_tensor t{};
    t.data = &noData;
    t.dtype = TF_FLOAT;
    t.rank = 4;
    std::copy(shape.begin(), shape.end(), t.shape);
    pasts.push_back(t);
  }
  std::vector<tf_tensor> out;
  Greedy greedy(o, generated, times);
  bool ok = true;
  for (int64_t step = 0; ok; ++step) {
    std::vector<tf_tensor> in;
    size_t past = 0;
    for (SingleModel::Role role : sig.roles) {
      switch (role) {
      case SingleModel::Ids:
        in.push_back(int64Tensor(ids, 1, ids.size()));
        break;
      case SingleModel::Mask:
        in.push_back(int64Tensor(mask, 1, mask.size()));
        break;
      case SingleModel::Positions:
        in.push_back(int64Tensor(positions, 1, positions.size()));
        break;
      case SingleModel::Past:
        in.push_back(pasts[past++]);
        break;
      }
    }
    std::vector<tf_tensor> newOut;
    ok = model.run(in, newOut, error);
    model.release(out); // the last step's outputs, runtime-owned
    out = std::move(newOut);
    if (!ok) {
      error = (step ? "decode step: " : "prompt: ") + error;
      break;
    }
    int64_t token;
    if (!(ok = greedy.take(out[sig.logits], token, error)) ||
        greedy.done(token))
      break;
    for (size_t k = 0; k < pasts.size(); ++k)
      pasts[k] = out[sig.presents[k]];
    positions = {int64_t(mask.size())};
    ids = {token};
    mask.push_back(1);
  }
  model.release(out);
  return ok;
}

} // namespace

bool generateGreedy(const GenerateOptions &o, const std::string &runtimeArchive,
                    std::vector<int64_t> &generated, GenerateTimes &times,
                    std::string &error) {
  if (o.promptIds.empty())
    return error = "the prompt is empty", false;
  if (!llvm::sys::fs::exists(o.modelDir + "/prefill/model.onnx") &&
      llvm::sys::fs::exists(o.modelDir + "/model.onnx"))
    return generateSingle(o, runtimeArchive, generated, times, error);
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

  Greedy greedy(o, generated, times);
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
  int64_t token;
  bool ok = true;
  while (ok) {
    if (!(ok = greedy.take(out[0], token, error)) || greedy.done(token))
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
  decode.release(out);
  encoder.release(states);
  return ok;
}

} // namespace transfuse
