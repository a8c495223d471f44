// Tokenizer: Encode / Decode over the loaded pipeline (loading is in tokenizer_json.cc).
#include "tokenizer/tokenizer.h"

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace petrel::tokenizer {

// Everything one Encode call writes, kept between calls so the hot path does not allocate
// (and so the BPE word cache stays warm). Borrowed from Tokenizer::pool_.
struct EncodeScratch {
  RegexScratch regex;
  std::vector<Segment> raw_segments;
  std::vector<Segment> norm_segments;
  std::string normalized;
  std::string norm_tmp;
  PreTokScratch pre;
  BpeScratch bpe;
};

// Out of line because of the unique_ptrs to types only declared in tokenizer.h.
Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

// The pool grows to the peak number of concurrent Encode calls and never shrinks; a scratch's
// BPE cache is bounded (BpeModel::kCacheCapacity), so memory stays bounded too.
std::unique_ptr<EncodeScratch> Tokenizer::AcquireScratch() const {
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (!pool_.empty()) {
      auto s = std::move(pool_.back());
      pool_.pop_back();
      return s;
    }
  }
  return std::make_unique<EncodeScratch>();
}

void Tokenizer::ReleaseScratch(std::unique_ptr<EncodeScratch> s) const {
  std::lock_guard<std::mutex> lock(pool_mu_);
  pool_.push_back(std::move(s));
}

Result<std::vector<int32_t>> Tokenizer::Encode(std::string_view text,
                                               const EncodeOptions& opts) const {
  size_t bad = 0;
  if (!utf8::IsValid(text, &bad)) {
    return InvalidArgument("text to encode is not valid UTF-8 (byte offset ", bad, ")");
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::unique_ptr<EncodeScratch> s = AcquireScratch();
  Status st = EncodeInto(text, opts, *s, &ids);
  ReleaseScratch(std::move(s));
  if (!st.ok()) return st.error();
  return ids;
}

// The pipeline of TokenizerImpl::encode_single_sequence in `tokenizers`.
Status Tokenizer::EncodeInto(std::string_view text, const EncodeOptions& opts, EncodeScratch& s,
                             std::vector<int32_t>* ids) const {
  const bool skip_special = !opts.parse_special;
  // 1. Added tokens that match the raw input.
  s.raw_segments.clear();
  if (raw_matcher_->empty()) {
    if (!text.empty()) s.raw_segments.push_back(Segment{0, uint32_t(text.size()), -1});
  } else {
    raw_matcher_->Split(text, skip_special, &s.raw_segments);
  }
  for (const Segment& seg : s.raw_segments) {
    if (seg.id >= 0) {
      ids->push_back(seg.id);
      continue;
    }
    // 2. Normalize the text between them.
    std::string_view piece = text.substr(seg.begin, seg.end - seg.begin);
    if (normalizer_) {
      PETREL_TRY(normalizer_->Normalize(piece, &s.normalized, &s.norm_tmp, s.regex));
      piece = s.normalized;
    }
    // 3. Added tokens that match normalized text.
    s.norm_segments.clear();
    if (norm_matcher_->empty()) {
      if (!piece.empty()) s.norm_segments.push_back(Segment{0, uint32_t(piece.size()), -1});
    } else {
      norm_matcher_->Split(piece, skip_special, &s.norm_segments);
    }
    for (const Segment& ns : s.norm_segments) {
      if (ns.id >= 0) {
        ids->push_back(ns.id);
        continue;
      }
      std::string_view sub = piece.substr(ns.begin, ns.end - ns.begin);
      // 4. Pre-tokenize into words, 5. BPE each word.
      if (!pre_tokenizer_) {
        PETREL_TRY(model_->Tokenize(sub, s.bpe, ids));
        continue;
      }
      const bool origin = seg.begin == 0 && ns.begin == 0;
      PETREL_TRY(pre_tokenizer_->Run(sub, origin, s.pre, s.regex));
      const Pieces& words = s.pre.a;
      for (const Piece& w : words.list) {
        PETREL_TRY(model_->Tokenize(std::string_view(words.text.data() + w.begin, w.end - w.begin),
                                    s.bpe, ids));
      }
    }
  }
  // 6. BOS/EOS.
  if (opts.add_special_tokens && post_processor_) post_processor_->Apply(ids);
  return OkStatus();
}

const std::string* Tokenizer::IdToTokenPtr(int32_t id) const {
  if (id < 0 || id >= vocab_size_) return nullptr;
  if (int32_t k = added_by_id_[id]; k >= 0) return &added_[k].content;
  return model_->IdToToken(id);
}

// Tokenizer::decode in `tokenizers` (added-token content first, then the model vocabulary;
// skip_special_tokens drops special ids), then transformers' clean-up when configured. Unlike
// `tokenizers`, which silently skips unknown ids, an unknown id is an error here.
Result<std::string> Tokenizer::Decode(std::span<const int32_t> ids,
                                      bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string* t = IdToTokenPtr(id);
    if (t == nullptr) {
      return OutOfRange("token id ", id, " is out of range (vocabulary size ", vocab_size_, ")");
    }
    if (skip_special_tokens && special_[id]) continue;
    tokens.push_back(*t);
  }
  std::string text;
  if (decoder_) {
    PETREL_TRY(text, decoder_->Decode(std::move(tokens)));
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) text += ' ';
      text += tokens[i];
    }
  }
  if (clean_up_spaces_) text = CleanUpTokenization(std::move(text));
  return text;
}

std::vector<std::string> Tokenizer::IdsToTokens(std::span<const int32_t> ids) const {
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (int32_t id : ids) {
    const std::string* t = IdToTokenPtr(id);
    out.push_back(t ? *t : std::string());
  }
  return out;
}

// Linear over the added tokens (a few hundred at most; not on a hot path), then the vocab map.
std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  for (const AddedToken& a : added_) {
    if (a.content == token) return a.id;
  }
  int32_t id = model_->TokenToId(token);
  if (id >= 0) return id;
  return std::nullopt;
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size_ && special_[id] != 0;
}

}  // namespace petrel::tokenizer
