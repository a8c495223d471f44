// UTF-8 rules follow Unicode 15 Table 3-7 (well-formed byte sequences); the lossy decoder
// replaces each maximal subpart of an ill-formed sequence by one U+FFFD, which is what both
// Rust's from_utf8_lossy and Python's decode(errors="replace") do.
#include "tokenizer/utf8.h"

#include <utf8proc.h>

namespace petrel::tokenizer::utf8 {

void Append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {

// For a lead byte, the number of continuation bytes and the allowed range of the first one
// (which is what rules out overlongs, surrogates and code points above U+10FFFF).
struct LeadInfo {
  int n_cont;  // 0 means "not a valid lead byte"
  uint8_t lo, hi;
};

LeadInfo Lead(uint8_t b) {
  if (b >= 0xC2 && b <= 0xDF) return {1, 0x80, 0xBF};
  if (b == 0xE0) return {2, 0xA0, 0xBF};
  if (b == 0xED) return {2, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {2, 0x80, 0xBF};
  if (b == 0xF0) return {3, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {3, 0x80, 0xBF};
  if (b == 0xF4) return {3, 0x80, 0x8F};
  return {0, 0, 0};
}

// Length of the valid sequence at s[i], or -(length of the maximal invalid subpart) when the
// bytes there do not form a character.
int Measure(std::string_view s, size_t i) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const uint8_t b = p[i];
  if (b < 0x80) return 1;
  LeadInfo li = Lead(b);
  if (li.n_cont == 0) return -1;
  size_t j = i + 1;
  if (j >= s.size() || p[j] < li.lo || p[j] > li.hi) return -1;
  ++j;
  for (int k = 1; k < li.n_cont; ++k, ++j) {
    if (j >= s.size() || (p[j] & 0xC0) != 0x80) return -static_cast<int>(j - i);
  }
  return static_cast<int>(j - i);
}

}  // namespace

bool IsValid(std::string_view s, size_t* error_offset) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    // Fast path over ASCII, 8 bytes at a time when aligned runs allow it.
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    int len = Measure(s, i);
    if (len < 0) {
      if (error_offset) *error_offset = i;
      return false;
    }
    i += len;
  }
  return true;
}

void AppendLossy(std::string& out, std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    int len = Measure(bytes, i);
    if (len > 0) {
      out.append(bytes.data() + i, len);
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");  // U+FFFD
      i += -len;
    }
  }
}

bool EndsWithIncompleteSequence(std::string_view s) {
  // Find the last lead byte among the final 3 bytes; incomplete when its sequence needs more
  // bytes than are left and those present form a valid prefix.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto b = static_cast<uint8_t>(s[n - back]);
    if ((b & 0xC0) == 0x80) continue;
    LeadInfo li = Lead(b);
    return li.n_cont >= static_cast<int>(back) && Measure(s, n - back) == -static_cast<int>(back);
  }
  return false;
}

bool IsWhitespace(char32_t c) {
  // The White_Space property (Rust's char::is_whitespace); a fixed, small list in the standard.
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
  if (c < 0x85) return false;
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool IsNumeric(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

bool IsPunctuation(char32_t c) {
  if (c < 0x80) {
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
  }
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

bool IsWordChar(char32_t c) {
  if (c < 0x80) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  }
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_ND) ||
         cat == UTF8PROC_CATEGORY_PC;
}

}  // namespace petrel::tokenizer::utf8
