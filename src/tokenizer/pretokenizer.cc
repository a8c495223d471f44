// Pre-tokenizers. All steps work on Pieces: one text buffer plus (begin, end) ranges, so a
// pure split (Split, Digits, Punctuation, Whitespace...) only rewrites the range list and keeps
// the text, and only ByteLevel and Metaspace (which change characters) write a new buffer.
// Character-predicate patterns (Digits, Punctuation, WhitespaceSplit) make one match per
// character, like the `impl Pattern for Fn(char) -> bool` in `tokenizers`.
#include "tokenizer/pretokenizer.h"

#include <algorithm>

#include "tokenizer/byte_level.h"
#include "tokenizer/json_get.h"
#include "tokenizer/utf8.h"

namespace petrel::tokenizer {

namespace {

// The GPT-2 pattern ByteLevel uses when use_regex is true (pre_tokenizers/byte_level.rs).
constexpr std::string_view kByteLevelPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

using Events = std::vector<std::pair<Span, bool>>;

// Turns the matches of a pattern over a text of length n into a list that covers [0, n):
// (span, is_match) — `Pattern::find_matches` in tokenizer/pattern.rs.
void MatchesToEvents(const std::vector<Span>& matches, uint32_t n, Events* ev) {
  ev->clear();
  uint32_t prev = 0;
  for (const Span& m : matches) {
    if (prev != m.begin) ev->push_back({Span{prev, m.begin}, false});
    ev->push_back({m, true});
    prev = m.end;
  }
  if (prev != n) ev->push_back({Span{prev, n}, false});
  if (ev->empty()) ev->push_back({Span{0, 0}, false});
}

// Char-predicate patterns: every matching character is its own match.
template <typename Pred>
void CharMatches(std::string_view text, Pred pred, std::vector<Span>* out) {
  out->clear();
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    char32_t c = utf8::Next(text, i);
    if (pred(c)) out->push_back(Span{static_cast<uint32_t>(start), static_cast<uint32_t>(i)});
  }
}

// Applies a split behavior (NormalizedString::split in tokenizer/normalizer.rs). Output pairs
// are (span, remove).
void ApplyBehavior(const Events& ev, SplitBehavior behavior, Events* out) {
  out->clear();
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const auto& [span, m] : ev) out->push_back({span, false});
      return;
    case SplitBehavior::kRemoved:
      *out = ev;
      return;
    case SplitBehavior::kContiguous: {
      bool previous = false;
      for (const auto& [span, m] : ev) {
        if (m == previous && !out->empty()) {
          out->back().first.end = span.end;
        } else {
          out->push_back({span, false});
        }
        previous = m;
      }
      return;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous = false;
      for (const auto& [span, m] : ev) {
        if (m && !previous && !out->empty()) {
          out->back().first.end = span.end;
        } else {
          out->push_back({span, false});
        }
        previous = m;
      }
      return;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous = false;
      for (auto it = ev.rbegin(); it != ev.rend(); ++it) {
        if (it->second && !previous && !out->empty()) {
          out->back().first.begin = it->first.begin;
        } else {
          out->push_back({it->first, false});
        }
        previous = it->second;
      }
      std::reverse(out->begin(), out->end());
      return;
    }
  }
}

// Emits the kept, non-empty spans of `piece_text` (which starts at `base` in dst->text) as
// pieces. Only a piece starting at offset 0 inherits `origin`.
void EmitSpans(const Events& spans, uint32_t base, bool origin, Pieces* dst) {
  for (const auto& [span, remove] : spans) {
    if (remove || span.begin == span.end) continue;
    dst->list.push_back(Piece{base + span.begin, base + span.end, origin && span.begin == 0});
  }
}

Result<SplitBehavior> ParseBehavior(const Json& j, const std::string& path, SplitBehavior def) {
  PETREL_TRY(std::string b, GetStringOr(j, "behavior", path, ""));
  if (b.empty()) return def;
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  return FormatError(path, "unknown split behavior \"", b, "\"");
}

}  // namespace

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::FromJson(const Json& j,
                                                             const std::string& path) {
  auto p = std::unique_ptr<PreTokenizer>(new PreTokenizer());
  PETREL_TRY(Parse(j, path, &p->steps_));
  return p;
}

bool PreTokenizer::has_byte_level() const {
  for (const Step& s : steps_) {
    if (s.kind == Kind::kByteLevel) return true;
  }
  return false;
}

// Parses one pre-tokenizer object (defaults as in `tokenizers`' serde definitions);
// Sequence recurses.
Status PreTokenizer::Parse(const Json& j, const std::string& path, std::vector<Step>* steps) {
  PETREL_TRY(std::string type, GetType(j, path));
  Step st;
  if (type == "Sequence") {
    const Json* list = Find(j, "pretokenizers");
    if (list == nullptr || !list->is_array()) {
      return FormatError(path, "Sequence needs an array field \"pretokenizers\"");
    }
    for (size_t i = 0; i < list->size(); ++i) {
      PETREL_TRY(Parse((*list)[i], path + ".pretokenizers[" + std::to_string(i) + "]", steps));
    }
    return OkStatus();
  } else if (type == "Split") {
    st.kind = Kind::kSplit;
    PETREL_TRY(Regex re, GetPattern(j, "pattern", path));
    st.pattern = std::make_shared<Regex>(std::move(re));
    if (Find(j, "behavior") == nullptr) return FormatError(path, "missing field \"behavior\"");
    PETREL_TRY(st.behavior, ParseBehavior(j, path, SplitBehavior::kIsolated));
    PETREL_TRY(st.invert, GetBoolOr(j, "invert", path, false));
  } else if (type == "ByteLevel") {
    st.kind = Kind::kByteLevel;
    PETREL_TRY(st.add_prefix_space, GetBoolOr(j, "add_prefix_space", path, true));
    PETREL_TRY(bool use_regex, GetBoolOr(j, "use_regex", path, true));
    if (use_regex) {
      PETREL_TRY(Regex re, Regex::Compile(kByteLevelPattern, false));
      st.pattern = std::make_shared<Regex>(std::move(re));
    }
  } else if (type == "Metaspace") {
    st.kind = Kind::kMetaspace;
    PETREL_TRY(st.replacement, GetChar(j, "replacement", path, U'\u2581'));
    utf8::Append(st.replacement_utf8, st.replacement);
    PETREL_TRY(st.split, GetBoolOr(j, "split", path, true));
    // Older files carry add_prefix_space instead of prepend_scheme.
    PETREL_TRY(bool add_prefix_space, GetBoolOr(j, "add_prefix_space", path, true));
    PETREL_TRY(std::string scheme,
               GetStringOr(j, "prepend_scheme", path, add_prefix_space ? "always" : "never"));
    if (scheme == "always")
      st.prepend = Prepend::kAlways;
    else if (scheme == "first")
      st.prepend = Prepend::kFirst;
    else if (scheme == "never")
      st.prepend = Prepend::kNever;
    else
      return FormatError(path, "unknown prepend_scheme \"", scheme, "\"");
  } else if (type == "Digits") {
    st.kind = Kind::kDigits;
    PETREL_TRY(st.individual_digits, GetBoolOr(j, "individual_digits", path, false));
  } else if (type == "Punctuation") {
    st.kind = Kind::kPunctuation;
    PETREL_TRY(st.behavior, ParseBehavior(j, path, SplitBehavior::kIsolated));
  } else if (type == "Whitespace") {
    st.kind = Kind::kWhitespace;
  } else if (type == "WhitespaceSplit") {
    st.kind = Kind::kWhitespaceSplit;
  } else if (type == "BertPreTokenizer") {
    st.kind = Kind::kBert;
  } else if (type == "CharDelimiterSplit") {
    st.kind = Kind::kCharDelimiter;
    PETREL_TRY(st.replacement, GetChar(j, "delimiter", path, 0));
    if (st.replacement == 0) return FormatError(path, "missing field \"delimiter\"");
  } else {
    return Unsupported("tokenizer.json: ", path, ": pre-tokenizer type \"", type,
                       "\" is not supported (supported: Split, ByteLevel, Metaspace, Digits, "
                       "Punctuation, Whitespace, WhitespaceSplit, BertPreTokenizer, "
                       "CharDelimiterSplit, Sequence)");
  }
  steps->push_back(std::move(st));
  return OkStatus();
}

// Seeds s.a with the whole text as one piece, then applies the steps in order.
Status PreTokenizer::Run(std::string_view text, bool origin, PreTokScratch& s,
                         RegexScratch& rs) const {
  s.a.text.assign(text);
  s.a.list.clear();
  if (!text.empty()) {
    s.a.list.push_back(Piece{0, static_cast<uint32_t>(text.size()), origin});
  }
  for (const Step& step : steps_) {
    PETREL_TRY(Apply(step, s, rs));
  }
  return OkStatus();
}

// One step: reads the pieces in s.a, writes the new pieces to s.b, then swaps them.
Status PreTokenizer::Apply(const Step& step, PreTokScratch& s, RegexScratch& rs) const {
  Pieces& src = s.a;
  Pieces& dst = s.b;
  dst.list.clear();
  dst.text.clear();
  const bool transforms = step.kind == Kind::kByteLevel || step.kind == Kind::kMetaspace;
  if (!transforms) dst.text.swap(src.text);  // pure splits keep the text and only cut it
  const std::string& text = transforms ? src.text : dst.text;

  for (const Piece& piece : src.list) {
    std::string_view pt(text.data() + piece.begin, piece.end - piece.begin);
    switch (step.kind) {
      case Kind::kSplit: {
        s.matches.clear();
        PETREL_TRY(step.pattern->FindAll(pt, rs, &s.matches));
        MatchesToEvents(s.matches, static_cast<uint32_t>(pt.size()), &s.events);
        if (step.invert) {
          for (auto& e : s.events) e.second = !e.second;
        }
        ApplyBehavior(s.events, step.behavior, &s.merged);
        EmitSpans(s.merged, piece.begin, piece.origin, &dst);
        break;
      }
      case Kind::kDigits:
      case Kind::kPunctuation:
      case Kind::kWhitespaceSplit:
      case Kind::kCharDelimiter: {
        SplitBehavior behavior = step.behavior;
        if (step.kind == Kind::kDigits) {
          CharMatches(pt, utf8::IsNumeric, &s.matches);
          behavior = step.individual_digits ? SplitBehavior::kIsolated : SplitBehavior::kContiguous;
        } else if (step.kind == Kind::kPunctuation) {
          CharMatches(pt, utf8::IsPunctuation, &s.matches);
        } else if (step.kind == Kind::kWhitespaceSplit) {
          CharMatches(pt, utf8::IsWhitespace, &s.matches);
          behavior = SplitBehavior::kRemoved;
        } else {
          const char32_t d = step.replacement;
          CharMatches(
              pt, [d](char32_t c) { return c == d; }, &s.matches);
          behavior = SplitBehavior::kRemoved;
        }
        MatchesToEvents(s.matches, static_cast<uint32_t>(pt.size()), &s.events);
        ApplyBehavior(s.events, behavior, &s.merged);
        EmitSpans(s.merged, piece.begin, piece.origin, &dst);
        break;
      }
      case Kind::kWhitespace:
      case Kind::kBert: {
        // Whitespace: keep the matches of \w+|[^\w\s]+ (runs of word characters, runs of other
        // non-space characters). Bert: whitespace-separated, then each punctuation char alone.
        s.matches.clear();
        size_t i = 0;
        int run_class = -1;  // 0 word, 1 other, 2 punctuation (Bert)
        uint32_t run_start = 0;
        while (i < pt.size()) {
          const size_t start = i;
          char32_t c = utf8::Next(pt, i);
          int cls;
          if (utf8::IsWhitespace(c))
            cls = -1;
          else if (step.kind == Kind::kBert)
            cls = utf8::IsPunctuation(c) ? 2 : 0;
          else
            cls = utf8::IsWordChar(c) ? 0 : 1;
          if (cls != run_class || cls == 2) {
            if (run_class >= 0) s.matches.push_back(Span{run_start, uint32_t(start)});
            run_start = static_cast<uint32_t>(start);
          }
          run_class = cls;
        }
        if (run_class >= 0) s.matches.push_back(Span{run_start, uint32_t(pt.size())});
        for (const Span& m : s.matches) {
          dst.list.push_back(
              Piece{piece.begin + m.begin, piece.begin + m.end, piece.origin && m.begin == 0});
        }
        break;
      }
      case Kind::kByteLevel: {
        // Optional prefix space, optional GPT-2 regex split, then bytes -> printable chars.
        std::string& tmp = s.tmp;
        tmp.clear();
        if (step.add_prefix_space && (pt.empty() || pt[0] != ' ')) tmp.push_back(' ');
        tmp.append(pt);
        s.matches.clear();
        if (step.pattern) {
          PETREL_TRY(step.pattern->FindAll(tmp, rs, &s.matches));
        } else {
          s.matches.push_back(Span{0, static_cast<uint32_t>(tmp.size())});
        }
        for (const Span& m : s.matches) {
          if (m.begin == m.end) continue;
          const auto begin = static_cast<uint32_t>(dst.text.size());
          AppendByteLevel(std::string_view(tmp).substr(m.begin, m.end - m.begin), &dst.text);
          dst.list.push_back(
              Piece{begin, static_cast<uint32_t>(dst.text.size()), piece.origin && m.begin == 0});
        }
        break;
      }
      case Kind::kMetaspace: {
        // Spaces become the replacement char; prepend per scheme; split before each one.
        std::string& tmp = s.tmp;
        tmp.clear();
        const std::string& rep = step.replacement_utf8;
        const bool starts_with_rep =
            pt.substr(0, rep.size()) == rep || (!pt.empty() && pt[0] == ' ');
        if (!starts_with_rep && (step.prepend == Prepend::kAlways ||
                                 (step.prepend == Prepend::kFirst && piece.origin))) {
          tmp.append(rep);
        }
        for (char c : pt) {
          if (c == ' ')
            tmp.append(rep);
          else
            tmp.push_back(c);
        }
        const auto base = static_cast<uint32_t>(dst.text.size());
        dst.text.append(tmp);
        if (!step.split) {
          if (!tmp.empty()) {
            dst.list.push_back(Piece{base, static_cast<uint32_t>(dst.text.size()), piece.origin});
          }
          break;
        }
        const char32_t r = step.replacement;
        CharMatches(
            tmp, [r](char32_t c) { return c == r; }, &s.matches);
        MatchesToEvents(s.matches, static_cast<uint32_t>(tmp.size()), &s.events);
        ApplyBehavior(s.events, SplitBehavior::kMergedWithNext, &s.merged);
        EmitSpans(s.merged, base, piece.origin, &dst);
        break;
      }
    }
  }
  std::swap(s.a, s.b);
  return OkStatus();
}

}  // namespace petrel::tokenizer
