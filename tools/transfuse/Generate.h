//===- Generate.h - greedy decoding with prefill/decode libraries -*- C++ -*-===//
#ifndef TRANSFUSE_TOOLS_TRANSFUSE_GENERATE_H
#define TRANSFUSE_TOOLS_TRANSFUSE_GENERATE_H

#include "tools/driver/Driver.h"

#include <cstdint>
#include <string>
#include <vector>

namespace transfuse {

struct GenerateOptions {
  std::string
      modelDir; // prefill/ and decode/ (each a model.onnx), or model.onnx
  std::string cacheDir;   // where the compiled .so files go (default: modelDir)
  std::vector<int64_t> promptIds;
  int64_t maxNewTokens = 16;
  int64_t eosId = -1;     // stop early at this id; -1: never
  // Encoder-decoder models (modelDir/encoder/ exists): the first decoder
  // input id.
  int64_t decoderStartId = -1;
  driver::Options compile;
};

/// How long generation took: the first token (the prompt's step, and an
/// encoder's run before it, from the call's inputs to the argmax), then
/// each decode step, from one generated token to the next (the model's
/// run and the argmax).
struct GenerateTimes {
  double firstMs = 0;
  std::vector<double> stepMs;
};

/// Compiles (when stale) and loads the prefill and decode libraries, runs
/// the prompt through prefill, then decodes greedily one token at a time,
/// feeding each step's present key/values back as the next step's past.
/// One model for both (modelDir/model.onnx and no prefill/, as
/// onnxruntime-genai's model builder writes): input_ids, attention_mask,
/// position_ids as it has them and past key/values (float32 [batch, heads,
/// past, head dim], empty for the prompt) in, logits and present
/// key/values out.
/// Decoder-only: prefill(input_ids, attention_mask), decode(input_ids,
/// attention_mask, past...). Encoder-decoder (an encoder/ export next to
/// them): encoder(input_ids, attention_mask) -> states, then
/// prefill(decoder_input_ids = [start], states, attention_mask) and
/// decode(decoder_input_ids, states, attention_mask, past...).
/// Returns false with `error` set on failure.
bool generateGreedy(const GenerateOptions &options,
                    const std::string &runtimeArchive,
                    std::vector<int64_t> &generated, GenerateTimes &times,
                    std::string &error);

} // namespace transfuse

#endif
