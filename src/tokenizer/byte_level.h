// The GPT-2 byte <-> character mapping used by ByteLevel pre-tokenizers and decoders: each of
// the 256 byte values is shown as a printable Unicode character, so a byte-level vocabulary
// is made of ordinary strings. Printable Latin-1 bytes map to themselves; the other 68 bytes
// map to U+0100 + n in byte order ("Ġ" is the space, "Ċ" the newline).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace petrel::tokenizer {

// The character byte `b` is shown as.
char32_t ByteToChar(uint8_t b);

// Appends the byte-level form of `bytes` (each byte becomes its character, 1 or 2 UTF-8 bytes).
void AppendByteLevel(std::string_view bytes, std::string* out);

// The byte a byte-level character stands for, or -1 when `c` is not one of the 256.
int CharToByte(char32_t c);

}  // namespace petrel::tokenizer
