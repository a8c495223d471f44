// A minimal JSON reader for the two large members of tokenizer.json, model.vocab (an object of
// token -> id) and model.merges (an array of "a b" strings or ["a", "b"] pairs). They make up
// almost all of an 11 MB file; parsing them into an nlohmann DOM alone takes ~290 ms, while this
// reader hands out string_views into the text (copying only strings with escapes) in ~20 ms.
// Everything else in the file is small and goes through nlohmann (core/json_util.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "tokenizer/regex.h"

namespace petrel::tokenizer {

// Byte spans of the big members inside the tokenizer.json text (empty when absent).
struct BigMembers {
  Span vocab;   // the value of "model"."vocab" (an object)
  Span merges;  // the value of "model"."merges" (an array)
  bool has_vocab = false;
  bool has_merges = false;
};

// Finds the spans of model.vocab and model.merges without building a DOM. Errors give the
// byte offset of malformed JSON.
Result<BigMembers> LocateBigMembers(std::string_view json);

// Calls fn(token, id) for each member of the vocab object in `text` (exactly the span found
// above). Ids must be integers in [0, 2^31).
Status ScanVocab(std::string_view text, const std::function<Status(std::string_view, int64_t)>& fn);

// Calls fn(left, right) for each merge, in order. Accepts both "a b" strings (split at the first
// space, as `tokenizers` does for its legacy format) and ["a", "b"] arrays.
Status ScanMerges(std::string_view text,
                  const std::function<Status(std::string_view, std::string_view)>& fn);

}  // namespace petrel::tokenizer
