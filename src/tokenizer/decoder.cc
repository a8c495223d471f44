// Decoders. Each step mirrors one `tokenizers` decoder's decode_chain (decoders/*.rs,
// pre_tokenizers/byte_level.rs, pre_tokenizers/metaspace.rs); the semantics are quirky in places
// (Metaspace drops *every* replacement char of the first token, ByteFallback emits one U+FFFD
// per byte of an invalid run) and are reproduced as they are, since ids must decode to the same
// text as in Python.
#include "tokenizer/decoder.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/json_get.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/utf8.h"

namespace petrel::tokenizer {

namespace {

// "<0xAB>" -> 0xAB, else -1 (ByteFallback::decode_chain accepts exactly this 6-byte form).
int ParseByteToken(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; ++i) {
    char c = t[i];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= c - '0';
    else if (c >= 'a' && c <= 'f')
      v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      v |= c - 'A' + 10;
    else
      return -1;
  }
  return v;
}

void ReplaceAllLiteral(std::string& s, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

}  // namespace

std::string CleanUpTokenization(std::string text) {
  // Same replacements, same order as transformers' PreTrainedTokenizerBase.clean_up_tokenization.
  static constexpr std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) ReplaceAllLiteral(text, from, to);
  return text;
}

Result<std::unique_ptr<Decoder>> Decoder::FromJson(const Json& j, const std::string& path) {
  auto d = std::unique_ptr<Decoder>(new Decoder());
  PETREL_TRY(Parse(j, path, &d->steps_));
  return d;
}

Status Decoder::Parse(const Json& j, const std::string& path, std::vector<Step>* steps) {
  PETREL_TRY(std::string type, GetType(j, path));
  Step st;
  if (type == "Sequence") {
    const Json* list = Find(j, "decoders");
    if (list == nullptr || !list->is_array()) {
      return FormatError(path, "Sequence needs an array field \"decoders\"");
    }
    for (size_t i = 0; i < list->size(); ++i) {
      PETREL_TRY(Parse((*list)[i], path + ".decoders[" + std::to_string(i) + "]", steps));
    }
    return OkStatus();
  } else if (type == "ByteLevel") {
    st.kind = Kind::kByteLevel;
  } else if (type == "ByteFallback") {
    st.kind = Kind::kByteFallback;
  } else if (type == "Fuse") {
    st.kind = Kind::kFuse;
  } else if (type == "Strip") {
    st.kind = Kind::kStrip;
    PETREL_TRY(char32_t c, GetChar(j, "content", path, U' '));
    utf8::Append(st.content, c);
    PETREL_TRY(int64_t start, GetIntOr(j, "start", path, 0));
    PETREL_TRY(int64_t stop, GetIntOr(j, "stop", path, 0));
    if (start < 0 || stop < 0) return FormatError(path, "start/stop must be >= 0");
    st.start = static_cast<size_t>(start);
    st.stop = static_cast<size_t>(stop);
  } else if (type == "Replace") {
    st.kind = Kind::kReplace;
    PETREL_TRY(Regex re, GetPattern(j, "pattern", path));
    st.pattern = std::make_shared<Regex>(std::move(re));
    PETREL_TRY(st.content, GetString(j, "content", path));
  } else if (type == "Metaspace") {
    st.kind = Kind::kMetaspace;
    PETREL_TRY(char32_t c, GetChar(j, "replacement", path, U'\u2581'));
    utf8::Append(st.content, c);
    PETREL_TRY(bool add_prefix_space, GetBoolOr(j, "add_prefix_space", path, true));
    PETREL_TRY(std::string scheme,
               GetStringOr(j, "prepend_scheme", path, add_prefix_space ? "always" : "never"));
    if (scheme != "always" && scheme != "first" && scheme != "never") {
      return FormatError(path, "unknown prepend_scheme \"", scheme, "\"");
    }
    st.prepend = scheme != "never";
  } else if (type == "BPEDecoder") {
    st.kind = Kind::kBpe;
    PETREL_TRY(st.content, GetStringOr(j, "suffix", path, "</w>"));
  } else {
    return Unsupported("tokenizer.json: ", path, ": decoder type \"", type,
                       "\" is not supported (supported: ByteLevel, ByteFallback, Fuse, Strip, "
                       "Replace, Metaspace, BPEDecoder, Sequence)");
  }
  steps->push_back(std::move(st));
  return OkStatus();
}

// Runs every step over the token list, then concatenates (Decoder::decode in `tokenizers`).
Result<std::string> Decoder::Decode(std::vector<std::string> tokens) const {
  for (const Step& step : steps_) PETREL_TRY(Apply(step, &tokens));
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

// One decode_chain step: token strings in, token strings out.
Status Decoder::Apply(const Step& step, std::vector<std::string>* tokens) const {
  std::vector<std::string>& toks = *tokens;
  switch (step.kind) {
    case Kind::kByteLevel: {
      // Map every character back to its byte; a token containing a character outside the
      // byte map (an added token like "<|im_start|>" is fine, "héllo" is not) keeps its UTF-8
      // bytes. The concatenation is then decoded lossily into one string.
      std::string bytes;
      for (const std::string& t : toks) {
        const size_t mark = bytes.size();
        size_t i = 0;
        bool all = true;
        while (i < t.size()) {
          int b = CharToByte(utf8::Next(t, i));
          if (b < 0) {
            all = false;
            break;
          }
          bytes.push_back(static_cast<char>(b));
        }
        if (!all) {
          bytes.resize(mark);
          bytes += t;
        }
      }
      std::string text;
      utf8::AppendLossy(text, bytes);
      toks.assign(1, std::move(text));
      return OkStatus();
    }
    case Kind::kByteFallback: {
      // Runs of <0xXX> tokens become their bytes when they form valid UTF-8, else one U+FFFD
      // per byte token.
      std::vector<std::string> out;
      std::string run;
      size_t run_tokens = 0;
      auto flush = [&]() {
        if (run_tokens == 0) return;
        if (utf8::IsValid(run)) {
          out.push_back(run);
        } else {
          for (size_t k = 0; k < run_tokens; ++k) out.emplace_back("\xEF\xBF\xBD");
        }
        run.clear();
        run_tokens = 0;
      };
      for (std::string& t : toks) {
        int b = ParseByteToken(t);
        if (b >= 0) {
          run.push_back(static_cast<char>(b));
          ++run_tokens;
        } else {
          flush();
          out.push_back(std::move(t));
        }
      }
      flush();
      toks.swap(out);
      return OkStatus();
    }
    case Kind::kFuse: {
      std::string all;
      for (const auto& t : toks) all += t;
      toks.assign(1, std::move(all));
      return OkStatus();
    }
    case Kind::kStrip: {
      // Removes up to `start` leading and `stop` trailing occurrences of the character.
      const std::string& c = step.content;
      for (std::string& t : toks) {
        size_t b = 0, e = t.size();
        for (size_t k = 0; k < step.start && t.compare(b, c.size(), c) == 0 && b < e; ++k) {
          b += c.size();
        }
        for (size_t k = 0;
             k < step.stop && e >= b + c.size() && t.compare(e - c.size(), c.size(), c) == 0; ++k) {
          e -= c.size();
        }
        t = t.substr(b, e - b);
      }
      return OkStatus();
    }
    case Kind::kReplace: {
      // Literal patterns (the common case) need no PCRE2 state.
      std::unique_ptr<RegexScratch> rs;
      if (!step.pattern->literal()) rs = std::make_unique<RegexScratch>();
      for (std::string& t : toks) {
        std::string out;
        PETREL_TRY(ReplaceAll(*step.pattern, step.content, t, &out, rs.get()));
        t.swap(out);
      }
      return OkStatus();
    }
    case Kind::kMetaspace: {
      // The replacement becomes a space, except in the first token where it is dropped
      // (every occurrence, as decoders in `tokenizers` do) unless prepend_scheme is never.
      for (size_t i = 0; i < toks.size(); ++i) {
        std::string out;
        const std::string& t = toks[i];
        size_t pos = 0;
        while (pos < t.size()) {
          if (t.compare(pos, step.content.size(), step.content) == 0) {
            if (!(i == 0 && step.prepend)) out.push_back(' ');
            pos += step.content.size();
          } else {
            out.push_back(t[pos++]);
          }
        }
        toks[i].swap(out);
      }
      return OkStatus();
    }
    case Kind::kBpe: {
      // The end-of-word suffix becomes a space (nothing after the last token).
      for (size_t i = 0; i < toks.size(); ++i) {
        std::string out;
        ReplaceAllLiteral(toks[i], step.content, i + 1 == toks.size() ? "" : " ");
      }
      return OkStatus();
    }
  }
  return OkStatus();
}

}  // namespace petrel::tokenizer
