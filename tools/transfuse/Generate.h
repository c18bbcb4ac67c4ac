//===- Generate.h - greedy decoding with prefill/decode libraries -*- C++ -*-===//
#ifndef TRANSFUSE_TOOLS_TRANSFUSE_GENERATE_H
#define TRANSFUSE_TOOLS_TRANSFUSE_GENERATE_H

#include "tools/driver/Driver.h"

#include <cstdint>
#include <string>
#include <vector>

namespace transfuse {

struct GenerateOptions {
  std::string modelDir;   // holds prefill/model.onnx and decode/model.onnx
  std::string cacheDir;   // where the compiled .so files go (default: modelDir)
  std::vector<int64_t> promptIds;
  int64_t maxNewTokens = 16;
  int64_t eosId = -1;     // stop early at this id; -1: never
  driver::Options compile;
};

/// Compiles (when stale) and loads the prefill and decode libraries, runs
/// the prompt through prefill, then decodes greedily one token at a time,
/// feeding each step's present key/values back as the next step's past.
/// Returns false with `error` set on failure.
bool generateGreedy(const GenerateOptions &options, const std::string &runtimeArchive,
                    std::vector<int64_t> &generated, double &msPerToken,
                    std::string &error);

} // namespace transfuse

#endif
