// Jinja2 lexer: splits a template into data and tag tokens, applying Jinja2's whitespace rules
// exactly as transformers configures them (trim_blocks=True, lstrip_blocks=True,
// keep_trailing_newline=False):
//   - newlines are normalized to "\n" and one trailing newline of the source is dropped;
//   - `{%- ` / `{{-` / `{#-` strip all whitespace before the tag, `-%}` / `-}}` / `-#}` after it;
//   - trim_blocks: the first newline after `%}` or `#}` is removed (unless `+%}`);
//   - lstrip_blocks: spaces and tabs between a line start and `{%` / `{#` are removed (unless
//   `{%+`).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace petrel::jinja {

// 1-based line and column (column counts bytes) of a token or AST node.
struct SourcePos {
  int line = 0;
  int column = 0;
};

enum class TokenKind {
  kData,        // literal template text (also {% raw %} contents)
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,        // identifiers and keywords
  kString,      // string literal, escapes already decoded
  kInteger,
  kFloat,
  kOperator,  // + - * / // % ** ~ == != < <= > >= = . , : | ( ) [ ] { } ;
  kEof,
};

struct Token {
  TokenKind kind = TokenKind::kEof;
  std::string text;  // data, name, decoded string, or operator spelling
  int64_t int_value = 0;
  double float_value = 0;
  SourcePos pos;
};

// Tokenizes `source`. Throws TemplateException (with line/column) on unterminated tags,
// comments, strings or unexpected characters.
std::vector<Token> Tokenize(std::string_view source);

}  // namespace petrel::jinja
