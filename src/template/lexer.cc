// Jinja2 lexer (see lexer.h). The structure follows Jinja2's own regex-driven lexer: the "root"
// state searches for the next tag opener, a tag state reads expression tokens until the matching
// closer. Whitespace handling (strip signs, trim_blocks, lstrip_blocks) is done when the data
// before an opener or the text after a closer is cut, exactly where Jinja2 does it.
#include "template/lexer.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "template/utf8.h"
#include "template/value.h"

namespace petrel::jinja {

namespace {

bool IsWs(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
bool IsDigitC(char c) { return c >= '0' && c <= '9'; }
bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || IsDigitC(c); }

// Python's unicode-escape decoding of a Jinja string literal body.
std::string DecodeStringLiteral(std::string_view body) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) {
      out.push_back(c);
      continue;
    }
    const char e = body[++i];
    auto hex = [&](size_t n) -> bool {
      if (i + n >= body.size()) return false;  // needs body[i+1 .. i+n]
      uint32_t v = 0;
      for (size_t k = 1; k <= n; ++k) {
        const char h = body[i + k];
        v <<= 4;
        if (h >= '0' && h <= '9')
          v |= h - '0';
        else if (h >= 'a' && h <= 'f')
          v |= h - 'a' + 10;
        else if (h >= 'A' && h <= 'F')
          v |= h - 'A' + 10;
        else
          return false;
      }
      if (v > 0x10FFFF) return false;
      utf8::Append(out, v);
      i += n;
      return true;
    };
    switch (e) {
      case '\n':
        break;  // line continuation
      case '\\':
        out.push_back('\\');
        break;
      case '\'':
        out.push_back('\'');
        break;
      case '"':
        out.push_back('"');
        break;
      case 'a':
        out.push_back('\a');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'v':
        out.push_back('\v');
        break;
      case 'x':
        if (!hex(2)) Throw("invalid \\x escape in string literal");
        break;
      case 'u':
        if (!hex(4)) Throw("invalid \\u escape in string literal");
        break;
      case 'U':
        if (!hex(8)) Throw("invalid \\U escape in string literal");
        break;
      default:
        if (e >= '0' && e <= '7') {  // up to three octal digits
          uint32_t v = e - '0';
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7';
               ++k) {
            v = v * 8 + (body[++i] - '0');
          }
          utf8::Append(out, v);
        } else {  // unknown escapes are kept verbatim, as Python does
          out.push_back('\\');
          out.push_back(e);
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string_view raw) {
    // Normalize \r\n and \r to \n, then drop one trailing newline (keep_trailing_newline=False).
    src_.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\r') {
        src_.push_back('\n');
        if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
      } else {
        src_.push_back(raw[i]);
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  // Root state: alternate data and tags until the end of the source.
  std::vector<Token> Run() {
    size_t pos = 0;
    bool line_starting = true;  // previous token ended with a newline (or start of template)
    while (pos < src_.size()) {
      // Find the next opener: {{, {% or {#.
      size_t open = pos;
      while (true) {
        open = src_.find('{', open);
        if (open == std::string::npos || open + 1 >= src_.size()) {
          open = std::string::npos;
          break;
        }
        const char n = src_[open + 1];
        if (n == '{' || n == '%' || n == '#') break;
        ++open;
      }
      if (open == std::string::npos) {
        EmitData(std::string_view(src_).substr(pos), pos);
        break;
      }
      const char kind = src_[open + 1];
      const char sign = open + 2 < src_.size() ? src_[open + 2] : '\0';
      std::string_view text = std::string_view(src_).substr(pos, open - pos);
      if (sign == '-') {
        while (!text.empty() && IsWs(text.back())) text.remove_suffix(1);
      } else if (sign != '+' && kind != '{') {
        // lstrip_blocks: drop spaces/tabs between the start of the line and a block/comment tag.
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
        if ((l_pos > 0 || line_starting) && l_pos < text.size() &&
            std::all_of(text.begin() + l_pos, text.end(), IsWs)) {
          text = text.substr(0, l_pos);
        }
      }
      EmitData(text, pos);
      size_t inner = open + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      if (kind == '#') {
        pos = LexComment(open, inner);
      } else if (kind == '%' && IsRawTag(inner)) {
        pos = LexRaw(open, inner);
      } else {
        pos = LexTag(open, inner, kind == '%');
      }
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    Push(TokenKind::kEof, "", src_.size());
    return std::move(tokens_);
  }

 private:
  SourcePos PosOf(size_t offset) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const size_t line = static_cast<size_t>(it - line_starts_.begin());
    return SourcePos{static_cast<int>(line), static_cast<int>(offset - line_starts_[line - 1] + 1)};
  }

  [[noreturn]] void Fail(const std::string& msg, size_t offset) const {
    const SourcePos p = PosOf(offset);
    throw TemplateException{msg, p.line, p.column, TemplateException::Kind::kSyntax};
  }

  Token& Push(TokenKind kind, std::string text, size_t offset) {
    tokens_.push_back(Token{kind, std::move(text), 0, 0, PosOf(offset)});
    return tokens_.back();
  }

  void EmitData(std::string_view text, size_t offset) {
    if (!text.empty()) Push(TokenKind::kData, std::string(text), offset);
  }

  // After a block/comment closer: "-" strips all following whitespace, "+" keeps it, and
  // trim_blocks removes a single newline.
  size_t AfterClose(size_t after, char sign, bool trim_blocks) const {
    if (sign == '-') {
      while (after < src_.size() && IsWs(src_[after])) ++after;
    } else if (sign != '+' && trim_blocks && after < src_.size() && src_[after] == '\n') {
      ++after;
    }
    return after;
  }

  // {# ... #}: produces no token; whitespace control as for block tags.
  size_t LexComment(size_t open, size_t inner) {
    const size_t close = src_.find("#}", inner);
    if (close == std::string::npos) Fail("missing end of comment tag", open);
    const char sign = close > inner ? src_[close - 1] : '\0';
    return AfterClose(close + 2, sign == '-' || sign == '+' ? sign : '\0', true);
  }

  // Whether the block tag starting at `inner` is exactly `raw` (with optional spaces/sign).
  bool IsRawTag(size_t inner) const {
    size_t p = inner;
    while (p < src_.size() && IsWs(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    if (p < src_.size() && IsNameChar(src_[p])) return false;
    while (p < src_.size() && IsWs(src_[p])) ++p;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    return src_.compare(p, 2, "%}") == 0;
  }

  // {% raw %} ... {% endraw %}: the body is data, with the end tag's whitespace control.
  size_t LexRaw(size_t open, size_t inner) {
    size_t p = src_.find("%}", inner);
    const char begin_sign = src_[p - 1];
    size_t body = p + 2;
    if (begin_sign == '-') {
      while (body < src_.size() && IsWs(src_[body])) ++body;
    }
    // Find {%[-+]? endraw [-+]?%}.
    size_t search = body;
    while (true) {
      const size_t tag = src_.find("{%", search);
      if (tag == std::string::npos) Fail("missing end of raw directive", open);
      size_t q = tag + 2;
      const char s1 = src_[q] == '-' || src_[q] == '+' ? src_[q++] : '\0';
      while (q < src_.size() && IsWs(src_[q])) ++q;
      if (src_.compare(q, 6, "endraw") != 0) {
        search = tag + 2;
        continue;
      }
      q += 6;
      while (q < src_.size() && IsWs(src_[q])) ++q;
      const char s2 = (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) ? src_[q++] : '\0';
      if (src_.compare(q, 2, "%}") != 0) {
        search = tag + 2;
        continue;
      }
      std::string_view text = std::string_view(src_).substr(body, tag - body);
      if (s1 == '-') {
        while (!text.empty() && IsWs(text.back())) text.remove_suffix(1);
      } else if (s1 != '+') {
        const size_t nl = text.rfind('\n');
        if (nl != std::string_view::npos &&
            std::all_of(text.begin() + nl + 1, text.end(),
                        [](char c) { return c == ' ' || c == '\t'; })) {
          text = text.substr(0, nl + 1);
        }
      }
      EmitData(text, body);
      return AfterClose(q + 2, s2, true);
    }
  }

  // Reads expression tokens inside {{ }} or {% %}.
  size_t LexTag(size_t open, size_t p, bool is_block) {
    Push(is_block ? TokenKind::kBlockBegin : TokenKind::kVarBegin, "", open);
    int depth = 0;  // open ( [ { : closers are not recognized inside them, as in Jinja2
    const char* closer = is_block ? "%}" : "}}";
    while (true) {
      while (p < src_.size() && IsWs(src_[p])) ++p;
      if (p >= src_.size())
        Fail(is_block ? "unexpected end of template inside a {% tag"
                      : "unexpected end of template inside {{ }}",
             open);
      if (depth == 0) {
        if (src_[p] == '-' && src_.compare(p + 1, 2, closer) == 0) {
          Push(is_block ? TokenKind::kBlockEnd : TokenKind::kVarEnd, "", p);
          return AfterClose(p + 3, '-', is_block);
        }
        if (src_[p] == '+' && src_.compare(p + 1, 2, closer) == 0 && is_block) {
          Push(TokenKind::kBlockEnd, "", p);
          return p + 3;
        }
        if (src_.compare(p, 2, closer) == 0) {
          Push(is_block ? TokenKind::kBlockEnd : TokenKind::kVarEnd, "", p);
          return AfterClose(p + 2, '\0', is_block);
        }
      }
      const char c = src_[p];
      if (IsDigitC(c)) {
        p = LexNumber(p);
      } else if (IsNameStart(c)) {
        size_t e = p;
        while (e < src_.size() && IsNameChar(src_[e])) ++e;
        Push(TokenKind::kName, src_.substr(p, e - p), p);
        p = e;
      } else if (c == '\'' || c == '"') {
        size_t e = p + 1;
        while (e < src_.size() && src_[e] != c) e += (src_[e] == '\\') ? 2 : 1;
        if (e >= src_.size()) Fail("unterminated string literal", p);
        try {
          Push(TokenKind::kString,
               DecodeStringLiteral(std::string_view(src_).substr(p + 1, e - p - 1)), p);
        } catch (TemplateException& ex) {
          Fail(ex.message, p);
        }
        p = e + 1;
      } else {
        static constexpr const char* kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
        std::string op;
        for (const char* t : kTwo) {
          if (src_.compare(p, 2, t) == 0) op = t;
        }
        if (op.empty()) {
          if (std::string_view("+-*/%~[](){}<>=.,:|;").find(c) == std::string_view::npos) {
            Fail(std::string("unexpected character '") + c + "'", p);
          }
          op = std::string(1, c);
        }
        if (op == "(" || op == "[" || op == "{") ++depth;
        if (op == ")" || op == "]" || op == "}") {
          if (depth == 0) Fail("unexpected '" + op + "'", p);
          --depth;
        }
        Push(TokenKind::kOperator, op, p);
        p += op.size();
      }
    }
  }

  // Integers and floats; '_' separators are allowed between digits as in Jinja2.
  size_t LexNumber(size_t p) {
    auto digits = [&](size_t q) {
      while (q < src_.size() && (IsDigitC(src_[q]) || (src_[q] == '_' && q + 1 < src_.size() &&
                                                       IsDigitC(src_[q + 1])))) {
        ++q;
      }
      return q;
    };
    // A number right after '.' is an attribute index (`x.0.1`), never a float.
    const bool after_dot = !tokens_.empty() && tokens_.back().kind == TokenKind::kOperator &&
                           tokens_.back().text == ".";
    size_t e = digits(p);
    bool is_float = false;
    if (!after_dot && e + 1 < src_.size() && src_[e] == '.' && IsDigitC(src_[e + 1])) {
      e = digits(e + 1);
      is_float = true;
    }
    if (!after_dot && e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t q = e + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && IsDigitC(src_[q])) {
        e = digits(q);
        is_float = true;
      }
    }
    std::string text;
    for (size_t i = p; i < e; ++i) {
      if (src_[i] != '_') text.push_back(src_[i]);
    }
    Token& t = Push(is_float ? TokenKind::kFloat : TokenKind::kInteger, text, p);
    if (is_float) {
      t.float_value = std::strtod(text.c_str(), nullptr);
    } else {
      errno = 0;
      t.int_value = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == ERANGE) Fail("integer literal too large", p);
    }
    return e;
  }

  std::string src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> Tokenize(std::string_view source) { return Lexer(source).Run(); }

}  // namespace petrel::jinja
