// Added tokens ("added_tokens" in tokenizer.json): strings matched in the input before the
// model runs, so `<|im_start|>` is one id rather than seven. Matching follows `tokenizers`
// (tokenizer/added_vocabulary.rs): leftmost-longest over all tokens; single_word, lstrip and
// rstrip adjust or discard a match; tokens with normalized=false match the raw input, those
// with normalized=true match the normalized text. With `skip_special`, special tokens are not
// matched at all, so their text is tokenized as plain text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace petrel::tokenizer {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

// A stretch of text: [begin, end) with `id` >= 0 when it is an added token, -1 for plain text.
struct Segment {
  uint32_t begin = 0;
  uint32_t end = 0;
  int32_t id = -1;
};

// One of the two matching sets (raw or normalized).
class AddedTokenMatcher {
 public:
  // `patterns` are (text to match, token); empty patterns are ignored.
  void Build(std::vector<std::pair<std::string, const AddedToken*>> patterns);
  bool empty() const { return patterns_.empty(); }

  // Splits `text` into segments (appended to *out). Plain-text segments are never empty;
  // an empty `text` yields nothing.
  void Split(std::string_view text, bool skip_special, std::vector<Segment>* out) const;

 private:
  std::vector<std::pair<std::string, const AddedToken*>> patterns_;  // sorted longest first
  std::vector<uint32_t> by_first_byte_[256];  // indices into patterns_, longest first
};

}  // namespace petrel::tokenizer
