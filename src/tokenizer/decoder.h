// Decoders: token strings -> text, as `tokenizers` does it (decoders/*.rs). Each step maps a
// list of token strings to a new list (decode_chain); the final list is concatenated. Supported:
// ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace, BPEDecoder and Sequence (flattened).
// Without a decoder, tokens are joined with spaces (also as `tokenizers` does).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json_util.h"
#include "tokenizer/regex.h"

namespace petrel::tokenizer {

class Decoder {
 public:
  static Result<std::unique_ptr<Decoder>> FromJson(const Json& j, const std::string& path);

  // Decodes `tokens` (consumed). Thread-safe.
  Result<std::string> Decode(std::vector<std::string> tokens) const;

 private:
  enum class Kind { kByteLevel, kByteFallback, kFuse, kStrip, kReplace, kMetaspace, kBpe };
  struct Step {
    Kind kind;
    std::string content;  // Replace content; Strip char; Metaspace replacement; BPE suffix
    std::shared_ptr<Regex> pattern;  // Replace
    size_t start = 0, stop = 0;      // Strip
    bool prepend = true;             // Metaspace: prepend_scheme != never
  };
  static Status Parse(const Json& j, const std::string& path, std::vector<Step>* steps);
  Status Apply(const Step& step, std::vector<std::string>* tokens) const;

  std::vector<Step> steps_;
};

// transformers' clean_up_tokenization(): removes spaces before punctuation and contractions
// (" ." -> ".", " n't" -> "n't", ...), applied after decoding when tokenizer_config.json has
// clean_up_tokenization_spaces = true.
std::string CleanUpTokenization(std::string text);

}  // namespace petrel::tokenizer
