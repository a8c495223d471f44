// Pre-tokenizers: split normalized text into the "words" the BPE model sees. Supports Split
// (regex or literal, every behavior, invert), ByteLevel (with/without its GPT-2 regex,
// add_prefix_space), Metaspace (prepend_scheme always/first/never, split), Digits, Punctuation,
// Whitespace, WhitespaceSplit, BertPreTokenizer, CharDelimiterSplit and Sequence (flattened).
//
// Semantics follow `tokenizers` (pre_tokenizers/*.rs and NormalizedString::split): each step
// maps every current piece to sub-pieces independently; empty pieces are dropped.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json_util.h"
#include "tokenizer/regex.h"

namespace petrel::tokenizer {

// How the matches of a split pattern become pieces (`SplitDelimiterBehavior`).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// A piece of text: [begin, end) in a Pieces buffer. `origin` is true when the piece starts at
// byte 0 of the original input (what Metaspace's prepend_scheme "first" checks).
struct Piece {
  uint32_t begin = 0;
  uint32_t end = 0;
  bool origin = false;
};
struct Pieces {
  std::string text;
  std::vector<Piece> list;
};

// Reusable buffers for one Encode call (no allocations once warm).
struct PreTokScratch {
  Pieces a, b;
  std::vector<Span> matches;
  std::vector<std::pair<Span, bool>> events, merged;  // (span, is_match / remove)
  std::string tmp;
};

class PreTokenizer {
 public:
  static Result<std::unique_ptr<PreTokenizer>> FromJson(const Json& j, const std::string& path);

  // Splits `text` (one added-token-free segment, already normalized) into words. On return
  // s.a holds the words. Thread-safe; all state lives in `s` and `rs`.
  Status Run(std::string_view text, bool origin, PreTokScratch& s, RegexScratch& rs) const;

  // True when the chain contains a ByteLevel step (the model vocabulary is then byte-level).
  bool has_byte_level() const;

 private:
  enum class Kind {
    kSplit,
    kByteLevel,
    kMetaspace,
    kDigits,
    kPunctuation,
    kWhitespace,
    kWhitespaceSplit,
    kBert,
    kCharDelimiter
  };
  enum class Prepend { kAlways, kFirst, kNever };
  struct Step {
    Kind kind;
    std::shared_ptr<Regex> pattern;  // Split, ByteLevel (when use_regex)
    SplitBehavior behavior = SplitBehavior::kIsolated;
    bool invert = false;
    bool add_prefix_space = false;  // ByteLevel
    char32_t replacement = 0;       // Metaspace replacement / CharDelimiterSplit delimiter
    std::string replacement_utf8;
    Prepend prepend = Prepend::kAlways;
    bool split = true;               // Metaspace
    bool individual_digits = false;  // Digits
  };
  static Status Parse(const Json& j, const std::string& path, std::vector<Step>* steps);
  Status Apply(const Step& step, PreTokScratch& s, RegexScratch& rs) const;

  std::vector<Step> steps_;
};

}  // namespace petrel::tokenizer
