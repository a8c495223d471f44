// Normalizers: the text rewrites `tokenizers` applies before pre-tokenization (NFC/NFD/NFKC/NFKD,
// Lowercase, Strip, StripAccents, Prepend, Replace, and Sequence of those). A Sequence is
// flattened into one list of steps at load, so applying it is a plain loop.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json_util.h"
#include "tokenizer/regex.h"

namespace petrel::tokenizer {

class Normalizer {
 public:
  // Builds from the "normalizer" member of tokenizer.json (`path` names it in errors). Unknown
  // types (e.g. Precompiled, BertNormalizer) are errors that name the type.
  static Result<std::unique_ptr<Normalizer>> FromJson(const Json& j, const std::string& path);

  // Writes the normalized form of `in` into `*out` (cleared first). `tmp` is a scratch string
  // (keeps its capacity between calls). `in` must be valid UTF-8. Thread-safe.
  Status Normalize(std::string_view in, std::string* out, std::string* tmp, RegexScratch& rs) const;

 private:
  enum class Kind {
    kNfc,
    kNfd,
    kNfkc,
    kNfkd,
    kLowercase,
    kStrip,
    kStripAccents,
    kPrepend,
    kReplace
  };
  struct Step {
    Kind kind;
    bool left = false, right = false;  // Strip
    std::string text;                  // Prepend string, Replace content
    std::unique_ptr<Regex> pattern;    // Replace pattern
  };
  static Status Parse(const Json& j, const std::string& path, std::vector<Step>* steps);
  Status Apply(const Step& step, std::string_view in, std::string* out, RegexScratch& rs) const;

  std::vector<Step> steps_;
};

// Replaces every match of `pattern` in `in` by `content`, appending to `*out` (shared by the
// Replace normalizer and the Replace decoder). `rs` may be null for literal patterns.
Status ReplaceAll(const Regex& pattern, std::string_view content, std::string_view in,
                  std::string* out, RegexScratch* rs);

}  // namespace petrel::tokenizer
