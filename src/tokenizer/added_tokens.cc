// Added-token matching. `tokenizers` builds a double-array Aho-Corasick automaton with
// MatchKind::LeftmostLongest; real files have tens to a few hundred added tokens that nearly
// all start with '<' or '[', so a first-byte bucket scan finds the same matches with less code:
// at each position only the tokens starting with that byte are compared, longest first.
#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace petrel::tokenizer {

void AddedTokenMatcher::Build(std::vector<std::pair<std::string, const AddedToken*>> patterns) {
  patterns_.clear();
  for (auto& p : patterns) {
    if (!p.first.empty()) patterns_.push_back(std::move(p));
  }
  // Longest first, so the first hit at a position is the longest one (LeftmostLongest).
  std::stable_sort(patterns_.begin(), patterns_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (auto& v : by_first_byte_) v.clear();
  for (uint32_t i = 0; i < patterns_.size(); ++i) {
    by_first_byte_[static_cast<uint8_t>(patterns_[i].first[0])].push_back(i);
  }
}

// AddedVocabulary::find_matches: scan for the leftmost match, then apply the token's flags.
// Discarded matches (skipped specials, single_word failures) consume their text exactly as the
// automaton iterator does, so a shorter token hidden inside them is not found either.
void AddedTokenMatcher::Split(std::string_view text, bool skip_special,
                              std::vector<Segment>* out) const {
  const auto n = static_cast<uint32_t>(text.size());
  if (n == 0) return;
  uint32_t start_offset = 0;  // end of the last emitted segment
  uint32_t pos = 0;           // where the next search starts
  while (pos < n) {
    // Leftmost position with any match; longest pattern there.
    const std::pair<std::string, const AddedToken*>* hit = nullptr;
    uint32_t at = pos;
    for (; at < n && hit == nullptr; ++at) {
      const auto& cands = by_first_byte_[static_cast<uint8_t>(text[at])];
      for (uint32_t idx : cands) {
        const auto& p = patterns_[idx];
        if (text.compare(at, p.first.size(), p.first) == 0) {
          hit = &p;
          break;
        }
      }
    }
    if (hit == nullptr) break;  // no more tokens: the rest is plain text
    // `at` went one past the hit in the loop above.
    --at;
    uint32_t start = at;
    uint32_t stop = at + static_cast<uint32_t>(hit->first.size());
    pos = stop;
    const AddedToken& tok = *hit->second;
    if (skip_special && tok.special) continue;
    if (tok.single_word) {
      // Discard when glued to a word character on either side (regex \w in Unicode mode).
      bool start_space = true, stop_space = true;
      if (start > 0) {
        size_t k = start;
        start_space = !utf8::IsWordChar(utf8::Prev(text, k));
      }
      if (stop < n) {
        size_t k = stop;
        stop_space = !utf8::IsWordChar(utf8::Next(text, k));
      }
      if (!start_space || !stop_space) continue;
    }
    if (tok.lstrip) {
      // Swallow the whitespace before the token, but not into the previous segment.
      size_t k = start;
      while (k > 0) {
        size_t j = k;
        if (!utf8::IsWhitespace(utf8::Prev(text, j))) break;
        k = j;
      }
      start = std::max(static_cast<uint32_t>(k), start_offset);
    }
    if (tok.rstrip) {
      size_t k = stop;
      while (k < n) {
        size_t j = k;
        if (!utf8::IsWhitespace(utf8::Next(text, j))) break;
        k = j;
      }
      stop = static_cast<uint32_t>(k);
      pos = stop;
    }
    // The text before the token (if any), then the token itself.
    if (start_offset < start) out->push_back(Segment{start_offset, start, -1});
    out->push_back(Segment{start, stop, tok.id});
    start_offset = stop;
  }
  if (start_offset < n) out->push_back(Segment{start_offset, n, -1});
}

}  // namespace petrel::tokenizer
