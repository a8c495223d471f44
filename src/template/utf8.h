// Unicode helpers for Python-compatible string methods. Python strings are sequences of code
// points, so len(), indexing, slicing, upper() and strip() work per code point; we keep UTF-8
// bytes and decode on demand. Invalid UTF-8 bytes decode to U+FFFD-free "raw byte" code points
// (0xDC00 + byte, like Python's surrogateescape) so that encoding back is lossless.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace petrel::jinja::utf8 {

std::u32string Decode(std::string_view s);
std::string Encode(std::u32string_view s);
void Append(std::string& out, char32_t c);
// Number of code points.
size_t Length(std::string_view s);

// Python str.isspace() for one code point (\t\n\v\f\r, \x1c-\x1f, space, \x85, Zs, U+2028/9).
bool IsSpace(char32_t c);
// Python str.isprintable() for one code point (what repr() leaves unescaped).
bool IsPrintable(char32_t c);
bool IsAlpha(char32_t c);
bool IsDigit(char32_t c);
bool IsUpper(char32_t c);
bool IsLower(char32_t c);
// Python "cased" letters (have case): used by title() and capitalize().
bool IsCased(char32_t c);
char32_t ToUpper(char32_t c);
char32_t ToLower(char32_t c);
char32_t ToTitle(char32_t c);

std::string Upper(std::string_view s);
std::string Lower(std::string_view s);

}  // namespace petrel::jinja::utf8
