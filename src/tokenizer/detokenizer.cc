// IncrementalDetokenizer: streaming decode with the prefix/read-offset scheme of Hugging Face
// text-generation-inference. Each Push decodes a small window twice — the ids already returned
// ([prefix, read)) and the window including the new ids ([prefix, end)) — and returns the
// difference once it is stable. Decoding from `prefix` rather than from the new id alone keeps
// context-dependent rules (a decoder stripping the first token's leading space, Metaspace
// dropping the first "▁") identical in both decodes, so they cancel out.
#include <string_view>

#include "tokenizer/tokenizer.h"

namespace petrel::tokenizer {

namespace {

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// With clean_up_tokenization_spaces, the end of the text may still change when more text
// arrives (" n" may become "n't"): hold back while the text ends with a proper prefix of one
// of the clean-up rules' patterns.
bool MayStillBeCleanedUp(std::string_view s) {
  static constexpr std::string_view kPatterns[] = {" .",   " ?",  " !",  " ,",   " ' ",
                                                   " n't", " 'm", " 's", " 've", " 're"};
  for (std::string_view p : kPatterns) {
    for (size_t len = 1; len < p.size(); ++len) {
      if (EndsWith(s, p.substr(0, len))) return true;
    }
  }
  return false;
}

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tok, bool skip_special_tokens)
    : tok_(tok), skip_special_(skip_special_tokens) {}

std::string IncrementalDetokenizer::DecodeRange(size_t from, size_t to) const {
  auto r = tok_.Decode(std::span<const int32_t>(ids_.data() + from, to - from), skip_special_);
  return r.ok() ? std::move(r).value() : std::string();
}

std::string IncrementalDetokenizer::Push(int32_t id) {
  if (id < 0 || id >= tok_.vocab_size()) return "";
  ids_.push_back(id);
  const std::string prefix_text = DecodeRange(prefix_offset_, read_offset_);
  const std::string new_text = DecodeRange(prefix_offset_, ids_.size());
  // Hold back while the newest character is incomplete (decoded as U+FFFD) or while the
  // clean-up rules could still rewrite the end.
  if (new_text.size() <= prefix_text.size() ||
      new_text.compare(0, prefix_text.size(), prefix_text) != 0 ||
      EndsWith(new_text, kReplacementChar) ||
      (tok_.clean_up_tokenization_spaces() && MayStillBeCleanedUp(new_text))) {
    return "";
  }
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  return new_text.substr(prefix_text.size());
}

std::string IncrementalDetokenizer::Flush() {
  if (read_offset_ == ids_.size()) return "";
  const std::string prefix_text = DecodeRange(prefix_offset_, read_offset_);
  const std::string new_text = DecodeRange(prefix_offset_, ids_.size());
  prefix_offset_ = read_offset_ = ids_.size();
  if (new_text.compare(0, prefix_text.size(), prefix_text) != 0) return new_text;
  return new_text.substr(prefix_text.size());
}

}  // namespace petrel::tokenizer
