// PCRE2 wrapper. Patterns are compiled once at load (with JIT when the platform supports it)
// and shared read-only between threads; all mutable matching state lives in RegexScratch.
// Input is validated as UTF-8 once per Encode call, so matching passes PCRE2_NO_UTF_CHECK.
#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/utf8.h"

namespace petrel::tokenizer {

namespace {
// JIT stack bounds: 32 KiB to start, up to 1 MiB for patterns like \s+(?!\S) on long runs.
constexpr size_t kJitStackStart = 32 * 1024;
constexpr size_t kJitStackMax = 1024 * 1024;
}  // namespace

RegexScratch::RegexScratch() {
  // One ovector pair is enough: only the whole match (group 0) is ever read.
  match_data_ = pcre2_match_data_create(1, nullptr);
  match_context_ = pcre2_match_context_create(nullptr);
  jit_stack_ = pcre2_jit_stack_create(kJitStackStart, kJitStackMax, nullptr);
  PETREL_CHECK(match_data_ && match_context_ && jit_stack_) << "PCRE2 allocation failed";
  pcre2_jit_stack_assign(match_context_, nullptr, jit_stack_);
}

RegexScratch::~RegexScratch() {
  pcre2_jit_stack_free(jit_stack_);
  pcre2_match_context_free(match_context_);
  pcre2_match_data_free(match_data_);
}

void Regex::CodeDeleter::operator()(pcre2_real_code_8* code) const { pcre2_code_free(code); }

Result<Regex> Regex::Compile(std::string_view pattern, bool literal) {
  // PCRE2_LITERAL does not combine with UCP (which only matters for classes anyway).
  const uint32_t options = literal ? (PCRE2_UTF | PCRE2_LITERAL) : (PCRE2_UTF | PCRE2_UCP);
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(error_code, buf, sizeof(buf));
    return InvalidFormat("bad regex \"", pattern, "\" at offset ", error_offset, ": ",
                         reinterpret_cast<const char*>(buf));
  }
  // JIT failure is not fatal (the interpreter gives the same answers, only slower).
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  Regex re;
  re.code_ = std::shared_ptr<pcre2_real_code_8>(code, CodeDeleter());
  re.pattern_ = std::string(pattern);
  re.literal_ = literal;
  return re;
}

Status Regex::FindAll(std::string_view text, RegexScratch& scratch, std::vector<Span>* out) const {
  if (literal_) {
    // Plain non-overlapping substring search; an empty literal never matches (as `tokenizers`).
    if (pattern_.empty()) return OkStatus();
    for (size_t pos = text.find(pattern_); pos != std::string_view::npos;
         pos = text.find(pattern_, pos + pattern_.size())) {
      out->push_back(
          Span{static_cast<uint32_t>(pos), static_cast<uint32_t>(pos + pattern_.size())});
    }
    return OkStatus();
  }
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const size_t n = text.size();
  size_t start = 0;
  while (start <= n) {
    int rc = pcre2_match(code_.get(), subject, n, start, PCRE2_NO_UTF_CHECK, scratch.match_data_,
                         scratch.match_context_);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(rc, buf, sizeof(buf));
      return InvalidArgument("regex \"", pattern_,
                             "\" failed on the input: ", reinterpret_cast<const char*>(buf));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(scratch.match_data_);
    const size_t b = ov[0], e = ov[1];
    out->push_back(Span{static_cast<uint32_t>(b), static_cast<uint32_t>(e)});
    if (e > b) {
      start = e;
    } else {
      // Empty match: step over one character so the scan always makes progress.
      if (e >= n) break;
      start = e + utf8::SeqLen(static_cast<uint8_t>(text[e]));
    }
  }
  return OkStatus();
}

}  // namespace petrel::tokenizer
