// PCRE2 (with JIT) behind a small value type. tokenizer.json patterns are written for Oniguruma
// (what `tokenizers` uses); the constructs real tokenizers use (\p{L}, \p{N}, lookahead,
// (?i:...) groups, \s with Unicode meaning) mean the same in PCRE2 with UTF + UCP.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

// Opaque PCRE2 types, so this header does not pull in pcre2.h.
struct pcre2_real_code_8;
struct pcre2_real_match_data_8;
struct pcre2_real_match_context_8;
struct pcre2_real_jit_stack_8;

namespace petrel::tokenizer {

// A byte range [begin, end) inside some string.
struct Span {
  uint32_t begin = 0;
  uint32_t end = 0;
};

// Per-thread matching state (match data, JIT stack). Not thread-safe; one per Encode call in
// flight (the Tokenizer keeps a pool). Reusable with every Regex.
class RegexScratch {
 public:
  RegexScratch();
  ~RegexScratch();
  RegexScratch(const RegexScratch&) = delete;
  RegexScratch& operator=(const RegexScratch&) = delete;

 private:
  friend class Regex;
  pcre2_real_match_data_8* match_data_ = nullptr;
  pcre2_real_match_context_8* match_context_ = nullptr;
  pcre2_real_jit_stack_8* jit_stack_ = nullptr;
};

// A compiled, immutable pattern; safe to share between threads.
class Regex {
 public:
  // Compiles `pattern` (UTF, UCP, JIT). With `literal`, the pattern is matched as plain text
  // (the {"String": ...} form of tokenizer.json patterns). Errors name the pattern and offset.
  static Result<Regex> Compile(std::string_view pattern, bool literal);

  // Appends every non-overlapping match of the pattern in `text`, left to right, to `out`
  // (Oniguruma find_iter semantics; an empty match advances one character). `text` must be
  // valid UTF-8 (checked once by the caller). Fails only when PCRE2 reports a match error
  // (e.g. JIT stack exhausted on pathological input).
  Status FindAll(std::string_view text, RegexScratch& scratch, std::vector<Span>* out) const;

  const std::string& pattern() const { return pattern_; }
  // True for {"String": ...} patterns: matching is plain substring search (no PCRE2 call).
  bool literal() const { return literal_; }

 private:
  struct CodeDeleter {
    void operator()(pcre2_real_code_8* code) const;
  };
  std::shared_ptr<pcre2_real_code_8> code_;
  std::string pattern_;
  bool literal_ = false;
};

}  // namespace petrel::tokenizer
