// A small recursive-descent JSON reader. It validates what it reads (strings, escapes,
// surrogate pairs, integers, nesting) but builds nothing: callers get string_views and ints
// through callbacks. It is only used on tokenizer.json; everything it rejects, nlohmann would
// reject too, and the error carries the byte offset.
#include "tokenizer/json_scan.h"

#include <charconv>

#include "tokenizer/utf8.h"

namespace petrel::tokenizer {

namespace {

// Cursor over JSON text. Errors carry the absolute byte offset (base_ + pos_).
class Reader {
 public:
  Reader(std::string_view text, size_t base) : s_(text), base_(base) {}

  size_t pos() const { return pos_; }
  bool AtEnd() {
    SkipWs();
    return pos_ >= s_.size();
  }
  char Peek() {
    SkipWs();
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }
  Status Expect(char c) {
    if (Peek() != c) return Bad(std::string("expected '") + c + "'");
    ++pos_;
    return OkStatus();
  }
  // Consumes `c` if it is next; returns whether it did.
  bool Eat(char c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }

  // Reads a string. Without escapes the result views the input; otherwise it is decoded into
  // `buf` and views that.
  Result<std::string_view> String(std::string* buf) {
    PETREL_TRY(Expect('"'));
    const size_t start = pos_;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '"') {
        std::string_view out = s_.substr(start, pos_ - start);
        ++pos_;
        return out;
      }
      if (c == '\\') break;
      ++pos_;
    }
    // Slow path with escapes.
    buf->assign(s_.data() + start, pos_ - start);
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return std::string_view(*buf);
      if (c != '\\') {
        buf->push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) break;
      char e = s_[pos_++];
      switch (e) {
        case '"':
          buf->push_back('"');
          break;
        case '\\':
          buf->push_back('\\');
          break;
        case '/':
          buf->push_back('/');
          break;
        case 'b':
          buf->push_back('\b');
          break;
        case 'f':
          buf->push_back('\f');
          break;
        case 'n':
          buf->push_back('\n');
          break;
        case 'r':
          buf->push_back('\r');
          break;
        case 't':
          buf->push_back('\t');
          break;
        case 'u': {
          PETREL_TRY(uint32_t cp, Hex4());
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // surrogate pair
            if (pos_ + 1 >= s_.size() || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') {
              return Bad("unpaired surrogate in \\u escape");
            }
            pos_ += 2;
            PETREL_TRY(uint32_t lo, Hex4());
            if (lo < 0xDC00 || lo > 0xDFFF) return Bad("bad low surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return Bad("unpaired surrogate in \\u escape");
          }
          utf8::Append(*buf, cp);
          break;
        }
        default:
          return Bad("bad escape in string");
      }
    }
    return Bad("unterminated string");
  }

  Result<int64_t> Integer() {
    SkipWs();
    int64_t v = 0;
    auto r = std::from_chars(s_.data() + pos_, s_.data() + s_.size(), v);
    if (r.ec != std::errc()) return Bad("expected an integer");
    pos_ = r.ptr - s_.data();
    if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E')) {
      return Bad("expected an integer, got a fraction");
    }
    return v;
  }

  // Skips any JSON value (used to walk past members we do not need here).
  Status SkipValue(int depth = 0) {
    if (depth > 512) return Bad("nesting too deep");
    char c = Peek();
    std::string scratch;
    switch (c) {
      case '"':
        return String(&scratch).ok() ? OkStatus() : Bad("bad string");
      case '{': {
        ++pos_;
        if (Eat('}')) return OkStatus();
        do {
          PETREL_TRY(String(&scratch));
          PETREL_TRY(Expect(':'));
          PETREL_TRY(SkipValue(depth + 1));
        } while (Eat(','));
        return Expect('}');
      }
      case '[': {
        ++pos_;
        if (Eat(']')) return OkStatus();
        do {
          PETREL_TRY(SkipValue(depth + 1));
        } while (Eat(','));
        return Expect(']');
      }
      default: {
        // Literal or number: consume the run of literal characters.
        const size_t start = pos_;
        while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) ||
                                    s_[pos_] == '-' || s_[pos_] == '+' || s_[pos_] == '.')) {
          ++pos_;
        }
        if (pos_ == start) return Bad("unexpected character");
        return OkStatus();
      }
    }
  }

  Error Bad(const std::string& what) const {
    return InvalidFormat("tokenizer.json: invalid JSON at byte ", base_ + pos_, ": ", what);
  }

 private:
  void SkipWs() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) {
      ++pos_;
    }
  }
  Result<uint32_t> Hex4() {
    if (pos_ + 4 > s_.size()) return Bad("short \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= c - '0';
      else if (c >= 'a' && c <= 'f')
        v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        v |= c - 'A' + 10;
      else
        return Bad("bad hex digit in \\u escape");
    }
    return v;
  }

  std::string_view s_;
  size_t base_;
  size_t pos_ = 0;
};

}  // namespace

// Walks the top-level object; inside "model" records where "vocab" and "merges" start and end.
// Every other value is skipped (validated, not stored).
Result<BigMembers> LocateBigMembers(std::string_view json) {
  BigMembers out;
  Reader r(json, 0);
  std::string buf;
  PETREL_TRY(r.Expect('{'));
  if (r.Eat('}')) return out;
  do {
    PETREL_TRY(std::string_view key, r.String(&buf));
    PETREL_TRY(r.Expect(':'));
    if (key != "model" || r.Peek() != '{') {
      PETREL_TRY(r.SkipValue());
      continue;
    }
    // Inside "model": remember where vocab and merges start and end.
    PETREL_TRY(r.Expect('{'));
    if (r.Eat('}')) continue;
    do {
      PETREL_TRY(std::string_view mkey, r.String(&buf));
      const bool is_vocab = mkey == "vocab", is_merges = mkey == "merges";
      PETREL_TRY(r.Expect(':'));
      r.Peek();  // skip whitespace so the span starts at the value
      const size_t start = r.pos();
      PETREL_TRY(r.SkipValue());
      Span span{static_cast<uint32_t>(start), static_cast<uint32_t>(r.pos())};
      if (is_vocab) {
        out.vocab = span;
        out.has_vocab = true;
      } else if (is_merges) {
        out.merges = span;
        out.has_merges = true;
      }
    } while (r.Eat(','));
    PETREL_TRY(r.Expect('}'));
  } while (r.Eat(','));
  PETREL_TRY(r.Expect('}'));
  if (!r.AtEnd()) return r.Bad("trailing characters after the top-level object");
  return out;
}

// {"token": id, ...}: ids must be plain integers (no fractions or exponents).
Status ScanVocab(std::string_view text,
                 const std::function<Status(std::string_view, int64_t)>& fn) {
  Reader r(text, 0);
  std::string buf;
  if (r.Peek() != '{') return InvalidFormat("tokenizer.json: model.vocab must be an object");
  (void)r.Expect('{');
  if (r.Eat('}')) return OkStatus();
  do {
    PETREL_TRY(std::string_view key, r.String(&buf));
    PETREL_TRY(r.Expect(':'));
    if (r.Peek() == '-' || (r.Peek() >= '0' && r.Peek() <= '9')) {
      PETREL_TRY(int64_t id, r.Integer());
      PETREL_TRY(fn(key, id));
    } else {
      return InvalidFormat("tokenizer.json: model.vocab[\"", key, "\"] must be an integer id");
    }
  } while (r.Eat(','));
  return r.Expect('}');
}

// ["a b", ...] (tokenizers < 0.20) or [["a", "b"], ...] (newer files, which allow spaces in
// tokens).
Status ScanMerges(std::string_view text,
                  const std::function<Status(std::string_view, std::string_view)>& fn) {
  Reader r(text, 0);
  std::string buf, buf2;
  if (r.Peek() != '[') return InvalidFormat("tokenizer.json: model.merges must be an array");
  (void)r.Expect('[');
  if (r.Eat(']')) return OkStatus();
  size_t index = 0;
  do {
    if (r.Peek() == '"') {
      PETREL_TRY(std::string_view line, r.String(&buf));
      size_t sp = line.find(' ');
      if (sp == std::string_view::npos) {
        return InvalidFormat("tokenizer.json: model.merges[", index, "] = \"", line,
                             "\" is not of the form \"left right\"");
      }
      PETREL_TRY(fn(line.substr(0, sp), line.substr(sp + 1)));
    } else if (r.Peek() == '[') {
      (void)r.Expect('[');
      PETREL_TRY(std::string_view a, r.String(&buf));
      PETREL_TRY(r.Expect(','));
      PETREL_TRY(std::string_view b, r.String(&buf2));
      if (!r.Eat(']')) {
        return InvalidFormat("tokenizer.json: model.merges[", index, "] must have 2 strings");
      }
      PETREL_TRY(fn(a, b));
    } else {
      return InvalidFormat("tokenizer.json: model.merges[", index,
                           "] must be a string or a pair of strings");
    }
    ++index;
  } while (r.Eat(','));
  return r.Expect(']');
}

}  // namespace petrel::tokenizer
