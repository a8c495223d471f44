#include "tokenizer/byte_level.h"

#include <array>

namespace petrel::tokenizer {

namespace {

constexpr bool IsSelfMapped(int b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

// byte -> code point, computed at compile time (bytes_to_unicode() of GPT-2).
constexpr std::array<char32_t, 256> MakeByteToChar() {
  std::array<char32_t, 256> t{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) t[b] = IsSelfMapped(b) ? char32_t(b) : next++;
  return t;
}
constexpr std::array<char32_t, 256> kByteToChar = MakeByteToChar();

// byte -> its character's UTF-8 encoding (length in [0], bytes in [1..2]).
constexpr std::array<std::array<char, 3>, 256> MakeEncoded() {
  std::array<std::array<char, 3>, 256> t{};
  for (int b = 0; b < 256; ++b) {
    char32_t c = kByteToChar[b];
    if (c < 0x80) {
      t[b] = {1, static_cast<char>(c), 0};
    } else {
      t[b] = {2, static_cast<char>(0xC0 | (c >> 6)), static_cast<char>(0x80 | (c & 0x3F))};
    }
  }
  return t;
}
constexpr std::array<std::array<char, 3>, 256> kEncoded = MakeEncoded();

// code point (< 0x144) -> byte, -1 elsewhere.
constexpr std::array<int16_t, 0x144> MakeCharToByte() {
  std::array<int16_t, 0x144> t{};
  for (auto& v : t) v = -1;
  for (int b = 0; b < 256; ++b) t[kByteToChar[b]] = static_cast<int16_t>(b);
  return t;
}
constexpr std::array<int16_t, 0x144> kCharToByte = MakeCharToByte();

}  // namespace

char32_t ByteToChar(uint8_t b) { return kByteToChar[b]; }

void AppendByteLevel(std::string_view bytes, std::string* out) {
  for (char ch : bytes) {
    const auto& e = kEncoded[static_cast<uint8_t>(ch)];
    out->append(&e[1], static_cast<size_t>(e[0]));
  }
}

int CharToByte(char32_t c) { return c < kCharToByte.size() ? kCharToByte[c] : -1; }

}  // namespace petrel::tokenizer
