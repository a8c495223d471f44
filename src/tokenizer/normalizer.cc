// Normalizers (normalizers/*.rs in `tokenizers`). Unicode work (normal forms, case mapping,
// general categories) is done by utf8proc; note that utf8proc and Rust's unicode crates may
// follow different Unicode versions, which only matters for characters assigned recently.
#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>

#include "tokenizer/json_get.h"
#include "tokenizer/utf8.h"

namespace petrel::tokenizer {

namespace {

bool IsAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

// Unicode normalization through utf8proc. ASCII text is already in every normal form, which is
// the common case and skips the library call.
Status UnicodeNormalize(std::string_view in, std::string* out, int options) {
  if (IsAscii(in)) {
    out->assign(in);
    return OkStatus();
  }
  utf8proc_uint8_t* dst = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(in.data()),
                                    static_cast<utf8proc_ssize_t>(in.size()), &dst,
                                    static_cast<utf8proc_option_t>(UTF8PROC_STABLE | options));
  if (n < 0) {
    return InvalidArgument("unicode normalization failed: ", utf8proc_errmsg(n));
  }
  out->assign(reinterpret_cast<const char*>(dst), static_cast<size_t>(n));
  std::free(dst);
  return OkStatus();
}

// Rust's str::to_lowercase: full lowercase mapping. utf8proc gives the simple (1:1) mapping; the
// two differences that matter in practice are handled here: U+0130 (capital I with dot) becomes
// "i\u0307", and capital sigma becomes final sigma at the end of a word.
void Lowercase(std::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    const auto b = static_cast<unsigned char>(in[i]);
    if (b < 0x80) {
      out->push_back(static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b));
      ++i;
      continue;
    }
    const size_t start = i;
    char32_t c = utf8::Next(in, i);
    if (c == 0x130) {
      out->append("i\xCC\x87");
      continue;
    }
    if (c == 0x3A3) {
      // Final sigma: preceded by a cased letter and not followed by one.
      bool before = false, after = false;
      if (start > 0) {
        size_t k = start;
        char32_t p = utf8::Prev(in, k);
        before = utf8proc_tolower(p) != static_cast<utf8proc_int32_t>(p) ||
                 utf8proc_toupper(p) != static_cast<utf8proc_int32_t>(p);
      }
      if (i < in.size()) {
        size_t k = i;
        char32_t nx = utf8::Next(in, k);
        after = utf8proc_tolower(nx) != static_cast<utf8proc_int32_t>(nx) ||
                utf8proc_toupper(nx) != static_cast<utf8proc_int32_t>(nx);
      }
      utf8::Append(*out, before && !after ? 0x3C2 : 0x3C3);
      continue;
    }
    utf8::Append(*out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
  }
}

}  // namespace

Status ReplaceAll(const Regex& pattern, std::string_view content, std::string_view in,
                  std::string* out, RegexScratch* rs) {
  if (pattern.literal()) {
    // Fast path for {"String": ...} patterns (e.g. " " -> "▁" in SentencePiece-style files).
    const std::string& p = pattern.pattern();
    if (p.empty()) {
      out->append(in);
      return OkStatus();
    }
    size_t prev = 0;
    for (size_t pos = in.find(p); pos != std::string_view::npos; pos = in.find(p, prev)) {
      out->append(in.substr(prev, pos - prev));
      out->append(content);
      prev = pos + p.size();
    }
    out->append(in.substr(prev));
    return OkStatus();
  }
  PETREL_CHECK(rs != nullptr) << "regex replace needs a RegexScratch";
  std::vector<Span> matches;
  PETREL_TRY(pattern.FindAll(in, *rs, &matches));
  size_t prev = 0;
  for (const Span& m : matches) {
    out->append(in.substr(prev, m.begin - prev));
    out->append(content);
    prev = m.end;
  }
  out->append(in.substr(prev));
  return OkStatus();
}

Result<std::unique_ptr<Normalizer>> Normalizer::FromJson(const Json& j, const std::string& path) {
  auto n = std::unique_ptr<Normalizer>(new Normalizer());
  PETREL_TRY(Parse(j, path, &n->steps_));
  return n;
}

// Parses one normalizer object; Sequence recurses and appends its children's steps in order.
Status Normalizer::Parse(const Json& j, const std::string& path, std::vector<Step>* steps) {
  PETREL_TRY(std::string type, GetType(j, path));
  Step step;
  if (type == "Sequence") {
    const Json* list = Find(j, "normalizers");
    if (list == nullptr || !list->is_array()) {
      return FormatError(path, "Sequence needs an array field \"normalizers\"");
    }
    for (size_t i = 0; i < list->size(); ++i) {
      PETREL_TRY(Parse((*list)[i], path + ".normalizers[" + std::to_string(i) + "]", steps));
    }
    return OkStatus();
  } else if (type == "NFC") {
    step.kind = Kind::kNfc;
  } else if (type == "NFD") {
    step.kind = Kind::kNfd;
  } else if (type == "NFKC") {
    step.kind = Kind::kNfkc;
  } else if (type == "NFKD") {
    step.kind = Kind::kNfkd;
  } else if (type == "Lowercase") {
    step.kind = Kind::kLowercase;
  } else if (type == "StripAccents") {
    step.kind = Kind::kStripAccents;
  } else if (type == "Strip") {
    step.kind = Kind::kStrip;
    PETREL_TRY(step.left, GetBoolOr(j, "left", path, true));
    PETREL_TRY(step.right, GetBoolOr(j, "right", path, true));
  } else if (type == "Prepend") {
    step.kind = Kind::kPrepend;
    PETREL_TRY(step.text, GetString(j, "prepend", path));
  } else if (type == "Replace") {
    step.kind = Kind::kReplace;
    PETREL_TRY(Regex re, GetPattern(j, "pattern", path));
    step.pattern = std::make_unique<Regex>(std::move(re));
    PETREL_TRY(step.text, GetString(j, "content", path));
  } else {
    return Unsupported("tokenizer.json: ", path, ": normalizer type \"", type,
                       "\" is not supported (supported: NFC, NFD, NFKC, NFKD, Lowercase, Strip, "
                       "StripAccents, Prepend, Replace, Sequence)");
  }
  steps->push_back(std::move(step));
  return OkStatus();
}

// Steps ping-pong between `out` and `tmp`; both keep their capacity across calls.
Status Normalizer::Normalize(std::string_view in, std::string* out, std::string* tmp,
                             RegexScratch& rs) const {
  out->assign(in);
  for (const Step& step : steps_) {
    tmp->clear();
    PETREL_TRY(Apply(step, *out, tmp, rs));
    out->swap(*tmp);
  }
  return OkStatus();
}

Status Normalizer::Apply(const Step& step, std::string_view in, std::string* out,
                         RegexScratch& rs) const {
  switch (step.kind) {
    case Kind::kNfc:
      return UnicodeNormalize(in, out, UTF8PROC_COMPOSE);
    case Kind::kNfd:
      return UnicodeNormalize(in, out, UTF8PROC_DECOMPOSE);
    case Kind::kNfkc:
      return UnicodeNormalize(in, out, UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
    case Kind::kNfkd:
      return UnicodeNormalize(in, out, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
    case Kind::kLowercase:
      Lowercase(in, out);
      return OkStatus();
    case Kind::kStripAccents: {
      // Drops nonspacing marks (category Mn), as `tokenizers` does after NFD.
      size_t i = 0;
      while (i < in.size()) {
        const size_t start = i;
        char32_t c = utf8::Next(in, i);
        if (c >= 0x300 &&
            utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_MN) {
          continue;
        }
        out->append(in.substr(start, i - start));
      }
      return OkStatus();
    }
    case Kind::kStrip: {
      size_t b = 0, e = in.size();
      if (step.left) {
        while (b < e) {
          size_t k = b;
          if (!utf8::IsWhitespace(utf8::Next(in, k))) break;
          b = k;
        }
      }
      if (step.right) {
        while (e > b) {
          size_t k = e;
          if (!utf8::IsWhitespace(utf8::Prev(in, k))) break;
          e = k;
        }
      }
      out->assign(in.substr(b, e - b));
      return OkStatus();
    }
    case Kind::kPrepend:
      // `tokenizers` prepends only to non-empty strings.
      if (!in.empty()) out->append(step.text);
      out->append(in);
      return OkStatus();
    case Kind::kReplace:
      return ReplaceAll(*step.pattern, step.text, in, out, &rs);
  }
  return OkStatus();
}

}  // namespace petrel::tokenizer
