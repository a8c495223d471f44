// UTF-8 helpers shared by the tokenizer stages: decoding one code point, encoding, validation,
// Rust-compatible lossy decoding (what `tokenizers` uses when bytes do not form valid UTF-8) and
// the few Unicode character classes the pipeline needs (answered by utf8proc, no local tables).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace petrel::tokenizer::utf8 {

// Number of bytes of the sequence that starts with lead byte `b` (1 for ASCII and for bytes
// that cannot start a sequence). Only meaningful on valid UTF-8.
inline int SeqLen(uint8_t b) {
  if (b < 0x80) return 1;
  if (b >= 0xF0) return 4;
  if (b >= 0xE0) return 3;
  if (b >= 0xC0) return 2;
  return 1;
}

// Decodes the code point at s[i] and advances i past it. `s` must be valid UTF-8.
inline char32_t Next(std::string_view s, size_t& i) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + i;
  const uint8_t b = p[0];
  if (b < 0x80) {
    i += 1;
    return b;
  }
  if (b < 0xE0) {
    i += 2;
    return (char32_t(b & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (b < 0xF0) {
    i += 3;
    return (char32_t(b & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  i += 4;
  return (char32_t(b & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) | (char32_t(p[2] & 0x3F) << 6) |
         (p[3] & 0x3F);
}

// Decodes the code point that ends at s[i) (i > 0) and moves i back to its first byte.
inline char32_t Prev(std::string_view s, size_t& i) {
  size_t j = i - 1;
  while (j > 0 && (static_cast<uint8_t>(s[j]) & 0xC0) == 0x80) --j;
  size_t k = j;
  char32_t c = Next(s, k);
  i = j;
  return c;
}

// Appends the UTF-8 encoding of `cp` to `out`.
void Append(std::string& out, char32_t cp);

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or values above U+10FFFF). On
// failure `*error_offset` (when given) receives the byte offset of the first bad sequence.
bool IsValid(std::string_view s, size_t* error_offset = nullptr);

// Appends `bytes` decoded the way Rust's String::from_utf8_lossy does: every maximal invalid
// subpart becomes one U+FFFD (the Unicode "substitution of maximal subparts" practice).
void AppendLossy(std::string& out, std::string_view bytes);

// Whether `s` ends with an incomplete (but so far valid) multi-byte sequence: the bytes a
// streaming decoder must hold back until more arrive.
bool EndsWithIncompleteSequence(std::string_view s);

// Character classes with the meaning Rust's `char` methods give them (they decide splits in
// the pre-tokenizers and normalizers of `tokenizers`).
bool IsWhitespace(char32_t c);   // char::is_whitespace (the White_Space property)
bool IsNumeric(char32_t c);      // char::is_numeric (general categories Nd, Nl, No)
bool IsPunctuation(char32_t c);  // is_ascii_punctuation || general category P*
bool IsWordChar(char32_t c);     // regex \w in Unicode mode: L*, M*, Nd, Pc

}  // namespace petrel::tokenizer::utf8
